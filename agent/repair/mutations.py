"""Single-point mutations of a Python function: candidate patches for the repair loop.

:func:`mutations` takes the function that spans the given lines, finds the mutation
sites with the tree-sitter query ``queries/python-mutations.scm`` and rewrites each
site with the templates of :mod:`hone.agent.repair.templates` (comparison,
arithmetic, boolean, off-by-one, negation, swap-args, variable, return,
sibling-statement: the list is in that module's docstring) and those of
:mod:`hone.agent.repair.ingredients`, whose replacements come from the rest of the
file (constant, call, attribute, insert-statement), one change per candidate.

Ranking: ``score = PRIORS[kind] * weight * hot``. The prior per kind follows what
studies of one-statement bug fixes report as most frequent (Pan, Kim and Whitehead,
"Toward an understanding of bug fix patterns", 2009: if-condition changes lead;
Karampatsis and Sutton's ManySStuBs4J, 2020; the QuixBugs benchmark, Lin et al.
2017: wrong comparison operators, off-by-one bounds and missing or wrong conditions
are its commonest defect classes): comparisons, off-by-one and negations first;
operators next; wrong variables and returns after them, because each site offers
several alternatives of which at most one is right; swapped arguments and missing
statements after those; the module's ingredients last (each site offers the most
alternatives, taken from elsewhere). ``weight`` (0-1] orders the alternatives within a
kind (a literal used as a bound over one used elsewhere, the most similar variable,
...). ``hot`` is
1 off ``hot_lines`` and ``1 + HOT_BOOST * w / max(w)`` on a hot line of weight ``w``
(a line the failing test runs, a traceback frame's line): a site on the hottest line
ranks up to three times higher.

Validity: every candidate re-parses without errors (tree-sitter). The function's
lines are parsed on their own, once; a change inside one expression re-parses that
expression alone, in parentheses, and must give a node of the same type (a change
inside a simple statement but outside any expression re-parses that statement); an
inserted statement re-parses the function incrementally from its tree, which must
keep its shape. Replacements that would run into a neighbouring word get a space
(``if(x)`` -> ``if not (x)``). Candidates are checked best first until ``limit`` pass:
a 200-line function's 200 candidates took 40-60 ms on two cores busy with other work
(``test_a_200_line_function_takes_well_under_100_ms``). Candidates are
distinct (by the resulting text; the higher-scored of two equal ones is kept), change
only the function's lines, and come best first. Other languages give ``[]``.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tree_sitter
from hone.agent.repair.ingredients import module_facts
from hone.agent.repair.templates import FunctionText, Mutation, generate, named_children, short
from hone.retrieval.syntax import language_for_path, language_object, parser_for

__all__ = ["HOT_BOOST", "KINDS", "PRIORS", "Candidate", "load_mutation_query", "mutations"]

# Plausibility of one candidate of each kind as the fix of a real single-point bug
# (see the module docstring for where the order comes from).
PRIORS: dict[str, float] = {
    "comparison": 1.0,
    "off-by-one": 0.95,
    "negation": 0.85,
    "arithmetic": 0.7,
    "boolean": 0.7,
    "variable": 0.6,
    "return": 0.6,
    "swap-args": 0.5,
    "sibling-statement": 0.5,
    # replacements taken from the rest of the module (ingredients.py): many per site
    "call": 0.45,
    "constant": 0.4,
    "attribute": 0.4,
    "insert-statement": 0.35,
}
KINDS = tuple(PRIORS)
HOT_BOOST = 2.0  # the hottest line's candidates score (1 + HOT_BOOST) times higher


@dataclass(frozen=True)
class Candidate:
    """One single-point change of ``source``: replace ``source[start:end]``."""

    path: str  # as given to mutations()
    description: str  # human readable: "line 12: `<` -> `<=`"
    kind: str  # one of KINDS
    start: int  # character offsets into the source of the replaced span
    end: int
    replacement: str
    line: int  # 1-based line of the change (of `start`; an insertion's anchor line)
    score: float  # plausibility, higher first

    def apply(self, source: str) -> str:
        """``source`` with this change made."""
        return source[: self.start] + self.replacement + source[self.end :]


@functools.cache
def load_mutation_query(language: str = "python") -> tree_sitter.Query | None:
    """``hone.agent.repair.queries/<language>-mutations.scm``; None without grammar or file.

    A file that does not compile raises: it ships with the package, so that is a bug.
    """
    lang = language_object(language)
    if lang is None:
        return None
    resource = importlib.resources.files("hone.agent.repair.queries") / f"{language}-mutations.scm"
    if not resource.is_file():
        return None
    return tree_sitter.Query(lang, resource.read_text(encoding="utf-8"))


# Nodes that are (parts of) one expression: a change inside the outermost of them is
# checked by parsing it alone, in parentheses.
_EXPRESSION_NODES = {
    "identifier",
    "integer",
    "float",
    "true",
    "false",
    "none",
    "ellipsis",
    "string",
    "string_content",
    "concatenated_string",
    "interpolation",
    "format_specifier",
    "escape_sequence",
    "binary_operator",
    "comparison_operator",
    "boolean_operator",
    "not_operator",
    "unary_operator",
    "call",
    "argument_list",
    "keyword_argument",
    "list_splat",
    "dictionary_splat",
    "attribute",
    "subscript",
    "slice",
    "parenthesized_expression",
    "conditional_expression",
    "named_expression",
    "lambda",
    "lambda_parameters",
    "await",
    "list",
    "tuple",
    "set",
    "dictionary",
    "pair",
    "list_comprehension",
    "set_comprehension",
    "dictionary_comprehension",
    "generator_expression",
    "for_in_clause",
    "if_clause",
    "expression_list",
}
_SIMPLE_STATEMENTS = {
    "expression_statement",
    "return_statement",
    "assert_statement",
    "delete_statement",
    "raise_statement",
    "global_statement",
    "nonlocal_statement",
}
_COMPOUND_NODES = {"block", "function_definition", "class_definition", "module"}


class _Checker:
    """Whether a change of a function's text leaves it parsing cleanly."""

    def __init__(self, fn: FunctionText) -> None:
        self.fn = fn
        self.data = fn.data
        self.parser = fn.parser
        self.shape = [child.type for child in fn.tree.root_node.children]
        self._units: dict[tuple[bool, bytes], str | None] = {}

    def parses(self, new: bytes, start: int, end: int, replacement: bytes) -> bool:
        """Whether ``new`` (this text with ``[start:end]`` replaced) parses cleanly.

        A change inside one expression or one simple statement re-parses that unit alone
        (an expression in parentheses, where any line layout is valid): the rest of the
        text is unchanged and parsed cleanly before. Other changes (inserted statements)
        re-parse the function incrementally from its tree.
        """
        unit = self._unit(start, end)
        if unit is not None:
            node, wrap = unit
            before, after = self.data[start - 1 : start], self.data[end : end + 1]
            if (_word(before) and _word(replacement[:1])) or (
                _word(after) and _word(replacement[-1:])
            ):
                return False  # two words run together: fine alone, not in place
            kind = self._standalone(wrap, self.data[node.start_byte : node.end_byte])
            if kind is not None:  # the unit parses alone: so must its changed text
                text = (
                    self.data[node.start_byte : start]
                    + replacement
                    + self.data[end : node.end_byte]
                )
                return self._standalone(wrap, text) == kind
        return self._reparse(new, start, end, replacement)

    def _unit(self, start: int, end: int) -> tuple[tree_sitter.Node, bool] | None:
        """The outermost expression holding the span (True), else its simple statement."""
        if start == end:
            return None
        node = self.fn.node.descendant_for_byte_range(start, end)
        while node is not None and not node.is_named:
            node = node.parent
        top = None
        while node is not None and node.type in _EXPRESSION_NODES:
            top, node = node, node.parent
        if top is not None:
            return top, True
        while node is not None and node.type not in _SIMPLE_STATEMENTS:
            if node.type in _COMPOUND_NODES:
                return None
            node = node.parent
        return (node, False) if node is not None else None

    def _standalone(self, wrap: bool, text: bytes) -> str | None:
        """The type of the one node ``text`` parses to on its own; None on an error."""
        key = (wrap, text)
        if key not in self._units:
            data = b"(" + text + b")" if wrap else text
            root = self.parser.parse(data).root_node
            named = named_children(root)
            result = None
            if not root.has_error and len(named) == 1:
                node = named[0]
                if wrap and node.type == "expression_statement" and len(named_children(node)) == 1:
                    node = named_children(node)[0]
                if node.start_byte == 0 and node.end_byte == len(data):
                    result = node.type
            self._units[key] = result
        return self._units[key]

    def _reparse(self, new: bytes, start: int, end: int, replacement: bytes) -> bool:
        tree = self.fn.tree.copy()
        row, column = self.fn.point(start)
        lines = replacement.split(b"\n")
        new_end = (row + len(lines) - 1, (column if len(lines) == 1 else 0) + len(lines[-1]))
        tree.edit(
            start_byte=start,
            old_end_byte=end,
            new_end_byte=start + len(replacement),
            start_point=(row, column),
            old_end_point=self.fn.point(end),
            new_end_point=new_end,
        )
        root = self.parser.parse(new, tree).root_node
        return not root.has_error and [child.type for child in root.children] == self.shape


def _locate(source: str, start_line: int, end_line: int) -> FunctionText | None:
    """The innermost function holding the lines (else the one overlapping them most)."""
    parser = parser_for("python")
    if parser is None:
        return None
    root = parser.parse(source.encode("utf-8")).root_node
    first, last = start_line - 1, max(start_line, end_line) - 1
    inside: list[tree_sitter.Node] = []
    overlapping: list[tuple[int, int, tree_sitter.Node]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        top, bottom = node.start_point.row, node.end_point.row
        if top > last or bottom < first:
            continue
        if node.type == "function_definition":
            if top <= first and bottom >= last:
                inside.append(node)
            else:
                overlap = min(bottom, last) - max(top, first) + 1
                overlapping.append((overlap, top - bottom, node))
        stack.extend(node.children)
    if inside:
        node = min(inside, key=lambda n: n.end_byte - n.start_byte)
    elif overlapping:
        node = max(overlapping, key=lambda item: item[:2])[2]
    else:
        return None
    fn = FunctionText(source, node.start_point.row, node.end_point.row, node.start_point.column)
    if fn.node is None or fn.tree.root_node.has_error:
        return None  # no clean parse to keep: nothing to check candidates against
    return fn


def _word(byte: bytes) -> bool:
    return bool(byte) and (byte.isalnum() or byte == b"_" or byte[0] >= 0x80)


def _spaced(data: bytes, mut: Mutation) -> Mutation:
    """``mut`` with a space where its replacement would run into a neighbouring word
    (``if(x)`` negated is ``if not (x)``, not ``ifnot (x)``)."""
    replacement = mut.replacement
    if not replacement:
        return mut
    old = data[mut.start : mut.end]
    first, last = replacement[:1].encode(), replacement[-1:].encode()
    if _word(data[mut.start - 1 : mut.start]) and _word(first) and not _word(old[:1]):
        replacement = " " + replacement
    if _word(data[mut.end : mut.end + 1]) and _word(last) and not _word(old[-1:]):
        replacement += " "
    return mut if replacement == mut.replacement else mut._replace(replacement=replacement)


def _hot(hot_lines: Mapping[int, float] | None) -> Callable[[int], float]:
    weights = {line: w for line, w in (hot_lines or {}).items() if w > 0}
    if not weights:
        return lambda line: 1.0
    top = max(weights.values())
    return lambda line: 1.0 + HOT_BOOST * weights.get(line, 0.0) / top


def mutations(
    source: str,
    path: str,
    start_line: int,
    end_line: int,
    *,
    hot_lines: Mapping[int, float] | None = None,
    limit: int = 200,
) -> list[Candidate]:
    """Single-point mutations of the function spanning ``start_line``-``end_line`` (1-based,
    inclusive), the most plausible fix first; at most ``limit``. ``hot_lines`` maps
    1-based lines to weights (higher: more suspicious). Python only; else ``[]``."""
    if limit <= 0 or language_for_path(path) != "python":
        return []
    query = load_mutation_query("python")
    if query is None:
        return []
    fn = _locate(source, start_line, end_line)
    if fn is None:
        return []
    hot = _hot(hot_lines)
    checker = _Checker(fn)
    ranked = []
    for mut in generate(fn, query, module_facts(source)):
        line = fn.line(mut.start)
        ranked.append((PRIORS[mut.kind] * mut.weight * hot(line), line, mut))
    ranked.sort(key=lambda item: (-item[0], item[1], item[2].start, item[2].replacement))
    out: list[Candidate] = []
    seen = {fn.data}
    for score, line, mut in ranked:
        mut = _spaced(fn.data, mut)
        replacement = mut.replacement.encode("utf-8")
        new = fn.data[: mut.start] + replacement + fn.data[mut.end :]
        if new in seen:
            continue
        seen.add(new)
        if not checker.parses(new, mut.start, mut.end, replacement):
            continue
        old = fn.data[mut.start : mut.end].decode("utf-8", "replace")
        summary = mut.summary or f"`{short(old)}` -> `{short(mut.replacement)}`"
        out.append(
            Candidate(
                path=path,
                description=f"line {line}: {summary}",
                kind=mut.kind,
                start=fn.char(mut.start),
                end=fn.char(mut.end),
                replacement=mut.replacement,
                line=line,
                score=round(score, 6),
            )
        )
        if len(out) == limit:
            break
    return out
