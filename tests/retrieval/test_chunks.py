"""hone.retrieval.chunks: definitions and module blocks from tree-sitter, per language."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import pytest
from hone.retrieval.chunks import (
    MODULE_BLOCK_LINES,
    Chunk,
    chunk_text,
    definitions_by_name,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])

# Real modules with decorators, nested definitions, long classes and long functions.
STDLIB_MODULES = [
    "argparse.py",
    "ast.py",
    "asyncio/tasks.py",
    "collections/__init__.py",
    "contextlib.py",
    "dataclasses.py",
    "email/message.py",
    "enum.py",
    "functools.py",
    "http/client.py",
    "inspect.py",
    "json/decoder.py",
    "logging/__init__.py",
    "pathlib.py",
    "tarfile.py",
    "typing.py",
    "unittest/case.py",
]


def summary(chunks: list[Chunk]) -> list[tuple[str, str, int, int]]:
    return [(c.kind, c.name, c.start_line, c.end_line) for c in chunks]


PYTHON = '''\
"""A small module."""

from __future__ import annotations

import functools

CACHE: dict[str, int] = {}


# Counts calls.
def counted(func):
    """Count the calls of ``func``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return func(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


class Repo:
    """A repository."""

    kind = "git"

    def __init__(self, root):
        self.root = root

    @property
    @functools.cache
    def name(self):
        return self.root.name

    async def fetch(self, remote="origin"):
        class Result:
            ok = True

        return Result()
    # a trailing comment


if __name__ == "__main__":
    print(Repo(".").name)
'''


JAVASCRIPT = """\
import { readFile } from "node:fs/promises";

const DEFAULT_LIMIT = 10;

/**
 * Loads a config file.
 */
export async function loadConfig(path) {
  const raw = await readFile(path, "utf8");
  function parse(text) {
    return JSON.parse(text);
  }
  return parse(raw);
}

export const clamp = (value, low, high) =>
  Math.min(Math.max(value, low), high);

const identity = function (x) {
  return x;
};

// A small LRU cache.
export class Cache extends Map {
  #limit = DEFAULT_LIMIT;
  onEvict = (key) => {
    console.log("evicted", key);
  };

  constructor(limit) {
    super();
    this.#limit = limit;
  }

  get size() {
    return super.size;
  }

  static from(entries) {
    return new Cache(entries.length);
  }
}

export default function main() {
  return new Cache(3);
}

module.exports = { clamp };
"""


TYPESCRIPT = """\
import type { Readable } from "stream";

/** Options for the reader. */
export interface ReaderOptions {
  encoding: string;
  highWaterMark?: number;
}

export type Handler<T> = (value: T) => void;

export enum Level {
  Debug,
  Info,
}

@injectable()
export class LineReader<T> implements Iterable<T> {
  private buffer: string[] = [];

  constructor(private readonly source: Readable, options?: ReaderOptions) {}

  // Reads one line.
  async readLine(): Promise<string | undefined> {
    return this.buffer.shift();
  }

  *[Symbol.iterator](): Iterator<T> {
    yield* [];
  }
}

export abstract class Shape {
  abstract area(): number;
  describe(): string {
    return `area ${this.area()}`;
  }
}

export const parseLevel = (name: string): Level =>
  name === "debug" ? Level.Debug : Level.Info;

export declare function external(x: number): void;

export function overloaded(x: string): string;
export function overloaded(x: unknown): unknown {
  return x;
}
"""


GO = """\
package cache

import (
    "errors"
    "sync"
)

// ErrMissing is returned for unknown keys.
var ErrMissing = errors.New("missing")

// Store is a concurrency-safe map.
type Store[K comparable, V any] struct {
    mu    sync.Mutex
    items map[K]V
}

// Getter reads values.
type Getter interface {
    Get(key string) (string, error)
}

type (
    ID    int
    Label = string
)

// New makes a Store.
func New[K comparable, V any]() *Store[K, V] {
    return &Store[K, V]{items: map[K]V{}}
}

// Get returns the value for key.
func (s *Store[K, V]) Get(key K) (V, error) {
    s.mu.Lock()
    defer s.mu.Unlock()
    v, ok := s.items[key]
    if !ok {
        return v, ErrMissing
    }
    return v, nil
}

func (id ID) String() string { return "id" }

func apply(fs ...func()) {
    run := func(f func()) { f() }
    for _, f := range fs {
        run(f)
    }
}
"""


RUST = """\
use std::collections::HashMap;
use std::fmt;

const MAX: usize = 16;

/// A 2-D point.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// Shapes know their area.
pub trait Shape {
    fn area(&self) -> f64;

    /// The shape's name.
    fn name(&self) -> String {
        String::from("shape")
    }
}

pub enum Command {
    Move { x: i32, y: i32 },
    Quit,
}

pub type Registry = HashMap<String, Point>;

impl Point {
    pub const ORIGIN: Point = Point { x: 0.0, y: 0.0 };

    /// Builds a point.
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }

    fn norm(&self) -> f64 {
        fn square(v: f64) -> f64 {
            v * v
        }
        (square(self.x) + square(self.y)).sqrt()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

pub fn largest<T: PartialOrd + Copy>(items: &[T]) -> T {
    let mut best = items[0];
    for &item in items {
        if item > best {
            best = item;
        }
    }
    best
}
"""


# -- one snippet per language: every chunk, exactly --------------------------------------


EXPECTED = {
    "python": (
        PYTHON,
        [
            ("module", "", 1, 7),
            ("function", "counted", 10, 20),
            ("function", "counted.wrapper", 14, 17),
            ("class", "Repo", 23, 40),
            ("method", "Repo.__init__", 28, 29),
            ("method", "Repo.name", 31, 34),
            ("method", "Repo.fetch", 36, 40),
            ("class", "Repo.fetch.Result", 37, 38),
            ("module", "", 41, 45),
        ],
    ),
    "javascript": (
        JAVASCRIPT,
        [
            ("module", "", 1, 3),
            ("function", "loadConfig", 5, 14),
            ("function", "loadConfig.parse", 10, 12),
            ("function", "clamp", 16, 17),
            ("function", "identity", 19, 21),
            ("class", "Cache", 23, 42),
            ("method", "Cache.onEvict", 26, 28),
            ("method", "Cache.constructor", 30, 33),
            ("method", "Cache.size", 35, 37),
            ("method", "Cache.from", 39, 41),
            ("function", "main", 44, 46),
            ("module", "", 48, 48),
        ],
    ),
    "typescript": (
        TYPESCRIPT,
        [
            ("module", "", 1, 1),
            ("type", "ReaderOptions", 3, 7),
            ("type", "Handler", 9, 9),
            ("type", "Level", 11, 14),
            ("class", "LineReader", 16, 30),
            ("method", "LineReader.constructor", 20, 20),
            ("method", "LineReader.readLine", 22, 25),
            ("method", "LineReader.[Symbol.iterator]", 27, 29),
            ("class", "Shape", 32, 37),
            ("method", "Shape.describe", 34, 36),
            ("function", "parseLevel", 39, 40),
            ("function", "external", 42, 42),
            ("function", "overloaded", 44, 44),
            ("function", "overloaded", 45, 47),
        ],
    ),
    "go": (
        GO,
        [
            ("module", "", 1, 9),
            ("type", "Store", 11, 15),
            ("type", "Getter", 17, 20),
            ("module", "", 22, 22),  # "type (" of the group; its ")" alone is dropped
            ("type", "ID", 23, 23),
            ("type", "Label", 24, 24),
            ("function", "New", 27, 30),
            ("method", "Store.Get", 32, 41),
            ("method", "ID.String", 43, 43),
            ("function", "apply", 45, 50),
        ],
    ),
    "rust": (
        RUST,
        [
            ("module", "", 1, 4),
            ("type", "Point", 6, 11),
            ("type", "Shape", 13, 21),
            ("method", "Shape.name", 17, 20),
            ("type", "Command", 23, 26),
            ("type", "Registry", 28, 28),
            ("module", "", 30, 31),  # "impl Point {" and its associated const
            ("method", "Point.new", 33, 36),
            ("method", "Point.norm", 38, 43),
            ("function", "Point.norm.square", 39, 41),
            ("module", "", 44, 46),
            ("method", "Point.fmt", 47, 49),
            ("function", "largest", 52, 60),
        ],
    ),
}


@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_snippet_chunks(language: str) -> None:
    text, expected = EXPECTED[language]
    chunks = chunk_text("src/file", text, language)
    assert summary(chunks) == expected
    lines = text.split("\n")
    for chunk in chunks:
        assert chunk.path == "src/file"
        assert chunk.language == language
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.key() == f"src/file:{chunk.start_line}-{chunk.end_line}"
        assert (chunk.signature == "") == (chunk.kind == "module")


def signatures(text: str, language: str) -> dict[str, str]:
    return {c.name: c.signature for c in chunk_text("f", text, language) if c.name}


def test_python_signatures_have_decorators_header_and_docstring() -> None:
    sig = signatures(PYTHON, "python")
    assert (
        sig["counted"]
        == '# Counts calls.\ndef counted(func):\n    """Count the calls of ``func``."""'
    )
    assert sig["Repo"] == 'class Repo:\n    """A repository."""'
    assert sig["Repo.name"] == "    @property\n    @functools.cache\n    def name(self):"
    assert sig["Repo.fetch"] == '    async def fetch(self, remote="origin"):'
    multi = "def f(\n    a,\n    b,\n):\n    '''Doc\n\n    more.\n    '''\n    return a\n"
    assert (
        signatures(multi, "python")["f"]
        == "def f(\n    a,\n    b,\n):\n    '''Doc\n\n    more.\n    '''"
    )
    assert signatures("def g(): return 1\n", "python")["g"] == "def g(): return 1"


def test_doc_comments_belong_to_the_signature() -> None:
    js = signatures(JAVASCRIPT, "javascript")
    assert (
        js["loadConfig"]
        == "/**\n * Loads a config file.\n */\nexport async function loadConfig(path) {"
    )
    assert js["clamp"] == "export const clamp = (value, low, high) =>"
    ts = signatures(TYPESCRIPT, "typescript")
    assert ts["LineReader"] == "@injectable()\nexport class LineReader<T> implements Iterable<T> {"
    assert ts["LineReader.readLine"].startswith("  // Reads one line.\n  async readLine()")
    # Without a body the whole definition is its signature.
    assert ts["ReaderOptions"] == "\n".join(TYPESCRIPT.split("\n")[2:7])
    go = signatures(GO, "go")
    assert (
        go["Store.Get"]
        == "// Get returns the value for key.\nfunc (s *Store[K, V]) Get(key K) (V, error) {"
    )
    rust = signatures(RUST, "rust")
    assert rust["Point"].startswith(
        "/// A 2-D point.\n#[derive(Debug, Clone, Copy)]\npub struct Point {"
    )
    assert rust["Point.new"] == "    /// Builds a point.\n    pub fn new(x: f64, y: f64) -> Self {"


def test_react_variants_use_the_base_queries() -> None:
    jsx = (
        'import React from "react";\n'
        "\n"
        "export function App({ items }) {\n"
        "  const render = (i) => <li key={i}>{i}</li>;\n"
        "  return <ul>{items.map(render)}</ul>;\n"
        "}\n"
        "\n"
        "export const Button = ({ label }) => (\n"
        "  <button>{label}</button>\n"
        ");\n"
    )
    expected = [("module", "", 1, 1), ("function", "App", 3, 6), ("function", "Button", 8, 10)]
    assert summary(chunk_text("a.jsx", jsx, "javascriptreact")) == expected
    tsx = jsx.replace("({ label })", "({ label }: { label: string })")
    tsx += "interface Props {\n  items: string[];\n}\n"
    assert summary(chunk_text("a.tsx", tsx, "typescriptreact")) == [
        *expected,
        ("type", "Props", 11, 13),
    ]


def test_definitions_by_name() -> None:
    by_name = definitions_by_name(chunk_text("m.py", PYTHON, "python"))
    assert [c.name for c in by_name["name"]] == ["Repo.name"]
    assert by_name["Repo.name"] == by_name["name"]
    assert [c.name for c in by_name["wrapper"]] == ["counted.wrapper"]
    assert [c.kind for c in by_name["Repo"]] == ["class"]
    assert "" not in by_name
    go = definitions_by_name(chunk_text("s.go", GO, "go"))
    assert [c.start_line for c in go["Get"]] == [32]


# -- Python against the standard library's own ast ---------------------------------------


def ast_definitions(tree: ast.Module) -> list[tuple[str, ast.AST, bool]]:
    """(qualified name, node, top-level) for every def and class, at any depth."""
    found: list[tuple[str, ast.AST, bool]] = []

    def visit(node: ast.AST, prefix: str, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                found.append((name, child, depth == 0))
                visit(child, f"{name}.", depth + 1)
            else:
                visit(child, prefix, depth)

    visit(tree, "", 0)
    return found


def is_comment(line: str) -> bool:
    return line.strip().startswith("#")


@pytest.mark.parametrize("module", STDLIB_MODULES)
def test_python_stdlib_definitions_and_module_lines(module: str) -> None:
    text = (STDLIB / module).read_text(encoding="utf-8")
    lines = text.split("\n")
    max_lines = 60  # small enough that these modules have long classes and long functions
    chunks = chunk_text(module, text, "python", max_lines=max_lines)
    ranges: dict[str, dict[int, list[int]]] = {}
    for chunk in chunks:
        ranges.setdefault(chunk.name, {}).setdefault(chunk.start_line, []).append(chunk.end_line)

    definitions = ast_definitions(ast.parse(text))
    assert len(definitions) > 10
    top_ranges = []
    for name, node, top in definitions:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno
        assert last is not None
        starts = ranges.get(name, {})
        # The chunk starts at the first decorator, or above it at the comments right above.
        begin = max((s for s in starts if s <= first), default=None)
        assert begin is not None, (module, name, first)
        assert all(is_comment(line) for line in lines[begin - 1 : first - 1]), (module, name)
        line_above = lines[first - 2] if first > 1 else ""
        indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
        if is_comment(line_above) and line_above.startswith(indent + "#"):
            assert begin < first, (module, name, "leading comment")
        # One chunk over the whole range, or consecutive windows of max_lines lines.
        cursor = begin
        while last not in starts.get(cursor, []):
            windows = [end for end in starts.get(cursor, []) if end - cursor + 1 == max_lines]
            assert windows, (module, name, begin, last, starts)
            cursor = windows[0] + 1
        if top:
            top_ranges.append((begin, last))

    def in_definition(row: int) -> bool:
        return any(start <= row <= end for start, end in top_ranges)

    module_lines = set()
    for chunk in chunks:
        if chunk.kind == "module":
            assert chunk.end_line - chunk.start_line < MODULE_BLOCK_LINES
            assert not any(in_definition(r) for r in (chunk.start_line, chunk.end_line))
            module_lines.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(lines, 1):
        if line.strip() and not in_definition(number):
            assert number in module_lines, (module, number, line)

    for chunk in chunks:
        whole = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        if chunk.kind == "class" and chunk.end_line - chunk.start_line + 1 > max_lines:
            # The summary: a subsequence of the class's lines, from its header on.
            kept = iter(whole.split("\n"))
            assert all(line in kept for line in chunk.text.split("\n")), (module, chunk.name)
            assert chunk.text.startswith(chunk.signature.split("\n")[0])
        else:
            assert chunk.text == whole, (module, chunk.name)


# -- long definitions ----------------------------------------------------------------------


def test_long_function_is_split_into_windows() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(249))
    text = f"import os\n\n@decorator\ndef long(a, b):\n    '''Doc.'''\n{body}\nX = 1\n"
    chunks = chunk_text("long.py", text, "python", max_lines=100)
    # the function spans lines 3 to 254
    assert summary(chunks) == [
        ("module", "", 1, 1),
        ("function", "long", 3, 102),
        ("function", "long", 103, 202),
        ("function", "long", 203, 254),
        ("module", "", 256, 256),
    ]
    signature = "@decorator\ndef long(a, b):\n    '''Doc.'''"
    assert all(c.signature == signature for c in chunks if c.name)
    assert chunks[2].text.split("\n")[0] == "    x97 = 97"


def test_long_python_class_is_a_summary_and_its_methods_are_chunks() -> None:
    text = (
        "class Big(Base):\n"  # 1
        '    """Big doc."""\n'
        "\n"
        "    LIMIT = 3\n"
        "\n"  # 5
        "    # helper\n"
        "    @property\n"
        "    def a(self):\n"
        "        return 1\n"
        "\n"  # 10
        "    def b(self, x,\n"
        "          y):\n"
        "        return x + y\n"
    )
    chunks = chunk_text("big.py", text, "python", max_lines=5)
    assert summary(chunks) == [
        ("class", "Big", 1, 13),
        ("method", "Big.a", 6, 9),
        ("method", "Big.b", 11, 13),
    ]
    assert chunks[0].text == (
        "class Big(Base):\n"
        '    """Big doc."""\n'
        "    LIMIT = 3\n"
        "    # helper\n"
        "    @property\n"
        "    def a(self):\n"
        "    def b(self, x,\n"
        "          y):"
    )
    assert chunks[0].signature == 'class Big(Base):\n    """Big doc."""'
    # Short enough: the class is one chunk with its whole text.
    whole = chunk_text("big.py", text, "python", max_lines=13)[0]
    assert whole.text == text.rstrip("\n")


def test_long_typescript_class_summary_keeps_fields_and_the_closing_brace() -> None:
    summary_text = chunk_text("r.ts", TYPESCRIPT, "typescript", max_lines=10)[4]
    assert (summary_text.kind, summary_text.name) == ("class", "LineReader")
    assert summary_text.text == (
        "@injectable()\n"
        "export class LineReader<T> implements Iterable<T> {\n"
        "  private buffer: string[] = [];\n"
        "  constructor(private readonly source: Readable, options?: ReaderOptions) {}\n"
        "  // Reads one line.\n"
        "  async readLine(): Promise<string | undefined> {\n"
        "  *[Symbol.iterator](): Iterator<T> {\n"
        "}"
    )


# -- module blocks ---------------------------------------------------------------------------


def test_module_blocks_cut_between_statements() -> None:
    assigns = [f"a{i} = {i}" for i in range(30)]
    table = ["TABLE = {", *(f"    'k{i}': {i}," for i in range(18)), "}"]
    tail = [f"b{i} = {i}" for i in range(10)]
    # No blank line anywhere: the cut goes before TABLE (line 31), not inside it.
    text = "\n".join([*assigns, *table, *tail]) + "\n"
    assert summary(chunk_text("m.py", text, "python")) == [
        ("module", "", 1, 30),
        ("module", "", 31, 60),
    ]
    # A blank line between statements is preferred.
    text = "\n".join([*assigns[:10], "", *assigns[10:], *table, *tail]) + "\n"
    assert summary(chunk_text("m.py", text, "python")) == [
        ("module", "", 1, 10),
        ("module", "", 12, 51),
        ("module", "", 52, 61),
    ]


def test_unsupported_language_gets_module_blocks() -> None:
    lines = [f"line {i}" for i in range(1, 101)]
    lines[24] = ""  # line 25 is blank
    text = "\n".join(lines) + "\n"
    for language in ("plaintext", "cobol", "markdown"):
        chunks = chunk_text("notes.txt", text, language)
        assert summary(chunks) == [
            ("module", "", 1, 24),
            ("module", "", 26, 65),
            ("module", "", 66, 100),
        ]
        assert chunks[1].text == "\n".join(lines[25:65])
        assert all(c.signature == "" and c.name == "" for c in chunks)


def test_empty_and_blank_text() -> None:
    assert chunk_text("a.py", "", "python") == []
    assert chunk_text("a.py", "\n\n  \n", "python") == []
    assert chunk_text("a.txt", "\n", "plaintext") == []
    assert summary(chunk_text("a.py", "x = 1", "python")) == [("module", "", 1, 1)]


# -- damaged and unusual input -----------------------------------------------------------------


def test_syntax_errors_keep_what_the_tree_has() -> None:
    text = (
        "def ok():\n"  # 1
        "    return 1\n"
        "\n"
        "def broken(:\n"
        "    pass\n"  # 5
        "\n"
        "x = call(1, 2\n"
        "\n"
        "class After:\n"
        "    def m(self):\n"  # 10
        "        return 2\n"
    )
    chunks = chunk_text("bad.py", text, "python")
    found = summary(chunks)
    assert ("function", "ok", 1, 2) in found
    named = {c.name for c in chunks}
    assert "broken" in named
    lines = text.split("\n")
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert all(n in covered for n, line in enumerate(lines, 1) if line.strip())


def test_crlf_and_cr_line_breaks_count_as_one() -> None:
    plain = chunk_text("m.py", PYTHON, "python")
    for newline in ("\r\n", "\r"):
        chunks = chunk_text("m.py", PYTHON.replace("\n", newline), "python")
        # Same line numbers; texts and signatures use "\n" (no "\r" left).
        assert chunks == plain
    go = GO.replace("\n", "\r\n")
    assert summary(chunk_text("s.go", go, "go")) == EXPECTED["go"][1]


def test_text_without_final_newline_and_non_ascii() -> None:
    text = "# é\ndef f():\n    return 'ü'\n\nclass K:\n    x = '→'"
    assert summary(chunk_text("u.py", text, "python")) == [
        ("function", "f", 1, 3),
        ("class", "K", 5, 6),
    ]
