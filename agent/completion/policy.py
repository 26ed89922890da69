"""The completion policy: whether to complete at the cursor, and in what shape.

:func:`decide` looks at the document around the cursor and answers with a
:class:`Decision`: no completion, a single line, or a multi-line block. Python is
read with tree-sitter (strings, comments, block headers); other languages use an
indentation and bracket fallback. The rules, conservative by design:

NONE
    * identifier text directly right of the cursor (``reason="mid-identifier"``);
    * anything right of the cursor on its line other than whitespace and the closers
      ``) ] } " ' : ; ,`` (``"text-right"``); in Python a quote to the right that
      opens a string, rather than closing the one the cursor is in, counts as text;
    * inside a string whose content continues to the right (``"in-string"``), or
      inside a comment with anything to its right (``"in-comment"``);
    * at the end of a block header whose body already has code (``"header-with-body"``):
      neither a single line nor a new body fits there;
    * input it cannot read (``"invalid-input"``), or a cursor line too long to
      inspect cheaply (``"long-line"``).

SINGLE
    * mid-line with only closers to the right (``"closers-right"``, or
      ``"string-end"`` when the cursor is at the end of a string's content);
    * at the end of a line of code (``"end-of-line"``), of a comment
      (``"end-of-comment"``), inside a docstring or other multi-line string
      (``"in-docstring"``, ``"in-string"``);
    * on a blank line that does not open a new block (``"blank-line"``), including
      the last line of a body; and on a blank line right after a block header whose
      body already has code below the cursor (``"opener-with-body"``).

MULTI, only where a block is plainly about to be written and the cursor is at the
end of its line:
    * a blank line right after a block header (``def``/``class``/``if``/... ending in
      ``:``; a line ending in ``{`` for brace languages) whose body below is empty
      apart from ``pass``/``...`` (``"block-opener"``);
    * the end of such a header line itself (``"block-header"``): the completion
      starts with a newline;
    * a blank line after a def/class docstring, inside the body, with nothing but
      ``pass``/``...`` below (``"empty-body"``).

``indent`` is set only for a blank (or whitespace-only) cursor line whose cursor
column is shallower than the line should be: after a block header it is the
header's indentation plus the document's indent unit (or the existing body's
indentation); in the middle of a body it is the indentation of the next code line
when the previous code line is at least as deep.

Edge cases, decided conservatively:
    * comment-only lines are not code: ``if x:`` / ``# note`` / cursor is still right
      after the header; a trailing ``# comment`` after a header's colon is ignored;
    * multi-line headers (``def f(\n    a,\n):``) count from their first line;
    * colons that do not open blocks (dict values, slices, lambdas, annotations)
      give SINGLE; Python needs the colon to belong to a compound statement (the
      ``queries/python-blocks.scm`` query), with a keyword check when the parse is
      broken there;
    * after a docstring, MULTI only when the cursor is deeper than the ``def``: at
      the ``def``'s own column the user has left the body;
    * a quote right of the cursor that closes the string the cursor is in is a
      closer (``print("hi|")``: SINGLE); inside an f-string's ``{}`` is code;
    * the indent unit is the document's (tabs, 2 or 4 spaces: ``detect_indent_unit``);
    * ``offset`` is clamped into the text; CRLF line ends are fine; anything that goes
      wrong inside gives ``NONE`` with ``reason="error"`` instead of raising.

Large documents are not parsed whole: Python is parsed in a window of at most
~300 lines before and 60 after the cursor, started at a ``def``/``class``/``@``
line where possible, so a call stays around a millisecond whatever the file size.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from dataclasses import dataclass

import tree_sitter
from hone.retrieval.syntax import (
    detect_indent_unit,
    indent_width,
    load_query,
    parser_for,
    scan_text,
    spec_for,
)

__all__ = ["Decision", "Mode", "decide", "line_is_open"]


class Mode(enum.Enum):
    NONE = "none"
    SINGLE = "single"
    MULTI = "multi"


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: str
    indent: str = ""


# A line of code ending in one of these (or in one of the words below) is unfinished:
# what comes next belongs on it (``x = f(``, ``return a +``, ``items = [``).
_OPEN_ENDS = frozenset("([{,=+-*/%<>&|^~!@.")
_OPEN_WORDS = frozenset(
    "return yield await and or not in is if else lambda assert raise del import from as "
    "new typeof instanceof throw case let const var".split()
)


def line_is_open(before: str) -> bool:
    """Whether the cursor's line, up to the cursor (``before``: the text before it), is an
    unfinished expression whose continuation belongs on the same line: it ends in an
    opening bracket, a comma, an operator or ``=``, or a word that needs an operand
    (``return``, ``and``, ``in``...). A blank line, or one ending a statement, is not."""
    line = before[before.rfind("\n") + 1 :].rstrip(" \t")
    if not line.strip():
        return False
    if line[-1] in _OPEN_ENDS:
        return not line.endswith(("//", "/*", "*/", "--", "++"))
    word = line.rsplit(None, 1)[-1]
    return word in _OPEN_WORDS and not line.lstrip().startswith(("#", "//"))


# Characters that may sit right of the cursor without blocking a completion.
_CLOSERS = frozenset(b")]}\"':;,")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$") | frozenset(
    range(0x80, 0x100)
)
_PY_HEADER_WORDS = frozenset(
    b"def class if elif else for while with try except finally match case async".split()
)
_EMPTY_BODY_LINES = frozenset({b"pass", b"..."})
_DEF_TYPES = frozenset({"function_definition", "class_definition"})
# Languages whose tree-sitter node types the rules below know; others use the fallback.
_TREE_RULES = frozenset({"python"})

# Window around the cursor that is parsed (Python) or scanned (fallback).
_LINES_BEFORE = 300
_LINES_AFTER = 60
_CHARS_BEFORE = 24_000
_CHARS_AFTER = 6_000
_MAX_LINE_SCAN = 200  # lines walked up or down when looking for code
_LONG_LINE = 10_000  # right-of-cursor text longer than this is not inspected


def decide(text: str, offset: int, language: str) -> Decision:
    """Whether and how to complete at ``offset`` in ``text`` (see the module docstring)."""
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", "replace")
        if not isinstance(text, str) or isinstance(offset, bool) or not isinstance(offset, int):
            return Decision(Mode.NONE, "invalid-input")
        offset = min(max(offset, 0), len(text))
        return _decide(text, offset, language if isinstance(language, str) else "plaintext")
    except Exception:  # a policy bug must never break typing; just do not complete
        return Decision(Mode.NONE, "error")


# --------------------------------------------------------------------------------------
# Window and parse


def _window(text: str, offset: int, language: str) -> tuple[str, int]:
    """A slice of ``text`` around ``offset`` worth parsing, and the cursor's index in it."""
    start = text.rfind("\n", 0, offset) + 1
    for _ in range(_LINES_BEFORE):
        if start <= 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    if offset - start > _CHARS_BEFORE:
        cut = offset - _CHARS_BEFORE
        newline = text.find("\n", cut, offset)
        start = newline + 1 if newline >= 0 else cut
    if start > 0 and language == "python":
        start = _top_level_start(text, start, offset)
    end = offset
    for _ in range(_LINES_AFTER):
        end = text.find("\n", end)
        if end < 0:
            end = len(text)
            break
        end += 1
    end = min(end, offset + _CHARS_AFTER)
    if language == "python" and end < len(text):
        end = _close_window(text, start, end)
    return text[start:end], offset - start


def _close_window(text: str, start: int, end: int) -> int:
    """Move ``end`` past the closing quotes of a triple-quoted string it would cut.

    Only within ``_CHARS_AFTER`` more characters; otherwise the window ends inside
    the string and tree-sitter recovers.
    """
    for quotes in ('"""', "'''"):
        if text.count(quotes, start, end) % 2:
            closing = text.find(quotes, end, end + _CHARS_AFTER)
            if closing >= 0:
                newline = text.find("\n", closing)
                end = len(text) if newline < 0 else newline + 1
    return end


def _top_level_start(text: str, start: int, offset: int) -> int:
    """A good line in ``[start, offset)`` to start parsing at: a ``def``/``class``/decorator.

    Column-0 statements are preferred, then indented ones; a candidate after an odd
    number of triple quotes (counted from the start, or in huge files from a
    top-level def up to 200k characters back) is skipped: it likely sits inside a
    docstring. Starting inside a string makes tree-sitter
    recover from errors, which is slow and wrong. Falls back to ``start``.
    """
    stop = text.rfind("\n", 0, offset)
    lo = 0
    if start > 200_000:  # count from a top-level def: unlikely to sit inside a string
        found = [text.find(mark, start - 200_000, start) for mark in ("\ndef ", "\nclass ")]
        lo = min([f + 1 for f in found if f >= 0], default=start - 200_000)
    double, single, counted = text.count('"""', lo, start), text.count("'''", lo, start), start
    indented = -1
    pos = start
    while 0 <= pos <= stop:
        top = text.startswith(_STATEMENT_STARTS, pos)
        if not top and indented < 0 and text[pos : pos + 1] in (" ", "\t"):
            head = text[pos : pos + 80]
            lead = pos + len(head) - len(head.lstrip(" \t"))
            top = None if text.startswith(_STATEMENT_STARTS, lead) else False
        if top is not False:
            double += text.count('"""', counted, pos)
            single += text.count("'''", counted, pos)
            counted = pos
            if double % 2 == 0 and single % 2 == 0:
                if top:
                    return pos
                indented = pos
        newline = text.find("\n", pos, stop + 1)
        if newline < 0:
            break
        pos = newline + 1
    return indented if indented >= 0 else start


_STATEMENT_STARTS = ("def ", "class ", "@", "async def ")


_TREE_CACHE: OrderedDict[tuple[str, bytes], tree_sitter.Tree] = OrderedDict()
_TREE_CACHE_SIZE = 8
_TREE_LOCK = threading.Lock()


def _parse(language: str, src: bytes) -> tree_sitter.Tree | None:
    key = (language, src)
    with _TREE_LOCK:
        tree = _TREE_CACHE.get(key)
        if tree is not None:
            _TREE_CACHE.move_to_end(key)
            return tree
    parser = parser_for(language)
    if parser is None:
        return None
    tree = parser.parse(src)
    with _TREE_LOCK:
        _TREE_CACHE[key] = tree
        while len(_TREE_CACHE) > _TREE_CACHE_SIZE:
            _TREE_CACHE.popitem(last=False)
    return tree


# --------------------------------------------------------------------------------------
# The document around the cursor, as UTF-8 bytes (tree-sitter's coordinates)


class _Doc:
    def __init__(self, src: bytes, cursor: int, language: str, tree: tree_sitter.Tree | None):
        self.src = src
        self.cursor = cursor
        self.language = language
        self.spec = spec_for(language)
        self.tree = tree
        self.root = tree.root_node if tree is not None else None

    # lines -------------------------------------------------------------------------
    def line_start(self, pos: int) -> int:
        return self.src.rfind(b"\n", 0, pos) + 1

    def line_end(self, pos: int) -> int:
        end = self.src.find(b"\n", pos)
        return len(self.src) if end < 0 else end

    def indent_of(self, pos: int) -> bytes:
        """Leading whitespace of the line holding ``pos``."""
        start = self.line_start(pos)
        line = self.src[start : self.line_end(start)]
        return line[: len(line) - len(line.lstrip(b" \t\f"))]

    # tree lookups --------------------------------------------------------------------
    def node_at(self, pos: int) -> tree_sitter.Node | None:
        if self.root is None or not 0 <= pos < len(self.src):
            return None
        return self.root.descendant_for_byte_range(pos, pos)

    def in_comment(self, pos: int) -> tree_sitter.Node | None:
        """The comment holding byte ``pos`` (comments are leaves), or None."""
        node = self.node_at(pos)
        return node if node is not None and node.type == "comment" else None

    def string_around_cursor(self) -> tuple[tree_sitter.Node | None, bool]:
        """The string literal enclosing the cursor, and whether the cursor is in its text.

        The second value is False when the cursor sits in an f-string's replacement
        field (code) or in the string's prefix/quotes.
        """
        if self.root is None or self.cursor <= 0:
            return None, False
        end = min(self.cursor + 1, len(self.src))
        node = self.root.descendant_for_byte_range(self.cursor - 1, end)
        in_code = False
        while node is not None:
            if node.type == "interpolation":
                in_code = True
            elif node.type == "string":
                first, last = node.child(0), node.child(node.child_count - 1)
                inside = (
                    first is not None
                    and last is not None
                    and first.type == "string_start"
                    and first.end_byte <= self.cursor
                    and (last.type != "string_end" or self.cursor <= last.start_byte)
                )
                return node, inside and not in_code
            elif node.type in ("block", "module"):
                break
            node = node.parent
        return None, False

    # code on a line --------------------------------------------------------------------
    def code_end(self, start: int, end: int) -> int:
        """End of the code on ``src[start:end]`` (trailing comment and blanks dropped).

        Returns ``start`` when the span holds no code (blank or comment only).
        """
        src = self.src
        stop = len(src[start:end].rstrip()) + start
        if stop == start:
            return start
        if self.root is not None:
            comment = self.in_comment(stop - 1)
            if comment is not None:
                stop = max(start, comment.start_byte)
        else:
            scan = scan_text(src[start:stop].decode("utf-8", "replace"), self.language)
            if scan.comment_start >= 0:
                stop = start + len(
                    src[start:stop]
                    .decode("utf-8", "replace")[: scan.comment_start]
                    .encode("utf-8", "surrogatepass")
                )
        return len(src[start:stop].rstrip()) + start

    def prev_code_line(self, pos: int) -> tuple[int, int] | None:
        """(line start, code end) of the nearest line above ``pos``'s line holding code."""
        line = self.line_start(pos)
        for _ in range(_MAX_LINE_SCAN):
            if line <= 0:
                return None
            start = self.line_start(line - 1)
            stop = self.code_end(start, line - 1)
            if stop > start:
                return start, stop
            line = start
        return None

    def next_code_lines(self, pos: int):
        """(line start, code end) of the code lines below ``pos``'s line, nearest first."""
        line = self.line_end(pos)
        for _ in range(_MAX_LINE_SCAN):
            if line >= len(self.src):
                return
            start = line + 1
            line = self.line_end(start)
            stop = self.code_end(start, line)
            if stop > start:
                yield start, stop

    # block structure -------------------------------------------------------------------
    def opener_header(self, code_start: int, code_stop: int) -> int | None:
        """If the code ending at ``code_stop`` ends a block header, the header's start."""
        last = self.src[code_stop - 1 : code_stop]
        if not self.spec.block_open or last != self.spec.block_open.encode():
            return None
        if self.root is not None and self.spec.block_open == ":":
            node = self.node_at(code_stop - 1)
            if node is not None and node.type == ":" and not _in_error(node):
                query = load_query(self.language, "blocks")
                if query is not None:
                    cursor = tree_sitter.QueryCursor(query)
                    cursor.set_byte_range(code_stop - 1, code_stop)
                    for nodes in cursor.captures(self.root).values():
                        for captured in nodes:
                            if captured.start_byte == code_stop - 1 and captured.parent:
                                return captured.parent.start_byte
                    return None
        start = self.logical_line_start(code_start)
        if self.spec.block_open == ":":
            words = self.src[start:code_stop].split(None, 1)
            first = words[0].split(b"(")[0].rstrip(b":") if words else b""
            if first not in _PY_HEADER_WORDS:
                return None
        return start

    def logical_line_start(self, line_start: int) -> int:
        """Walk up from a line closing brackets opened above it (``):``, ``b) {``)."""
        need, start = 0, line_start
        for _ in range(50):
            scan = scan_text(
                self.src[start : self.line_end(start)].decode("utf-8", "replace"), self.language
            )
            need += scan.excess - (len(scan.open) if start != line_start else 0)
            if need <= 0 or start == 0:
                return start
            start = self.line_start(start - 1)
        return line_start

    def body_is_empty(self, pos: int, base: int) -> tuple[bool, bytes]:
        """Whether the block below ``pos``'s line (deeper than width ``base``) is empty.

        Empty means nothing but ``pass``/``...`` (Python) before the first line at or
        under ``base``. Also returns the indentation of the first body line (b"" if none).
        """
        first_indent = b""
        for start, stop in self.next_code_lines(pos):
            indent = self.indent_of(start)
            if indent_width(indent) <= base:
                return True, first_indent
            if not first_indent:
                first_indent = indent
            if not (self.spec.offside and self.src[start:stop].strip() in _EMPTY_BODY_LINES):
                return False, first_indent
        return True, first_indent

    def docstring_owner(self, pos: int) -> tree_sitter.Node | None:
        """The def/class whose body so far is only the docstring ending at ``pos``."""
        node = self.node_at(pos)
        while node is not None and node.type != "string":
            if node.type in ("block", "module"):
                return None
            node = node.parent
        if node is None or node.end_byte != pos + 1:
            return None
        statement = node.parent
        if statement is None or statement.type != "expression_statement":
            return None
        if statement.named_child_count != 1:
            return None
        block = statement.parent
        if block is None or block.type != "block":
            return None
        if block.parent is None or block.parent.type not in _DEF_TYPES:
            return None
        for child in block.named_children:
            if child.type == "comment":
                continue
            return block.parent if child.id == statement.id else None
        return None


def _in_error(node: tree_sitter.Node) -> bool:
    parent = node.parent
    return parent is None or parent.type == "ERROR" or parent.is_error


# --------------------------------------------------------------------------------------
# The decision


def _decide(text: str, offset: int, language: str) -> Decision:
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    if line_end - offset > _LONG_LINE:
        return Decision(Mode.NONE, "long-line")

    window, rel = _window(text, offset, language)
    before_text = window[:rel]
    src = window.encode("utf-8", "surrogatepass")
    cursor = len(before_text.encode("utf-8", "surrogatepass"))
    tree = _parse(language, src) if language in _TREE_RULES else None
    doc = _Doc(src, cursor, language, tree)

    line_start = doc.line_start(cursor)
    before = src[line_start:cursor]
    after = src[cursor : doc.line_end(cursor)]
    right = after.strip()

    if right:
        return _mid_line(doc, before, after, right)
    return _end_of_line(doc, before, window)


def _mid_line(doc: _Doc, before: bytes, after: bytes, right: bytes) -> Decision:
    string, in_text = doc.string_around_cursor()
    if doc.root is not None:
        if doc.cursor > 0 and before and doc.in_comment(doc.cursor - 1) is not None:
            return Decision(Mode.NONE, "in-comment")
    else:
        scan = scan_text(before.decode("utf-8", "replace"), doc.language)
        if scan.in_comment:
            return Decision(Mode.NONE, "in-comment")
        if scan.quote and any(b not in _CLOSERS and not chr(b).isspace() for b in right):
            return Decision(Mode.NONE, "in-string")
    if string is not None and in_text and not _only_closers(right):
        return Decision(Mode.NONE, "in-string")
    if after[0] in _WORD:
        if before and before[-1] in _WORD:
            return Decision(Mode.NONE, "mid-identifier")
        return Decision(Mode.NONE, "text-right")
    if not _only_closers(right):
        return Decision(Mode.NONE, "text-right")
    if doc.root is not None and string is None and (b'"' in right or b"'" in right):
        return Decision(Mode.NONE, "text-right")  # the quote opens a string, not closes one
    if string is not None and in_text:
        return Decision(Mode.SINGLE, "string-end")
    return Decision(Mode.SINGLE, "closers-right")


def _only_closers(right: bytes) -> bool:
    return all(b in _CLOSERS or b in b" \t\r\f" for b in right)


def _end_of_line(doc: _Doc, before: bytes, window: str) -> Decision:
    string, in_text = doc.string_around_cursor()
    if string is not None and in_text and string.start_byte < doc.line_start(doc.cursor):
        # A string that spans lines and the cursor is inside it.
        docstring = string.parent is not None and string.parent.type == "expression_statement"
        return Decision(Mode.SINGLE, "in-docstring" if docstring else "in-string")

    line_start = doc.line_start(doc.cursor)
    stripped = before.rstrip()
    if not stripped.strip():
        return _blank_line(doc, before, window)

    last = line_start + len(stripped) - 1
    if doc.root is not None:
        if doc.in_comment(last) is not None:
            return Decision(Mode.SINGLE, "end-of-comment")
    else:
        scan = scan_text(stripped.decode("utf-8", "replace"), doc.language)
        if scan.in_comment:
            return Decision(Mode.SINGLE, "end-of-comment")
        if scan.quote:
            return Decision(Mode.SINGLE, "in-string")
    if string is not None and in_text:
        return Decision(Mode.SINGLE, "in-string")

    header = doc.opener_header(line_start, line_start + len(stripped))
    if header is not None:
        empty, _ = doc.body_is_empty(doc.cursor, indent_width(doc.indent_of(header)))
        if empty:
            return Decision(Mode.MULTI, "block-header")
        return Decision(Mode.NONE, "header-with-body")
    return Decision(Mode.SINGLE, "end-of-line")


def _blank_line(doc: _Doc, before: bytes, window: str) -> Decision:
    column = indent_width(before)
    previous = doc.prev_code_line(doc.cursor)
    if previous is None:
        return Decision(Mode.SINGLE, "blank-line")
    prev_start, prev_stop = previous

    header = doc.opener_header(prev_start, prev_stop)
    if header is not None:
        header_indent = doc.indent_of(header)
        empty, body_indent = doc.body_is_empty(doc.cursor, indent_width(header_indent))
        if empty:
            wanted = _deeper(header_indent.decode("ascii", "replace"), window)
            indent = wanted if column < indent_width(wanted) else ""
            return Decision(Mode.MULTI, "block-opener", indent)
        deeper = indent_width(body_indent) > column
        indent = body_indent.decode("ascii", "replace") if deeper else ""
        return Decision(Mode.SINGLE, "opener-with-body", indent)

    if doc.root is not None:
        owner = doc.docstring_owner(prev_stop - 1)
        if owner is not None:
            base = indent_width(doc.indent_of(owner.start_byte))
            if column > base and doc.body_is_empty(doc.cursor, base)[0]:
                doc_indent = doc.indent_of(prev_stop - 1)
                deeper = indent_width(doc_indent) > column
                indent = doc_indent.decode("ascii", "replace") if deeper else ""
                return Decision(Mode.MULTI, "empty-body", indent)

    indent = ""
    following = next(doc.next_code_lines(doc.cursor), None)
    if following is not None:
        next_indent = doc.indent_of(following[0])
        width = indent_width(next_indent)
        if width > column and indent_width(doc.indent_of(prev_start)) >= width:
            indent = next_indent.decode("ascii", "replace")
    return Decision(Mode.SINGLE, "blank-line", indent)


def _deeper(indent: str, window: str) -> str:
    """``indent`` one level deeper, in the document's own indent unit."""
    if "\t" in indent:
        return indent + "\t"
    return indent + detect_indent_unit(window)
