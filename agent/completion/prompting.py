"""What the model sees of a completion, within a token budget.

The engine owns the budget; the backend renders what the engine hands it (an
:class:`~hone.models.backend.Infill`). ``contextTokens`` covers the whole prompt:

1. the template's own tokens (FIM markers, the file-path header), counted first;
2. context snippets, up to ``retrievalTokens`` (and never more than half of what is left),
   best first, each cut to its first lines when it does not fit whole;
3. the suffix, ``suffixShare`` of the rest (FIM families only);
4. the prefix, whatever remains.

Counting uses the backend's tokenizer, or :func:`~hone.models.backend.estimate_tokens`
(conservative) where the backend has none. Pieces counted apart can merge at their seams,
so the rendered whole is counted once more and the prefix shrunk if it is over.

The prefix window starts at a line boundary that moves in steps of ``ANCHOR_LINES`` lines,
so consecutive requests while typing share the start of their prompt and the backend can
reuse its KV cache; snippets come before the file's text in every family's template for
the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from hone.models.backend import Infill, Snippet
from hone.models.prompts import PromptTemplate

ANCHOR_LINES = 32
CHARS_PER_TOKEN_GUESS = 3  # generous: we only use it to cut a window before counting
MIN_SNIPPET_TOKENS = 16  # a snippet cut shorter than this is left out


@dataclass
class Prompt:
    infill: Infill  # what the backend is handed
    text: str  # the infill in the family's template: what a local model is fed
    prefix_tokens: int
    suffix_tokens: int
    snippet_tokens: int = 0
    overhead_tokens: int = 0  # the template's own tokens (markers, file header)
    total_tokens: int = 0  # the rendered text, counted whole

    @property
    def prefix(self) -> str:
        """The part of the document prefix that made it into the prompt."""
        return self.infill.prefix

    @property
    def suffix(self) -> str:
        return self.infill.suffix

    @property
    def snippets(self) -> tuple[Snippet, ...]:
        return self.infill.snippets


def workspace_path(path: str | None, root: str | None) -> str | None:
    """``path`` as the model may see it: relative to ``root`` (POSIX separators), never
    absolute (a file outside the workspace, or with no root known, gets its name only)."""
    if not path:
        return None
    for flavour in (PurePosixPath, PureWindowsPath):
        p: PurePath = flavour(path)
        if p.is_absolute():
            if root:
                try:
                    return p.relative_to(flavour(root)).as_posix()
                except ValueError:
                    pass
            return p.name or None
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _advance_lines(text: str, offset: int, n: int) -> int:
    """Offset of the start of the line ``n`` lines after the one starting at ``offset``."""
    for _ in range(n):
        nl = text.find("\n", offset)
        if nl < 0:
            return -1
        offset = nl + 1
    return offset


def _window_prefix(prefix: str, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
    if budget <= 0 or not prefix:
        return "", 0
    # Cut a generous character window first so token counting stays cheap on huge files,
    # then start at the next line whose number is a multiple of ANCHOR_LINES.
    lo = max(0, len(prefix) - budget * CHARS_PER_TOKEN_GUESS * 2)
    offset = 0
    if lo:
        line_of_lo = prefix.count("\n", 0, lo)
        line_start = prefix.rfind("\n", 0, lo) + 1
        anchored = -(-(line_of_lo + 1) // ANCHOR_LINES) * ANCHOR_LINES
        offset = _advance_lines(prefix, line_start, anchored - line_of_lo)
    while offset >= 0:
        text = prefix[offset:]
        n = count(text)
        if n <= budget:
            return text, n
        offset = _advance_lines(prefix, offset, ANCHOR_LINES)
    # Fewer than ANCHOR_LINES lines are over budget (very long lines): keep the tail.
    text = prefix[-budget * CHARS_PER_TOKEN_GUESS :]
    while (n := count(text)) > budget and text:
        text = text[len(text) // 8 or 1 :]
    return text, n


def _window_suffix(suffix: str, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
    if budget <= 0 or not suffix:
        return "", 0
    text = suffix[: budget * CHARS_PER_TOKEN_GUESS * 2]
    lines = text.split("\n")
    while True:
        text = "\n".join(lines)
        n = count(text)
        if n <= budget or len(lines) <= 1:
            break
        lines = lines[: max(1, len(lines) - max(1, (n - budget) // 12))]
    if n > budget:
        text = text[: budget * CHARS_PER_TOKEN_GUESS]
        n = count(text)
    return text, n


def fit_snippets(
    template: PromptTemplate,
    snippets: Iterable[Snippet],
    budget: int,
    count: Callable[[str], int],
) -> tuple[tuple[Snippet, ...], int]:
    """The snippets (best first) that fit ``budget`` tokens as the template lays them out,
    and their tokens. One that does not fit whole keeps its first lines if at least
    ``MIN_SNIPPET_TOKENS`` of them fit; later, smaller ones may still fit."""
    kept: list[Snippet] = []
    used = 0
    for snippet in snippets:
        room = budget - used
        if room < MIN_SNIPPET_TOKENS:
            break
        if not snippet.text.strip():
            continue
        rendered = template.render_snippet(snippet)
        if not rendered:  # the family cannot lay out this file type
            continue
        n = count(rendered)
        if n > room:
            snippet, n = _snippet_head(template, snippet, room, count)
            if n < MIN_SNIPPET_TOKENS:
                continue
        kept.append(snippet)
        used += n
    return tuple(kept), used


def _snippet_head(
    template: PromptTemplate, snippet: Snippet, room: int, count: Callable[[str], int]
) -> tuple[Snippet, int]:
    """The snippet cut to its longest run of first lines that fits ``room`` tokens."""
    lines = snippet.text.split("\n")
    best, best_n = snippet, 0
    lo, hi = 1, len(lines) - 1  # whole lines only; the full snippet did not fit
    while lo <= hi:
        mid = (lo + hi) // 2
        head = Snippet(snippet.path, "\n".join(lines[:mid]) + "\n")
        n = count(template.render_snippet(head))
        if n <= room:
            best, best_n, lo = head, n, mid + 1
        else:
            hi = mid - 1
    return best, best_n


def build_prompt(
    template: PromptTemplate,
    prefix: str,
    suffix: str,
    path: str | None,
    budget: int,
    count: Callable[[str], int],
    suffix_share: float = 0.25,
    *,
    language: str = "plaintext",
    snippets: Iterable[Snippet] = (),
    snippet_budget: int = 0,
) -> Prompt:
    """Trim prefix, suffix and snippets so that ``template`` renders them within ``budget``
    tokens (``path`` must already be relative: :func:`workspace_path`)."""
    overhead = count(template.render_infill(Infill("", "", path, language)))
    available = max(0, budget - overhead)
    kept, snippet_n = fit_snippets(template, snippets, min(snippet_budget, available // 2), count)
    rest = available - snippet_n
    suf_text, suf_n = _window_suffix(suffix, int(rest * suffix_share) if template.fim else 0, count)
    prefix_budget = rest - suf_n
    while True:
        pre_text, pre_n = _window_prefix(prefix, prefix_budget, count)
        infill = Infill(pre_text, suf_text, path, language, kept)
        text = template.render_infill(infill)
        total = count(text)
        # Pieces counted apart can merge or split at their seams: the whole decides.
        if total <= budget or not pre_text:
            break
        prefix_budget = min(prefix_budget, pre_n) - (total - budget)
    return Prompt(
        infill=infill,
        text=text,
        prefix_tokens=pre_n,
        suffix_tokens=suf_n,
        snippet_tokens=snippet_n,
        overhead_tokens=overhead,
        total_tokens=total,
    )
