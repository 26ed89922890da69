"""hone's own copy of the editor's documents, kept byte-identical to the editor's.

pygls' workspace documents split lines with ``str.splitlines`` (which also breaks at
``\\f``, ``\\v``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029, where LSP does not), rebuild
their line list on every access and apply each change over the whole text. This module
replaces them for text sync:

* lines end only at ``\\n``, ``\\r\\n`` and ``\\r`` (:func:`split_lines`);
* positions are converted once, here, in the encoding negotiated at ``initialize``
  (:func:`choose_encoding`: utf-32 where the client offers it, since Python strings index
  code points; else the client's first of utf-8 / utf-16; utf-16 by default);
* a document is a list of blocks of at most ``2 * block_lines`` lines, each line kept with
  its line end. An edit re-splits only the lines it touches (plus one line before when
  that one ends in a lone ``\\r``, which a ``\\n`` typed after it would join) and replaces
  them in the block(s) they sit in; the per-block line and character offsets are
  recomputed lazily (one pass over the block list, not the text). Typing in a 1 MB
  document costs tens of microseconds per change;
* a completion request gets the cursor's offset (converted within its line) and a window
  of the text around it made of whole blocks (:meth:`Document.window`, a few hundred kB
  whatever the document's size), joined from per-block strings cached until their block
  changes.

:class:`DocumentSyncMixin` puts a :class:`DocumentStore` on a pygls
``LanguageServerProtocol`` subclass (``protocol.documents``) and takes over
``textDocument/didOpen``, ``didChange`` and ``didClose`` so pygls' own copy is no longer
kept; the server's handlers for those methods still run after the store is updated.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from lsprotocol import types
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("hone.server.documents")

UTF8 = types.PositionEncodingKind.Utf8.value
UTF16 = types.PositionEncodingKind.Utf16.value
UTF32 = types.PositionEncodingKind.Utf32.value
ENCODINGS = (UTF8, UTF16, UTF32)

BLOCK_LINES = 128  # lines per block when a document is split; a block holds at most twice that
# The text a completion request gets: whole blocks around the cursor, at least this much
# before it (from a multiple of the stride, so the start stays put while the user types)
# and after it. 256 kB covers what the completion policy reads back (~224 kB at most) and
# the largest prompt budget (32k tokens); smaller documents are passed whole.
WINDOW_BEFORE = 256 * 1024
WINDOW_AFTER = 64 * 1024
WINDOW_STRIDE = 64 * 1024

# Characters `str.splitlines` breaks at that LSP does not.
_NOT_LSP_BREAKS_ASCII = ("\v", "\f", "\x1c", "\x1d", "\x1e")
_NOT_LSP_BREAKS = (*_NOT_LSP_BREAKS_ASCII, "\x85", "\u2028", "\u2029")
_LSP_BREAK = re.compile(r"(\r\n|\r|\n)")


class PositionError(ValueError):
    """A position outside the document (or past the end of its line)."""


def choose_encoding(offered: Iterable[str] | None) -> str:
    """The position encoding for a client offering ``offered`` (``general.positionEncodings``).

    utf-32 costs nothing here (a column is a Python string index); otherwise the client's
    first choice among utf-8 and utf-16; utf-16 when it offers nothing we know (LSP's
    mandatory default)."""
    offered = [str(getattr(e, "value", e)) for e in offered or ()]
    if UTF32 in offered:
        return UTF32
    return next((e for e in offered if e in (UTF8, UTF16)), UTF16)


def split_lines(text: str) -> list[str]:
    """LSP lines of ``text``, each with its line end; the last line has none (it may be "")."""
    breaks = _NOT_LSP_BREAKS_ASCII if text.isascii() else _NOT_LSP_BREAKS
    if any(c in text for c in breaks):
        parts = _LSP_BREAK.split(text)  # content, end, content, end, ..., content
        lines = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        lines.append(parts[-1])
        return lines
    lines = text.splitlines(True)  # the same as LSP's split without those characters
    if not lines or lines[-1][-1] in "\r\n":
        lines.append("")
    return lines


def content_of(line: str) -> str:
    """``line`` without its line end."""
    if line.endswith("\n"):
        return line[:-2] if line.endswith("\r\n") else line[:-1]
    return line[:-1] if line.endswith("\r") else line


def to_index(content: str, units: int, encoding: str) -> int:
    """The string index of column ``units`` (in ``encoding`` code units) of a line's content.

    Past the end gives the content's length; a column inside a character (the middle of a
    UTF-8 sequence or of a surrogate pair) gives that character's start."""
    if units <= 0:
        return 0
    if encoding == UTF32 or content.isascii():
        return min(units, len(content))
    if encoding == UTF16:
        data = content.encode("utf-16-le", "surrogatepass")
        cut = 2 * units
        if cut >= len(data):
            return len(content)
        unit = data[cut] | data[cut + 1] << 8
        if 0xDC00 <= unit <= 0xDFFF and 0xD800 <= (data[cut - 2] | data[cut - 1] << 8) <= 0xDBFF:
            cut -= 2  # the middle of a surrogate pair
        return len(data[:cut].decode("utf-16-le", "surrogatepass"))
    data = content.encode("utf-8", "surrogatepass")
    cut = units
    if cut >= len(data):
        return len(content)
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1  # a continuation byte: back to the character's first byte
    return len(data[:cut].decode("utf-8", "surrogatepass"))


def to_units(content: str, index: int, encoding: str) -> int:
    """The column, in ``encoding`` code units, of string index ``index`` in a line's content."""
    index = max(0, min(index, len(content)))
    if encoding == UTF32 or content.isascii():
        return index
    if encoding == UTF16:
        return len(content[:index].encode("utf-16-le", "surrogatepass")) // 2
    return len(content[:index].encode("utf-8", "surrogatepass"))


def _chunks(lines: list[str], size: int) -> list[list[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)] or [[""]]


class Document:
    """One open document: text, version, language, positions in the store's encoding."""

    def __init__(
        self,
        uri: str,
        text: str,
        version: int = 0,
        language_id: str = "",
        encoding: str = UTF16,
        block_lines: int = BLOCK_LINES,
    ) -> None:
        self.uri = uri
        self.version = version
        self.language_id = language_id
        self.encoding = encoding
        self._block = max(1, block_lines)
        self._set_text(text)

    # -- whole text ------------------------------------------------------------------------
    def _set_text(self, text: str) -> None:
        lines = split_lines(text)
        self._blocks: list[list[str]] = _chunks(lines, self._block)
        self._chars: list[int] = [sum(map(len, b)) for b in self._blocks]
        self._texts: list[str | None] = [None] * len(self._blocks)
        self._line0: list[int] = []  # first line of each block (valid up to self._valid)
        self._char0: list[int] = []  # offset of each block's first character
        self._valid = 0
        self._nlines = len(lines)
        self._length = len(text)
        self._text: str | None = text

    @property
    def text(self) -> str:
        """The whole text (joined from per-block strings, cached until the next change)."""
        if self._text is None:
            self._text = "".join(self._block_texts(0, len(self._blocks)))
        return self._text

    def _block_texts(self, first: int, stop: int) -> list[str]:
        texts = self._texts
        for i in range(first, stop):
            if texts[i] is None:
                texts[i] = "".join(self._blocks[i])
        return texts[first:stop]  # type: ignore[return-value]

    def window(
        self,
        offset: int,
        before: int = WINDOW_BEFORE,
        after: int = WINDOW_AFTER,
        stride: int = WINDOW_STRIDE,
    ) -> tuple[str, int]:
        """The text around ``offset`` that a completion request needs, and where it starts.

        Whole blocks (so whole lines): from the block holding ``offset - before`` rounded
        down to a multiple of ``stride``, to the block holding ``offset + after``. Typing
        at the cursor moves neither end relative to the text around it, so consecutive
        requests share the window's start (prompt caching) and its end. A document no
        longer than ``before + after`` is passed whole."""
        if self._length <= before + after:
            return self.text, 0
        self._index()
        lo = max(0, offset - before) // stride * stride
        first = bisect.bisect_right(self._char0, lo) - 1
        last = max(first, bisect.bisect_left(self._char0, offset + after) - 1)
        return "".join(self._block_texts(first, last + 1)), self._char0[first]

    def __len__(self) -> int:
        """Length of the text in characters (code points)."""
        return self._length

    @property
    def line_count(self) -> int:
        return self._nlines

    def lines(self) -> Iterator[str]:
        """Every line, with its line end."""
        return itertools.chain.from_iterable(self._blocks)

    # -- index -----------------------------------------------------------------------------
    def _index(self) -> None:
        """Bring the per-block first-line and first-character offsets up to date."""
        i, n = self._valid, len(self._blocks)
        if i >= n:
            return
        if i == 0:
            line, char = 0, 0
        else:
            line = self._line0[i - 1] + len(self._blocks[i - 1])
            char = self._char0[i - 1] + self._chars[i - 1]
        self._line0[i:] = itertools.accumulate(map(len, self._blocks[i : n - 1]), initial=line)
        self._char0[i:] = itertools.accumulate(self._chars[i : n - 1], initial=char)
        self._valid = n

    def _locate(self, line: int) -> tuple[int, int]:
        """(block, index in block) of ``line`` (0 <= line < line_count)."""
        self._index()
        b = bisect.bisect_right(self._line0, line) - 1
        return b, line - self._line0[b]

    def line(self, line: int) -> str:
        """Line ``line`` with its line end."""
        b, j = self._locate(line)
        return self._blocks[b][j]

    def line_offset(self, line: int) -> int:
        """Offset of the first character of ``line``."""
        b, j = self._locate(line)
        return self._char0[b] + sum(map(len, self._blocks[b][:j]))

    # -- positions -------------------------------------------------------------------------
    def offset_at(self, line: int, character: int, *, strict: bool = False) -> int:
        """The string offset of an LSP position (``character`` in the document's encoding).

        Not strict: a line past the end means the end of the document and a column past
        its line's end means the line's end (LSP's rule). Strict: those raise PositionError.
        """
        if line < 0 or character < 0:
            if strict:
                raise PositionError("is negative")
            line, character = max(line, 0), max(character, 0)
        if line >= self._nlines:
            if strict:
                raise PositionError(f"is past the end of the document ({self._nlines} lines)")
            return self._length
        b, j = self._locate(line)
        block = self._blocks[b]
        content = content_of(block[j])
        index = to_index(content, character, self.encoding)
        if strict and index == len(content):
            units = to_units(content, index, self.encoding)
            if character > units:
                raise PositionError(
                    f"is past the end of its line ({units} {self.encoding} code units)"
                )
        return self._char0[b] + sum(map(len, block[:j])) + index

    def position_at(self, offset: int) -> tuple[int, int]:
        """The LSP position (line, character in the document's encoding) of a string offset;
        an offset inside a line end gives the end of that line's content."""
        offset = max(0, min(offset, self._length))
        self._index()
        b = bisect.bisect_right(self._char0, offset) - 1
        pos = self._char0[b]
        block = self._blocks[b]
        for j, text in enumerate(block):
            if offset < pos + len(text) or j == len(block) - 1:
                break
            pos += len(text)
        return self._line0[b] + j, to_units(content_of(text), offset - pos, self.encoding)

    def _clamp(self, pos: types.Position) -> tuple[int, int, str]:
        """(line, index in its content, the line) of an edit's position, clamped LSP's way."""
        line = max(pos.line, 0)
        if line >= self._nlines:
            line = self._nlines - 1
            text = self.line(line)
            return line, len(content_of(text)), text
        text = self.line(line)
        return line, to_index(content_of(text), max(pos.character, 0), self.encoding), text

    # -- edits -----------------------------------------------------------------------------
    def apply(self, change: Any) -> None:
        """Apply one ``TextDocumentContentChangeEvent`` (a range edit or the whole text)."""
        rng = getattr(change, "range", None)
        if rng is None:
            self._set_text(change.text)
        else:
            self.edit(rng.start, rng.end, change.text)

    def edit(self, start: types.Position, end: types.Position, text: str) -> None:
        """Replace the text between two LSP positions with ``text``."""
        sl, sc, first = self._clamp(start)
        el, ec, last = self._clamp(end)
        if (el, ec) < (sl, sc):
            (sl, sc, first), (el, ec, last) = (el, ec, last), (sl, sc, first)
        a, head = sl, first[:sc]
        if sl > 0 and sc == 0 and (text + last[ec:]).startswith("\n"):
            before = self.line(sl - 1)
            if before.endswith("\r"):  # a lone CR: a "\n" put right after it joins it
                a, head = sl - 1, before + head
        new = split_lines(head + text + last[ec:])
        if el < self._nlines - 1:
            new.pop()  # the region ends with line el's line end: no line starts there
        self._replace(a, el, new)

    def _replace(self, first: int, last: int, new: list[str]) -> None:
        """Replace lines ``first``..``last`` (inclusive) with ``new`` (not empty)."""
        ba, ia = self._locate(first)
        bb, ib = self._locate(last)
        blocks = self._blocks
        merged = blocks[ba][:ia] + new + blocks[bb][ib + 1 :]
        if len(merged) < self._block // 4 and bb + 1 < len(blocks):
            bb += 1  # a block grown small takes in the next one
            merged += blocks[bb]
        removed_lines = sum(map(len, blocks[ba : bb + 1]))
        removed_chars = sum(self._chars[ba : bb + 1])
        pieces = [merged] if len(merged) <= 2 * self._block else _chunks(merged, self._block)
        chars = [sum(map(len, p)) for p in pieces]
        blocks[ba : bb + 1] = pieces
        self._chars[ba : bb + 1] = chars
        self._texts[ba : bb + 1] = [None] * len(pieces)
        self._nlines += len(merged) - removed_lines
        self._length += sum(chars) - removed_chars
        self._valid = min(self._valid, ba)
        del self._line0[ba:], self._char0[ba:]
        self._text = None


class DocumentStore:
    """The open documents by URI, in one position encoding; records per-change timings."""

    def __init__(self, encoding: str = UTF16) -> None:
        self._encoding = encoding
        self._docs: dict[str, Document] = {}
        # Server time per didChange notification (applying all its changes), newest last.
        self.changes: collections.deque[dict[str, Any]] = collections.deque(maxlen=512)

    @property
    def encoding(self) -> str:
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value
        for doc in self._docs.values():
            doc.encoding = value

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)

    def open(self, uri: str, text: str, version: int = 0, language_id: str = "") -> Document:
        doc = Document(uri, text, version, language_id, self._encoding)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int | None, changes: Sequence[Any]) -> Document | None:
        t0 = time.perf_counter()
        doc = self._docs.get(uri)
        if doc is None:
            log.warning("didChange for %s, which is not open: ignored", uri)
            return None
        for change in changes:
            doc.apply(change)
        if version is not None:
            doc.version = version
        self.changes.append(
            {
                "uri": uri,
                "version": version,
                "changes": len(changes),
                "ms": (time.perf_counter() - t0) * 1000,
            }
        )
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)


class DocumentSyncMixin:
    """Text sync for a pygls ``LanguageServerProtocol`` subclass (list it first in the bases):
    ``self.documents`` is a :class:`DocumentStore`, the position encoding is chosen at
    ``initialize`` and advertised as ``positionEncoding``, and didOpen / didChange / didClose
    update the store instead of pygls' workspace. User handlers for those run afterwards."""

    documents: DocumentStore
    fm: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.documents = DocumentStore()
        super().__init__(*args, **kwargs)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Any:
        general = params.capabilities.general
        self.documents.encoding = choose_encoding(general.position_encodings if general else None)
        result = yield from super().lsp_initialize(params)  # type: ignore[misc]
        result.capabilities.position_encoding = self.documents.encoding
        return result

    def _user_handler(self, method: str) -> Any:
        return self.fm.features.get(method)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        item = params.text_document
        self.documents.open(item.uri, item.text, item.version, item.language_id)
        if (handler := self._user_handler(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        doc = params.text_document
        self.documents.change(doc.uri, doc.version, params.content_changes)
        if (handler := self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        self.documents.close(params.text_document.uri)
        if (handler := self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None
