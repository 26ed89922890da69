"""benchmarks/bugs.py's fault injector on a small module written here: every kind makes a
single-function change that parses, a small diff with the rest of the file byte-identical,
and the same seed picks the same faults."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bugs", REPO / "benchmarks" / "bugs.py")
bugs = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bugs", bugs)
_spec.loader.exec_module(bugs)

MODULE = '''\
"""A module to inject faults into."""

import os

LIMIT = 10


def clamp(value, low=0, high=LIMIT):
    """Keep ``value`` within [low, high]."""
    if value < low:
        return low
    if value > high and high is not None:
        return high
    return value


def clamp_all(values, low, high):
    out = []
    for value in values:
        out.append(clamp(value, low, high))
    return out


def window(items, size=2):
    total = 0
    result = []
    for i in range(len(items) - size + 1):
        chunk = items[i : i + size]
        total += sum(chunk) * 2
        result.append(chunk)
    if not result or total == 0:
        raise ValueError("empty window")
    return result


class Box:
    def __init__(self, left, right):
        self.left = left
        self.right = right
        self.name = "box"

    def width(self):
        return self.right - self.left

    def half_width(self):
        return self.width() // 2

    def widths(self, others):
        return [self.width() - other.width() for other in others]

    def describe(self):
        label = self.name.upper() if self.left >= 0 else "negative"
        return os.path.join(label, str(self.width()))

    def is_empty(self):
        return self.left == self.right or False
'''
PATH = "pkg/shapes.py"


def _function_lines(text: str, qualname: str, line: int) -> tuple[int, int]:
    found = bugs.functions(ast.parse(text))
    i = bugs._occurrence(found, qualname, line)
    return found[i].start_line, found[i].end_line


def test_every_kind_has_faults_in_the_fixture() -> None:
    kinds = {f.kind for f in bugs.faults_in(PATH, MODULE)}
    assert kinds == set(bugs.KINDS)


@pytest.mark.parametrize("kind", bugs.KINDS)
def test_each_fault_is_a_small_valid_change_of_one_function(kind: str) -> None:
    faults = [f for f in bugs.faults_in(PATH, MODULE) if f.kind == kind]
    valid = 0
    for fault in faults:
        new = bugs.check(MODULE, fault)
        if new is None:
            continue
        valid += 1
        ast.parse(new)  # parses
        # a splice: everything outside the replaced span is byte-identical
        assert new == MODULE[: fault.start] + fault.replacement + MODULE[fault.end :]
        assert new.startswith(MODULE[: fault.start])
        assert new.endswith(MODULE[fault.end :])
        # the change lies inside the function it names, and no other function changes
        start, end = _function_lines(MODULE, fault.function, fault.line)
        old_lines, new_lines = MODULE.splitlines(), new.splitlines()
        delta = len(new_lines) - len(old_lines)
        assert old_lines[: start - 1] == new_lines[: start - 1]
        assert old_lines[end:] == new_lines[end + delta :]
        before = {f.qualname: ast.dump(f.node) for f in bugs.functions(ast.parse(MODULE))}
        after = {f.qualname: ast.dump(f.node) for f in bugs.functions(ast.parse(new))}
        changed = [name for name in before if before[name] != after[name]]
        # a nested function changes with its parent; here none is nested
        assert changed == [fault.function]
        # a small diff: at most 3 lines removed and 3 added
        diff = [
            line
            for line in difflib.unified_diff(old_lines, new_lines, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert 1 <= len(diff) <= 6, diff
        assert bugs.unified_diff(PATH, MODULE, new).startswith(f"--- a/{PATH}\n+++ b/{PATH}\n")
    assert valid, f"no valid {kind} fault"


def test_faults_stay_out_of_docstrings_signatures_and_decorators() -> None:
    tree = ast.parse(MODULE)
    protected = set()
    for fn in bugs.functions(tree):
        protected.add(fn.node.lineno)  # the def line: name, parameters, defaults
        body = fn.node.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            protected.update(range(body[0].lineno, body[0].end_lineno + 1))
    for fault in bugs.faults_in(PATH, MODULE):
        assert fault.line not in protected, fault


def test_examples_of_kinds_no_template_makes() -> None:
    faults = bugs.faults_in(PATH, MODULE)

    def applied(kind: str, function: str) -> list[str]:
        return [
            MODULE[f.start : f.end] + " -> " + f.replacement
            for f in faults
            if f.kind == kind and f.function == function
        ]

    assert "    out = []\n -> " in applied("delete-statement", "clamp_all")  # its line goes
    assert "out.append(clamp(value, low, high)) -> pass" in applied("delete-statement", "clamp_all")
    assert "append -> extend" in applied("wrong-call", "clamp_all")
    assert "clamp -> clamp_all" in applied("wrong-call", "clamp_all")  # takes 3 arguments too
    assert applied("wrong-call", "Box.widths") == ["width -> half_width"]  # not widths(others)
    assert "right -> left" in applied("wrong-attribute", "Box.width")
    assert applied("constant", "Box.__init__") == ['"box" -> "negative"']  # nearest length
    assert not [s for s in applied("constant", "window") if "empty window" in s]  # a message
    assert applied("constant", "Box.is_empty") == ["False -> True"]
    assert applied("missing-return", "clamp") == ["return  -> "] * 3
    # a bound gets +-1 (off-by-one); a literal elsewhere gets another value (constant)
    assert {"1 -> 2", "1 -> 0"} <= set(applied("off-by-one", "window"))
    assert "2 -> 0" in applied("constant", "window")  # ``* 2`` is no bound


def test_coverage_limits_the_sites() -> None:
    every = bugs.faults_in(PATH, MODULE)
    line = MODULE.splitlines().index("        out.append(clamp(value, low, high))") + 1
    only = bugs.faults_in(PATH, MODULE, covered={line})
    assert only and all(f.stmt_line == line for f in only)
    assert len(only) < len(every)


def test_the_seed_decides_the_faults() -> None:
    first = bugs.sample(PATH, MODULE, seed=7, n=24)
    again = bugs.sample(PATH, MODULE, seed=7, n=24)
    other = bugs.sample(PATH, MODULE, seed=8, n=24)
    assert [f.key for f in first] == [f.key for f in again]
    assert [f.key for f in first] != [f.key for f in other]
    # kinds take turns: the first 12 are one of each
    assert sorted(f.kind for f in first[: len(bugs.KINDS)]) == sorted(bugs.KINDS)
    # the order is a permutation of the candidates, per kind
    candidates = bugs.faults_in(PATH, MODULE)
    queues = bugs.order(candidates, 7)
    for kind in bugs.KINDS:
        assert sorted(f.key for f in queues[kind]) == sorted(
            f.key for f in candidates if f.kind == kind
        )


def test_a_name_defined_twice_is_told_apart_by_its_lines() -> None:
    text = (
        "class P:\n"
        "    @property\n"
        "    def x(self):\n"
        "        return self._x + 1\n"
        "\n"
        "    @x.setter\n"
        "    def x(self, value):\n"
        "        self._x = value - 1\n"
    )
    faults = [f for f in bugs.faults_in("p.py", text) if f.kind == "arithmetic"]
    assert {f.line for f in faults} == {4, 8}
    for fault in faults:
        new = bugs.check(text, fault)
        assert new is not None
        assert _function_lines(new, "P.x", fault.line) == ((2, 4) if fault.line == 4 else (6, 8))


def test_negation_leaves_lone_equality_membership_and_identity_to_comparison() -> None:
    text = (
        "def f(a, b):\n"
        "    if a == b:\n"
        "        return 1\n"
        "    if a in b:\n"
        "        return 2\n"
        "    if a is not None:\n"
        "        return 3\n"
        "    if a < b:\n"
        "        return 4\n"
        "    if not a:\n"
        "        return 5\n"
    )
    negations = {
        text[f.start : f.end] + " -> " + f.replacement
        for f in bugs.faults_in("f.py", text)
        if f.kind == "negation"
    }
    assert negations == {"a < b -> not a < b", "not a -> a"}
    comparisons = [f for f in bugs.faults_in("f.py", text) if f.kind == "comparison"]
    assert {f.replacement for f in comparisons} == {"!=", "not in", "is", "<="}


def test_implicitly_concatenated_and_prefixed_strings_are_left_alone() -> None:
    text = (
        "def f(a):\n"
        "    x = 'one' 'two'\n"
        "    y = r'\\d+'\n"
        "    z = 'three'\n"
        "    return x + y + z + a\n"
    )
    constants = [f for f in bugs.faults_in("f.py", text) if f.kind == "constant"]
    assert [text[f.start : f.end] for f in constants] == ["'three'"]
