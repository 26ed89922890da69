"""hone.retrieval.syntax: language ids, parsers, queries, indent unit, the light scanner."""

from __future__ import annotations

import sysconfig
import threading
from pathlib import Path

import pytest
import tree_sitter
from hone.retrieval.syntax import (
    Scan,
    detect_indent_unit,
    indent_width,
    language_for_path,
    load_query,
    parser_for,
    scan_text,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("pkg/mod.py", "python"),
        ("stubs/mod.pyi", "python"),
        ("A/B/MOD.PY", "python"),
        ("app.js", "javascript"),
        ("app.ts", "typescript"),
        ("view.tsx", "typescriptreact"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cpp", "cpp"),
        ("Main.java", "java"),
        ("run.sh", "shellscript"),
        ("Makefile", "makefile"),
        ("Dockerfile", "dockerfile"),
        ("notes.txt", "plaintext"),
        ("README", "plaintext"),
        ("", "plaintext"),
        (".py", "plaintext"),  # a dotfile named ".py" has no extension
    ],
)
def test_language_for_path(path: str, language: str) -> None:
    assert language_for_path(path) == language


def test_parser_for_python_parses_and_is_cached_per_thread() -> None:
    source = b"def f(x):\n    return x\n"
    parser = parser_for("python")
    assert parser_for("python") is parser
    tree = parser.parse(source)
    assert tree.root_node.children[0].type == "function_definition"

    other: list[tree_sitter.Parser | None] = []
    thread = threading.Thread(target=lambda: other.append(parser_for("python")))
    thread.start()
    thread.join()
    assert other[0] is not parser
    # The other thread's parser is a working Python parser too.
    assert str(other[0].parse(source).root_node) == str(tree.root_node)


@pytest.mark.parametrize("language", ["plaintext", "cobol", ""])
def test_parser_for_unknown_language_is_none(language: str) -> None:
    assert parser_for(language) is None


def test_blocks_query_loads_from_package_data() -> None:
    query = load_query("python", "blocks")
    tree = parser_for("python").parse(b"d = {1: 2}\nif d:\n    pass\n")
    captures = tree_sitter.QueryCursor(query).captures(tree.root_node)
    colons = [node.start_point for node in captures["opener"]]
    assert colons == [(1, 4)]  # the if's colon; not the dict's
    assert load_query("python", "no-such-query") is None
    assert load_query("plaintext", "blocks") is None


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("", "    "),
        ("x = 1\n", "    "),
        ("if x:\n  y = 1\n  if y:\n    z = 2\n", "  "),
        ("if x:\n\ty = 1\n\tif y:\n\t\tz = 2\n", "\t"),
        ("function f() {\n    return 1;\n}\n", "    "),
        ("a:\n        b\n", "        "),
    ],
)
def test_detect_indent_unit(text: str, unit: str) -> None:
    assert detect_indent_unit(text) == unit


def test_detect_indent_unit_on_stdlib_is_four_spaces() -> None:
    for name in ("difflib.py", "textwrap.py", "argparse.py"):
        assert detect_indent_unit((STDLIB / name).read_text(encoding="utf-8")) == "    "


def test_indent_width_expands_tabs() -> None:
    assert indent_width("") == 0
    assert indent_width("    x") == 4
    assert indent_width("\t") == 8
    assert indent_width("  \t") == 8
    assert indent_width(b"\t  ") == 10


def test_scan_text_brackets_strings_comments() -> None:
    scan = scan_text('foo("a)", b[1]\n  c) # x(\n', "python")
    assert (scan.excess, scan.open, scan.quote) == (0, "", "")
    assert scan.continuation == [True, False]
    assert scan.comment_start == 20

    scan = scan_text('x = """abc\n(def\n""" + (\n1', "python")
    assert scan.open == "("
    assert scan.continuation == [True, True, True]

    assert scan_text("a))", "python").excess == 2
    assert scan_text("(]", "python").excess == 1
    assert scan_text("# (", "python").in_comment
    assert scan_text("x = 'it''s", "python").quote == "'"
    assert scan_text("s = `a\n(b`", "javascript").continuation == [True]
    assert scan_text("// (\nx", "javascript").open == ""
    assert scan_text('"a\\"(" + (', "python").open == "("  # escaped quote stays inside


@pytest.mark.parametrize(
    ("text", "python", "plaintext"),
    [
        ("", Scan(), Scan()),
        ("\x00\xff\ud800", Scan(), Scan()),
        ('"""', Scan(quote='"""'), Scan()),  # plain text has no strings
        ("'", Scan(quote="'"), Scan()),
        ("\\", Scan(), Scan()),
        ("((((" * 1000, Scan(open="(" * 4000), Scan(open="(" * 4000)),
        ("\n" * 50, Scan(continuation=[False] * 50), Scan(continuation=[False] * 50)),
    ],
)
def test_scan_text_on_garbage(text: str, python: Scan, plaintext: Scan) -> None:
    assert scan_text(text, "python") == python
    assert scan_text(text, "plaintext") == plaintext
