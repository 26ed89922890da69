"""hone's document store (server/documents.py) against a plain reference: random incremental
edits with every kind of line break and non-ASCII text, in all three position encodings."""

from __future__ import annotations

import re

import pytest
from hone.server.documents import (
    UTF8,
    UTF16,
    UTF32,
    Document,
    DocumentStore,
    PositionError,
    choose_encoding,
    split_lines,
    to_index,
    to_units,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

ENCODINGS = (UTF8, UTF16, UTF32)
# LSP line ends, characters that str.splitlines also breaks at (LSP does not), non-ASCII
# text from two, three and four UTF-8 bytes (the last two are astral: a UTF-16 surrogate pair).
PIECES = [
    "a",
    "bc",
    " ",
    "\t",
    "x = 1",
    "\n",
    "\r\n",
    "\r",
    "\f",
    "\v",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
    "é",
    "ï",
    "€",
    "😀",
    "𝄞",
]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


# -- the reference: a plain string, LSP lines by regex, columns counted per character ----------


def ref_lines(text: str) -> list[tuple[str, str]]:
    """(content, line end) per LSP line."""
    parts = re.split(r"(\r\n|\r|\n)", text)
    return [(parts[i], parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def width(ch: str, encoding: str) -> int:
    if encoding == UTF8:
        return len(ch.encode("utf-8"))
    if encoding == UTF16:
        return 2 if ord(ch) > 0xFFFF else 1
    return 1


def ref_units(content: str, encoding: str) -> int:
    return sum(width(ch, encoding) for ch in content)


def ref_offset(text: str, line: int, character: int, encoding: str) -> int:
    """LSP's rules: a line past the end is the end of the text, a column past the end of its
    line is the line's end; a column inside a character means that character's start."""
    lines = ref_lines(text)
    if line >= len(lines):
        return len(text)
    start = sum(len(c) + len(e) for c, e in lines[:line])
    content = lines[line][0]
    units = 0
    for i, ch in enumerate(content):
        units += width(ch, encoding)
        if units > character:
            return start + i
    return start + len(content)


def ref_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    start = 0
    lines = ref_lines(text)
    for n, (content, end) in enumerate(lines):
        if offset < start + len(content) + len(end) or n == len(lines) - 1:
            return n, ref_units(content[: offset - start], encoding)
        start += len(content) + len(end)
    raise AssertionError("unreachable")


def positions(draw, text: str, encoding: str) -> types.Position:
    """A position in ``text``: mostly on a character boundary, sometimes inside a character,
    past its line's end or past the last line."""
    lines = ref_lines(text)
    line = draw(st.integers(0, len(lines)))  # len(lines): past the end
    content = lines[line][0] if line < len(lines) else ""
    units = ref_units(content, encoding)
    if draw(st.booleans()):
        bounds = [ref_units(content[:i], encoding) for i in range(len(content) + 1)]
        character = draw(st.sampled_from(bounds))
    else:
        character = draw(st.integers(0, units + 2))
    return types.Position(line=line, character=character)


def check_same(doc: Document, text: str, encoding: str, draw) -> None:
    assert doc.text == text
    assert len(doc) == len(text)
    lines = ref_lines(text)
    assert doc.line_count == len(lines)
    assert "".join(doc.lines()) == text
    for _ in range(3):
        pos = positions(draw, text, encoding)
        want = ref_offset(text, pos.line, pos.character, encoding)
        assert doc.offset_at(pos.line, pos.character) == want, pos
        past = pos.line >= len(lines) or pos.character > ref_units(lines[pos.line][0], encoding)
        if past:
            with pytest.raises(PositionError):
                doc.offset_at(pos.line, pos.character, strict=True)
        else:
            assert doc.offset_at(pos.line, pos.character, strict=True) == want
        offset = draw(st.integers(0, len(text)))
        assert doc.position_at(offset) == ref_position(text, offset, encoding), offset


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    encoding=st.sampled_from(ENCODINGS),
    block_lines=st.sampled_from([1, 2, 3, 128]),
    initial=texts,
    data=st.data(),
)
def test_random_incremental_edits_match_the_reference(encoding, block_lines, initial, data):
    draw = data.draw
    doc = Document("file:///t.py", initial, 1, "python", encoding, block_lines=block_lines)
    text = initial
    check_same(doc, text, encoding, draw)
    for _ in range(draw(st.integers(1, 12))):
        new = draw(texts)
        if draw(st.integers(0, 15)) == 0:  # now and then the whole text
            doc.apply(types.TextDocumentContentChangeWholeDocument(text=new))
            text = new
        else:
            start, end = positions(draw, text, encoding), positions(draw, text, encoding)
            a = ref_offset(text, start.line, start.character, encoding)
            b = ref_offset(text, end.line, end.character, encoding)
            a, b = min(a, b), max(a, b)
            doc.apply(
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=start, end=end), text=new
                )
            )
            text = text[:a] + new + text[b:]
        check_same(doc, text, encoding, draw)


@settings(max_examples=200, deadline=None, database=None)
@given(
    text=st.lists(st.sampled_from(PIECES), min_size=1, max_size=120).map("".join),
    block_lines=st.sampled_from([1, 2, 3]),
    before=st.integers(0, 40),
    after=st.integers(0, 40),
    stride=st.integers(1, 16),
    data=st.data(),
)
def test_the_window_holds_the_text_around_the_cursor_and_stays_put_while_typing(
    text, block_lines, before, after, stride, data
):
    doc = Document("file:///t.py", text, encoding=UTF32, block_lines=block_lines)
    offset = data.draw(st.integers(0, len(text)))
    if text[offset - 1 : offset + 1] == "\r\n":
        offset -= 1  # not inside a line end: the cursor is somewhere one can type
    window, start = doc.window(offset, before, after, stride)
    assert text[start : start + len(window)] == window
    assert start <= max(0, offset - before) and start in [0] + [
        i + 1
        for i, c in enumerate(text)
        if c == "\n" or (c == "\r" and text[i + 1 : i + 2] != "\n")
    ]  # a line start
    assert start + len(window) >= min(len(text), offset + after)
    # Typing at the cursor: the same window, with the typed text in it.
    line, character = doc.position_at(offset)
    doc.edit(types.Position(line, character), types.Position(line, character), "x")
    typed, typed_start = doc.window(offset + 1, before, after, stride)
    same_regime = len(text) != before + after  # (one more character: no longer passed whole)
    if same_regime and max(0, offset + 1 - before) // stride == max(0, offset - before) // stride:
        # the start stays put (the prompt's start, and the KV cache, with it); the end may
        # move by a line as the window's end follows the cursor
        cut = offset - start
        assert typed_start == start
        assert typed.startswith(window[:cut] + "x")
        assert typed[cut + 1 :].startswith(window[cut:][: len(typed) - cut - 1])


def test_a_small_document_is_its_own_window():
    doc = Document("file:///t.py", "x = 1\n" * 10)
    assert doc.window(30) == (doc.text, 0)


def test_typing_one_character_at_a_time_across_many_blocks():
    # Typing a line break after a lone CR joins them into one CRLF line end, also at a block
    # boundary; deleting the text between a CR and an LF joins them too.
    text = "".join(f"line {i}\r" for i in range(50))
    doc = Document("file:///t.py", text, encoding=UTF16, block_lines=4)
    assert doc.line_count == 51
    for line in range(49, -1, -1):
        end = types.Position(line=line, character=len(f"line {line}"))
        doc.edit(types.Position(line=line + 1, character=0), types.Position(line + 1, 0), "\n")
        assert doc.line(line).endswith("\r\n")
        doc.edit(end, end, "X")
    assert doc.text == "".join(f"line {i}X\r\n" for i in range(50))
    assert doc.line_count == 51
    doc.edit(types.Position(0, 6), types.Position(0, 7), "")  # drop an X
    assert doc.text.startswith("line 0\r\nline 1X")


def test_lines_end_only_at_lsp_line_ends():
    text = "a\fb\vc\x1cd\x85e\u2028f\u2029g\r\nh\ri\nj"
    assert len(text.splitlines()) == 10
    assert split_lines(text) == ["a\fb\vc\x1cd\x85e\u2028f\u2029g\r\n", "h\r", "i\n", "j"]
    assert split_lines("") == [""]
    assert split_lines("x\n") == ["x\n", ""]
    doc = Document("file:///t.py", text)
    assert doc.line_count == 4
    assert doc.offset_at(1, 1) == text.index("h") + 1


@pytest.mark.parametrize(
    ("encoding", "columns"),
    [
        (UTF8, [0, 1, 3, 7, 8]),  # é: 2 bytes, 😀: 4 bytes
        (UTF16, [0, 1, 2, 4, 5]),  # 😀: a surrogate pair
        (UTF32, [0, 1, 2, 3, 4]),
    ],
)
def test_columns_in_each_encoding(encoding, columns):
    content = "aé😀b"  # the column before each character, and at the end
    for index, units in enumerate(columns):
        assert to_units(content, index, encoding) == units
        assert to_index(content, units, encoding) == index
    assert to_index(content, columns[-1] + 10, encoding) == len(content)
    if encoding != UTF32:  # a column inside the emoji is the emoji's start
        assert to_index(content, columns[2] + 1, encoding) == 2


def test_choose_encoding_prefers_utf32_then_the_clients_order():
    assert choose_encoding([UTF8, UTF16, UTF32]) == UTF32
    assert choose_encoding([UTF8, UTF16]) == UTF8
    assert choose_encoding([UTF16, UTF8]) == UTF16
    assert choose_encoding(["utf-7"]) == UTF16
    assert choose_encoding(None) == UTF16


def test_store_applies_changes_in_its_encoding_and_records_their_time():
    store = DocumentStore(UTF8)
    store.open("file:///a.py", "s = 'naïve'\n", 1, "python")
    end = types.Position(0, len("s = 'naïve'".encode()))
    change = types.TextDocumentContentChangePartial(range=types.Range(end, end), text="; x = ")
    store.change("file:///a.py", 2, [change])
    doc = store.get("file:///a.py")
    assert (doc.text, doc.version) == ("s = 'naïve'; x = \n", 2)
    assert store.changes[-1]["uri"] == "file:///a.py" and store.changes[-1]["ms"] >= 0
    store.encoding = UTF16  # negotiated later: open documents follow
    assert doc.offset_at(0, 11) == len("s = 'naïve'")
    assert store.change("file:///unknown.py", 1, [change]) is None
    store.close("file:///a.py")
    assert "file:///a.py" not in store and len(store) == 0
