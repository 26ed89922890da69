"""The mutation templates of :mod:`hone.agent.repair.mutations`, Python.

Each template reads the captures of ``queries/python-mutations.scm`` over one
function and yields mutations (:class:`Mutation`): a span of the function's text (byte
offsets), its replacement, and a weight in (0, 1] that orders the alternatives
within the kind (the kind's prior and the hot lines are applied by the ranking in
``mutations.py``). Templates do not check syntax; ``mutations.py`` does.

- ``comparison``: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``is`` <->
  ``is not``, ``in`` <-> ``not in``; the other direction (``<`` <-> ``>``) ranks lower.
- ``arithmetic``: ``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` <-> ``/``, and the same for
  augmented assignments (``+=`` <-> ``-=``...); no ``+`` of a string or list literal.
- ``boolean``: ``and`` <-> ``or``.
- ``off-by-one``: an integer literal +-1; an index, slice bound or ``range()``
  argument ``E`` -> ``E + 1`` / ``E - 1``; ``E + 1`` / ``E - 1`` -> ``E``; ``len(x)``
  -> ``len(x) - 1`` (and ``+ 1``, lower).
- ``negation``: the condition of an if / elif / while / ternary / ``assert`` gets or
  loses a ``not`` (a lone ``==``, ``is`` or ``in`` comparison is left to the
  comparison template, which negates it more idiomatically); so does each operand of
  an ``and``/``or`` condition, and any ``not`` loses it.
- ``swap-args``: two adjacent positional arguments of a call (not of ``min``/``max``,
  whose order does not matter).
- ``variable``: a read of a local name or parameter replaced by another one of the
  function, at most :data:`VARIABLE_FANOUT` per site, preferring names used in the
  same position (the same argument of the same callee, the same side of the same
  operator...), of the same apparent kind (indexed like a container, used as an index
  or in arithmetic, with the same attributes) and bound before the site.
- ``return``: a value dropped at the end of a block (a call, an operation, a name...), in
  a function that returns values, -> ``return <value>``, and the last statement of a
  function that returns none when it is a value nobody keeps (a computation, a method that
  only makes a new value such as ``word.replace(...)``; lower a plain call) -> ``return
  <value>`` (its one return forgotten); ``return E`` -> ``return <local>``
  (the locals bound nearest before the return first), a bare ``return`` ->
  ``return <local>``, and for a function that falls off its end: ``return <local>``
  appended, the last computed local first.
- ``sibling-statement``: a statement (an assignment, a call, ``break``, ``continue``,
  ``return``, ``raise``...) that one branch of an if/elif/else or try/except has and
  a sibling branch lacks is copied into it: at the end when it ends its own branch
  (before a final jump of the other), at the start when it starts it, otherwise after
  the statement that precedes it in both.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import tree_sitter
from hone.retrieval.syntax import parser_for

if TYPE_CHECKING:
    from hone.agent.repair.ingredients import ModuleFacts

__all__ = [
    "RETURN_FANOUT",
    "VARIABLE_FANOUT",
    "FunctionText",
    "Mutation",
    "generate",
    "named_children",
    "short",
]

VARIABLE_FANOUT = 3  # replacement names tried per variable site
RETURN_FANOUT = 3  # locals tried per return site
_SIBLING_FANOUT = 6  # statements copied from one branch into one sibling


class Mutation(NamedTuple):
    """One rewrite of a span of the function's text."""

    kind: str
    start: int  # byte offsets into the function's text
    end: int
    replacement: str
    weight: float  # plausibility within the kind, (0, 1]
    summary: str = ""  # the description, when "`old` -> `new`" does not fit


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


class FunctionText:
    """The lines of one function, parsed on their own (offsets are into ``data``)."""

    def __init__(self, source: str, first_row: int, last_row: int, column: int) -> None:
        starts = _line_starts(source)
        self.first_row = first_row
        self.char_start = starts[first_row]
        char_end = starts[last_row + 1] if last_row + 1 < len(starts) else len(source)
        self.text = source[self.char_start : char_end]
        self.data = self.text.encode("utf-8")
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.parser = parser_for("python")
        self.tree = self.parser.parse(self.data)
        self.rows = [0, *(m.end() for m in re.finditer(b"\n", self.data))]
        self._chars: list[int] | None = None
        if len(self.data) != len(self.text):  # not ASCII: map bytes to characters
            chars, offset = [], 0
            for ch in self.text:
                chars.extend([offset] * len(ch.encode("utf-8")))
                offset += 1
            chars.append(offset)
            self._chars = chars
        node = self.tree.root_node.descendant_for_point_range((0, column), (0, column))
        while node is not None and node.type != "function_definition":
            node = node.parent
        self.node = node

    def text_of(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def char(self, offset: int) -> int:
        """Character offset in the whole source of byte ``offset`` of the function."""
        return self.char_start + (offset if self._chars is None else self._chars[offset])

    def row(self, offset: int) -> int:
        return bisect.bisect_right(self.rows, offset) - 1

    def line(self, offset: int) -> int:
        """1-based line in the whole source of byte ``offset``."""
        return self.first_row + self.row(offset) + 1

    def point(self, offset: int) -> tuple[int, int]:
        row = self.row(offset)
        return row, offset - self.rows[row]

    def indent(self, row: int) -> str:
        start = self.rows[row]
        end = self.rows[row + 1] if row + 1 < len(self.rows) else len(self.data)
        line = self.data[start:end].decode("utf-8", "replace")
        return line[: len(line) - len(line.lstrip(" \t"))]

    def line_end(self, offset: int) -> int:
        """The offset of the end of the line holding ``offset`` (before its line break)."""
        end = self.data.find(b"\n", offset)
        if end < 0:
            return len(self.data)
        return end - 1 if end > 0 and self.data[end - 1] == 0x0D else end

    def starts_line(self, node: tree_sitter.Node) -> bool:
        """Whether only indentation precedes ``node`` on its line."""
        return not self.data[self.rows[node.start_point.row] : node.start_byte].strip()


def _captures(fn: FunctionText, query: tree_sitter.Query) -> dict[str, list[tree_sitter.Node]]:
    found = tree_sitter.QueryCursor(query).captures(fn.node)
    caps: dict[str, list[tree_sitter.Node]] = defaultdict(list)
    lo, hi = fn.node.start_byte, fn.node.end_byte
    for name, nodes in found.items():
        kept = [n for n in nodes if lo <= n.start_byte and n.end_byte <= hi]
        caps[name] = sorted(kept, key=lambda n: (n.start_byte, -n.end_byte))
    return caps


def _key(node: tree_sitter.Node) -> tuple[int, int, str]:
    return node.start_byte, node.end_byte, node.type


def _same(a: tree_sitter.Node | None, b: tree_sitter.Node | None) -> bool:
    return a is not None and b is not None and _key(a) == _key(b)


def named_children(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [child for child in node.named_children if child.type != "comment"]


# --------------------------------------------------------------------------------------
# Operators


_COMPARISON = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "is": "is not",
    "is not": "is",
    "in": "not in",
    "not in": "in",
}
_COMPARISON_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
_NEGATABLE = {"==", "!=", "is", "is not", "in", "not in"}
_ARITHMETIC = {
    "+": ("-",),
    "-": ("+",),
    "*": ("/",),
    "/": ("//", "*"),
    "//": ("/", "%"),  # quotient and remainder: a common mix-up in integer arithmetic
    "%": ("//",),
}
_AUGMENTED = {
    "+=": ("-=",),
    "-=": ("+=",),
    "*=": ("/=",),
    "/=": ("//=", "*="),
    "//=": ("/=", "%="),
    "%=": ("//=",),
}
_BOOLEAN = {"and": "or", "or": "and"}
_SEQUENCE_LITERALS = {
    "string",
    "concatenated_string",
    "list",
    "tuple",
    "list_comprehension",
    "dictionary",
}


def _operator_text(fn: FunctionText, node: tree_sitter.Node) -> str:
    return " ".join(fn.text_of(node).split())  # "is  not" -> "is not"


def _comparisons(
    fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]
) -> Iterator[Mutation]:
    for op in caps["comparison.operator"]:
        text = _operator_text(fn, op)
        if text in _COMPARISON:
            yield Mutation("comparison", op.start_byte, op.end_byte, _COMPARISON[text], 1.0)
        if text in _COMPARISON_FLIP:
            yield Mutation("comparison", op.start_byte, op.end_byte, _COMPARISON_FLIP[text], 0.35)


def _arithmetic(fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]) -> Iterator[Mutation]:
    for table, name in ((_ARITHMETIC, "arithmetic.operator"), (_AUGMENTED, "arithmetic.augmented")):
        for op in caps[name]:
            text = fn.text_of(op)
            if text not in table:
                continue
            parent = op.parent
            if text.startswith("+") and any(
                (side := parent.child_by_field_name(f)) is not None
                and side.type in _SEQUENCE_LITERALS
                for f in ("left", "right")
            ):
                continue  # concatenation, not arithmetic
            for i, new in enumerate(table[text]):
                yield Mutation(
                    "arithmetic", op.start_byte, op.end_byte, new, 1.0 if i == 0 else 0.6
                )


def _boolean(fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]) -> Iterator[Mutation]:
    for op in caps["boolean.operator"]:
        text = fn.text_of(op)
        if text in _BOOLEAN:
            yield Mutation("boolean", op.start_byte, op.end_byte, _BOOLEAN[text], 1.0)


# --------------------------------------------------------------------------------------
# Off-by-one


_ADDABLE = {
    "identifier",
    "call",
    "attribute",
    "subscript",
    "binary_operator",
    "parenthesized_expression",
}
_TIGHT_PARENTS = {"unary_operator", "attribute", "subscript", "call", "await"}


def _int_value(text: str) -> int | None:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        return None


def _operator_of(node: tree_sitter.Node | None) -> str:
    if node is None or node.type not in ("binary_operator", "augmented_assignment"):
        return ""
    op = node.child_by_field_name("operator")
    return op.type if op is not None else ""


def _additive(fn: FunctionText, node: tree_sitter.Node, delta: str) -> str:
    """``node``'s text with ``delta`` ("+ 1") added, in parentheses where precedence needs."""
    text = fn.text_of(node)
    if node.type == "binary_operator" and _operator_of(node) in ("<<", ">>", "&", "|", "^"):
        text = f"({text})"
    result = f"{text} {delta}"
    parent = node.parent
    if parent is None:
        return result
    if parent.type in _TIGHT_PARENTS and not _same(parent.child_by_field_name("subscript"), node):
        return f"({result})"
    if parent.type == "binary_operator":
        op = _operator_of(parent)
        left = _same(parent.child_by_field_name("left"), node)
        if op not in ("+", "-") or not left:
            return f"({result})"
    return result


def _off_by_one(
    fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]], info: _Locals
) -> Iterator[Mutation]:
    bounds = {_key(n) for n in caps["offbyone.bound"]}
    plusones = {_key(n) for n in caps["offbyone.plusone"]}
    for lit in caps["offbyone.literal"]:
        value = _int_value(fn.text_of(lit))
        if value is None:
            continue
        if lit.parent.type == "unary_operator" and fn.text_of(lit.parent).startswith("-"):
            lit, value = lit.parent, -value  # -1 -> -2 / 0, not -0
        parent = lit.parent
        in_sum = _operator_of(parent) in ("+", "-", "+=", "-=")
        if _key(lit) in bounds or parent.type in ("comparison_operator", "slice"):
            weight = 1.0
        else:
            weight = 0.8 if in_sum else 0.5
        for new, w in ((value + 1, weight), (value - 1, weight * (0.9 if value > 0 else 0.5))):
            if new == 0 and in_sum:
                continue  # "+ 0": the same as dropping the term (the plus-one rule does)
            yield Mutation("off-by-one", lit.start_byte, lit.end_byte, str(new), w)
    for bound in caps["offbyone.bound"]:
        if bound.type not in _ADDABLE or _key(bound) in plusones:
            continue
        if bound.type == "identifier" and _not_a_number(fn, info, bound):
            continue  # d[key] with a key used like a string or a container
        # A range() argument or a slice bound over an index: loop bounds are where
        # off-by-one bugs live.
        weight = 0.9 if bound.parent.type == "subscript" else 1.0
        for delta in ("+ 1", "- 1"):
            new = _additive(fn, bound, delta)
            yield Mutation("off-by-one", bound.start_byte, bound.end_byte, new, weight)
    for call in caps["offbyone.len"]:
        parent = call.parent
        if _key(parent) in plusones and _same(parent.child_by_field_name("left"), call):
            continue  # len(x) - 1: the plus-one rule drops the term
        # Inside a sum (`len(x) - k`), the whole sum is the likelier bound to fix.
        weight = 0.7 if _operator_of(parent) in ("+", "-") else 1.0
        for delta, w in (("- 1", weight), ("+ 1", weight * 0.6)):
            new = _additive(fn, call, delta)
            yield Mutation("off-by-one", call.start_byte, call.end_byte, new, w)
    for node in caps["offbyone.plusone"]:
        left = node.child_by_field_name("left")
        if left is None:
            continue
        is_len = left.type == "call" and _callee(fn, left) == "len"
        near = _key(node) in bounds or is_len or node.parent.type == "comparison_operator"
        text = fn.text_of(left)
        if left.type in ("conditional_expression", "lambda", "boolean_operator", "not_operator"):
            text = f"({text})"
        yield Mutation("off-by-one", node.start_byte, node.end_byte, text, 1.0 if near else 0.8)


def _not_a_number(fn: FunctionText, info: _Locals, node: tree_sitter.Node) -> bool:
    """Whether the name's other uses say it holds a string or a container."""
    counts = info.features.get(fn.text_of(node), Counter()).copy()
    counts.subtract(_features(fn, node, _role(fn, node)))
    features = {f for f, n in counts.items() if n > 0}
    return "container" in features and not features & {"index", "number"}


# --------------------------------------------------------------------------------------
# Negation


_LOOSE = {"boolean_operator", "conditional_expression", "lambda", "named_expression"}


def _negated(fn: FunctionText, node: tree_sitter.Node) -> str:
    text = fn.text_of(node)
    return f"not ({text})" if node.type in _LOOSE else f"not {text}"


def _single_negatable(fn: FunctionText, node: tree_sitter.Node) -> bool:
    """A comparison with one operator that the comparison template negates itself."""
    if node.type != "comparison_operator":
        return False
    ops = [_operator_text(fn, c) for c in node.children_by_field_name("operators")]
    return len(ops) == 1 and ops[0] in _NEGATABLE


def _operands(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """The leaves of an and/or tree (through parentheses)."""
    inner = node
    while inner.type == "parenthesized_expression" and named_children(inner):
        inner = named_children(inner)[0]
    if inner.type != "boolean_operator":
        yield node
        return
    for side in ("left", "right"):
        child = inner.child_by_field_name(side)
        if child is not None:
            yield from _operands(child)


def _negation(fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]) -> Iterator[Mutation]:
    done: set[tuple[int, int, str]] = set()
    for cond in caps["negation.condition"]:
        if cond.type in ("not_operator", "true", "false", "none", "integer"):
            continue  # `not` is removed below; `while True:` stays
        if cond.type == "comparison_operator":
            if not _single_negatable(fn, cond):
                yield Mutation("negation", cond.start_byte, cond.end_byte, _negated(fn, cond), 0.6)
        else:
            yield Mutation("negation", cond.start_byte, cond.end_byte, _negated(fn, cond), 1.0)
        if cond.type in ("boolean_operator", "parenthesized_expression"):
            for operand in _operands(cond):
                if _key(operand) in done or _key(operand) == _key(cond):
                    continue
                done.add(_key(operand))
                if operand.type == "not_operator" or _single_negatable(fn, operand):
                    continue
                negated = _negated(fn, operand)
                yield Mutation("negation", operand.start_byte, operand.end_byte, negated, 0.7)
    conditions = {_key(n) for n in caps["negation.condition"]}
    for node in caps["negation.not"]:
        argument = node.child_by_field_name("argument")
        if argument is None:
            continue
        weight = 1.0 if _key(node) in conditions else 0.8
        yield Mutation("negation", node.start_byte, node.end_byte, fn.text_of(argument), weight)


# --------------------------------------------------------------------------------------
# Swapped arguments


_SYMMETRIC_CALLS = {"max", "min", "print"}
_NOT_POSITIONAL = {"keyword_argument", "list_splat", "dictionary_splat", "comment"}


def _callee(fn: FunctionText, call: tree_sitter.Node) -> str:
    function = call.child_by_field_name("function")
    if function is None:
        return ""
    if function.type == "attribute":
        function = function.child_by_field_name("attribute") or function
    return fn.text_of(function)


def _swap_args(fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]) -> Iterator[Mutation]:
    for args in caps["swap.arguments"]:
        call = args.parent
        if call is None or call.type != "call" or _callee(fn, call) in _SYMMETRIC_CALLS:
            continue
        children = [c for c in args.named_children if c.type != "comment"]
        for a, b in zip(children, children[1:], strict=False):
            if a.type in _NOT_POSITIONAL or b.type in _NOT_POSITIONAL:
                continue
            first, second = fn.text_of(a), fn.text_of(b)
            if first == second:
                continue
            between = fn.data[a.end_byte : b.start_byte].decode("utf-8", "replace")
            summary = f"swap `{short(first)}` and `{short(second)}`"
            yield Mutation(
                "swap-args", a.start_byte, b.end_byte, second + between + first, 1.0, summary
            )


# --------------------------------------------------------------------------------------
# Locals: names, where they are bound, how they are used


@dataclass
class _Locals:
    params: dict[str, int] = field(default_factory=dict)  # name -> row
    bound: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # -> rows
    binding_nodes: set[int] = field(default_factory=set)  # start bytes of binding names
    roles: dict[str, Counter[tuple]] = field(default_factory=lambda: defaultdict(Counter))
    features: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    reads: list[tree_sitter.Node] = field(default_factory=list)  # the variable sites
    touched: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # rows
    loop_targets: set[str] = field(default_factory=set)  # names a `for` binds

    def unused(self, name: str) -> bool:
        """Bound (a parameter, an assignment) but never read: a sign it was forgotten."""
        return not self.roles[name]

    def names(self) -> list[str]:
        return sorted({*self.params, *self.bound})

    def first_bound(self, name: str) -> int:
        if name in self.params:
            return -1
        rows = self.bound.get(name)
        return min(rows) if rows else 1 << 30

    def last_bound_before(self, name: str, row: int) -> int:
        """The last row at or before ``row`` binding ``name`` (-1 for a parameter, or none)."""
        rows = [r for r in self.bound.get(name, ()) if r <= row]
        return max(rows) if rows else -1


_NOT_READ_PARENTS = {
    "keyword_argument",
    "function_definition",
    "class_definition",
    "global_statement",
    "nonlocal_statement",
    "dotted_name",
    "aliased_import",
    "import_from_statement",
    "import_statement",
}
_SELF_NAMES = {"self", "cls"}
_CONTAINER_CALLS = {"len", "sorted", "reversed", "enumerate", "sum", "list", "set", "tuple", "iter"}
_NUMBER_OPS = {"+", "-", "*", "/", "//", "%", "**", "+=", "-=", "*=", "/=", "//=", "%="}


def _is_read(node: tree_sitter.Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "keyword_argument":
        return _same(parent.child_by_field_name("value"), node)
    if parent.type == "attribute":
        return not _same(parent.child_by_field_name("attribute"), node)
    return parent.type not in _NOT_READ_PARENTS


def _role(fn: FunctionText, node: tree_sitter.Node) -> tuple:
    """Where ``node`` is used: two uses with the same role are interchangeable in shape."""
    parent = node.parent
    kind = parent.type
    if kind == "argument_list":
        index = [_key(c) for c in named_children(parent)].index(_key(node))
        callee = _callee(fn, parent.parent) if parent.parent.type == "call" else ""
        return ("argument", callee, index)
    if kind == "subscript":
        return (
            "subscript",
            "value" if _same(parent.child_by_field_name("value"), node) else "index",
        )
    if kind == "slice":
        return ("subscript", "index")
    if kind == "attribute":
        return ("attribute", fn.text_of(parent.child_by_field_name("attribute")))
    if kind in ("binary_operator", "augmented_assignment", "boolean_operator"):
        side = "left" if _same(parent.child_by_field_name("left"), node) else "right"
        return (kind, _operator_of(parent) or kind, side)
    if kind == "comparison_operator":
        ops = parent.children_by_field_name("operators")
        left = _same(parent.named_children[0], node)
        return (kind, _operator_text(fn, ops[0]) if ops else "", "left" if left else "right")
    return (kind,)


def _features(fn: FunctionText, node: tree_sitter.Node, role: tuple) -> set:
    """What the use says of the value's kind: container, index, number, callable, attrs."""
    parent = node.parent
    kind = role[0]
    if kind == "subscript":
        return {"container" if role[1] == "value" else "index"}
    if kind == "argument":
        if role[1] in _CONTAINER_CALLS:
            return {"container"}
        return {"index"} if role[1] == "range" else set()
    if kind == "attribute":
        return {("attr", role[1])}
    if kind in ("binary_operator", "augmented_assignment") and role[1] in _NUMBER_OPS:
        return {"number"}
    if kind == "comparison_operator":
        if role[1] in ("in", "not in"):
            left = parent.named_children[0] if parent.named_children else None
            return {"container"} if not _same(left, node) else set()
        return {"number"} if role[1] in ("<", "<=", ">", ">=") else set()
    if kind in ("for_statement", "for_in_clause") and _same(
        parent.child_by_field_name("right"), node
    ):
        return {"container"}
    if kind == "call":
        return {"callable"}
    if kind == "assignment" and _same(parent.child_by_field_name("left"), node):
        value = parent.child_by_field_name("right")
        if value is not None and value.type in ("integer", "float"):
            return {"number"}
        if value is not None and value.type in _SEQUENCE_LITERALS | {"set", "dictionary"}:
            return {"container"}
    return set()


def _locals(fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]) -> _Locals:
    info = _Locals()
    nested = [s for s in caps["scope"] if _key(s) != _key(fn.node)]

    def outside_nested(node: tree_sitter.Node) -> bool:
        return not any(s.start_byte <= node.start_byte < s.end_byte for s in nested)

    for node in caps["local.parameter"]:
        info.binding_nodes.add(node.start_byte)
        if outside_nested(node):
            info.params.setdefault(fn.text_of(node), node.start_point.row)
    for node in caps["local.definition"]:
        info.binding_nodes.add(node.start_byte)
        name = fn.text_of(node)
        if outside_nested(node) and name not in info.params:
            info.bound[name].append(node.start_point.row)
            target = node.parent
            while target is not None and target.type in ("pattern_list", "tuple_pattern"):
                target = target.parent
            if target is not None and target.type == "for_statement":
                info.loop_targets.add(name)
    known = set(info.params) | set(info.bound)
    for node in caps["variable.use"]:
        name = fn.text_of(node)
        if name not in known or not _is_read(node):
            continue
        info.touched[name].append(node.end_point.row)
        role = _role(fn, node)
        info.features[name].update(_features(fn, node, role))
        if node.start_byte in info.binding_nodes:
            continue
        info.roles[name][role] += 1
        if name not in _SELF_NAMES:
            info.reads.append(node)
    return info


def _similarity(info: _Locals, role: tuple, name: str, other: str) -> float:
    """How well ``other`` fits where ``name`` is read: 0-1."""
    same_role = 1.0 if info.roles[other][role] else 0.0
    mine, theirs = set(info.features[name]), set(info.features[other])
    union = mine | theirs
    alike = len(mine & theirs) / len(union) if union else 0.5
    score = 0.5 * same_role + 0.5 * alike
    # A parameter or local that is never read is the likeliest intended name.
    return max(score, 0.8) if info.unused(other) else score


def _variables(fn: FunctionText, info: _Locals) -> Iterator[Mutation]:
    pool = [n for n in info.names() if n not in _SELF_NAMES]
    for node in info.reads:
        name = fn.text_of(node)
        role = _role(fn, node)
        row = node.start_point.row
        scored = []
        for other in pool:
            if other == name:
                continue
            weight = 0.35 + 0.65 * _similarity(info, role, name, other)
            if info.first_bound(other) > row:
                weight *= 0.5  # not bound yet here (unless a loop comes back)
            scored.append((weight, other))
        scored.sort(key=lambda item: (-item[0], item[1]))
        for weight, other in scored[:VARIABLE_FANOUT]:
            yield Mutation("variable", node.start_byte, node.end_byte, other, weight)


# --------------------------------------------------------------------------------------
# Returns


def _value(node: tree_sitter.Node) -> tree_sitter.Node | None:
    named = named_children(node)
    return named[0] if named else None


def _recent_locals(info: _Locals, row: int, *, params: bool = True) -> list[str]:
    """The locals bound at or before ``row``, likeliest result first: the last one
    touched (bound, read or changed, as ``out.append(x)`` changes ``out``) up to
    ``row`` first, loop variables after the others; then the parameters."""
    ranked = []
    for name in info.bound:
        bound = info.last_bound_before(name, row)
        if name in _SELF_NAMES or bound < 0:
            continue
        last = max([r for r in info.touched.get(name, ()) if r <= row], default=bound)
        ranked.append((name in info.loop_targets, -max(last, bound), name))
    ordered = [name for _loop, _last, name in sorted(ranked)]
    if params:
        ordered += [n for n in info.params if n not in _SELF_NAMES and n not in ordered]
    return ordered


# Calls whose value is dropped on purpose: never turned into `return <call>`.
_DROPPED_CALLS = {
    "print", "setattr", "delattr", "exec", "super", "warn", "append", "extend", "insert",
    "remove", "add", "discard", "update", "sort", "reverse", "clear", "write", "close",
    "flush", "put", "sleep", "join", "start", "wait", "send", "emit",
}  # fmt: skip


# Expression statements whose value a missing `return` may have dropped, and how
# plausible that is: a computed value nobody keeps is almost always one; a call may be
# kept for its effect.
_VALUES = {
    "call": 0.9,
    "binary_operator": 1.0,
    "boolean_operator": 1.0,
    "comparison_operator": 1.0,
    "conditional_expression": 1.0,
    "not_operator": 1.0,
    "unary_operator": 1.0,
    "subscript": 1.0,
    "attribute": 0.8,
    "identifier": 0.8,
    "list": 0.8,
    "tuple": 0.8,
    "dictionary": 0.8,
    "set": 0.8,
    "list_comprehension": 1.0,
    "dictionary_comprehension": 1.0,
    "set_comprehension": 1.0,
    "generator_expression": 1.0,
    "integer": 0.6,
    "true": 0.6,
    "false": 0.6,
    "none": 0.6,
}


def _descendants(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        here = stack.pop()
        yield here
        stack.extend(reversed(here.named_children))


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dropped_values(
    fn: FunctionText,
    own: Callable[[tree_sitter.Node], bool],
    statements: list[tree_sitter.Node],
    valued: bool,
    name_node: tree_sitter.Node | None,
) -> Iterator[tuple[tree_sitter.Node, float]]:
    """Expression statements whose value a missing ``return`` may have dropped, with the
    plausibility: in a function that returns values, one at the end of any block
    (``re.sub(...)`` for ``return re.sub(...)``); in a function that returns none, its
    last statement (the whole function's one return forgotten: ``word.replace("_", "-")``
    for ``return word.replace("_", "-")``): a computed value, a method that only makes a
    new value (``_NEW_VALUE_METHODS``), lower a plain call (it may be kept for its effect);
    not other methods (``log.info(...)``)."""
    if valued:
        for node in _descendants(fn.node):
            if node.type != "expression_statement" or not own(node):
                continue
            parent = node.parent
            if parent is None or parent.type != "block" or node.next_named_sibling is not None:
                continue
            weight = _dropped_weight(fn, node)
            if weight:
                yield node, weight
        return
    if not statements or statements[-1].type != "expression_statement":
        return
    if name_node is not None and fn.text_of(name_node).startswith("__"):
        return  # __init__, __setitem__...: their value is not returned
    if len(statements) == 1 and _value(statements[0]) is not None:
        if _value(statements[0]).type == "string":
            return  # a docstring alone
    weight = _dropped_weight(fn, statements[-1])
    value = _value(statements[-1])
    if weight and value is not None:
        function = value.child_by_field_name("function") if value.type == "call" else None
        if function is not None and function.type == "attribute":
            if _callee(fn, value) not in _NEW_VALUE_METHODS:
                return  # `log.info(...)`, `self.items.sort()`: kept for their effect
        elif function is not None:
            weight *= 0.5  # `pluralize(word)`, or `setup(app)`
        yield statements[-1], weight * 0.8


def _dropped_weight(fn: FunctionText, node: tree_sitter.Node) -> float:
    value = _value(node)
    if value is None or value.type not in _VALUES:
        return 0.0
    if value.type == "call" and _callee(fn, value) in _DROPPED_CALLS:
        return 0.0
    return _VALUES[value.type]


# Methods that return a new value and change nothing (str's, mostly): a call of one whose
# value is dropped does nothing at all.
_NEW_VALUE_METHODS = {
    "replace", "format", "strip", "lstrip", "rstrip", "lower", "upper", "title",
    "capitalize", "casefold", "split", "rsplit", "splitlines", "partition", "rpartition",
    "startswith", "endswith", "encode", "decode", "zfill", "ljust", "rjust", "center",
    "translate", "expandtabs", "sub", "subn", "match", "fullmatch", "search", "findall",
    "copy", "get", "count", "index", "find", "rfind",
}  # fmt: skip


def _returns(
    fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]], info: _Locals
) -> Iterator[Mutation]:
    nested = [s for s in caps["scope"] if _key(s) != _key(fn.node)]

    def own(node: tree_sitter.Node) -> bool:
        return not any(s.start_byte <= node.start_byte < s.end_byte for s in nested)

    if any(own(y) for y in caps["return.yield"]):
        return  # a generator: what it returns is rarely the point
    returns = [r for r in caps["return.statement"] if own(r)]
    valued = [r for r in returns if _value(r) is not None]
    for ret in returns:
        value = _value(ret)
        old = fn.text_of(value) if value is not None else ""
        names = [n for n in _recent_locals(info, ret.start_point.row) if n != old]
        if value is None:
            base = 0.7
        else:  # a returned name is more often the wrong one than a computed value
            base = 1.0 if value.type in ("identifier", "attribute", "subscript") else 0.5
        for rank, name in enumerate(names[:RETURN_FANOUT]):
            weight = base * 0.8**rank
            if value is not None:
                yield Mutation("return", value.start_byte, value.end_byte, name, weight)
            else:
                yield Mutation("return", ret.start_byte, ret.end_byte, f"return {name}", weight)
    name_node = fn.node.child_by_field_name("name")
    body = fn.node.child_by_field_name("body")
    statements = named_children(body) if body is not None else []
    for node, weight in _dropped_values(fn, own, statements, bool(valued), name_node):
        text = fn.text_of(node)
        yield Mutation(
            "return", node.start_byte, node.start_byte, "return ", weight,
            f"`{_short(text)}` -> `return {_short(text)}`",
        )  # fmt: skip
    if (
        not statements
        or (name_node is not None and fn.text_of(name_node) == "__init__")
        or statements[-1].type in ("return_statement", "raise_statement")
        or not fn.starts_line(statements[0])
    ):
        return
    last = statements[-1]
    at = fn.line_end(last.end_byte)
    indent = fn.indent(statements[0].start_point.row)
    for rank, name in enumerate(_recent_locals(info, last.end_point.row, params=False)):
        if rank == RETURN_FANOUT:
            break
        weight = (0.5 if valued else 1.0) * 0.8**rank
        text = f"return {name}"
        yield Mutation("return", at, at, fn.newline + indent + text, weight, f"insert `{text}`")


# --------------------------------------------------------------------------------------
# A statement missing from one branch that its sibling has


_COPYABLE = {
    "expression_statement",
    "return_statement",
    "break_statement",
    "continue_statement",
    "raise_statement",
    "delete_statement",
    "assert_statement",
}
_JUMPS = {"return_statement", "break_statement", "continue_statement", "raise_statement"}


def _branches(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    blocks: list[tree_sitter.Node | None] = []
    if node.type == "if_statement":
        blocks.append(node.child_by_field_name("consequence"))
        for clause in node.children_by_field_name("alternative"):
            if clause.type == "elif_clause":
                blocks.append(clause.child_by_field_name("consequence"))
            elif clause.type == "else_clause":
                blocks.append(clause.child_by_field_name("body"))
    elif node.type == "try_statement":
        blocks.append(node.child_by_field_name("body"))
        for clause in node.named_children:
            if clause.type in ("except_clause", "except_group_clause"):
                blocks.extend(c for c in clause.named_children if c.type == "block")
            elif clause.type == "else_clause":
                blocks.append(clause.child_by_field_name("body"))
    return [b for b in blocks if b is not None and b.type == "block"]


def _normal(fn: FunctionText, node: tree_sitter.Node) -> str:
    return " ".join(fn.text_of(node).split())


def _copy_weight(fn: FunctionText, node: tree_sitter.Node) -> float:
    if node.type in _JUMPS:
        return 1.0
    inner = _value(node)
    if inner is not None and inner.type in ("assignment", "augmented_assignment"):
        return 0.8
    return 0.6


def _own_lines(fn: FunctionText, block: tree_sitter.Node) -> bool:
    """A block with statements, the first on a line of its own (not `if x: y`)."""
    statements = named_children(block)
    return bool(statements) and fn.starts_line(statements[0])


def _sibling_statements(
    fn: FunctionText, caps: Mapping[str, list[tree_sitter.Node]]
) -> Iterator[Mutation]:
    for statement in [*caps["sibling.if"], *caps["sibling.try"]]:
        blocks = [b for b in _branches(statement) if _own_lines(fn, b)]
        for source in blocks:
            mine = named_children(source)
            for target in blocks:
                if _key(target) == _key(source):
                    continue
                yield from _copies(fn, mine, named_children(target))


def _copies(
    fn: FunctionText, mine: list[tree_sitter.Node], theirs: list[tree_sitter.Node]
) -> Iterator[Mutation]:
    present = [_normal(fn, s) for s in theirs]
    made = 0
    my_indent = fn.indent(mine[0].start_point.row)
    indent = fn.indent(theirs[0].start_point.row)
    ends_in_jump = theirs[-1].type in _JUMPS
    for i, statement in enumerate(mine):
        if made == _SIBLING_FANOUT:
            return
        text = _normal(fn, statement)
        inner = _value(statement)
        if statement.type not in _COPYABLE or text in present:
            continue
        if statement.type == "expression_statement" and (inner is None or inner.type == "string"):
            continue  # a docstring or an odd expression
        if statement.type in _JUMPS and ends_in_jump:
            continue  # unreachable after the other branch's own jump
        copied = fn.text_of(statement).replace("\n" + my_indent, "\n" + indent)
        previous = _normal(fn, mine[i - 1]) if i > 0 else None
        if i == len(mine) - 1 or statement.type in _JUMPS:
            anchor = theirs[-2] if ends_in_jump and len(theirs) > 1 else theirs[-1]
            after = not (ends_in_jump and len(theirs) == 1)
        elif i == 0:
            anchor, after = theirs[0], False
        elif previous in present:
            anchor, after = theirs[present.index(previous)], True
        else:
            anchor, after = theirs[-1], not ends_in_jump
        if after:
            at = fn.line_end(anchor.end_byte)
            replacement = fn.newline + indent + copied
        else:
            at = anchor.start_byte
            replacement = copied + fn.newline + indent
        source_line = fn.line(statement.start_byte)
        summary = f"insert `{short(copied)}` (as on line {source_line})"
        yield Mutation(
            "sibling-statement", at, at, replacement, _copy_weight(fn, statement), summary
        )
        made += 1


def short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def generate(
    fn: FunctionText, query: tree_sitter.Query, module: ModuleFacts | None = None
) -> Iterator[Mutation]:
    """Every mutation of every template, unranked and unchecked; with ``module`` (the
    facts of the whole file, :func:`.ingredients.module_facts`), also the templates that
    take their replacement from the rest of the module (:mod:`.ingredients`)."""
    caps = _captures(fn, query)
    info = _locals(fn, caps)
    yield from _comparisons(fn, caps)
    yield from _off_by_one(fn, caps, info)
    yield from _negation(fn, caps)
    yield from _arithmetic(fn, caps)
    yield from _boolean(fn, caps)
    yield from _variables(fn, info)
    yield from _returns(fn, caps, info)
    yield from _swap_args(fn, caps)
    yield from _sibling_statements(fn, caps)
    if module is not None:
        from hone.agent.repair import ingredients

        yield from ingredients.constants(fn, module)
        yield from ingredients.calls(fn, module)
        yield from ingredients.attributes(fn, module)
        yield from ingredients.statements(fn, module)
