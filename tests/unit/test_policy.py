"""hone.agent.completion.policy.decide: hand-written cases, then every site of a kind in real
stdlib files (block headers, strings, comments, identifiers, blank lines), with the
expected answer worked out independently with :mod:`tokenize` and :mod:`ast`."""

from __future__ import annotations

import ast
import io
import random
import re
import tokenize
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from conftest import line_offsets, read_stdlib
from hone.agent.completion import policy
from hone.agent.completion.policy import Decision, Mode, decide

if TYPE_CHECKING:
    from conftest import Block

# Real files with every kind of block, big docstrings, and a 2,000-line one (difflib).
FILES = ["difflib.py", "textwrap.py", "json/decoder.py", "enum.py", "traceback.py"]
UNIT = "    "  # the stdlib's indentation step


source = read_stdlib


def at(marked: str, language: str = "python") -> Decision:
    """decide() with the cursor where ``|`` is in ``marked``."""
    offset = marked.index("|")
    return decide(marked[:offset] + marked[offset + 1 :], offset, language)


# --------------------------------------------------------------------------------------
# Hand-written cases

CASES = [
    # (marked text, language, mode, reason, indent)
    ("def f():\n    |", "python", Mode.MULTI, "block-opener", ""),
    ("def f():\n|", "python", Mode.MULTI, "block-opener", "    "),
    ("def f():\n  |", "python", Mode.MULTI, "block-opener", "    "),
    ("class A:\n    def f(self):\n|", "python", Mode.MULTI, "block-opener", "        "),
    ("def f():\n    |\n    pass\n", "python", Mode.MULTI, "block-opener", ""),
    ("def f():\n    |\n    ...\n\ndef g(): pass\n", "python", Mode.MULTI, "block-opener", ""),
    ("def f():\n    |\n    x = 1\n", "python", Mode.SINGLE, "opener-with-body", ""),
    ("def f():\n|\n    x = 1\n", "python", Mode.SINGLE, "opener-with-body", "    "),
    ("def f(\n    a,\n    b,\n):\n|", "python", Mode.MULTI, "block-opener", "    "),
    ("    def f(self,\n          a):\n|", "python", Mode.MULTI, "block-opener", "        "),
    ("if x:  # why\n|", "python", Mode.MULTI, "block-opener", "    "),
    ("if x:\n    # a comment first\n    |", "python", Mode.MULTI, "block-opener", ""),
    ("\tif x:\n|", "python", Mode.MULTI, "block-opener", "\t\t"),
    ("if x:\n  y = 1\nelse:\n|", "python", Mode.MULTI, "block-opener", "  "),
    ("try:\n    a()\nexcept (A, B) as e:\n|", "python", Mode.MULTI, "block-opener", "    "),
    ("match cmd:\n    case [x, *rest]:\n|", "python", Mode.MULTI, "block-opener", "        "),
    ("async def f():\n|", "python", Mode.MULTI, "block-opener", "    "),
    ("def f():|", "python", Mode.MULTI, "block-header", ""),
    ("def f():  |", "python", Mode.MULTI, "block-header", ""),
    ("def f():|\n    pass\n", "python", Mode.MULTI, "block-header", ""),
    ("if x:\n    pass\nelse:|", "python", Mode.MULTI, "block-header", ""),
    ("def f():|\n    return 1\n", "python", Mode.NONE, "header-with-body", ""),
    ('def f():|\n    """Doc."""\n', "python", Mode.NONE, "header-with-body", ""),
    ('def f():\n    """Doc."""\n    |', "python", Mode.MULTI, "empty-body", ""),
    ('class A:\n    """Doc."""\n\n    |\n    pass\n', "python", Mode.MULTI, "empty-body", ""),
    ('def f():\n    """Doc."""\n|', "python", Mode.SINGLE, "blank-line", ""),
    ('def f():\n    """Doc."""\n    x = 1\n    |', "python", Mode.SINGLE, "blank-line", ""),
    ('"""Module doc."""\n|', "python", Mode.SINGLE, "blank-line", ""),
    ("x = 1\n|\ny = 2\n", "python", Mode.SINGLE, "blank-line", ""),
    ("def f():\n    x = 1\n|\n    y = 2\n", "python", Mode.SINGLE, "blank-line", "    "),
    ("def f():\n    x = 1\n    |", "python", Mode.SINGLE, "blank-line", ""),
    ("|", "python", Mode.SINGLE, "blank-line", ""),
    # colons that do not open blocks
    ('d = {\n    "a":|', "python", Mode.SINGLE, "end-of-line", ""),
    ("f = lambda x:|", "python", Mode.SINGLE, "end-of-line", ""),
    ("x: int =|", "python", Mode.SINGLE, "end-of-line", ""),
    ("items[1:|", "python", Mode.SINGLE, "end-of-line", ""),
    ("return foo(a,|", "python", Mode.SINGLE, "end-of-line", ""),
    ("@property|", "python", Mode.SINGLE, "end-of-line", ""),
    ("x = 1 + \\\n|", "python", Mode.SINGLE, "blank-line", ""),
    # right of the cursor
    ("x = foo|bar", "python", Mode.NONE, "mid-identifier", ""),
    ("x = |bar", "python", Mode.NONE, "text-right", ""),
    ("x = foo(|) + 1", "python", Mode.NONE, "text-right", ""),
    ("x = foo(|)", "python", Mode.SINGLE, "closers-right", ""),
    ("x = foo(a, [|])", "python", Mode.SINGLE, "closers-right", ""),
    ("def f(x|):", "python", Mode.SINGLE, "closers-right", ""),
    ("x = {'a': f(|)},", "python", Mode.SINGLE, "closers-right", ""),
    ("x = 1|  ", "python", Mode.SINGLE, "end-of-line", ""),
    ("foo(|'')", "python", Mode.NONE, "text-right", ""),  # the quote opens a string
    # strings and comments
    ('x = "hel|lo"', "python", Mode.NONE, "in-string", ""),
    ('x = "hello |world")', "python", Mode.NONE, "in-string", ""),
    ('print("hello|")', "python", Mode.SINGLE, "string-end", ""),
    ("x = f'{a|}'", "python", Mode.SINGLE, "closers-right", ""),
    ("x = f'{a|} b'", "python", Mode.NONE, "text-right", ""),
    ('x = f"a{b}|c"', "python", Mode.NONE, "in-string", ""),
    (
        'def f():\n    """Summary.\n\n    Args:|\n    """\n',
        "python",
        Mode.SINGLE,
        "in-docstring",
        "",
    ),
    ('def f():\n    """Summary.\n|\n    """\n', "python", Mode.SINGLE, "in-docstring", ""),
    ('s = """a\nb|\n"""\n', "python", Mode.SINGLE, "in-string", ""),
    ("x = 1  # com|ment", "python", Mode.NONE, "in-comment", ""),
    ("x = 1  # see f(|)", "python", Mode.NONE, "in-comment", ""),
    ("x = 1  # comment|", "python", Mode.SINGLE, "end-of-comment", ""),
    ("# comment   |", "python", Mode.SINGLE, "end-of-comment", ""),
    ("x = 1 |# note", "python", Mode.NONE, "text-right", ""),
    # line endings
    ("def f():\r\n    |\r\n", "python", Mode.MULTI, "block-opener", ""),
    ("x = foo(|)\r\ny = 2\r\n", "python", Mode.SINGLE, "closers-right", ""),
    # the indentation/bracket fallback
    ("if (x) {\n    |\n}\n", "javascript", Mode.MULTI, "block-opener", ""),
    ("if (x) {\n|\n}\n", "javascript", Mode.MULTI, "block-opener", "    "),
    ("if (x) {|\n}\n", "javascript", Mode.MULTI, "block-header", ""),
    ("if (x) {|\n  run();\n}\n", "javascript", Mode.NONE, "header-with-body", ""),
    ("if (x) {\n  |\n  run();\n}\n", "javascript", Mode.SINGLE, "opener-with-body", ""),
    ("function f(a,\n           b) {\n|", "javascript", Mode.MULTI, "block-opener", "    "),
    ("func main() {\n\t|\n}\n", "go", Mode.MULTI, "block-opener", ""),
    ("func main() {\n|\n}\n", "go", Mode.MULTI, "block-opener", "    "),
    ('const s = "ab|c";', "javascript", Mode.NONE, "in-string", ""),
    ('const s = "abc|";', "javascript", Mode.SINGLE, "closers-right", ""),
    ("// hello wor|ld", "javascript", Mode.NONE, "in-comment", ""),
    ("let x = 1; // note|", "javascript", Mode.SINGLE, "end-of-comment", ""),
    ('let u = "http://x|', "javascript", Mode.SINGLE, "in-string", ""),
    ("fn main() {|}", "rust", Mode.SINGLE, "closers-right", ""),
    ("int x = foo|bar;", "c", Mode.NONE, "mid-identifier", ""),
    ("x = 1\n|", "plaintext", Mode.SINGLE, "blank-line", ""),
    ("Dear Bob,|", "plaintext", Mode.SINGLE, "end-of-line", ""),
    ("if x:\n|", "plaintext", Mode.SINGLE, "blank-line", ""),  # no block rules without a language
]


@pytest.mark.parametrize(("marked", "language", "mode", "reason", "indent"), CASES)
def test_cases(marked: str, language: str, mode: Mode, reason: str, indent: str) -> None:
    assert at(marked, language) == Decision(mode, reason, indent)


def test_tabs_document_indents_with_tabs() -> None:
    text = "class A:\n\tdef f(self):\n\t\treturn 1\n\n\tdef g(self):\n|"
    assert at(text) == Decision(Mode.MULTI, "block-opener", "\t\t")


def test_two_space_document_indents_with_two_spaces() -> None:
    text = "def f():\n  if x:\n    y = 1\n  return y\n\ndef g():\n|"
    assert at(text) == Decision(Mode.MULTI, "block-opener", "  ")


# --------------------------------------------------------------------------------------
# Odd input: never raises, clamps the offset, stays fast


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("", 0),
        ("", 10),
        ("abc", -5),
        ("abc", 10**12),
        ("def f():\n", 10**6),
        ("\x00\xff\xfe" * 100, 150),
        ("\ud800\udfff garbage \x00", 5),
        ("'''" * 1000, 1500),
        ('"' * 5000, 2500),
        ("(" * 10_000, 5000),
        (")]}" * 3000, 4000),
        ("\n" * 10_000, 5000),
        ("\t \r\n\x0b\x0c" * 500, 1001),
        ("def f(:\n  ::: @@@ '''\n" * 300, 3000),
    ],
)
def test_never_raises(text: str, offset: int) -> None:
    decision = decide(text, offset, "python")
    assert isinstance(decision, Decision)
    assert isinstance(decision.mode, Mode)
    for language in ("javascript", "plaintext", "no-such-language"):
        assert isinstance(decide(text, offset, language), Decision)


def test_offset_is_clamped() -> None:
    assert decide("def f():", 10**9, "python") == Decision(Mode.MULTI, "block-header")
    assert decide("x = foo", -3, "python") == Decision(Mode.NONE, "text-right")
    assert decide("x = foo", 6, "python") == Decision(Mode.NONE, "mid-identifier")


@pytest.mark.parametrize(
    ("text", "offset", "language"),
    [(None, 0, "python"), ("x", "1", "python"), ("x", 1.0, "python"), ("x", True, "python")],
)
def test_invalid_arguments(text: object, offset: object, language: object) -> None:
    assert decide(text, offset, language) == Decision(Mode.NONE, "invalid-input")  # type: ignore[arg-type]


def test_bytes_text_and_odd_language_are_tolerated() -> None:
    assert decide(b"def f():", 8, "python") == Decision(Mode.MULTI, "block-header")  # type: ignore[arg-type]
    assert decide("x = 1", 5, None).mode is Mode.SINGLE  # type: ignore[arg-type]


def test_huge_documents_get_windowed_answers() -> None:
    """(Their cost: bench_latency's components_ms.policy_decide_5mb.)"""
    text = source("difflib.py")
    big = text * (5_000_000 // len(text) + 1)  # ~5 MB of real code
    one_line = "x = " + "a + " * 1_250_000  # 5 MB on one line
    rng = random.Random(7)
    for doc in (big, one_line):
        for offset in [0, len(doc), *(rng.randrange(len(doc)) for _ in range(20))]:
            decision = decide(doc, offset, "python")
            assert decision.reason != "error", (offset, decision)
    # the same positions in a small and a 5 MB copy of a file get the same answers
    header = text.index("def get_close_matches(") + len("def get_close_matches(")
    header = text.index(":\n", header) + 1
    far = len(big) - len(text)
    assert decide(big, far + header, "python") == decide(text, header, "python")


def test_windowed_parse_agrees_with_whole_file_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(2)
    cases = []
    for name in ("difflib.py", "argparse.py"):
        text = source(name)
        cases += [(text, rng.randrange(len(text) + 1)) for _ in range(150)]
    windowed = [decide(text, offset, "python") for text, offset in cases]
    for constant in ("_LINES_BEFORE", "_LINES_AFTER", "_CHARS_BEFORE", "_CHARS_AFTER"):
        monkeypatch.setattr(policy, constant, 10**9)
    whole = [decide(text, offset, "python") for text, offset in cases]
    agree = sum(a == b for a, b in zip(windowed, whole, strict=True))
    assert agree >= 0.99 * len(cases)


# --------------------------------------------------------------------------------------
# Every site of a kind in real files. The oracles use tokenize/ast, not tree-sitter.


@pytest.fixture(scope="module", params=FILES)
def stdlib_file(request: pytest.FixtureRequest) -> str:
    return source(request.param)


@pytest.fixture(scope="module")
def file_blocks(stdlib_file: str, blocks: Callable[[str], list[Block]]) -> list[Block]:
    return blocks(stdlib_file)


def test_blank_line_after_every_block_header_of_an_emptied_block(
    stdlib_file: str, file_blocks: list[Block]
) -> None:
    """Body removed, cursor on the new blank line: MULTI, indented one step deeper."""
    text = stdlib_file
    found = file_blocks
    assert len(found) > 20
    for block in found:
        head, tail = text[: block.header_end], text[block.body_end :].lstrip("\n")
        expected_indent = block.header_indent + UNIT
        for column in ("", block.header_indent, expected_indent):
            doc = f"{head}\n{column}\n{tail}"
            wanted = Decision(
                Mode.MULTI, "block-opener", expected_indent if column != expected_indent else ""
            )
            assert decide(doc, len(head) + 1 + len(column), "python") == wanted, head[-200:]


def test_end_of_every_block_header(stdlib_file: str, file_blocks: list[Block]) -> None:
    """At the end of a header: MULTI if the body is empty or a placeholder, else NONE."""
    text = stdlib_file
    for block in file_blocks:
        emptied = text[: block.header_end] + "\n" + text[block.body_end :]
        assert decide(emptied, block.header_end, "python") == Decision(Mode.MULTI, "block-header")
        expected = (
            Decision(Mode.MULTI, "block-header")
            if block.placeholder_only
            else Decision(Mode.NONE, "header-with-body")
        )
        if text[block.header_end : text.index("\n", block.header_end)].strip():
            expected = Decision(Mode.NONE, "text-right")  # `if x:  # comment`
        assert decide(text, block.header_end, "python") == expected, text[
            block.header_end - 80 : block.header_end
        ]


def test_blank_line_inserted_before_every_existing_body(
    stdlib_file: str, file_blocks: list[Block]
) -> None:
    """A new line between a header and its body: SINGLE, at the body's indentation."""
    text = stdlib_file
    for block in file_blocks:
        if block.placeholder_only:
            continue
        doc = text[: block.body_start] + "\n" + text[block.body_start :]
        decision = decide(doc, block.body_start, "python")
        assert decision == Decision(Mode.SINGLE, "opener-with-body", block.body_indent)


def test_inside_every_single_line_string(stdlib_file: str) -> None:
    text = stdlib_file
    offsets = line_offsets(text)
    checked = 0
    literal = re.compile(r"([rRbBuU]{0,2})('|\")(.*)\2", re.S)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.STRING or tok.start[0] != tok.end[0]:
            continue
        match = literal.fullmatch(tok.string)
        if match is None or len(match.group(3)) < 3:
            continue  # f-strings, triple quotes on one line, tiny strings
        content = match.group(3)
        middle = len(content) // 2
        if not re.search(r"\w", content[middle:]):
            continue  # only punctuation to the right: SINGLE "string-end" is right there
        start = offsets[tok.start[0] - 1] + tok.start[1] + len(match.group(1)) + 1
        assert decide(text, start + middle, "python") == Decision(Mode.NONE, "in-string"), (
            tok.string
        )
        checked += 1
    assert checked > 10


def test_end_of_every_line_inside_a_multiline_string(stdlib_file: str) -> None:
    text = stdlib_file
    offsets = line_offsets(text)
    checked = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.STRING or tok.start[0] == tok.end[0]:
            continue
        for row in range(tok.start[0], tok.end[0]):
            end_of_line = offsets[row] - 1
            if text[end_of_line - 1 : end_of_line] == "\\":
                continue
            decision = decide(text, end_of_line, "python")
            assert decision.mode is Mode.SINGLE, (tok.string, row)
            assert decision.reason in ("in-docstring", "in-string")
            checked += 1
    assert checked > 20


def test_every_comment(stdlib_file: str) -> None:
    text = stdlib_file
    offsets = line_offsets(text)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.COMMENT:
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = start + len(tok.string)
        assert decide(text, end, "python") == Decision(Mode.SINGLE, "end-of-comment")
        inner = 3
        if re.search(r"\S", tok.string[inner:]) and len(tok.string) > inner:
            assert decide(text, start + inner, "python") == Decision(Mode.NONE, "in-comment")


def test_inside_every_identifier(stdlib_file: str) -> None:
    text = stdlib_file
    offsets = line_offsets(text)
    checked = 0
    names = [
        t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.NAME
    ]
    for tok in names[::3]:
        if len(tok.string) >= 2:
            offset = offsets[tok.start[0] - 1] + tok.start[1] + len(tok.string) // 2
            assert decide(text, offset, "python") == Decision(Mode.NONE, "mid-identifier")
            checked += 1
    assert checked > 150


def test_end_of_every_simple_statement_line(stdlib_file: str) -> None:
    text = stdlib_file
    offsets = line_offsets(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    checked = 0
    for previous, tok in zip(tokens, tokens[1:], strict=False):
        if tok.type != tokenize.NEWLINE or previous.type == tokenize.COMMENT:
            continue
        if previous.string == ":":
            continue  # a block header: covered above
        offset = offsets[tok.start[0] - 1] + tok.start[1]
        assert decide(text, offset, "python") == Decision(Mode.SINGLE, "end-of-line")
        checked += 1
    assert checked > 100


def test_blank_line_between_every_pair_of_statements(stdlib_file: str) -> None:
    """A new blank line (cursor at column 0) between two statements of one body."""
    text = stdlib_file
    offsets = line_offsets(text)
    lines = text.split("\n")
    checked = 0
    for node in ast.walk(ast.parse(text)):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list) or isinstance(node, ast.Module):
                continue
            for first, second in zip(body, body[1:], strict=False):
                row = min(
                    [second.lineno] + [d.lineno for d in getattr(second, "decorator_list", [])]
                )
                line = lines[row - 1]
                if first.end_lineno >= row or line[: second.col_offset].strip():
                    continue  # `a; b` on one line
                doc = text[: offsets[row - 1]] + "\n" + text[offsets[row - 1] :]
                decision = decide(doc, offsets[row - 1], "python")
                above = lines[first.end_lineno - 1]
                next_indent = line[: second.col_offset]
                deep = len(above) - len(above.lstrip()) >= len(next_indent)
                assert decision == Decision(Mode.SINGLE, "blank-line", next_indent if deep else "")
                checked += 1
    assert checked > 50


def test_random_offsets_respect_the_invariants(stdlib_file: str) -> None:
    text = stdlib_file
    rng = random.Random(len(text))
    closers = set(")]}\"':;,")
    for _ in range(300):
        offset = rng.randrange(len(text) + 1)
        decision = decide(text, offset, "python")
        end = text.find("\n", offset)
        right = text[offset : end if end >= 0 else len(text)].strip()
        line = text[text.rfind("\n", 0, offset) + 1 : offset]
        if decision.mode is not Mode.NONE:
            assert set(right) <= closers, (decision, right)
        if decision.mode is Mode.MULTI:
            assert right == ""
        if decision.indent:
            assert line.strip() == "" and len(decision.indent) > len(line)
        if right[:1].isalnum():
            assert decision.mode is Mode.NONE


def test_threads_get_the_same_answers() -> None:
    """The engine calls decide() from worker threads: parsers are per thread."""
    from concurrent.futures import ThreadPoolExecutor

    text = source("textwrap.py")
    rng = random.Random(3)
    offsets = [rng.randrange(len(text) + 1) for _ in range(200)]
    expected = [decide(text, offset, "python") for offset in offsets]
    policy._TREE_CACHE.clear()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda offset: decide(text, offset, "python"), offsets))
    assert got == expected


@pytest.mark.parametrize(
    "before, expected",
    [
        ("    auth = get_netrc_auth(", True),
        ("x = ", True),
        ("items = [1, 2,", True),
        ("    return a +", True),
        ("    return", True),
        ("if key in", True),
        ("    value = obj.", True),
        ("const x = {", True),
        ("x = 1", False),
        ("    return result", False),
        ("foo(a, b)", False),
        ("", False),
        ("    ", False),
        ("def f():\n    x = 1", False),
        ("x = 1\ny = f(", True),
        ("i++", False),
        ("# see also:", False),
        ("// comment in", False),
    ],
)
def test_line_is_open(before: str, expected: bool) -> None:
    assert policy.line_is_open(before) is expected
