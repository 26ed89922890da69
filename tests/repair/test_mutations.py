"""hone.agent.repair.mutations: single-point mutations of a function, ranked.

The buggy functions below are small real functions with real single-point bugs
(written for these tests). For each, the fix must be among the candidates at a
reasonable rank, and the fixed function must pass a check that the buggy one fails.
"""

from __future__ import annotations

import ast
import importlib.resources
import importlib.util
import sysconfig
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace as NS

import pytest
from hone.agent.repair import mutations as mutations_module
from hone.agent.repair.mutations import (
    HOT_BOOST,
    KINDS,
    PRIORS,
    Candidate,
    load_mutation_query,
    mutations,
)
from hone.agent.repair.templates import VARIABLE_FANOUT, Mutation

STDLIB = Path(sysconfig.get_paths()["stdlib"])
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mutations.py"


def span(source: str, name: str) -> tuple[int, int]:
    """1-based first and last line of the function ``name`` in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node.lineno, node.end_lineno
    raise LookupError(name)


def run(source: str, name: str) -> Callable:
    namespace: dict = {}
    exec(compile(source, "<candidate>", "exec"), namespace)
    return namespace[name]


def candidates_for(source: str, name: str, **kwargs) -> list[Candidate]:
    start, end = span(source, name)
    return mutations(source, "pkg/mod.py", start, end, **kwargs)


# --------------------------------------------------------------------------------------
# Real bugs: (name, buggy source, the buggy line, the fixed line, a check, max rank)

BUGS = {
    "comparison": (
        "count_in_range",
        '''
def count_in_range(values, lo, hi):
    """How many values lie in [lo, hi], both ends included."""
    count = 0
    for v in values:
        if lo <= v < hi:
            count += 1
    return count
''',
        "        if lo <= v < hi:",
        "        if lo <= v <= hi:",
        lambda f: f([1, 2, 3, 4, 5], 2, 4) == 3 and f([], 0, 1) == 0,
        3,
    ),
    "off-by-one-range": (
        "moving_averages",
        '''
def moving_averages(values, width):
    """The mean of every window of `width` consecutive values."""
    if width <= 0:
        raise ValueError("width must be positive")
    if width > len(values):
        return []
    means = []
    window = sum(values[:width])
    means.append(window / width)
    for i in range(1, len(values) - width):
        window += values[i + width - 1] - values[i - 1]
        means.append(window / width)
    return means
''',
        "    for i in range(1, len(values) - width):",
        "    for i in range(1, len(values) - width + 1):",
        lambda f: f([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5] and f([5], 1) == [5.0],
        10,
    ),
    "off-by-one-len": (
        "binary_search",
        """
def binary_search(items, target):
    lo, hi = 0, len(items)
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
""",
        "    lo, hi = 0, len(items)",
        "    lo, hi = 0, len(items) - 1",
        lambda f: f([1, 3, 5], 5) == 2 and f([1, 3, 5], 6) == -1 and f([], 1) == -1,
        10,
    ),
    "negation": (
        "strip_comments",
        """
def strip_comments(lines):
    kept = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            kept.append(line)
    return kept
""",
        '        if stripped.startswith("#"):',
        '        if not stripped.startswith("#"):',
        lambda f: f(["x = 1", "# note", "  # indented", "y"]) == ["x = 1", "y"],
        5,
    ),
    "arithmetic": (
        "to_celsius",
        """
def to_celsius(fahrenheit):
    return (fahrenheit + 32) * 5 / 9
""",
        "    return (fahrenheit + 32) * 5 / 9",
        "    return (fahrenheit - 32) * 5 / 9",
        lambda f: f(212) == 100 and f(32) == 0,
        8,
    ),
    "boolean": (
        "is_name_char",
        """
def is_name_char(ch):
    return ch.isalnum() and ch == "_"
""",
        '    return ch.isalnum() and ch == "_"',
        '    return ch.isalnum() or ch == "_"',
        lambda f: f("a") and f("_") and not f("-"),
        5,
    ),
    "swap-args": (
        "clip_all",
        """
def clip(value, lo, hi):
    return max(lo, min(value, hi))


def clip_all(values, lo, hi):
    return [clip(lo, v, hi) for v in values]
""",
        "    return [clip(lo, v, hi) for v in values]",
        "    return [clip(v, lo, hi) for v in values]",
        lambda f: f([-5, 5, 50], 0, 10) == [0, 5, 10],
        10,
    ),
    "variable": (
        "dot",
        """
def dot(xs, ys):
    if len(xs) != len(ys):
        raise ValueError("lengths differ")
    total = 0
    for i in range(len(xs)):
        total += xs[i] * xs[i]
    return total
""",
        "        total += xs[i] * xs[i]",
        "        total += xs[i] * ys[i]",
        lambda f: f([1, 2], [3, 4]) == 11,
        # A wrong name ranks after the comparisons and bounds of its function (its
        # prior is lower: each site has several alternatives), of about 60 here.
        25,
    ),
    "return-missing": (
        "word_lengths",
        """
def word_lengths(words):
    lengths = {}
    for word in words:
        lengths[word] = len(word)
""",
        "        lengths[word] = len(word)",
        "        lengths[word] = len(word)\n    return lengths",
        lambda f: f(["ab", "c"]) == {"ab": 2, "c": 1},
        5,
    ),
    "return-wrong": (
        "longest",
        """
def longest(words):
    best = ""
    for word in words:
        if len(word) > len(best):
            best = word
    return word
""",
        "    return word",
        "    return best",
        lambda f: f(["abc", "a", "ab"]) == "abc",
        10,
    ),
    "sibling-statement": (
        "tally",
        """
def tally(tokens):
    numbers = words = 0
    order = []
    for token in tokens:
        if token.isdigit():
            numbers += 1
            order.append(token)
        else:
            words += 1
    return numbers, words, order
""",
        "            words += 1",
        "            words += 1\n            order.append(token)",
        lambda f: f(["a", "1"]) == (1, 1, ["a", "1"]),
        25,
    ),
    # The templates that take the replacement from the rest of the module (ingredients.py)
    "constant-from-the-module": (
        "escape",
        """
ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text):
    \"\"\"HTML-escape: `&` first, so that the other escapes are not escaped again.\"\"\"
    text = text.replace("&", "&amp;")
    text = text.replace("<", "&lt;")
    text = text.replace(">", "&lt;")
    return text
""",
        '    text = text.replace(">", "&lt;")',
        '    text = text.replace(">", "&gt;")',
        lambda f: f("a<b>&") == "a&lt;b&gt;&amp;",
        6,
    ),
    "call-of-a-sibling-function": (
        "skew",
        """
def mean(values):
    return sum(values) / len(values)


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return mean(ordered[mid - 1 : mid + 1])


def skew(values):
    \"\"\"How far the mean lies above the median.\"\"\"
    return mean(values) - mean(values)
""",
        "    return mean(values) - mean(values)",
        "    return mean(values) - median(values)",
        lambda f: f([1, 2, 9]) == 2.0 and f([4]) == 0,
        6,
    ),
    "call-of-the-opposite-method": (
        "snake_case",
        """
def snake_case(words):
    return "_".join(word.upper() for word in words)
""",
        '    return "_".join(word.upper() for word in words)',
        '    return "_".join(word.lower() for word in words)',
        lambda f: f(["Ab", "C"]) == "ab_c",
        3,
    ),
    "attribute-read-off-the-same-name": (
        "overlap",
        """
def overlap(a, b):
    \"\"\"The length of the overlap of two intervals (with `start` and `end`).\"\"\"
    lo = max(a.start, b.start)
    hi = min(a.end, b.start)
    return max(0, hi - lo)


def contains(a, x):
    return a.start <= x < a.end
""",
        "    hi = min(a.end, b.start)",
        "    hi = min(a.end, b.end)",
        lambda f: f(NS(start=0, end=5), NS(start=3, end=10)) == 2,
        40,  # with no hot lines: every variable of the three lines ranks higher
    ),
}


@pytest.mark.parametrize("case", BUGS, ids=str)
def test_the_fix_of_a_real_bug_is_a_candidate_at_a_reasonable_rank(case: str) -> None:
    name, source, buggy, fixed, check, max_rank = BUGS[case]
    source = source.lstrip("\n")
    assert source.count(buggy + "\n") == 1
    expected = source.replace(buggy + "\n", fixed + "\n")
    assert not _passes(source, name, check), "the bug is real"
    assert _passes(expected, name, check), "the fix is real"

    found = candidates_for(source, name)
    ranks = [i for i, c in enumerate(found) if c.apply(source) == expected]
    assert ranks, f"the fix is not among {[c.description for c in found]}"
    assert ranks[0] < max_rank, ([c.description for c in found[: ranks[0] + 1]], ranks[0])
    fix = found[ranks[0]]
    assert fix.kind in case
    assert fix.description.startswith(f"line {fix.line}: ")


def _passes(source: str, name: str, check: Callable) -> bool:
    try:
        return bool(check(run(source, name)))
    except Exception:
        return False


def test_hot_lines_lift_the_sites_on_them() -> None:
    name, source, buggy, fixed, _check, _rank = BUGS["off-by-one-range"]
    source = source.lstrip("\n")
    expected = source.replace(buggy + "\n", fixed + "\n")
    line = source.splitlines().index(buggy) + 1

    def rank(found: list[Candidate]) -> int:
        return next(i for i, c in enumerate(found) if c.apply(source) == expected)

    cold = candidates_for(source, name)
    hot = candidates_for(source, name, hot_lines={line: 5.0, line + 1: 2.0, 1: 0.0})
    assert rank(hot) < rank(cold)
    assert rank(hot) <= 2  # the bounds of its line come first
    fix = hot[rank(hot)]
    assert fix.score == pytest.approx(PRIORS["off-by-one"] * 1.0 * (1 + HOT_BOOST))
    # Lines the test did not run keep their scores; the weights only order.
    assert {c.score for c in hot if c.line not in (line, line + 1)} <= {c.score for c in cold}


# --------------------------------------------------------------------------------------
# Each template on a minimal example


def applied(source: str, name: str = "f", **kwargs) -> dict[str, str]:
    """Changed function text -> kind, for every candidate."""
    out = {}
    for c in candidates_for(source, name, limit=1000, **kwargs):
        text = c.apply(source)
        assert text not in out, "candidates are distinct"
        out[text] = c.kind
    return out


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.mark.parametrize(
    ("kind", "before", "afters"),
    [
        ("comparison", "a < b", ["a <= b", "a > b"]),
        ("comparison", "a >= b", ["a > b", "a <= b"]),
        ("comparison", "a == b", ["a != b"]),
        ("comparison", "a != b", ["a == b"]),
        ("comparison", "a is None", ["a is not None"]),
        ("comparison", "a is not None", ["a is None"]),
        ("comparison", "a in b", ["a not in b"]),
        ("comparison", "a not in b", ["a in b"]),
        ("arithmetic", "a + b", ["a - b"]),
        ("arithmetic", "a - b", ["a + b"]),
        ("arithmetic", "a * b", ["a / b"]),
        ("arithmetic", "a / b", ["a * b", "a // b"]),
        ("arithmetic", "a // b", ["a / b"]),
        ("boolean", "a and b", ["a or b"]),
        ("boolean", "a or b", ["a and b"]),
        ("off-by-one", "a[b]", ["a[b + 1]", "a[b - 1]"]),
        ("off-by-one", "a[b:]", ["a[b + 1:]", "a[b - 1:]"]),
        ("off-by-one", "a[:b - 1]", ["a[:b]"]),
        ("off-by-one", "a[3]", ["a[4]", "a[2]"]),
        ("off-by-one", "a[-1]", ["a[-2]", "a[0]"]),
        ("off-by-one", "len(a)", ["len(a) - 1", "len(a) + 1"]),
        ("off-by-one", "len(a) - 1", ["len(a)"]),
        ("off-by-one", "b * len(a)", ["b * (len(a) - 1)"]),
        ("off-by-one", "list(range(b))", ["list(range(b + 1))", "list(range(b - 1))"]),
        ("negation", "not a", ["a"]),
        ("negation", "a if b else None", ["a if not b else None"]),
        ("swap-args", "divmod(a, b)", ["divmod(b, a)"]),
        ("variable", "a - b", ["b - b", "a - a"]),
    ],
)
def test_each_template_rewrites_its_site(kind: str, before: str, afters: list[str]) -> None:
    source = f"def f(a, b):\n    return {before}\n"
    found = applied(source)
    for after in afters:
        expected = f"def f(a, b):\n    return {after}\n"
        assert found.get(expected) == kind, (after, sorted(found))


def test_negation_of_conditions() -> None:
    source = src(
        """
        def f(a, b):
            if a:
                pass
            elif a and b:
                pass
            while not b:
                b = True
            assert a, "message"
        """
    )
    found = applied(source)

    def has(old: str, new: str) -> bool:
        assert source.count(old) == 1
        return found.get(source.replace(old, new)) == "negation"

    assert has("if a:", "if not a:")
    assert has("elif a and b:", "elif not (a and b):")
    assert has("elif a and b:", "elif not a and b:")
    assert has("elif a and b:", "elif a and not b:")
    assert has("while not b:", "while b:")
    assert has('assert a, "message"', 'assert not a, "message"')


def test_negation_keeps_a_word_boundary() -> None:
    source = "def f(a):\n    if(a):\n        return 1\n"
    assert "def f(a):\n    if not (a):\n        return 1\n" in applied(source)


def test_string_keys_get_no_plus_one() -> None:
    source = "def f(words):\n    sizes = {}\n    for w in words:\n        sizes[w] = len(w)\n"
    found = applied(source)
    assert source.replace("len(w)", "len(w) - 1") in found
    assert not any("sizes[w + 1]" in text or "sizes[w - 1]" in text for text in found)
    counts = "def f(n, xs):\n    for i in range(n):\n        xs[i] = 0\n"
    assert counts.replace("xs[i]", "xs[i + 1]") in applied(counts)


def test_augmented_assignments_and_concatenation() -> None:
    source = src(
        """
        def f(a, b):
            a += b
            a *= 2
            return "x" + a
        """
    )
    found = applied(source)
    assert found[source.replace("a += b", "a -= b")] == "arithmetic"
    assert found[source.replace("a *= 2", "a /= 2")] == "arithmetic"
    assert source.replace('"x" + a', '"x" - a') not in found  # string concatenation


def test_swap_args_only_adjacent_positional_and_not_min_max() -> None:
    source = "def f(a, b, c):\n    return g(a, b, key=c) + max(a, b) + h(*a, b)\n"
    found = applied(source)
    assert found[source.replace("g(a, b,", "g(b, a,")] == "swap-args"
    assert not any(kind == "swap-args" and "max(b, a)" in text for text, kind in found.items())
    assert not any(kind == "swap-args" and "h(b, *a)" in text for text, kind in found.items())
    assert not any(kind == "swap-args" and "key=c, " in text for text, kind in found.items())


def test_variables_come_from_the_function_and_fan_out_is_limited() -> None:
    source = src(
        """
        import os

        def f(items, count, limit):
            total = 0
            for item in items:
                total += item * count
            return total if total < limit else limit
        """
    )
    found = candidates_for(source, "f", limit=1000)
    variables = [c for c in found if c.kind == "variable"]
    assert variables
    names = {"items", "count", "limit", "total", "item"}
    for c in variables:
        assert c.replacement in names
        assert source[c.start : c.end] in names
    per_site = {}
    for c in variables:
        per_site.setdefault(c.start, []).append(c.replacement)
    assert max(len(v) for v in per_site.values()) <= VARIABLE_FANOUT
    # `os` is not a local: never a replacement; the loop's `item` is not replaced by
    # the container it iterates first when a number fits better.
    assert all(c.replacement != "os" for c in variables)


def test_the_name_used_alike_is_the_first_replacement() -> None:
    name, source, buggy, _fixed, _check, _rank = BUGS["variable"]
    source = source.lstrip("\n")
    site = source.index(buggy) + buggy.rindex("xs[i]")
    found = [c for c in candidates_for(source, name) if c.start == site]
    assert [c.replacement for c in found][0] == "ys"  # indexed and len()-ed like xs


def test_a_parameter_never_read_is_the_first_replacement() -> None:
    # `step` is used like `base` (a number); `offset` is never read: it still wins.
    source = src(
        """
        def shift(values, base, offset):
            step = base * 2
            return [v * step + base for v in values]
        """
    )
    fixed = source.replace("+ base", "+ offset")
    site = source.index("+ base") + 2
    found = [c for c in candidates_for(source, "shift") if c.start == site]
    assert [c.replacement for c in found][:2] == ["offset", "step"]
    assert found[0].apply(source) == fixed
    assert run(fixed, "shift")([1, 2], 3, 1) == [7, 13]


@pytest.mark.parametrize(
    ("binding", "local"),
    [
        ("y = x", True),
        ("a, *y = x", True),
        ("[y] = x", True),
        ("(z, (w, y)) = x", True),
        ("for y in x:\n        pass", True),
        ("for i, (k, y) in x:\n        pass", True),
        ("with x as y:\n        pass", True),
        ("try:\n        pass\n    except ValueError as y:\n        pass", True),
        ("if (y := x):\n        pass", True),
        ("g = lambda y: y", False),
        ("g = [y for y in x]", False),
        ("def g(y):\n        return y", False),
    ],
)
def test_the_names_a_function_binds(binding: str, local: bool) -> None:
    source = f"def f(x):\n    {binding}\n    return x\n"
    returns_y = source.replace("return x", "return y")
    assert (returns_y in applied(source)) is local


def test_return_templates() -> None:
    source = src(
        """
        def f(a):
            b = a * 2
            c = b + 1
            print(c)
        """
    )
    found = applied(source)
    insert_c = source + "    return c\n"
    assert found[insert_c] == "return"
    assert source + "    return b\n" in found
    ranked = candidates_for(source, "f", limit=1000)
    returns = [c.apply(source) for c in ranked if c.kind == "return"]
    assert returns.index(insert_c) < returns.index(source + "    return b\n")

    wrong = "def f(a):\n    b = a * 2\n    return a\n"
    assert applied(wrong)["def f(a):\n    b = a * 2\n    return b\n"] in ("return", "variable")

    # No `return` added to __init__, generators, or functions ending in raise/return.
    for body in (
        "class K:\n    def __init__(self, a):\n        self.a = b = a\n",
        "def f(a):\n    b = a\n    yield b\n",
        "def f(a):\n    b = a\n    raise ValueError(b)\n",
    ):
        name = "__init__" if "__init__" in body else "f"
        assert not any("return b" in t for t in applied(body, name)), body


def test_a_dropped_call_at_the_end_of_a_branch_becomes_a_return() -> None:
    source = src(
        """
        def camel(text, upper=True):
            if upper:
                text.title()
            else:
                return text.lower()
        """
    )
    fixed = source.replace("        text.title()", "        return text.title()")
    assert applied(source, "camel")[fixed] == "return"
    assert run(fixed, "camel")("ab") == "Ab" and run(source, "camel")("ab") is None
    # a computed value dropped the same way
    expr = source.replace("text.title()", "text[0].upper() + text[1:]")
    fixed = expr.replace("        text[0]", "        return text[0]")
    assert applied(expr, "camel")[fixed] == "return"
    # not a call kept for its effect, nor in a function that returns nothing
    kept = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x)\n    return out\n"
    assert "return out.append(x)" not in "".join(applied(kept))
    plain = "def f(log):\n    log.info('x')\n"
    assert "return log.info" not in "".join(applied(plain))


def test_the_one_return_of_a_function_forgotten() -> None:
    # a function that returns nothing and ends with a value nobody keeps: its one return
    # was forgotten (`word.replace(...)` makes a new string and changes nothing)
    source = "def dasherize(word):\n    word.replace('_', '-')\n"
    fixed = "def dasherize(word):\n    return word.replace('_', '-')\n"
    assert applied(source, "dasherize")[fixed] == "return"
    assert run(fixed, "dasherize")("a_b") == "a-b" and run(source, "dasherize")("a_b") is None
    computed = "def area(w, h):\n    w * h\n"
    assert applied(computed, "area")["def area(w, h):\n    return w * h\n"] == "return"
    # a plain call is offered too (it may have been kept for its effect: lower)
    called = "def tableize(word):\n    pluralize(word)\n"
    assert "def tableize(word):\n    return pluralize(word)\n" in applied(called, "tableize")
    # not a dunder's value, nor a docstring
    init = "class A:\n    def __init__(self, x):\n        x.copy()\n"
    assert not any("return x.copy()" in text for text in applied(init, "__init__"))
    doc = 'def f():\n    "Nothing."\n'
    assert not any("return" in text for text in applied(doc, "f"))


def test_quotient_and_remainder_are_swapped() -> None:
    source = "def last_digit(n):\n    return n // 10\n"
    fixed = "def last_digit(n):\n    return n % 10\n"
    assert applied(source, "last_digit")[fixed] == "arithmetic"
    assert applied(fixed, "last_digit")[source] == "arithmetic"


def test_sibling_statements_copy_jumps_and_assignments() -> None:
    source = src(
        """
        def f(items):
            seen = []
            for x in items:
                if x > 0:
                    seen.append(x)
                    continue
                elif x < -10:
                    break
                else:
                    x = -x
            try:
                y = int(seen[0])
            except IndexError:
                y = None
                log = True
            return seen, y
        """
    )
    found = applied(source)
    kinds = {text: kind for text, kind in found.items() if kind == "sibling-statement"}
    # `continue` goes to the end of the else branch...
    assert source.replace("x = -x\n", "x = -x\n            continue\n") in kinds
    # ... but not into the elif, which ends in its own jump; its append goes before it.
    assert not any(
        "continue\n            break" in t or "break\n            continue" in t for t in kinds
    )
    assert (
        source.replace("            break\n", "            seen.append(x)\n            break\n")
        in kinds
    )
    # try/except: the except branch's extra assignment is copied into the try body.
    assert source.replace("y = int(seen[0])\n", "y = int(seen[0])\n        log = True\n") in kinds


# --------------------------------------------------------------------------------------
# Properties: every candidate parses, touches only the function, and is distinct


def _check_candidates(source: str, name: str, found: list[Candidate]) -> None:
    start, end = span(source, name)
    lines = source.splitlines(keepends=True)
    before, after = "".join(lines[: start - 1]), "".join(lines[end:])
    texts = set()
    for c in found:
        assert c.kind in KINDS
        assert c.path == "pkg/mod.py"
        new = c.apply(source)
        ast.parse(new)  # raises on a candidate that does not parse
        assert new.startswith(before) and new.endswith(after), c
        assert start <= c.line <= end, c
        assert source[: c.start].count("\n") + 1 == c.line, c
        assert new not in texts and new != source, c
        texts.add(new)
    scores = [c.score for c in found]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("case", BUGS, ids=str)
def test_every_candidate_parses_and_changes_only_the_function(case: str) -> None:
    name, source, *_ = BUGS[case]
    source = "import os\n\n\n" + source.lstrip("\n") + "\n\ndef after():\n    return 1\n"
    found = candidates_for(source, name, limit=1000)
    assert found
    _check_candidates(source, name, found)


def test_properties_on_a_real_method_in_a_class() -> None:
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    found = candidates_for(source, "_wrap_chunks")
    assert len(found) == 200  # the default limit
    _check_candidates(source, "_wrap_chunks", found)
    assert {c.kind for c in found} >= {"comparison", "off-by-one", "negation", "arithmetic"}


def test_rewrites_that_do_not_parse_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real templates rarely make one, so inject some beside the real ones."""
    source = "def f(x, y):\n    x += 1\n    if x < y:\n        return x\n    return y\n"
    data = source.encode()
    lt, plus = data.index(b"<"), data.index(b"+=")
    end = data.index(b"return x") + len("return x")
    bogus = [
        Mutation("comparison", lt, lt + 1, "< <", 1.0),  # inside an expression
        Mutation("comparison", lt - 2, lt - 1, "x y", 1.0),  # two names in a row
        Mutation("negation", lt - 3, lt - 2, "", 1.0),  # `ifx`: words run together
        Mutation("arithmetic", plus, plus + 2, "+==", 1.0),  # inside a simple statement
        Mutation("return", end, end, "\nreturn x", 1.0),  # out of the function
        Mutation("return", end, end, "\n        else:", 1.0),  # an insertion that breaks
        Mutation("comparison", lt, lt + 1, "==", 0.1, "kept"),  # a valid one
    ]
    real = mutations_module.generate
    monkeypatch.setattr(
        mutations_module, "generate", lambda fn, query, module=None: [*bogus, *real(fn, query)]
    )
    found = mutations(source, "m.py", 1, 5, limit=1000)
    assert any(c.description == "line 3: kept" for c in found)
    for c in found:
        ast.parse(c.apply(source))
    descriptions = {c.description for c in found}
    assert "line 3: `<` -> `< <`" not in descriptions
    assert not any("+==" in c.replacement or "return x" == c.replacement.strip() for c in found)
    assert not any("else" in c.replacement or "x y" in c.replacement for c in found)
    assert not any(c.start == c.end - 1 and c.replacement == "" for c in found)


def test_non_ascii_text_and_crlf_line_breaks() -> None:
    source = src(
        """
        # Ünïcode before the function: offsets are characters, not bytes.
        def f(größe, b):
            if größe < b:
                größe += 1
            else:
                b = "é"
                größe -= 1
            return größe
        """
    ).replace("\n", "\r\n")
    found = candidates_for(source, "f", limit=1000)
    _check_candidates(source, "f", found)
    assert source.replace("größe < b", "größe <= b") in {c.apply(source) for c in found}
    for c in found:
        new = c.apply(source)
        assert new.count("\n") == new.count("\r\n"), c  # inserted lines keep CRLF


def test_nested_functions_and_the_range_that_picks_them() -> None:
    source = src(
        """
        def outer(a):
            def inner(b):
                return b < 1
            return inner(a) and a > 2
        """
    )
    inner = mutations(source, "m.py", 3, 3)
    assert inner and all(2 <= c.line <= 3 for c in inner)
    outer = mutations(source, "m.py", 1, 4, limit=1000)
    assert {c.line for c in outer} >= {3, 4}
    # The inner function's parameter is not an outer local.
    assert not any(c.kind == "variable" and c.replacement == "b" and c.line == 4 for c in outer)


def test_no_candidates_outside_python_functions() -> None:
    assert mutations("x = 1 < 2\n", "m.py", 1, 1) == []
    assert mutations("function f(a) { return a < 1; }\n", "m.js", 1, 1) == []
    assert mutations("def f(a):\n    return a < 1\n", "m.py", 1, 2, limit=0) == []
    assert len(mutations("def f(a):\n    return a < 1 + 2 * a\n", "m.py", 1, 2, limit=3)) == 3
    # A function that does not parse has no clean tree to check candidates against.
    assert mutations("def f(a):\n    return a < (1\n", "m.py", 1, 2) == []


def test_the_query_ships_as_package_data() -> None:
    resource = importlib.resources.files("hone.agent.repair.queries") / "python-mutations.scm"
    assert resource.is_file()
    query = load_mutation_query("python")
    assert query is not None and query.capture_count > 10
    assert load_mutation_query("cobol") is None


def test_a_200_line_function_gets_the_full_candidate_limit() -> None:
    # Its speed (well under 100 ms) is measured by `make bench-mutations`, not here.
    spec = importlib.util.spec_from_file_location("bench_mutations", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    source = bench.big_function()
    assert len(source.splitlines()) > 200
    found = mutations(source, "big.py", 1, 205)
    assert len(found) == 200
    assert len({c.apply(source) for c in found}) == 200  # 200 different programs
