"""Chunks of a source file for the repository index: definitions and module-level blocks.

One parse and one query run per file. The language knowledge lives in
``queries/<language>-chunks.scm`` (the captures are described at the top of
``python-chunks.scm``); the code here is generic:

- Every captured definition (function, method, class, type) is a chunk, at any depth,
  named by its enclosing definitions (``Class.method``, ``outer.inner``; Go methods by
  their receiver, Rust methods by their ``impl`` type). A function directly inside a
  class, a type or an ``impl`` is a ``"method"``. The chunk spans its decorators,
  ``export``/``declare`` wrappers and the comments and attributes directly above it
  (no blank line between); comments at the end of a Python block do not extend it.
- ``signature`` is the header (from the chunk's first line to the line before the body,
  or the body's first line when the body starts on the header's line) plus the
  docstring; definitions without a body (structs, interfaces, type aliases) have their
  text as signature, at most ``SIGNATURE_LINES`` lines.
- A definition longer than ``max_lines``: a class becomes one *summary* chunk over the
  class's whole line range whose text keeps only the header, the class-level statements
  (docstring, attributes, comments) whole, the header lines of its methods and nested
  classes, and a closing line no member covers (a ``}``); the kept lines are joined with
  ``"\\n"``. Anything else is split into consecutive windows of ``max_lines`` lines that
  share the definition's kind, name and signature. Methods of classes long or short
  always have chunks of their own too (so short classes overlap their methods).
- The lines outside every top-level definition are module blocks (``kind="module"``,
  empty name and signature): contiguous runs cut into blocks of at most
  ``MODULE_BLOCK_LINES`` lines, preferring blank lines between top-level statements,
  then any top-level statement start, then any blank line. Blank-only blocks and blocks
  of lone closing brackets are dropped.
- Without a grammar or a query the whole file is module blocks; parse errors keep what
  the tree has.

Line breaks: ``\\r\\n`` and a lone ``\\r`` count as one line break each (as in LSP) and
chunk texts use ``\\n``.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import tree_sitter
from hone.retrieval.syntax import language_object, parser_for

__all__ = [
    "MODULE_BLOCK_LINES",
    "SIGNATURE_LINES",
    "Chunk",
    "chunk_text",
    "definitions_by_name",
]

MODULE_BLOCK_LINES = 40
SIGNATURE_LINES = 40

_log = logging.getLogger(__name__)

# Languages that share another's query file (their grammars have the same node types).
_QUERY_FILE = {"javascriptreact": "javascript", "typescriptreact": "typescript"}
# A function directly inside one of these is a method.
_CLASS_LIKE = frozenset({"class", "type", "scope"})
_CLOSERS = frozenset("{}()[];,")


@dataclass(frozen=True)
class Chunk:
    """A piece of a file the index stores: a definition, or a block of module-level lines."""

    path: str  # relative to the workspace root, posix (as given)
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    kind: str  # "function" | "method" | "class" | "type" | "module"
    name: str  # qualified ("Class.method", "outer.inner"); "" for module blocks
    language: str
    text: str  # whole lines ("\n" line breaks); a long class's summary skips lines
    signature: str  # header and docstring / leading doc comment; "" for module blocks

    def key(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"


def definitions_by_name(chunks: Iterable[Chunk]) -> dict[str, list[Chunk]]:
    """Definition chunks by qualified name and by its last segment (``"m"`` and ``"A.m"``)."""
    result: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        if chunk.kind == "module" or not chunk.name:
            continue
        result.setdefault(chunk.name, []).append(chunk)
        last = chunk.name.rpartition(".")[2]
        if last != chunk.name:
            result.setdefault(last, []).append(chunk)
    return result


@functools.cache
def _chunk_query(language: str) -> tree_sitter.Query | None:
    """The chunks query compiled for ``language``'s grammar; None without grammar or query."""
    lang = language_object(language)
    if lang is None:
        return None
    name = f"{_QUERY_FILE.get(language, language)}-chunks.scm"
    try:
        source = (importlib.resources.files("hone.retrieval.queries") / name).read_text("utf-8")
    except OSError:
        return None
    try:
        return tree_sitter.Query(lang, source)
    except (tree_sitter.QueryError, ValueError) as exc:  # a broken shipped query: say so
        _log.warning("chunks query %s does not compile for %s: %s", name, language, exc)
        return None


class _Def:
    """A definition (or a naming scope) found by the query, merged over its matches."""

    __slots__ = (
        "node",
        "kind",
        "name",
        "body",
        "doc",
        "receiver",
        "start_byte",
        "end_byte",
        "qualname",
        "top",
        "start",
        "end",
        "header_end",
        "outer_id",
    )

    def __init__(self, node: tree_sitter.Node, kind: str) -> None:
        self.node = node
        self.kind = kind
        self.name = ""
        self.body: tree_sitter.Node | None = None
        self.doc: tree_sitter.Node | None = None
        self.receiver = ""
        self.start_byte = node.start_byte
        self.end_byte = node.end_byte
        self.qualname = ""
        self.top = True  # no enclosing definition (scopes do not count)
        self.start = self.end = self.header_end = 0  # rows of the chunk's extent
        self.outer_id = node.id


def _end_row(node: tree_sitter.Node) -> int:
    """The last row holding a character of ``node`` (not the row after a final newline)."""
    end = node.end_point
    if end.column == 0 and end.row > node.start_point.row:
        return end.row - 1
    return end.row


def _text(node: tree_sitter.Node) -> str:
    data = node.text
    return data.decode("utf-8", "replace") if data is not None else ""


def chunk_text(path: str, text: str, language: str, *, max_lines: int = 120) -> list[Chunk]:
    """Chunks of ``text`` (the file at ``path``, in ``language``), sorted by line range.

    See the module docstring for the rules; ``max_lines`` bounds a definition's chunk
    (longer classes become a summary, other definitions windows of ``max_lines`` lines).
    """
    if not text:
        return []
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    max_lines = max(1, max_lines)
    parser = parser_for(language)
    query = _chunk_query(language) if parser is not None else None
    if parser is None or query is None:
        return _module_blocks(path, language, lines, [(0, len(lines) - 1)], [], [])
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    return _Chunker(path, language, lines, max_lines).run(tree.root_node, query)


class _Chunker:
    def __init__(self, path: str, language: str, lines: list[str], max_lines: int) -> None:
        self.path = path
        self.language = language
        self.lines = lines
        self.max_lines = max_lines
        self.chunks: list[Chunk] = []

    def run(self, root: tree_sitter.Node, query: tree_sitter.Query) -> list[Chunk]:
        defs, wrappers, leading, leading_ends = _collect(root, query)
        items = sorted(defs.values(), key=lambda d: (d.start_byte, -d.end_byte))
        by_outer: dict[int, _Def] = {}
        top: list[tuple[int, int]] = []
        stack: list[_Def] = []
        for item in items:
            while stack and item.end_byte > stack[-1].end_byte:
                stack.pop()
            parent = stack[-1] if stack else None
            prefix = f"{parent.qualname}." if parent is not None and parent.qualname else ""
            receiver = f"{item.receiver}." if item.receiver else ""
            item.qualname = f"{prefix}{receiver}{item.name}"
            item.top = parent is None or (parent.kind == "scope" and parent.top)
            if item.kind == "function" and parent is not None and parent.kind in _CLASS_LIKE:
                item.kind = "method"
            stack.append(item)
            if item.kind == "scope":
                continue
            self._extent(item, wrappers, leading, leading_ends)
            by_outer[item.outer_id] = item
            if item.top:
                top.append((item.start, item.end))
        for item in items:
            if item.kind != "scope":
                self._emit(item, by_outer)
        self.chunks.extend(self._module_chunks(root, top))
        self.chunks.sort(key=lambda c: (c.start_line, -c.end_line))
        return self.chunks

    # -- a definition's lines -----------------------------------------------------------

    def _extent(
        self,
        item: _Def,
        wrappers: dict[int, tree_sitter.Node],
        leading: set[int],
        leading_ends: set[int],
    ) -> None:
        """Rows of the chunk: wrappers and leading comments included, trailing ones not."""
        outer = item.node
        while outer.id in wrappers:
            outer = wrappers[outer.id]
        item.outer_id = outer.id
        start = outer.start_point.row
        lines = self.lines
        prev, first = outer.prev_named_sibling, outer
        while prev is None and first.parent is not None:
            # The first statement of a block: tree-sitter-python puts the comments above it
            # before the block, which starts where the definition starts.
            if first.parent.start_byte != first.start_byte:
                break
            first = first.parent
            prev = first.prev_named_sibling
        while prev is not None and prev.id in leading and _end_row(prev) >= start - 1:
            point = prev.start_point
            if lines[point.row][: point.column].strip():  # a trailing comment of code above
                break
            start = point.row
            prev = prev.prev_named_sibling
        item.start = start
        item.end = _trimmed_end_row(outer, leading, leading_ends)
        if item.end < item.node.start_point.row:
            item.end = item.node.start_point.row
        body = item.body
        if body is None:
            item.header_end = item.end
            return
        row, column = body.start_point
        line = lines[row] if row < len(lines) else ""
        starts_line = column <= len(line) - len(line.lstrip())
        header_end = row - 1 if starts_line and row > item.node.start_point.row else row
        item.header_end = max(start, min(header_end, item.end))

    def _signature(self, item: _Def) -> str:
        lines = self.lines
        if item.body is None:
            return "\n".join(
                lines[item.start : min(item.end, item.start + SIGNATURE_LINES - 1) + 1]
            )
        rows = lines[item.start : item.header_end + 1]
        doc = item.doc
        if doc is not None and doc.start_point.row > item.header_end:
            rows = rows + lines[doc.start_point.row : _end_row(doc) + 1]
        return "\n".join(rows)

    def _emit(self, item: _Def, by_outer: dict[int, _Def]) -> None:
        start, end, lines = item.start, item.end, self.lines
        signature = self._signature(item)

        def add(first: int, last: int, text: str) -> None:
            self.chunks.append(
                Chunk(
                    self.path,
                    first + 1,
                    last + 1,
                    item.kind,
                    item.qualname,
                    self.language,
                    text,
                    signature,
                )
            )

        if end - start + 1 <= self.max_lines:
            add(start, end, "\n".join(lines[start : end + 1]))
        elif item.kind == "class" and item.body is not None:
            add(start, end, self._summary(item, by_outer))
        else:
            for first in range(start, end + 1, self.max_lines):
                last = min(first + self.max_lines - 1, end)
                add(first, last, "\n".join(lines[first : last + 1]))

    def _summary(self, item: _Def, by_outer: dict[int, _Def]) -> str:
        """A long class: header, class-level statements, member headers, closing line."""
        assert item.body is not None
        rows: set[int] = set(range(item.start, item.header_end + 1))
        covered = item.header_end
        for member in item.body.named_children:
            inner = by_outer.get(member.id)
            if inner is not None:
                rows.update(range(inner.start, inner.header_end + 1))
                covered = max(covered, inner.end)
            else:
                last = _end_row(member)
                rows.update(range(member.start_point.row, last + 1))
                covered = max(covered, last)
        if item.end > covered:
            rows.add(item.end)
        lines = self.lines
        return "\n".join(lines[row] for row in sorted(rows) if item.start <= row <= item.end)

    # -- module-level lines ---------------------------------------------------------------

    def _module_chunks(self, root: tree_sitter.Node, top: list[tuple[int, int]]) -> list[Chunk]:
        runs: list[tuple[int, int]] = []
        row = 0
        for start, end in sorted(top):
            if start > row:
                runs.append((row, start - 1))
            row = max(row, end + 1)
        if row < len(self.lines):
            runs.append((row, len(self.lines) - 1))
        starts: list[int] = []
        ends: list[int] = []
        if runs:
            for node in root.named_children:  # multi-line top-level statements
                first, last = node.start_point.row, _end_row(node)
                if last > first:
                    starts.append(first)
                    ends.append(last)
        return _module_blocks(self.path, self.language, self.lines, runs, starts, ends)


def _collect(
    root: tree_sitter.Node, query: tree_sitter.Query
) -> tuple[dict[int, _Def], dict[int, tree_sitter.Node], set[int], set[int]]:
    """Run the query once: definitions by node id, wrappers by wrapped node id, comments."""
    defs: dict[int, _Def] = {}
    wrappers: dict[int, tree_sitter.Node] = {}
    leading: set[int] = set()
    leading_ends: set[int] = set()
    for _, captures in tree_sitter.QueryCursor(query).matches(root):
        node = None
        kind = ""
        for capture, nodes in captures.items():
            if capture.startswith("definition."):
                node, kind = nodes[0], capture[len("definition.") :]
            elif capture == "scope":
                node, kind = nodes[0], "scope"
        wrapper = captures.get("wrapper")
        if node is None:
            for comment in captures.get("leading", ()):
                leading.add(comment.id)
                leading_ends.add(comment.end_byte)
            wrapped = captures.get("wrapped")
            if wrapper and wrapped:
                wrappers[wrapped[0].id] = wrapper[0]
            continue
        item = defs.get(node.id)
        if item is None:
            item = defs[node.id] = _Def(node, kind)
        if wrapper:
            wrappers[node.id] = wrapper[0]
        if "name" in captures and not item.name:
            item.name = _text(captures["name"][0])
        if "body" in captures and item.body is None:
            item.body = captures["body"][0]
        if "doc" in captures and item.doc is None:
            item.doc = captures["doc"][0]
        if "receiver" in captures and not item.receiver:
            item.receiver = _text(captures["receiver"][0])
    return {key: item for key, item in defs.items() if item.name}, wrappers, leading, leading_ends


def _trimmed_end_row(node: tree_sitter.Node, leading: set[int], leading_ends: set[int]) -> int:
    """``node``'s last row without the comments that end it (Python blocks take them in)."""
    current = node
    while current.end_byte in leading_ends and current.child_count:
        last = current.child(current.child_count - 1)
        while last is not None and last.id in leading:
            last = last.prev_sibling
        if last is None:
            break
        current = last
    return _end_row(current)


def _module_blocks(
    path: str,
    language: str,
    lines: list[str],
    runs: list[tuple[int, int]],
    starts: list[int],
    ends: list[int],
) -> list[Chunk]:
    """Module chunks over ``runs`` of rows, cut between the statements (``starts``/``ends``)."""

    def inside(row: int) -> bool:  # the row continues a multi-line top-level statement
        index = bisect_right(starts, row - 1) - 1
        return index >= 0 and ends[index] >= row

    chunks: list[Chunk] = []
    for first, last in runs:
        blank = [not line.strip() for line in lines[first : last + 1]]
        for start, end in _blocks(first, last, blank, inside):
            block = lines[start : end + 1]
            if all(set(line.strip()) <= _CLOSERS for line in block):
                continue  # blank, or lone closing brackets
            text = "\n".join(block)
            chunks.append(Chunk(path, start + 1, end + 1, "module", "", language, text, ""))
    return chunks


def _blocks(
    first: int, last: int, blank: list[bool], inside: Callable[[int], bool]
) -> Iterator[tuple[int, int]]:
    """Row ranges of at most MODULE_BLOCK_LINES lines covering the non-blank rows of a run.

    A block ends at the latest good cut (see :func:`_cut`).
    """

    def is_blank(row: int) -> bool:
        return blank[row - first]

    start = first
    while start <= last:
        while start <= last and is_blank(start):
            start += 1
        if start > last:
            return
        if last - start + 1 <= MODULE_BLOCK_LINES:
            cut = last + 1
        else:
            cut = _cut(start, start + MODULE_BLOCK_LINES, is_blank, inside)
        end = cut - 1
        while end > start and is_blank(end):
            end -= 1
        yield start, end
        start = cut


def _cut(
    start: int, high: int, is_blank: Callable[[int], bool], inside: Callable[[int], bool]
) -> int:
    """The row (at most ``high``) where the block from ``start`` stops: the best cut."""
    candidates = range(high, start, -1)
    for row in candidates:  # a blank line between top-level statements
        if is_blank(row - 1) and not inside(row):
            return row
    for row in candidates:  # a top-level statement's start
        if not inside(row) and not is_blank(row):
            return row
    for row in candidates:  # any blank line
        if is_blank(row - 1):
            return row
    return high
