"""hone.agent.repair.ingredients: templates whose replacement comes from the module."""

from __future__ import annotations

import textwrap
from collections import Counter

from hone.agent.repair.ingredients import FANOUT, module_facts
from hone.agent.repair.mutations import mutations

MODULE = textwrap.dedent(
    '''
    """A module docstring."""

    LIMIT = 10
    NAMES = {"id": "ident", "nm": "name"}


    def pair(a, b=0, *rest):
        """Its docstring."""
        return a, b


    class Box:
        def __init__(self, width, height):
            self.width = width
            self.height = height

        def area(self, scale):
            return self.width * self.height * scale


    def show(box, label):
        print(f"{label}: {box.width}")
        flag = True
        return pair(box.width, LIMIT), box.area(2), str(label).upper(), flag
    '''
).lstrip("\n")


def test_module_facts() -> None:
    facts = module_facts(MODULE)
    strings = facts.literals["string"]
    assert strings == Counter({'"id"': 1, '"ident"': 1, '"nm"': 1, '"name"': 1})  # no docstrings
    assert facts.literals["number"] == Counter({"10": 1, "0": 1, "2": 1})
    assert facts.literals["bool"] == Counter({"True": 1})
    assert facts.defined["pair"] == (1, 1 << 20)  # a, b=0, *rest
    assert facts.defined["area"] == (1, 1)  # self left out
    assert facts.calls["pair"] == Counter({2: 1}) and facts.calls["print"] == Counter({1: 1})
    assert facts.methods["upper"] == Counter({0: 1}) and facts.methods["area"] == Counter({1: 1})
    assert facts.attributes["self"] == Counter({"width": 2, "height": 2})  # set and read
    assert facts.attributes["box"] == Counter({"width": 2})
    assert "area" not in facts.attributes["box"]  # called: a method, not an attribute


def _changes(source: str, name: str, kind: str) -> list[str]:
    """The changed lines of ``kind``'s candidates for the function ``name``."""
    lines = source.split("\n")
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"def {name}("))
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" " * 5)):
        end += 1
    out = []
    for c in mutations(source, "m.py", start + 1, end, limit=1000):
        if c.kind == kind:
            new = c.apply(source).split("\n")
            out.append(next(n.strip() for o, n in zip(lines, new, strict=False) if o != n))
    return out


def test_constants() -> None:
    found = _changes(MODULE, "show", "constant")
    assert "flag = False" in found  # booleans flip
    assert not any("docstring" in line for line in found)
    assert not any(line.startswith("print(") for line in found)  # f-strings are left alone
    two = [line for line in found if line.startswith("return") and "box.area(" in line]
    assert "return pair(box.width, LIMIT), box.area(0), str(label).upper(), flag" in two
    assert len({line for line in two if "box.area(2)" not in line}) <= FANOUT
    # the docstring of `pair` is not a site, and a string becomes a similar string first
    source = 'NAMES = {"ident": 1, "identity": 2, "x": 3}\n\n\ndef f():\n    return "idnt"\n'
    strings = _changes(source, "f", "constant")
    assert strings[0] == 'return "ident"'


def test_constants_that_change_nothing_are_left_out_and_short_strings_are_alike() -> None:
    # `'_'` -> `"_"` is the same value: a candidate that cannot fix anything, and two
    # spellings of one value are one candidate
    source = textwrap.dedent(
        """
        SEPARATORS = ["_", '_', "-", "spaces and more"]


        def humanize(word):
            return word.replace('_', ' ')
        """
    ).lstrip("\n")
    found = _changes(source, "humanize", "constant")
    assert "return word.replace(\"_\", ' ')" not in found
    underscore = ["return word.replace('_', '_')", "return word.replace('_', \"_\")"]
    assert sum(line in found for line in underscore) == 1
    # a one-character string is more often confused with another one-character string
    # than with a long one
    dash = "return word.replace('_', \"-\")"
    long = "return word.replace('_', \"spaces and more\")"
    assert found.index(dash) < found.index(long)


def test_map_and_filter_are_each_others_mistake() -> None:
    source = "def count(pred, xs):\n    return sum(filter(pred, xs))\n"
    assert _changes(source, "count", "call")[0] == "return sum(map(pred, xs))"


def test_calls_take_names_that_accept_the_arguments() -> None:
    found = _changes(MODULE, "show", "call")
    assert "return pair(box.width, LIMIT), box.area(2), str(label).lower(), flag" in found
    source = textwrap.dedent(
        """
        def one(x):
            return x


        def two(x, y):
            return y


        def f(v):
            return max(one(v), 1)
        """
    ).lstrip("\n")
    calls = _changes(source, "f", "call")
    assert calls[0] == "return min(one(v), 1)"  # the opposite first
    assert "return max(two(v), 1)" not in calls  # two needs two arguments
    assert "return max(f(v), 1)" in calls


def test_attributes_come_from_names_of_the_same_kind() -> None:
    source = textwrap.dedent(
        """
        def size(p, q):
            return q.right - p.left


        def other(r):
            r.top = 1
            return r.right + r.top
        """
    ).lstrip("\n")
    found = _changes(source, "size", "attribute")
    assert "return q.right - p.right" in found
    assert "return q.left - p.left" in found
    writes = _changes(source, "other", "attribute")
    assert "return r.top + r.top" in writes
    assert "r.right = 1" not in writes  # a write is not a read


def test_a_deleted_assignment_comes_back_from_a_sibling_function() -> None:
    source = textwrap.dedent(
        """
        import collections


        def merge(*dicts, factory=dict):
            rv = factory()
            for d in dicts:
                rv.update(d)
            return rv


        def groups(seqs):
            a = collections.defaultdict(list)
            for seq in seqs:
                a[len(seq)].append(seq)
            return a


        def assoc(d, key, value, factory=dict):
            d2.update(d)
            d2[key] = value
            return d2
        """
    ).lstrip("\n")
    found = [
        c
        for c in mutations(source, "m.py", 18, 21, hot_lines={19: 1.0})
        if c.kind == "insert-statement"
    ]
    # `d2` is read and bound nowhere: the sibling's `rv = factory()` assigns it, first
    # (not `d2 = collections.defaultdict(list)`: assoc uses `factory`, not `collections`)
    assert found[0].description == "line 19: insert `d2 = factory()` (from elsewhere in the module)"
    fixed = found[0].apply(source)
    namespace: dict = {}
    exec(fixed, namespace)
    assert namespace["assoc"]({"a": 1}, "b", 2) == {"a": 1, "b": 2}
    assert found[1].replacement.strip() == "d2 = collections.defaultdict(list)"  # second
    # a statement reading names not bound at the insertion point is not offered
    assert not any("rv.update(d)" in c.replacement and c.line == 19 for c in found)
