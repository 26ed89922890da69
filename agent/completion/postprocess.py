"""Cleaning the model's raw output into the text to insert at the cursor.

:func:`postprocess` turns raw generated text into the suggestion ("" for none);
:func:`is_complete` tells the streaming loop when nothing more would be kept, so
generation can stop early. Both are plain-text and bracket/indentation based (see
:func:`hone.retrieval.syntax.scan_text`), so they agree with each other, cost
microseconds, and work on the half-written code that completions are made of. The
steps, in order:

1. cut at the first template/control token (``<|endoftext|>``, ``<fim_middle>``,
   ``<｜fim▁end｜>``, ``<EOT>``, ...); normalise line endings to ``\\n``;
2. shape: on a cursor line holding only indentation, whitespace the first line adds
   to it is dropped (later lines move left with it: :func:`_strip_extra_indent`).
   SINGLE keeps the first line ("" when it is blank); MULTI keeps lines up
   to the end of the block the cursor is in: the first line (after the first) that
   starts outside brackets and strings at an indentation at or under the block's
   base ends it (comment lines there only end it if code follows them). For brace
   languages a bare closing line (``}``, ``});``) at the base is kept when the
   suffix does not already close the block;
3. suffix overlap: a completion tail equal to the start of the rest of the cursor
   line is dropped when that does not unbalance brackets (``foo(x))`` before ``)``
   gives ``foo(x)``); in SINGLE mode closers beyond what the line can take, given
   the suffix, are cut; completion lines that reappear as the next line(s) of the
   suffix are cut with everything after them;
4. repeats: give nothing when the first line repeats the last line of the prefix;
   cut a degenerate loop: a line that loops inside itself (``return True, False,
   False, False, ...``, ``t.type_value_value_value``: :func:`_degenerate`, also
   while it is being written), a non-trivial line identical to the one before it, or
   the start of four lines in a row repeating four earlier lines (one repeated line
   alone is too common in real code to cut at: see :func:`_repeat_cut`);
5. the line cap (``max_lines``, MULTI): longer suggestions are cut at a line end,
   preferably at the end of a statement that is not a block header
   (:func:`_line_cap`); a suggestion cut short by 4 or 5 does not end with a block
   header left without its body;
6. trailing whitespace is trimmed from every line, trailing blank lines dropped,
   and a whitespace-only result becomes "".

Lines are *trivial* (never treated as repeats) when they are short, have no
letters or digits, or start with a keyword that legitimately repeats: ``return``,
``raise``, ``break``, ``continue``, ``pass``, ``else``, ``try``, ``finally``,
``except``, ``case``, ``default``, ``end``, a decorator.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from hone.agent.completion.policy import Mode
from hone.retrieval.syntax import indent_width, scan_text, spec_for

__all__ = ["CONTROL_TOKEN", "is_complete", "postprocess"]

CONTROL_TOKEN = re.compile(
    r"<\|[^|<>\s]{1,40}\|>"  # <|endoftext|> <|im_end|> <|fim_prefix|> <|file_separator|>
    r"|<｜[^｜<>]{1,40}｜>"  # DeepSeek: <｜fim▁begin｜> <｜end▁of▁sentence｜>
    r"|<fim[_-](?:prefix|suffix|middle|pad)>"
    r"|<(?:file_sep|filename|repo_name|reponame|gh_stars|issue_start|commit_before"
    r"|commit_msg|commit_after|empty_output|jupyter_[a-z_]+)>"
    r"|<(?:EOT|PRE|SUF|MID)>"
)

_CLOSING_CHARS = frozenset(")]}\"'`")
_CLOSER_LINE = re.compile(r"[)\]}]+[)\]};,]*")
_TRIVIAL_WORDS = frozenset(
    "return raise yield break continue pass else elif try finally except case default "
    "end fi done esac".split()
)
_LEADING_WORD = re.compile(r"[A-Za-z_]+")
_PREFIX_TAIL = 8_000  # characters of prefix examined (the block base is found in it)
_SUFFIX_HEAD = 2_000
_STATEMENT_LINES = 30  # prefix lines whose open brackets the completion may close
_RUN = 4  # repeated lines in a row that make a loop


def postprocess(
    completion: str,
    *,
    prefix: str,
    suffix: str,
    mode: Mode,
    language: str,
    max_lines: int | None = None,
    truncated: bool = False,
) -> str:
    """The text to insert at the cursor for raw model output ``completion`` ("" for none).

    ``max_lines`` caps a MULTI suggestion's lines (None: no cap; see :func:`_line_cap`).
    ``truncated``: generation stopped at its token cap, so a MULTI completion's last
    line is unfinished and is not shown (nor a block header it would leave bare).
    """
    try:
        mode = Mode(mode)
        if not isinstance(completion, str) or not completion or mode is Mode.NONE:
            return ""
        ctx = _context(*_clip(prefix, suffix), language if isinstance(language, str) else "")
        text = _normalise(_cut_control(completion))
        if mode is Mode.SINGLE:
            text = _single(text, ctx)
        else:
            text = _multi(text, ctx, _cap(max_lines), truncated=truncated)
        return _finish(text)
    except Exception:  # a bug here must not surface in the editor
        return ""


def is_complete(
    generated: str,
    *,
    prefix: str,
    suffix: str,
    mode: Mode,
    language: str,
    max_lines: int | None = None,
) -> bool:
    """True once more generated text could not change what :func:`postprocess` keeps."""
    try:
        mode = Mode(mode)
        if not isinstance(generated, str) or mode is Mode.NONE:
            return True
        if "<" in generated and CONTROL_TOKEN.search(generated):
            return True
        text = _normalise(generated)
        ctx = _context(*_clip(prefix, suffix), language if isinstance(language, str) else "")
        if mode is Mode.SINGLE:
            return "\n" in text or _degenerate(ctx.before + text, partial=True)
        if "\n" not in text:
            return _degenerate(ctx.before + text, partial=True)
        return _multi_complete(text, ctx, _cap(max_lines))
    except Exception:
        return True


def _cap(max_lines: object) -> int | None:
    if isinstance(max_lines, bool) or not isinstance(max_lines, int):
        return None
    return max(1, max_lines)


# --------------------------------------------------------------------------------------
# Context from the prefix and suffix


@dataclass(frozen=True, eq=False)  # identity hash: instances come from a cache
class _Context:
    language: str
    before: str  # the cursor line up to the cursor
    prev_lines: tuple[str, ...]  # prefix lines above the cursor line, nearest last
    rest: str  # the cursor line after the cursor
    next_lines: tuple[str, ...]  # the next non-blank suffix lines (up to 3), stripped
    closes_block: str  # first closing character the suffix supplies after the cursor

    @property
    def offside(self) -> bool:
        return spec_for(self.language).block_open != "{"

    @functools.cached_property
    def statement(self) -> str:
        """The prefix's last lines up to the cursor: brackets opened there may be closed."""
        return "\n".join((*self.prev_lines[-_STATEMENT_LINES:], self.before))

    @property
    def last_prefix_line(self) -> str:
        """The last non-blank prefix line: the cursor line if it holds text, else above."""
        if self.before.strip():
            return self.before
        for line in reversed(self.prev_lines):
            if line.strip():
                return line
        return ""


def _clip(prefix: object, suffix: object) -> tuple[str, str]:
    prefix = prefix if isinstance(prefix, str) else ""
    suffix = suffix if isinstance(suffix, str) else ""
    return prefix[-_PREFIX_TAIL:], suffix[:_SUFFIX_HEAD]


@functools.lru_cache(maxsize=32)
def _context(prefix: str, suffix: str, language: str) -> _Context:
    lines = _normalise(prefix).split("\n")
    if len(prefix) >= _PREFIX_TAIL and len(lines) > 1:
        lines = lines[1:]  # the first one is probably cut
    after = _normalise(suffix).split("\n")
    following = [line.strip() for line in after[1:] if line.strip()][:3]
    closes = ""
    for line in after:
        stripped = line.strip()
        if stripped:
            closes = stripped[0] if stripped[0] in ")]}" else ""
            break
    return _Context(
        language=language,
        before=lines[-1],
        prev_lines=tuple(lines[:-1]),
        rest=after[0],
        next_lines=tuple(following),
        closes_block=closes,
    )


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _cut_control(text: str) -> str:
    match = CONTROL_TOKEN.search(text) if "<" in text else None
    return text[: match.start()] if match else text


# --------------------------------------------------------------------------------------
# Lines


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t\f"))]


def _trivial(line: str) -> bool:
    stripped = line.strip()
    if len(stripped) < 4 or not any(ch.isalnum() for ch in stripped):
        return True
    if stripped.startswith("@"):
        return True
    word = _LEADING_WORD.match(stripped)
    return word is not None and word.group() in _TRIVIAL_WORDS


def _code_of(line: str, language: str) -> str:
    """``line`` without a trailing line comment, stripped."""
    scan = scan_text(line, language)
    return (line[: scan.comment_start] if scan.comment_start >= 0 else line).strip()


def _logical_start(lines: tuple[str, ...] | list[str], index: int, language: str) -> int:
    """Index of the line starting the statement whose last line is ``lines[index]``."""
    need = 0
    for i in range(index, max(-1, index - 50), -1):
        scan = scan_text(lines[i], language)
        need += scan.excess - (len(scan.open) if i != index else 0)
        if need <= 0:
            return i
    return index


@functools.lru_cache(maxsize=64)
def _block_base(ctx: _Context, first_indent: str) -> int | None:
    """Indentation width at or under which a line ends the block being completed.

    ``first_indent`` is the leading whitespace of the completion's first non-blank
    line when it goes on the (blank) cursor line. None: no block to end (top level).
    """
    lines = ctx.prev_lines
    if ctx.before.strip():  # after code on the cursor line, e.g. a header `def f(x):`
        full = (*lines, ctx.before)
        return indent_width(_lead(full[_logical_start(full, len(full) - 1, ctx.language)]))
    block_open = spec_for(ctx.language).block_open
    for i in range(len(lines) - 1, max(-1, len(lines) - 200), -1):
        code = _code_of(lines[i], ctx.language)
        if not code:
            continue
        if block_open and code.endswith(block_open):
            return indent_width(_lead(lines[_logical_start(lines, i, ctx.language)]))
        break
    body = indent_width(ctx.before + first_indent)
    for i in range(len(lines) - 1, max(-1, len(lines) - 400), -1):
        line = lines[i]
        if line.strip():
            width = indent_width(_lead(line))
            if width < body:
                return width
    return None


# --------------------------------------------------------------------------------------
# SINGLE


def _single(text: str, ctx: _Context) -> str:
    line = _strip_extra_indent([text.split("\n", 1)[0].rstrip()], ctx)[0]
    if not line.strip() or _degenerate(ctx.before + line, partial="\n" not in text):
        return ""
    line = _trim_overlap(line, ctx)
    line = _trim_excess_closers(line, ctx)
    full = ctx.before + line
    if not _trivial(full) and full.strip() in _refs(ctx):
        return ""
    return line


def _refs(ctx: _Context) -> set[str]:
    """Lines a SINGLE completion must not reproduce: the line above, the next suffix line."""
    refs = {_line_above(ctx).strip()} - {""}
    if ctx.next_lines and not ctx.rest.strip():
        refs.add(ctx.next_lines[0])
    return refs


def _score(text: str, language: str) -> tuple[int, int, int]:
    scan = scan_text(text, language)
    return scan.excess, bool(scan.quote), len(scan.open)


def _trim_overlap(tail: str, ctx: _Context, head: str = "") -> str:
    """Drop the end of ``tail`` that repeats the rest of the cursor line.

    ``head`` is completion text before ``tail`` (MULTI). Two kinds of cut, kept only
    if the line's brackets and quotes end up no worse balanced:

    * the tail equals the start of the rest (``foo(x))`` before ``)``: ``foo(x)``);
    * the completion closes, early, what the rest closes and goes on past it
      (``%s", path)`` before ``")``: ``%s``) - only when strictly better balanced.
    """
    rest = ctx.rest.rstrip()
    if not rest.strip() or not tail:
        return tail
    before = ctx.statement + head

    def score(candidate: str) -> tuple[int, int, int]:
        return _score(before + candidate + rest, ctx.language)

    best, best_score = tail, score(tail)
    for k in range(1, min(len(tail), len(rest)) + 1):
        if tail.endswith(rest[:k]):
            candidate = tail[:-k]
            candidate_score = score(candidate)
            if candidate_score <= best_score:
                best, best_score = candidate, candidate_score
    closer = rest.lstrip()[0]
    if closer in _CLOSING_CHARS:
        j = len(tail)
        while (j := tail.rfind(closer, 0, j)) > 0:
            candidate = tail[:j].rstrip()
            candidate_score = score(candidate)
            if candidate_score < best_score:
                best, best_score = candidate, candidate_score
    return best


def _trim_excess_closers(line: str, ctx: _Context) -> str:
    """Cut ``line`` before the closer that leaves the cursor line with unmatched closers."""
    rest, before = ctx.rest, ctx.statement
    allowed = scan_text(before + rest, ctx.language).excess
    if scan_text(before + line + rest, ctx.language).excess <= allowed:
        return line
    for j in range(len(line) - 1, -1, -1):
        if line[j] in ")]}":
            candidate = line[:j]
            if scan_text(before + candidate + rest, ctx.language).excess <= allowed:
                return candidate.rstrip()
    return line


# --------------------------------------------------------------------------------------
# MULTI


def _prepare(text: str, ctx: _Context) -> tuple[list[str], int | None, list[bool]]:
    """Lines of a MULTI completion, the block base width, and continuation-line flags."""
    lines = _strip_extra_indent(_drop_leading_blank_lines(text.split("\n"), ctx), ctx)
    first_indent = next((_lead(line) for line in lines if line.strip()), "")
    base = _block_base(ctx, first_indent if not ctx.before.strip() else "")
    continuation = scan_text("\n".join(lines), ctx.language).continuation
    return lines, base, continuation


def _multi(
    text: str, ctx: _Context, max_lines: int | None = None, *, truncated: bool = False
) -> str:
    lines, base, continuation = _prepare(text, ctx)
    kept = [lines[0]]
    for i in range(1, len(lines)):
        line = lines[i]
        if _ends_block(line, base, continuation[i - 1], ctx):
            if _keeps_closer_line(line, ctx):
                kept.append(line)
            break
        kept.append(line)
    while len(kept) > 1 and (
        not kept[-1].strip() or (_is_comment(kept[-1], ctx) and _at_base(kept[-1], base))
    ):
        kept.pop()  # trailing blank lines, and a comment at the base: it belongs to what follows

    kept = kept[: _suffix_cut(kept, ctx, final=True)]
    whole = len(kept)
    if truncated and len(kept) == len(lines):
        kept.pop()  # the line the token cap cut off (often a loop under the loop rules)
    kept = kept[: _repeat_cut(kept, ctx, partial_last=len(kept) == len(lines))]
    kept = kept[: _line_cap(kept, continuation, ctx, max_lines)]
    while len(kept) < whole and kept and (not kept[-1].strip() or _opens_block(kept[-1], ctx)):
        kept.pop()  # cut short: no block header left without its body
    if kept and ctx.rest.strip():
        head = "\n".join(kept[:-1]) + ("\n" if len(kept) > 1 else "")
        kept[-1] = _trim_overlap(kept[-1].rstrip(), ctx, head)
    return "\n".join(kept)


def _multi_complete(text: str, ctx: _Context, max_lines: int | None = None) -> bool:
    """Mirror of :func:`_multi`: True once one of its cuts is decided by finished lines
    (or by the unfinished last line, for a repetition loop inside it)."""
    lines, base, continuation = _prepare(text, ctx)
    last = len(lines) - 1
    for i in range(1, len(lines)):
        if _ends_block(lines[i], base, continuation[i - 1], ctx):
            # a bare `}` line may still be kept: wait until it is finished
            return i < last or not _keeps_closer_line(lines[i], ctx)
    finished = lines[:last]
    if _suffix_cut(finished, ctx, final=False) < last or _repeat_cut(finished, ctx) < last:
        return True
    if _degenerate(ctx.before + lines[0] if last == 0 else lines[last], partial=True):
        return True
    # the cap is decided once a non-blank line past it is finished
    return max_lines is not None and _counted(finished) > max_lines and bool(finished[-1].strip())


def _is_comment(line: str, ctx: _Context) -> bool:
    return line.lstrip().startswith(spec_for(ctx.language).line_comments or "\0")


def _ends_block(line: str, base: int | None, continuation: bool, ctx: _Context) -> bool:
    """Whether ``line`` (not the first) closes the block: code at or under the base.

    Comment lines there are not decisive: they are kept only if block code follows.
    """
    if continuation or not line.strip() or _is_comment(line, ctx):
        return False
    return _at_base(line, base)


def _at_base(line: str, base: int | None) -> bool:
    return base is not None and indent_width(_lead(line)) <= base


def _drop_leading_blank_lines(lines: list[str], ctx: _Context) -> list[str]:
    """On a blank cursor line, ``"\\n    code"`` becomes ``"code"`` (no empty first line)."""
    if ctx.before.strip() or lines[0].strip() or len(lines) < 2:
        return lines
    for i, line in enumerate(lines):
        if line.strip():
            if not line.startswith(ctx.before):
                return lines
            return [line[len(ctx.before) :], *lines[i + 1 :]]
    return lines


def _strip_extra_indent(lines: list[str], ctx: _Context) -> list[str]:
    """On a cursor line that holds only indentation, the suggestion's first line must not
    add more: the user (or the engine's lead) has put the cursor where the code starts.

    A backend that heals the prompt's last tokens may let the model re-write that
    indentation with a longer whitespace token (``"\\n       "`` then 15 spaces for
    8), so the first line arrives deeper than the cursor. That whitespace is dropped,
    and later lines at least as deep as the first one move left with it.
    """
    if not lines or not ctx.before or ctx.before.strip():
        return lines
    first = lines[0]
    extra = _lead(first)
    if not extra or not first.strip():
        return lines
    model_width = indent_width(ctx.before + extra)
    out = [first[len(extra) :]]
    for line in lines[1:]:
        lead = _lead(line)
        if line.strip() and indent_width(lead) >= model_width and len(lead) >= len(extra):
            line = _dedent(line, indent_width(ctx.before + extra) - indent_width(ctx.before))
        out.append(line)
    return out


def _dedent(line: str, width: int) -> str:
    """``line`` with ``width`` columns of its indentation removed."""
    lead = _lead(line)
    return " " * (indent_width(lead) - width) + line[len(lead) :] if "\t" in lead else line[width:]


def _counted(lines: list[str]) -> int:
    """Lines a suggestion shows: a blank first line is the rest of the cursor line."""
    return len(lines) - (1 if lines and not lines[0].strip() else 0)


def _line_cap(
    lines: list[str], continuation: list[bool], ctx: _Context, max_lines: int | None
) -> int:
    """How many of ``lines`` to keep under the line cap (``len(lines)`` if within it).

    Cut at a line end, preferably one that ends a statement and does not leave a
    block header (``if x:``, ``{``) without its body; failing that, at the cap.
    """
    if max_lines is None or _counted(lines) <= max_lines:
        return len(lines)
    skip = len(lines) - _counted(lines)
    cap = max_lines + skip
    for end in range(cap, skip, -1):
        if end - 1 < len(continuation) and continuation[end - 1]:
            continue  # lines[end] goes on with lines[end - 1]'s statement
        if _opens_block(lines[end - 1], ctx):
            continue
        return end
    return cap


def _opens_block(line: str, ctx: _Context) -> bool:
    block_open = spec_for(ctx.language).block_open
    return bool(block_open) and _code_of(line, ctx.language).endswith(block_open)


def _keeps_closer_line(line: str, ctx: _Context) -> bool:
    """A bare ``}`` line at the block base is kept if the suffix does not close the block."""
    if ctx.offside:
        return False
    stripped = line.strip()
    return bool(_CLOSER_LINE.fullmatch(stripped)) and ctx.closes_block != stripped[0]


def _suffix_cut(lines: list[str], ctx: _Context, *, final: bool) -> int:
    """Index of the first line that reappears as the suffix's next line (len if none).

    A trivial line (``pass``, ``}``) only counts when it is the completion's last
    line (``final``: the text is complete) or the following line matches too.
    """
    if not ctx.next_lines:
        return len(lines)
    target = ctx.next_lines[0]
    for i in range(0 if not ctx.before.strip() else 1, len(lines)):
        full = (ctx.before + lines[i]) if i == 0 else lines[i]
        if full.strip() != target:
            continue
        if not _trivial(target):
            return i
        later = [line.strip() for line in lines[i + 1 :] if line.strip()]
        if (final and not later) or (later and later[:1] == list(ctx.next_lines[1:2])):
            return i
    return len(lines)


def _repeat_cut(lines: list[str], ctx: _Context, *, partial_last: bool = False) -> int:
    """Index where repetition starts (len if none).

    The first content line repeating the last prefix line cuts everything. A line
    that loops inside itself (:func:`_degenerate`) is cut with all that follows
    (``partial_last``: the last line may be unfinished). Otherwise a degenerate loop
    is a line identical to the line before it (indentation included), non-trivial
    or starting with a word (``continue``, ``pass``), or the start of a non-trivial run of
    four lines repeating four earlier lines. (A single repeated line is common in
    real code; a repeated four-line run is rare.)
    """
    content = [
        (i, (ctx.before + line if i == 0 else line).rstrip())
        for i, line in enumerate(lines)
        if line.strip()
    ]
    if not content:
        return len(lines)
    first, full = content[0]
    reference = ctx.last_prefix_line if first > 0 else _line_above(ctx)
    if not _trivial(full) and full.strip() == reference.strip():
        return first
    last = len(lines) - 1
    for i, key in content:
        if _degenerate(key, partial=partial_last and i == last):
            return i
    keys = [key for _, key in content]
    earlier: dict[str, list[int]] = {}
    for p, key in enumerate(keys):
        if p and keys[p - 1] == key and (not _trivial(key) or _LEADING_WORD.match(key.strip())):
            return content[p][0]  # (`continue` twice at one indentation is a loop too)
        if not _trivial(key):
            for q in earlier.get(key, ()):
                if keys[q + 1 : q + _RUN] == keys[p + 1 : p + _RUN] and p + _RUN <= len(keys):
                    return content[p][0]
        earlier.setdefault(key, []).append(p)
    return len(lines)


# Lexical tokens for repetition inside a line: escapes, words, numbers, other characters.
_LEXEME = re.compile(r"\\(?:[xuU][0-9a-fA-F]*|N\{[^}]*\}?|.?)|[^\W\d]\w*|\d[\w.]*|\S")
_DIGITS = re.compile(r"\d+")
# a piece of 3 to 30 characters repeated 4 times in a word: value_value_value_value
_SUBWORD_LOOP = re.compile(r"(\w{3,30}?)\1{3,}")
_SUBWORD_PIECE_COPIES = 4  # one piece between underscores, this often in one word
_MAX_PERIOD = 16  # tokens in a repeated unit
_SHORT_UNIT_COPIES = 6  # copies in a row of a unit of up to 5 tokens
_LONG_UNIT_COPIES = 5  # ... of a unit of 6 tokens or more
_CONSTANT_UNIT_COPIES = 9  # ... of a unit whose only words are constants (False, None)
_OPERATOR_UNIT_COPIES = 10  # ... of a unit with an operator and no word (exact tokens)
_OPERATORS = frozenset("+-*/%|&^<>=")
_PUNCTUATION = frozenset(",;:.()[]{}#")
_CONSTANTS = frozenset({"True", "False", "None", "true", "false", "null", "nil", "undefined"})


def _degenerate(line: str, *, partial: bool = False) -> bool:
    """Whether ``line`` loops inside itself: a unit of tokens that holds a word,
    repeated back to back (numbers masked, so ``s[0] or s[1] or`` counts), 6 times for
    units of up to 5 tokens (``x.y, x.y, ...``), 5 times for longer ones, 9 times when
    its only words are constants (``False, False, ...``: tables of flags have 6 or 8);
    or a word made of one piece repeated 4 times (``type_value_value_value_value``,
    ``type_of_self_type_of_self_...``), back to back or, between underscores, not
    (``type_of_self_type_of_type_of_self_type_of``: the embedded int8 model's loop on
    one CPU, where it wrote the back-to-back form on another).

    Units without a word count only with an operator and 10 exact copies
    (:func:`_operator_loop`); ``0, 0, 0``, ``\\x00\\x00``, ``-----`` never do. On the
    standard library's code outside tests no line reaches these counts; the most are
    5 copies of a short unit (hashlib's ``sha1(), sha224(), sha256(), ...``) and 4 of
    a longer one (``t11=None, t12=None, ...``) (``tests/unit/test_postprocess.py``).
    ``partial``: the line is still being written, so its last word may grow and is
    left out (the answer then never changes from True to False as the line grows).
    """
    line = line.rstrip()
    if len(line) < 12:
        return False
    return _degenerate_cached(line, partial)


@functools.lru_cache(maxsize=4096)
def _degenerate_cached(line: str, partial: bool) -> bool:
    tokens = _LEXEME.findall(line)
    words = [t for t in tokens if t[:1].isalpha() or t[:1] == "_"]
    if any(_subword_loop(w) for w in words if len(w) >= 12):
        return True  # (a loop inside the word being written only grows)
    if partial and tokens and (tokens[-1][:1].isalnum() or tokens[-1][:1] == "_"):
        tokens.pop()
    if _operator_loop(tokens):
        return True
    counts = Counter(_DIGITS.sub("0", w) for w in words)
    if not counts or max(counts.values()) < _LONG_UNIT_COPIES:
        return False  # a repeated unit holds a word that appears as often as the unit
    keys = [_DIGITS.sub("0", t) for t in tokens]
    # 1: a word; 2: a constant (True, None, ...) that tables of literals repeat
    kind = [(2 if t in _CONSTANTS else 1) if t[:1].isalpha() or t[:1] == "_" else 0 for t in tokens]
    n = len(keys)
    for period in range(1, min(_MAX_PERIOD, n // _LONG_UNIT_COPIES) + 1):
        need = (_SHORT_UNIT_COPIES if period <= 5 else _LONG_UNIT_COPIES) - 1
        run = 0
        for j in range(period, n):
            if keys[j] != keys[j - period]:
                run = 0
            elif (run := run + 1) >= need * period:
                unit = kind[j - period + 1 : j + 1]
                if 1 in unit or (2 in unit and run >= (_CONSTANT_UNIT_COPIES - 1) * period):
                    return True
    return False


def _operator_loop(tokens: list[str]) -> bool:
    """A unit without a word but with an operator, the same tokens back to back
    ``_OPERATOR_UNIT_COPIES`` times: ``+ "\\n" + "\\n" + ...``. (Tables of numbers,
    ``1, 1, 1, ...``, and rules, ``-----``, ``+---+---+``, are real code.)"""
    n = len(tokens)
    for period in range(2, min(_MAX_PERIOD, n // _OPERATOR_UNIT_COPIES) + 1):
        run = 0
        for j in range(period, n):
            if tokens[j] != tokens[j - period]:
                run = 0
            elif (run := run + 1) >= (_OPERATOR_UNIT_COPIES - 1) * period:
                unit = tokens[j - period + 1 : j + 1]
                if any(t in _OPERATORS for t in unit) and any(
                    t not in _OPERATORS and t not in _PUNCTUATION for t in unit
                ):
                    return True
    return False


def _subword_loop(word: str) -> bool:
    for match in _SUBWORD_LOOP.finditer(word):
        unit = match.group(1)  # letters, and not one letter over and over (`FFFFFFFF`)
        if any(ch.isalpha() for ch in unit) and len(set(unit) - {"_"}) >= 2:
            return True
    # pieces between underscores repeated, not always back to back:
    # `type_of_self_type_of_type_of_self_type_of` (`type` 4 times)
    parts = Counter(p.lower() for p in word.split("_") if len(p) >= 3 and p.isalpha())
    return bool(parts) and max(parts.values()) >= _SUBWORD_PIECE_COPIES


def _line_above(ctx: _Context) -> str:
    return next((line for line in reversed(ctx.prev_lines) if line.strip()), "")


# --------------------------------------------------------------------------------------


def _finish(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    result = "\n".join(lines)
    return result if result.strip() else ""
