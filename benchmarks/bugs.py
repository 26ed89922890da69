"""The injected-fault bug set: single faults in real packages nobody here wrote, each one
detected by the package's own tests. A library (for the evaluations) and a CLI.

Packages (``PACKAGES``): sdists of pure-Python PyPI packages whose test suites run with
pytest alone, the package on the path by being at the repository root (no install). Two
splits: ``dev`` (what localization and repair may be tuned on) and ``heldout`` (only ever
reported). Not used, kept for independent measurement: click, sortedcontainers, pyflakes,
cachetools, and the QuixBugs programs. Each sdist is unpacked whole; a few ``patches``
(exact text replacements, listed per package) only make a test harness run on today's
pytest, never touch the package's code.

Faults are made with Python's ``ast`` (independent of the repair templates, which use
tree-sitter), one per bug, inside a function body (never its signature, decorators or
docstring), as a splice of the file's text: the rest of the file is byte-identical and the
diff is a line or two (a deleted statement: its lines). Kinds (``KINDS``):

- ``comparison``: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``is`` <->
  ``is not``, ``in`` <-> ``not in``;
- ``arithmetic``: ``+`` <-> ``-``, ``*`` -> ``//``, ``/`` and ``//`` -> ``*``, ``%`` -> ``//``,
  ``**`` -> ``*``, ``<<`` <-> ``>>``, ``&`` <-> ``|``, ``^`` -> ``|``, also augmented
  (``+=`` -> ``-=``); not on a string literal (``'%s' % x``, ``'a' + s``);
- ``boolean``: one ``and`` <-> ``or``;
- ``off-by-one``: an integer literal used as a bound (an index or slice, a comparison
  operand, a ``+``/``-`` operand, a ``range``/``islice`` argument) +-1;
- ``constant``: any other literal changed: ``True`` <-> ``False``, an integer elsewhere
  (``0`` <-> ``1``, else another integer of the module), a float, a string (another
  string literal of the module, the nearest in length, then the most alike; else the
  string plus ``x``; not an error message: no string in a ``raise`` statement);
- ``negation``: the condition of an ``if``/``elif``/``while``/ternary or a comprehension
  filter gains a ``not`` (or loses its ``not``); not a lone ``==``, ``in`` or ``is``
  comparison (``comparison`` negates those);
- ``delete-statement``: an assignment, augmented assignment, call statement, ``raise`` or
  ``del`` removed (its lines; ``pass`` when it was alone in its block);
- ``wrong-call``: a call to another function of the module or method of the class with a
  similar name that accepts the same arguments; another attribute of the same imported
  module used in the file; a sibling method or builtin (``append``/``extend``,
  ``startswith``/``endswith``, ``min``/``max``, ``any``/``all``...: ``SIBLINGS``);
- ``wrong-attribute``: ``v.a`` -> ``v.b``, another attribute used on a name ``v`` in the
  module (``self.left`` -> ``self.right``), the most similar names first;
- ``swap-args``: two adjacent positional arguments of a call swapped;
- ``variable``: a read of a local variable or parameter replaced by another one bound
  before it, the most similar names first;
- ``missing-return``: ``return E`` -> ``E`` (the value computed, ``None`` returned).

The repair's operator templates (``templates.py``) have no ``constant``,
``delete-statement``, ``wrong-call``, ``wrong-attribute`` or ``missing-return``
(``NOT_IN_TEMPLATES``, kept as the generator was written against them). Since then,
``return <value>`` covers a dropped value, and ``ingredients.py`` rewrites constants,
calls and attributes and inserts one-line statements with replacements taken from the
rest of the module. Those are classic mutation operators (PIT's and PraPR's constant and
call mutators, GenProg's "the fix is elsewhere in the program"), written without this
generator's code, but they draw from the same pool as its ``constant``, ``wrong-call``
and ``wrong-attribute`` kinds (the module's literals, callees and attributes; sibling
pairs such as ``min``/``max``): on those kinds the fixed share overstates what they do
on real bugs, so the repair report is read with the share over the other kinds beside.

Generation (``generate``), per package: the suite runs twice unmodified (once with
per-test coverage); tests that do not pass both times are left out of everything after
(so are tests the runner reports as ``subtests passed``: unittest ``subTest`` under
pytest 9, whose failures it does not report as ``failed`` either).
Candidate faults are the sites whose statement a passing test ran (coverage), in the
functions of the package's source files. Each kind's candidates are ordered with the seed
(functions shuffled, then round-robin over them), and the next kind tried is the one with
the fewest bugs kept so far (then the fewest tried). A candidate is tried by writing it
into a scratch copy and running the test files that cover its statement; it is kept when
at least one test that passed before now fails or errors, and dropped when none does
(survived), when the run times out (a hang), or when a test file no longer collects. At
most ``--per-function`` bugs per function, never two of a kind in one function. Every
try is recorded in the bug file as it happens, so an interrupted or capped run resumes
where it stopped and a rerun with a larger ``--bugs`` extends the same sequence.

Files, under ``--sources`` (default ``/tmp/hone-eval-src``, beside the sdists):
``bugs/<package>.json`` (the bugs and every try) and ``bugs/<package>.baseline.json`` (the
baseline outcomes and which test files run each line).

    python benchmarks/bugs.py generate --package toolz [--bugs 40] [--sources DIR]
    python benchmarks/bugs.py materialize BUG_ID DEST   # a git repository with the bug
    python benchmarks/bugs.py summary                    # bugs per package and kind
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SEED = 2026
VERSION = 1  # of the generator: a bug file made by another version is not resumed
SOURCES = Path(os.environ.get("HONE_EVAL_SOURCES", "/tmp/hone-eval-src"))
KINDS = (
    "comparison",
    "arithmetic",
    "boolean",
    "off-by-one",
    "constant",
    "negation",
    "delete-statement",
    "wrong-call",
    "wrong-attribute",
    "swap-args",
    "variable",
    "missing-return",
)
NOT_IN_TEMPLATES = (
    "constant",
    "delete-statement",
    "wrong-call",
    "wrong-attribute",
    "missing-return",
)
FAILING = ("failed", "error")
MAX_ALTERNATIVES = 2  # replacements per site for names (calls, attributes, variables)
MAX_STRING = 60  # longer string literals are left alone (messages, templates)
GIT_DATE = "2026-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Package:
    spec: str  # name==version on PyPI
    split: str  # "dev" or "heldout"
    sources: tuple[str, ...]  # folders or files (relative to the sdist's root) that get faults
    tests: tuple[str, ...]  # pytest targets of the whole suite
    patches: tuple[tuple[str, str, str], ...] = ()  # (path, old, new): harness fixes only
    exclude: tuple[str, ...] = ()  # source files left alone (generated, vendored)


PACKAGES: dict[str, Package] = {
    "toolz": Package(
        "toolz==1.0.0", "dev", ("toolz",), ("toolz/tests",), exclude=("toolz/_version.py",)
    ),
    "more-itertools": Package("more-itertools==10.5.0", "dev", ("more_itertools",), ("tests",)),
    "inflection": Package("inflection==0.5.1", "dev", ("inflection",), ("test_inflection.py",)),
    "boltons": Package(
        "boltons==24.1.0",
        "heldout",
        ("boltons",),
        ("tests",),
        # pytest 9 dropped the ``path`` argument of this hook (the conftest skips tests
        # named for another Python version)
        patches=(
            (
                "tests/conftest.py",
                "def pytest_ignore_collect(path, config):",
                "def pytest_ignore_collect(collection_path, config):",
            ),
            ("tests/conftest.py", "filename = path.basename", "filename = collection_path.name"),
        ),
    ),
    "tabulate": Package("tabulate==0.10.0", "heldout", ("tabulate",), ("test",)),
    "parse": Package(
        "parse==1.22.4",
        "heldout",
        ("parse",),
        ("tests",),
        # its addopts need pytest-cov, which the runner does not load
        patches=(
            (
                "pyproject.toml",
                '"--cov=parse --cov-report=term-missing --cov-append --cov-branch ',
                '"',
            ),
        ),
    ),
}


# -- faults ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One candidate fault: ``text[start:end]`` (character offsets) -> ``replacement``."""

    kind: str
    path: str
    function: str  # qualified: "Class.method", "outer.inner"
    start: int
    end: int
    replacement: str
    line: int  # 1-based line where the change starts
    stmt_line: int  # the first line of the innermost statement holding it (coverage's line)
    description: str

    @property
    def key(self) -> str:
        raw = f"{self.path}\0{self.start}\0{self.end}\0{self.replacement}\0{self.kind}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]


@dataclass
class Function:
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    start_line: int  # the first decorator's line, else the def's
    end_line: int
    cls: ast.ClassDef | None  # the class whose body defines it (a method)


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def functions(tree: ast.Module) -> list[Function]:
    """Every function and method, named by its enclosing classes and functions (the way
    hone's chunker names them: ``A.m``, ``f.inner``), in source order."""
    out: list[Function] = []

    def visit(node: ast.AST, prefix: str, cls: ast.ClassDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", child)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append(Function(prefix + child.name, child, start, child.end_lineno, cls))
                visit(child, f"{prefix}{child.name}.", None)
            else:
                visit(child, prefix, cls)

    visit(tree, "", None)
    return out


class Source:
    """A file's text and ast positions (utf-8 byte columns) as character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def offset(self, line: int, col: int) -> int:
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.text)
        row = self.text[start:end]
        if row.isascii():
            return start + col
        return start + len(row.encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )

    def segment(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.text[a:b]

    def line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


CMP = {
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
    ast.Is: ("is", "is not"),
    ast.IsNot: ("is not", "is"),
    ast.In: ("in", "not in"),
    ast.NotIn: ("not in", "in"),
}
ARITH = {
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "//"),
    ast.Div: ("/", "*"),
    ast.FloorDiv: ("//", "*"),
    ast.Mod: ("%", "//"),
    ast.Pow: ("**", "*"),
    ast.LShift: ("<<", ">>"),
    ast.RShift: (">>", "<<"),
    ast.BitAnd: ("&", "|"),
    ast.BitOr: ("|", "&"),
    ast.BitXor: ("^", "|"),
}
BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}
NEGATED = (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)
SIBLINGS: dict[str, tuple[str, ...]] = {
    # methods (any receiver)
    "append": ("extend",),
    "extend": ("append",),
    "appendleft": ("append",),
    "popleft": ("pop",),
    "get": ("pop",),
    "keys": ("values",),
    "values": ("keys",),
    "items": ("values",),
    "startswith": ("endswith",),
    "endswith": ("startswith",),
    "lower": ("upper",),
    "upper": ("lower",),
    "lstrip": ("rstrip",),
    "rstrip": ("lstrip",),
    "strip": ("rstrip",),
    "find": ("rfind",),
    "rfind": ("find",),
    "split": ("rsplit",),
    "rsplit": ("split",),
    "discard": ("remove",),
    "add": ("discard",),
    "index": ("count",),
    "count": ("index",),
    # builtins (called by name)
    "min": ("max",),
    "max": ("min",),
    "any": ("all",),
    "all": ("any",),
    "map": ("filter",),
    "filter": ("map",),
    "str": ("repr",),
    "repr": ("str",),
    "list": ("tuple",),
    "tuple": ("list",),
    "sorted": ("list",),
}
BUILTINS = frozenset(dir(__import__("builtins")))
BOUND_CALLS = frozenset({"range", "islice", "enumerate", "xrange"})


def _gap_op(gap: str, op: str) -> tuple[int, int] | None:
    """Where ``op`` is in ``gap``, the text between two operands (parentheses, spaces and
    line continuations around it); None when anything else is there (a comment)."""
    core = re.sub(r"[\s()\\]+", " ", gap).strip()
    if core != op:
        return None
    pattern = r"\s+".join(re.escape(w) for w in op.split())
    if op[0].isalpha():
        pattern = rf"(?<![\w.]){pattern}(?!\w)"
    m = re.search(pattern, gap)
    return (m.start(), m.end()) if m else None


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _best(name: str, pool: set[str] | list[str], *, minimum: float = 0.0) -> list[str]:
    """The names of ``pool`` most similar to ``name`` (not itself), best first."""
    scored = sorted(
        ((-_similarity(name, other), other) for other in set(pool) if other != name),
    )
    return [other for score, other in scored if -score >= minimum][:MAX_ALTERNATIVES]


def _accepts(fn: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call, bound: bool) -> bool:
    """Whether ``fn`` accepts ``call``'s arguments (``bound``: ``self`` is given)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return True
    args = fn.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if bound and positional:
        positional = positional[1:]
    required = len(positional) - len(args.defaults)
    n = len(call.args)
    if n < required and not call.keywords:
        return False
    if n > len(positional) and args.vararg is None:
        return False
    names = set(positional) | {a.arg for a in args.kwonlyargs}
    return all(k.arg in names for k in call.keywords) or args.kwarg is not None


class Injector:
    """Candidate faults of one module."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.src = Source(text)
        self.tree = ast.parse(text)
        self.functions = functions(self.tree)
        top = [n for n in self.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        self.module_functions = {n.name: n for n in top}
        self.modules: set[str] = set()  # names bound by ``import x`` / ``import x as y``
        self.module_attrs: dict[str, set[str]] = defaultdict(set)  # module name -> attrs used
        self.attrs: dict[str, set[str]] = defaultdict(set)  # receiver name -> non-call attrs
        self.ints: set[int] = set()
        self.floats: set[float] = set()
        self.strings: set[str] = set()
        docstrings = {id(d) for d in self._docstrings()}
        called = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if id(node) not in called and not node.attr.startswith("__"):
                    self.attrs[node.value.id].add(node.attr)
            elif isinstance(node, ast.Constant) and id(node) not in docstrings:
                value = node.value
                if isinstance(value, bool):
                    continue
                if isinstance(value, int):
                    self.ints.add(value)
                elif isinstance(value, float):
                    self.floats.add(value)
                elif isinstance(value, str) and len(value) <= MAX_STRING and "\n" not in value:
                    self.strings.add(value)
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in self.modules
            ):
                self.module_attrs[node.value.id].add(node.attr)

    def _docstrings(self) -> Iterator[ast.Constant]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    yield body[0].value

    # -- walking one function's body --

    def _walk(self, fn: Function) -> Iterator[tuple[ast.AST, list[ast.AST], ast.stmt]]:
        """(node, its ancestors up to the function, innermost statement) for the body's
        nodes; nested functions and classes, f-strings and annotations are left out."""
        body = fn.node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]

        def walk(node, parents, stmt):
            yield node, parents, stmt
            if isinstance(node, ast.JoinedStr):
                return
            for name, value in ast.iter_fields(node):
                if name in ("annotation", "returns", "type_comment"):
                    continue
                children = value if isinstance(value, list) else [value]
                for child in children:
                    if not isinstance(child, ast.AST) or isinstance(child, SCOPES):
                        continue
                    inner = child if isinstance(child, ast.stmt) else stmt
                    yield from walk(child, [*parents, node], inner)

        for statement in body:
            if isinstance(statement, SCOPES):
                continue
            yield from walk(statement, [fn.node], statement)

    def faults(self, fn: Function) -> list[Fault]:
        out: list[Fault] = []
        locals_ = self._locals(fn)
        for node, parents, stmt in self._walk(fn):
            parent = parents[-1]

            def add(kind, start, end, replacement, description, stmt=stmt):
                if self.src.text[start:end] == replacement:
                    return
                out.append(
                    Fault(
                        kind,
                        self.path,
                        fn.qualname,
                        start,
                        end,
                        replacement,
                        self.src.line_of(start),
                        stmt.lineno,
                        description,
                    )
                )

            self._operators(node, add)
            self._literals(node, parents, stmt, add)
            self._conditions(node, parent, add)
            self._statements(node, parent, add)
            self._calls(node, fn, add)
            self._attributes(node, parent, add)
            self._variables(node, parents, fn, locals_, add)
        seen: set[tuple[int, int, str]] = set()
        unique = []
        for f in out:
            if (f.start, f.end, f.replacement) not in seen:
                seen.add((f.start, f.end, f.replacement))
                unique.append(f)
        return unique

    def _gap(self, a: ast.AST, b: ast.AST) -> tuple[int, str]:
        start = self.src.span(a)[1]
        end = self.src.span(b)[0]
        return start, self.src.text[start:end]

    def _swap_op(self, kind, left, right, old, new, add) -> None:
        start, gap = self._gap(left, right)
        found = _gap_op(gap, old)
        if found is not None:
            add(kind, start + found[0], start + found[1], new, f"`{old}` -> `{new}`")

    def _operators(self, node: ast.AST, add: Callable) -> None:
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                old, new = CMP[type(op)]
                self._swap_op("comparison", operands[i], operands[i + 1], old, new, add)
        elif isinstance(node, ast.BinOp) and type(node.op) in ARITH:
            if any(_is_text(x) for x in (node.left, node.right)):
                return
            old, new = ARITH[type(node.op)]
            self._swap_op("arithmetic", node.left, node.right, old, new, add)
        elif isinstance(node, ast.AugAssign) and type(node.op) in ARITH:
            if _is_text(node.value):
                return
            old, new = ARITH[type(node.op)]
            self._swap_op("arithmetic", node.target, node.value, old + "=", new + "=", add)
        elif isinstance(node, ast.BoolOp):
            old, new = BOOL[type(node.op)]
            for a, b in zip(node.values, node.values[1:], strict=False):
                self._swap_op("boolean", a, b, old, new, add)

    def _literals(
        self, node: ast.AST, parents: list[ast.AST], stmt: ast.stmt, add: Callable
    ) -> None:
        if not isinstance(node, ast.Constant) or node.value is None or node.value is ...:
            return
        start, end = self.src.span(node)
        value = node.value
        if isinstance(value, bool):
            add("constant", start, end, repr(not value), f"`{value}` -> `{not value}`")
        elif isinstance(value, int):
            if _bound_context(parents):
                for new in (value + 1, value - 1):
                    if new >= 0:
                        add("off-by-one", start, end, str(new), f"`{value}` -> `{new}`")
                return
            if value in (0, 1):
                new = 1 - value
            else:
                others = sorted(
                    self.ints - {value - 1, value, value + 1}, key=lambda v: (abs(v - value), v)
                )
                new = others[0] if others else value * 2
            if new >= 0:
                add("constant", start, end, str(new), f"`{value}` -> `{new}`")
        elif isinstance(value, float):
            others = sorted(self.floats - {value}, key=lambda v: (abs(v - value), v))
            new = others[0] if others else (value * 2 if value else 1.0)
            add("constant", start, end, repr(new), f"`{value!r}` -> `{new!r}`")
        elif isinstance(value, str):
            if len(value) > MAX_STRING or "\n" in value or isinstance(stmt, ast.Raise):
                return  # long texts, and error messages, are left alone
            seg = self.src.text[start:end]
            if seg[:1] not in ("'", '"') or not _one_string(seg):
                return  # prefixed (raw, bytes...) or implicitly concatenated: left alone
            others = sorted(
                (s for s in self.strings - {value} if s.isprintable()),
                key=lambda s: (abs(len(s) - len(value)), -_similarity(s, value), s),
            )
            new = others[0] if others else value + "x"
            text = _quote(new, seg[0])
            add("constant", start, end, text, f"`{_short(seg)}` -> `{_short(text)}`")

    def _conditions(self, node: ast.AST, parent: ast.AST, add: Callable) -> None:
        tests = []
        if isinstance(node, ast.If | ast.While | ast.IfExp):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        for test in tests:
            start, end = self.src.span(test)
            seg = self.src.text[start:end]
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                inner = self.src.segment(test.operand)
                add("negation", start, end, inner, f"`{seg}` -> `{inner}`")
            elif (
                isinstance(test, ast.Compare)
                and len(test.ops) == 1
                and type(test.ops[0]) in NEGATED
            ):
                continue  # ``a == b``, ``a in b``, ``a is b``: the comparison kind negates them
            else:
                simple = isinstance(
                    test, ast.Name | ast.Attribute | ast.Call | ast.Subscript | ast.Compare
                )
                new = f"not {seg}" if simple else f"not ({seg})"
                add("negation", start, end, new, f"`{_short(seg)}` -> `{_short(new)}`")

    def _statements(self, node: ast.AST, parent: ast.AST, add: Callable) -> None:
        text = self.src.text
        if isinstance(node, ast.Return) and node.value is not None:
            if isinstance(node.value, ast.Constant) and node.value.value is None:
                return
            start = self.src.span(node)[0]
            m = re.match(r"return\s*", text[start:])
            if m is None:
                return
            add(
                "missing-return",
                start,
                start + m.end(),
                "",
                f"`return {_short(self.src.segment(node.value))}` -> the value alone",
            )
            return
        deletable = ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Raise | ast.Delete
        if isinstance(node, ast.Expr):
            if not isinstance(node.value, ast.Call | ast.Await | ast.Yield | ast.YieldFrom):
                return
        elif not isinstance(node, deletable) or (
            isinstance(node, ast.AnnAssign) and node.value is None
        ):
            return
        start, end = self.src.span(node)
        line_start = self.src.starts[node.lineno - 1]
        if text[line_start:start].strip():
            return  # shares its line with what precedes it
        last = node.end_lineno
        line_end = self.src.starts[last] if last < len(self.src.starts) else len(text)
        rest = text[end:line_end]
        if rest.strip() and not rest.strip().startswith("#"):
            return  # shares its line with what follows (``a = 1; b = 2``)
        siblings = next(
            (
                value
                for _, value in ast.iter_fields(parent)
                if isinstance(value, list) and any(v is node for v in value)
            ),
            [],
        )
        description = f"deleted `{_short(text[start:end])}`"
        if len(siblings) == 1:
            add("delete-statement", start, end, "pass", description)
        else:
            add("delete-statement", line_start, line_end, "", description)

    def _calls(self, node: ast.AST, fn: Function, add: Callable) -> None:
        if not isinstance(node, ast.Call):
            return
        func = node.func
        if isinstance(func, ast.Name):
            start, end = self.src.span(func)
            name = func.id
            pool = [
                other
                for other, definition in self.module_functions.items()
                if _accepts(definition, node, bound=False)
            ]
            options = _best(name, pool, minimum=0.4) if name in self.module_functions else []
            if name not in self.module_functions and name in BUILTINS:
                options = list(SIBLINGS.get(name, ()))
            for new in options:
                add("wrong-call", start, end, new, f"`{name}(...)` -> `{new}(...)`")
        elif isinstance(func, ast.Attribute):
            end = self.src.span(func)[1]
            start = end - len(func.attr)
            if self.src.text[start:end] != func.attr:
                return
            options: list[str] = []
            receiver = func.value.id if isinstance(func.value, ast.Name) else None
            if receiver in ("self", "cls") and fn.cls is not None:
                methods = {
                    n.name: n
                    for n in fn.cls.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                }
                if func.attr in methods:
                    pool = [m for m, d in methods.items() if _accepts(d, node, bound=True)]
                    options = _best(func.attr, pool, minimum=0.4)
            elif receiver in self.modules:
                options = _best(func.attr, self.module_attrs[receiver], minimum=0.4)
            if not options:
                options = list(SIBLINGS.get(func.attr, ()))
            for new in options:
                add("wrong-call", start, end, new, f"`.{func.attr}(...)` -> `.{new}(...)`")
        if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args):
            if isinstance(func, ast.Name) and func.id in ("min", "max"):
                return
            for a, b in zip(node.args, node.args[1:], strict=False):
                sa, sb = self.src.segment(a), self.src.segment(b)
                if sa == sb:
                    continue
                start, gap = self._gap(a, b)
                if "#" in gap:
                    continue
                add(
                    "swap-args",
                    self.src.span(a)[0],
                    self.src.span(b)[1],
                    sb + gap + sa,
                    f"`{_short(sa)}` <-> `{_short(sb)}`",
                )

    def _attributes(self, node: ast.AST, parent: ast.AST, add: Callable) -> None:
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            return
        if isinstance(parent, ast.Call) and parent.func is node:
            return  # a method call: wrong-call's
        if node.attr.startswith("__") or node.value.id in self.modules:
            return
        end = self.src.span(node)[1]
        start = end - len(node.attr)
        if self.src.text[start:end] != node.attr:
            return
        for new in _best(node.attr, self.attrs[node.value.id]):
            add("wrong-attribute", start, end, new, f"`.{node.attr}` -> `.{new}`")

    def _locals(self, fn: Function) -> dict[str, int]:
        """Local names of ``fn`` -> the line where each is first bound (0: a parameter)."""
        args = fn.node.args
        out = {
            a.arg: 0
            for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
            if a is not None
        }
        declared = set()
        for node, parents, _ in self._walk(fn):
            if isinstance(node, ast.Global | ast.Nonlocal):
                declared.update(node.names)
            if (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Store)
                and not any(isinstance(p, COMPREHENSIONS) for p in parents)
            ):
                out.setdefault(node.id, node.lineno)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                out.setdefault(node.name, node.lineno)
        for name in declared:
            out.pop(name, None)
        for name in ("self", "cls", "_"):
            out.pop(name, None)
        return out

    def _variables(self, node, parents, fn, locals_, add) -> None:
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
            return
        if node.id not in locals_ or any(isinstance(p, COMPREHENSIONS) for p in parents):
            return
        parent = parents[-1]
        if isinstance(parent, ast.Call) and parent.func is node:
            return
        pool = [name for name, line in locals_.items() if line < node.lineno]
        start, end = self.src.span(node)
        for new in _best(node.id, pool):
            add("variable", start, end, new, f"`{node.id}` -> `{new}`")


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _bound_context(parents: list[ast.AST]) -> bool:
    """Whether an integer literal under ``parents`` reads as a bound or an index."""
    chain = list(reversed(parents))
    if chain and isinstance(chain[0], ast.UnaryOp) and isinstance(chain[0].op, ast.USub):
        chain = chain[1:]
    if not chain:
        return False
    parent = chain[0]
    if isinstance(parent, ast.Subscript | ast.Slice | ast.Compare):
        return True
    if isinstance(parent, ast.BinOp | ast.AugAssign) and isinstance(parent.op, ast.Add | ast.Sub):
        return True
    if isinstance(parent, ast.Call):
        func = parent.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in BOUND_CALLS
    return False


def _one_string(segment: str) -> bool:
    """Whether ``segment`` is one string token (not ``'a' 'b'``)."""
    try:
        found = [
            t
            for t in tokenize.generate_tokens(io.StringIO(segment).readline)
            if t.type == tokenize.STRING
        ]
    except (tokenize.TokenError, SyntaxError):
        return False
    return len(found) == 1


def _quote(value: str, quote: str) -> str:
    """``value`` as a literal in the quotes the original used, where it can be."""
    text = repr(value)
    if quote == '"' and text[0] == "'" and '"' not in value and "'" not in value:
        text = f'"{text[1:-1]}"'
    return text


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def faults_in(path: str, text: str, covered: set[int] | None = None) -> list[Fault]:
    """Every candidate fault of the module (``covered``: only at statements on these lines),
    in source order per function."""
    injector = Injector(path, text)
    out = []
    for fn in injector.functions:
        out.extend(f for f in injector.faults(fn) if covered is None or f.stmt_line in covered)
    return out


def check(text: str, fault: Fault) -> str | None:
    """The mutated text when the fault makes a valid single-function change: it parses,
    the module keeps the same functions, and only the fault's function changes (its code,
    not just its layout). None otherwise."""
    new = fault.apply(text)
    try:
        tree = ast.parse(new)
    except (SyntaxError, ValueError):
        return None
    before, after = functions(ast.parse(text)), functions(tree)
    if [f.qualname for f in before] != [f.qualname for f in after]:
        return None
    src = Source(text)
    i = _occurrence(before, fault.function, src.line_of(fault.start))
    if i is None:
        return None
    old_fn, new_fn = before[i], after[i]
    lo = src.starts[old_fn.start_line - 1]
    hi = src.starts[old_fn.end_line] if old_fn.end_line < len(src.starts) else len(text)
    if not (lo <= fault.start and fault.end <= hi):
        return None
    if ast.dump(old_fn.node) == ast.dump(new_fn.node):
        return None
    return new


def _occurrence(found: list[Function], qualname: str, line: int) -> int | None:
    """The index in ``found`` of the function named ``qualname`` whose lines hold ``line``
    (a name can be defined twice: a property's setter, a definition per platform)."""
    for i, fn in enumerate(found):
        if fn.qualname == qualname and fn.start_line <= line <= fn.end_line:
            return i
    return None


def order(faults: list[Fault], seed: int | str) -> dict[str, list[Fault]]:
    """Each kind's faults in the order they are tried: the functions shuffled, then one
    fault of each function in turn (each function's faults shuffled too)."""
    out: dict[str, list[Fault]] = {}
    for kind in KINDS:
        rng = random.Random(f"{seed}/{kind}")
        by_function: dict[tuple[str, str], list[Fault]] = {}
        for f in sorted(
            (f for f in faults if f.kind == kind),
            key=lambda f: (f.path, f.start, f.end, f.replacement),
        ):
            by_function.setdefault((f.path, f.function), []).append(f)
        keys = sorted(by_function)
        rng.shuffle(keys)
        for key in keys:
            rng.shuffle(by_function[key])
        queue: list[Fault] = []
        depth = 0
        while True:
            layer = [by_function[k][depth] for k in keys if depth < len(by_function[k])]
            if not layer:
                break
            queue.extend(layer)
            depth += 1
        out[kind] = queue
    return out


def sample(path: str, text: str, seed: int | str, n: int = 10) -> list[Fault]:
    """``n`` valid faults of a module, kinds in turn (what ``generate`` tries, without tests)."""
    queues = order(faults_in(path, text), seed)
    picked: list[Fault] = []
    pointers = dict.fromkeys(KINDS, 0)
    while len(picked) < n:
        live = [k for k in KINDS if pointers[k] < len(queues[k])]
        if not live:
            break
        kind = min(live, key=lambda k: (sum(f.kind == k for f in picked), KINDS.index(k)))
        fault = queues[kind][pointers[kind]]
        pointers[kind] += 1
        if check(text, fault) is not None:
            picked.append(fault)
    return picked


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )


# -- packages on disk --------------------------------------------------------------------------


class BugSetError(Exception):
    """A package, bug or bug file that is not as expected (the message says how)."""


def package_of(bug_id: str) -> str:
    name = bug_id.rsplit("-", 1)[0]
    if name not in PACKAGES:
        raise BugSetError(f"{bug_id}: no package {name!r} (known: {', '.join(PACKAGES)})")
    return name


def unpack(name: str, sources: Path, dest: Path) -> Path:
    """The package's sdist, whole, at ``dest`` (its top folder stripped), harness patches
    applied."""
    pkg = PACKAGES[name]
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise BugSetError(f"{dest} is not empty")
    from eval_completion import extract_sdist

    extract_sdist(pkg.spec, sources, dest)
    for path, old, new in pkg.patches:
        file = dest / path
        text = file.read_bytes().decode("utf-8")
        if text.count(old) != 1:
            raise BugSetError(f"{name}: the harness patch of {path} does not apply")
        file.write_bytes(text.replace(old, new).encode("utf-8"))
    return dest


def source_files(name: str, root: Path) -> list[str]:
    pkg = PACKAGES[name]
    out = []
    for entry in pkg.sources:
        base = root / entry
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for file in files:
            rel = file.relative_to(root).as_posix()
            parts = rel.split("/")
            if rel in pkg.exclude or any(p in ("tests", "test", "testing") for p in parts[:-1]):
                continue
            if parts[-1].startswith("test_") or parts[-1] in ("conftest.py", "setup.py"):
                continue
            out.append(rel)
    return out


def read_text(file: Path) -> str | None:
    """The file's exact text (line endings kept), or None when it is not clean UTF-8."""
    data = file.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def git_commit(root: Path, message: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "hone-eval",
        "GIT_AUTHOR_EMAIL": "hone-eval@localhost",
        "GIT_COMMITTER_NAME": "hone-eval",
        "GIT_COMMITTER_EMAIL": "hone-eval@localhost",
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    git("init", "-q", "--template=", "-b", "main")
    git("add", "-A")
    git(
        "-c",
        "commit.gpgsign=false",
        "-c",
        "core.hooksPath=/dev/null",
        "commit",
        "-q",
        "-m",
        message,
    )


def bug_file(name: str, sources: Path) -> Path:
    return sources / "bugs" / f"{name}.json"


def load_bugs(name: str, sources: Path = SOURCES) -> list[dict]:
    """The package's bugs (generated before: ``generate``)."""
    path = bug_file(name, sources)
    if not path.is_file():
        raise BugSetError(
            f"no bugs for {name} yet: python benchmarks/bugs.py generate --package {name}"
        )
    return json.loads(path.read_text(encoding="utf-8"))["bugs"]


def find_bug(bug_id: str, sources: Path = SOURCES) -> dict:
    for bug in load_bugs(package_of(bug_id), sources):
        if bug["id"] == bug_id:
            return bug
    raise BugSetError(f"no bug {bug_id} in {bug_file(package_of(bug_id), sources)}")


def apply_bug(root: Path, bug: dict) -> None:
    file = root / bug["path"]
    text = read_text(file)
    if text is None or hashlib.sha256(text.encode()).hexdigest() != bug["file_sha256"]:
        raise BugSetError(f"{bug['id']}: {bug['path']} is not the file the bug was made in")
    if text[bug["start"] : bug["end"]] != bug["removed"]:
        raise BugSetError(f"{bug['id']}: the text to replace is not there")
    file.write_bytes((text[: bug["start"]] + bug["replacement"] + text[bug["end"] :]).encode())


def materialize(bug: dict | str, dest: Path, sources: Path = SOURCES) -> dict:
    """A git repository at ``dest`` (new or empty): the package's sdist with the bug in
    it, committed as one commit (nothing uncommitted, nothing in the history that shows the
    fault). Returns the bug's record."""
    if isinstance(bug, str):
        bug = find_bug(bug, sources)
    unpack(bug["package"], sources, dest)
    apply_bug(dest, bug)
    git_commit(dest, f"{bug['spec']}")
    return bug


# -- generation --------------------------------------------------------------------------------


@dataclass
class Baseline:
    passing: set[str]  # passed in both runs
    tests: int
    excluded: list[str]  # the others
    covering: dict[str, dict[int, list[str]]]  # path -> line -> test files that run it
    file_seconds: dict[str, float]  # test file -> its tests' time
    seconds: float

    def as_json(self) -> dict:
        return {
            "passing": sorted(self.passing),
            "tests": self.tests,
            "excluded": self.excluded,
            "covering": {
                p: {str(line): files for line, files in sorted(lines.items())}
                for p, lines in sorted(self.covering.items())
            },
            "file_seconds": self.file_seconds,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict) -> Baseline:
        return cls(
            set(data["passing"]),
            data["tests"],
            data["excluded"],
            {p: {int(k): v for k, v in lines.items()} for p, lines in data["covering"].items()},
            data["file_seconds"],
            data["seconds"],
        )


def run_baseline(name: str, root: Path, say: Callable[[str], None]) -> Baseline:
    from hone.agent.repair.runner import run_tests

    pkg = PACKAGES[name]
    t0 = time.monotonic()
    say(f"{name}: the suite with coverage")
    first = run_tests(root, list(pkg.tests), timeout_s=600, coverage=True)
    say(f"{name}: the suite again ({len(first.results)} tests)")
    second = run_tests(root, list(pkg.tests), timeout_s=600)
    if first.timed_out or second.timed_out or first.coverage is None:
        raise BugSetError(f"{name}: the unmodified suite timed out or gave no coverage")
    passing = {
        n
        for n, r in first.results.items()
        if r.outcome == "passed" and second.results.get(n) and second.results[n].outcome == "passed"
    }
    covering: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for nodeid, files in first.coverage.items():
        if nodeid not in passing:
            continue
        test_file = nodeid.split("::", 1)[0]
        for path, lines in files.items():
            for line in lines:
                covering[path][line].add(test_file)
    seconds: Counter[str] = Counter()
    for nodeid, r in second.results.items():
        seconds[nodeid.split("::", 1)[0]] += r.duration_s
    return Baseline(
        passing,
        len(first.results),
        sorted(set(first.results) - passing),
        {p: {line: sorted(f) for line, f in lines.items()} for p, lines in covering.items()},
        {k: round(v, 3) for k, v in sorted(seconds.items())},
        round(time.monotonic() - t0, 1),
    )


@dataclass
class State:
    """The bug file: the package's settings, every try (by fault key) and the bugs kept."""

    package: str
    spec: str
    split: str
    seed: int
    version: int = VERSION
    tries: dict[str, dict] = field(default_factory=dict)
    bugs: list[dict] = field(default_factory=list)
    candidates: dict[str, int] = field(default_factory=dict)
    stopped: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kinds = Counter(b["kind"] for b in self.bugs)
        statuses = Counter(t["status"] for t in self.tries.values())
        data = {
            **asdict(self),
            "counts": {
                "bugs": len(self.bugs),
                "by_kind": {k: kinds[k] for k in KINDS},
                "tries": dict(sorted(statuses.items())),
            },
            "kinds_not_in_templates": list(NOT_IN_TEMPLATES),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)


def validate(
    root: Path, fault: Fault, text: str, mutated: str, base: Baseline
) -> tuple[dict, list[str], list[str]]:
    """Run the test files that cover the fault's statement on the mutated file: (the try's
    record, the failing tests that passed before, the test files)."""
    from hone.agent.repair.runner import RunnerError, run_tests

    files = base.covering.get(fault.path, {}).get(fault.stmt_line, [])
    timeout = max(20.0, 5 * sum(base.file_seconds.get(f, 1.0) for f in files) + 10)
    file = root / fault.path
    t0 = time.monotonic()
    record: dict = {"kind": fault.kind, "function": f"{fault.path}::{fault.function}"}
    try:
        file.write_bytes(mutated.encode("utf-8"))
        run = run_tests(root, files, timeout_s=timeout)
    except RunnerError as exc:
        record.update(status="collection-error", note=str(exc)[:200])
        return record, [], files
    finally:
        file.write_bytes(text.encode("utf-8"))
    record["seconds"] = round(time.monotonic() - t0, 2)
    if run.timed_out:
        record["status"] = "timeout"
        return record, [], files
    if run.collection_errors:
        record["status"] = "collection-error"
        return record, [], files
    failing = [n for n, r in run.results.items() if r.outcome in FAILING and n in base.passing]
    record["status"] = "kept" if failing else "survived"
    return record, failing, files


def generate(
    name: str,
    *,
    bugs: int = 40,
    sources: Path = SOURCES,
    seed: int = SEED,
    max_tries: int | None = None,
    minutes: float = 10.0,
    per_function: int = 2,
    say: Callable[[str], None] = print,
) -> State:
    """Generate (or extend, or resume) the package's bug file; see the module docstring."""
    pkg = PACKAGES[name]
    path = bug_file(name, sources)
    state = State(name, pkg.spec, pkg.split, seed)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if (data.get("spec"), data.get("seed"), data.get("version")) == (pkg.spec, seed, VERSION):
            state.tries, state.bugs = data["tries"], data["bugs"]
        else:
            raise BugSetError(f"{path} was made with other settings: move it away to start over")
    max_tries = max_tries if max_tries is not None else 5 * bugs
    deadline = time.monotonic() + 60 * minutes
    with tempfile.TemporaryDirectory(prefix=f"hone-bugs-{name}-") as tmp:
        root = unpack(name, sources, Path(tmp) / name)
        base_path = sources / "bugs" / f"{name}.baseline.json"
        if base_path.is_file():
            base = Baseline.from_json(json.loads(base_path.read_text(encoding="utf-8")))
        else:
            base = run_baseline(name, root, say)
            base_path.parent.mkdir(parents=True, exist_ok=True)
            base_path.write_text(json.dumps(base.as_json()) + "\n", encoding="utf-8")
        say(
            f"{name}: {len(base.passing)} of {base.tests} tests pass twice "
            f"({base.seconds} s for the baseline)"
        )
        texts: dict[str, str] = {}
        candidates: list[Fault] = []
        for rel in source_files(name, root):
            text = read_text(root / rel)
            covered = set(base.covering.get(rel, {}))
            if text is None or not covered:
                continue
            try:
                found = faults_in(rel, text, covered)
            except SyntaxError:
                continue
            texts[rel] = text
            candidates.extend(found)
        state.candidates = dict(Counter(f.kind for f in candidates))
        say(f"{name}: {len(candidates)} candidate faults at covered statements")
        queues = order(candidates, f"{seed}/{name}")
        by_key = {b["key"]: b for b in state.bugs}
        kept: Counter[str] = Counter()
        tried: Counter[str] = Counter()
        per_fn: Counter[tuple[str, str]] = Counter()
        fn_kinds: set[tuple[str, str, str]] = set()
        pointers = dict.fromkeys(KINDS, 0)
        n_tries = 0
        new_bugs: list[dict] = []
        state.stopped = ""
        while True:
            if len(new_bugs) >= bugs:
                state.stopped = "enough bugs"
                break
            if n_tries >= max_tries:
                state.stopped = f"{max_tries} tries"
                break
            live = [k for k in KINDS if pointers[k] < len(queues[k])]
            if not live:
                state.stopped = "no candidates left"
                break
            kind = min(live, key=lambda k: (kept[k], tried[k], KINDS.index(k)))
            fault = queues[kind][pointers[kind]]
            pointers[kind] += 1
            fn = (fault.path, fault.function)
            if per_fn[fn] >= per_function or (*fn, kind) in fn_kinds:
                continue
            record = state.tries.get(fault.key)
            if record is None:
                if time.monotonic() > deadline:
                    state.stopped = f"{minutes} minutes (rerun to go on)"
                    break
                text = texts[fault.path]
                mutated = check(text, fault)
                if mutated is None:
                    state.tries[fault.key] = {"status": "invalid", "kind": kind}
                    state.save(path)
                    continue
                record, failing, files = validate(root, fault, text, mutated, base)
                if record["status"] == "kept":
                    number = len(new_bugs) + 1
                    taken = {int(b["id"].rsplit("-", 1)[1]) for b in state.bugs}
                    if number in taken:  # a longer earlier sequence (other caps) used it
                        number = max(taken) + 1
                    bug = make_bug(name, number, fault, text, mutated, failing, files)
                    bug["validate_s"] = record.get("seconds")
                    by_key[fault.key] = bug
                    state.bugs = [*state.bugs, bug]
                state.tries[fault.key] = record
                state.save(path)
                say(
                    f"{name}: {record['status']:>16} {kind:<16} {fault.path}::{fault.function} "
                    f"{fault.description} ({len(new_bugs) + (record['status'] == 'kept')} kept)"
                )
            if record["status"] == "invalid":
                continue
            n_tries += 1
            tried[kind] += 1
            if record["status"] == "kept":
                kept[kind] += 1
                per_fn[fn] += 1
                fn_kinds.add((*fn, kind))
                new_bugs.append(by_key[fault.key])
        # the bugs in the sequence's order; bugs beyond a smaller --bugs stay in the file
        listed = {b["key"] for b in new_bugs}
        state.bugs = new_bugs + [b for b in state.bugs if b["key"] not in listed]
        state.save(path)
    counts = Counter(b["kind"] for b in new_bugs)
    say(
        f"{name}: {len(new_bugs)} bugs ({state.stopped}): "
        + ", ".join(f"{k} {counts[k]}" for k in KINDS if counts[k])
    )
    return state


def make_bug(
    name: str,
    number: int,
    fault: Fault,
    text: str,
    mutated: str,
    failing: list[str],
    files: list[str],
) -> dict:
    pkg = PACKAGES[name]
    src_before, src_after = Source(text), Source(mutated)
    first = src_before.line_of(fault.start)
    i = _occurrence(functions(ast.parse(text)), fault.function, first)
    after = functions(ast.parse(mutated))[i]
    last_before = src_before.line_of(max(fault.start, fault.end - 1))
    last_after = src_after.line_of(max(fault.start, fault.start + len(fault.replacement) - 1))

    def lines(src: Source, a: int, b: int) -> str:
        hi = src.starts[b] if b < len(src.starts) else len(src.text)
        return src.text[src.starts[a - 1] : hi]

    return {
        "id": f"{name}-{number:03d}",
        "key": fault.key,
        "package": name,
        "spec": pkg.spec,
        "split": pkg.split,
        "kind": fault.kind,
        "description": fault.description,
        "path": fault.path,
        "function": fault.function,
        # the function's lines in the buggy file (decorators included), and the change's
        "start_line": after.start_line,
        "end_line": after.end_line,
        "line": first,
        # the splice in the original file (character offsets)
        "start": fault.start,
        "end": fault.end,
        "removed": text[fault.start : fault.end],
        "replacement": fault.replacement,
        "before": lines(src_before, first, last_before),
        "after": lines(src_after, first, last_after) if fault.replacement else "",
        "diff": unified_diff(fault.path, text, mutated),
        "file_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "failing_tests": failing,
        "test_files": files,
    }


# -- CLI ---------------------------------------------------------------------------------------


def summary(sources: Path) -> dict:
    out: dict = {}
    for name, pkg in PACKAGES.items():
        path = bug_file(name, sources)
        if not path.is_file():
            out[name] = {"split": pkg.split, "bugs": None}
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        out[name] = {"split": pkg.split, "spec": pkg.spec, **data["counts"]}
    return out


def summary_table(counts: dict) -> str:
    """Bugs per package (rows) and kind (columns), as text."""
    short = {
        k: k.replace("delete-statement", "delete").replace("missing-return", "no-return")
        for k in KINDS
    }
    head = ["package", "split", "bugs", *short.values(), "tries"]
    rows = [head]
    for name, c in counts.items():
        if c.get("bugs") is None:
            rows.append([name, c["split"], "-", *["" for _ in KINDS], ""])
            continue
        kinds = [str(c["by_kind"].get(k, 0)) for k in KINDS]
        rows.append([name, c["split"], str(c["bugs"]), *kinds, str(sum(c["tries"].values()))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            v.rjust(w) if i > 1 else v.ljust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def _limit_memory(gib: float = 4.0) -> None:
    """Cap the address space of the tests' processes (a mutant that allocates without end)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        limit = int(gib * 2**30)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="make (or extend, or resume) a package's bug file")
    gen.add_argument("--package", required=True, choices=sorted(PACKAGES))
    gen.add_argument("--bugs", type=int, default=40, help="bugs to keep (default 40)")
    gen.add_argument("--sources", type=Path, default=SOURCES)
    gen.add_argument("--seed", type=int, default=SEED)
    gen.add_argument("--max-tries", type=int, help="faults to try at most (default 5 x --bugs)")
    gen.add_argument("--minutes", type=float, default=10.0, help="stop trying after this long")
    gen.add_argument("--per-function", type=int, default=2, help="bugs per function at most")
    mat = sub.add_parser("materialize", help="write a git repository holding one bug")
    mat.add_argument("bug_id")
    mat.add_argument("dest", type=Path)
    mat.add_argument("--sources", type=Path, default=SOURCES)
    summ = sub.add_parser("summary", help="bugs per package and kind")
    summ.add_argument("--sources", type=Path, default=SOURCES)
    args = ap.parse_args()
    try:
        run_command(args)
    except BugSetError as exc:
        print(f"bugs.py: {exc}", file=sys.stderr)
        return 1
    return 0


def run_command(args: argparse.Namespace) -> None:
    if args.command == "generate":
        _limit_memory()
        generate(
            args.package,
            bugs=args.bugs,
            sources=args.sources,
            seed=args.seed,
            max_tries=args.max_tries,
            minutes=args.minutes,
            per_function=args.per_function,
            say=lambda m: print(m, flush=True),
        )
    elif args.command == "materialize":
        bug = materialize(args.bug_id, args.dest, args.sources)
        print(
            f"{args.dest}: {bug['id']} ({bug['kind']}) in {bug['path']}::{bug['function']}; "
            f"failing: {' '.join(bug['failing_tests'][:3])}"
        )
    else:
        print(summary_table(summary(args.sources)))


if __name__ == "__main__":
    sys.exit(main())
