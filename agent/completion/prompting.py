"""Prompt assembly within a token budget.

The prefix window starts at a line boundary that moves in steps of ``ANCHOR_LINES`` lines,
so consecutive requests while typing share the start of their prompt and the backend can
reuse its KV cache. Retrieved context (a later issue) goes in ``context`` ahead of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hone.models.prompts import PromptTemplate

ANCHOR_LINES = 32
CHARS_PER_TOKEN_GUESS = 3  # generous: we only use it to cut a window before counting


@dataclass
class Prompt:
    text: str
    prefix: str  # the part of the document prefix that made it into the prompt
    suffix: str
    prefix_tokens: int
    suffix_tokens: int


def _advance_lines(text: str, offset: int, n: int) -> int:
    """Offset of the start of the line ``n`` lines after the one starting at ``offset``."""
    for _ in range(n):
        nl = text.find("\n", offset)
        if nl < 0:
            return -1
        offset = nl + 1
    return offset


def _window_prefix(prefix: str, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
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


def build_prompt(
    template: PromptTemplate,
    prefix: str,
    suffix: str,
    path: str | None,
    budget: int,
    count: Callable[[str], int],
    suffix_share: float = 0.25,
) -> Prompt:
    """Render ``prefix``/``suffix`` into ``template`` within ``budget`` tokens."""
    suffix_budget = int(budget * suffix_share) if template.fim else 0
    suf_text, suf_n = _window_suffix(suffix, suffix_budget, count)
    pre_text, pre_n = _window_prefix(prefix, budget - suf_n, count)
    return Prompt(
        text=template.render(pre_text, suf_text, path),
        prefix=pre_text,
        suffix=suf_text,
        prefix_tokens=pre_n,
        suffix_tokens=suf_n,
    )
