"""Mutation templates that take their replacements from the rest of the module.

The operator templates of :mod:`.templates` rewrite a site with what the site itself
suggests (``<`` -> ``<=``, a name -> another local). A wrong constant, a call of the wrong
function or a read of the wrong attribute needs an *ingredient* from elsewhere: the
classic answer (GenProg's and PraPR's "the fix is already in the program", the
plastic-surgery hypothesis; PIT's and PraPR's constant, method-call and field-access
mutators) is to take it from the same file. So:

- ``constant``: a literal (a string, a number, ``True``/``False``) -> another literal of
  the same type that the module uses (alike first: a string's contents compared without
  its quotes, and two strings of one or two characters at least half alike; then those
  the function uses too, then the most used); ``True`` <-> ``False``; a number -> ``0`` /
  ``1``; a non-empty string -> ``""``. A replacement of the same value (``'_'`` ->
  ``"_"``) is left out, and of two spellings of one value only the first is kept.
  Docstrings and f-strings are left alone.
- ``call``: ``f(...)`` -> ``g(...)`` where ``g`` is defined in the module or called
  there with as many positional arguments, and accepts them; ``x.m(...)`` -> ``x.n(...)``
  where ``n`` is a method called in the module with as many positional arguments. A few
  pairs of opposites (``min``/``max``, ``map``/``filter``, ``lower``/``upper``, ``startswith``/
  ``endswith``...) come first; then the most similar names.
- ``attribute``: ``x.a`` (read, not called) -> ``x.b`` where the module sets or reads
  ``b`` on ``x``, or on a name that shares another attribute with ``x`` (likely of its
  kind), first; then any attribute of the module, the most similar first.
- ``insert-statement``: a one-line assignment or call of another function of the module,
  inserted before a statement where every name it reads is bound, the function lacking
  it; an assignment to a name that the function reads but nothing binds is also offered
  renamed to that name (``rv = factory()`` -> ``d2 = factory()``).

At most :data:`FANOUT` alternatives per site (:data:`STATEMENT_FANOUT` statements per
insertion point). The facts of a module are read once per
source text (:func:`module_facts`).
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter
from hone.agent.repair.templates import FunctionText, Mutation, _same, named_children, short

__all__ = [
    "FANOUT",
    "ModuleFacts",
    "attributes",
    "calls",
    "constants",
    "module_facts",
    "statements",
]

FANOUT = 3  # alternatives per site
MAX_LITERAL = 40  # longer literals are neither mutated nor used as replacements

# Names that are each other's likeliest mistake (both directions).
_OPPOSITES = [
    ("min", "max"),
    ("map", "filter"),
    ("any", "all"),
    ("lower", "upper"),
    ("startswith", "endswith"),
    ("lstrip", "rstrip"),
    ("strip", "lstrip"),
    ("strip", "rstrip"),
    ("append", "extend"),
    ("appendleft", "append"),
    ("pop", "popleft"),
    ("keys", "values"),
    ("values", "items"),
    ("keys", "items"),
    ("find", "rfind"),
    ("index", "rindex"),
    ("split", "rsplit"),
    ("sorted", "reversed"),
    ("list", "tuple"),
    ("set", "frozenset"),
    ("isinstance", "issubclass"),
    ("getattr", "hasattr"),
    ("floor", "ceil"),
    ("title", "capitalize"),
]
OPPOSITES: dict[str, set[str]] = defaultdict(set)
for _a, _b in _OPPOSITES:
    OPPOSITES[_a].add(_b)
    OPPOSITES[_b].add(_a)

_LITERALS = {"string", "integer", "float", "true", "false"}
_BOOLEANS = {"True": "False", "False": "True"}


@dataclass
class ModuleFacts:
    """What a module uses: the ingredients of the templates here."""

    literals: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # plain callees and methods: name -> Counter of positional-argument counts
    calls: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    methods: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    # functions the module defines: name -> (fewest, most) positional arguments
    defined: dict[str, tuple[int, int]] = field(default_factory=dict)
    # receiver name -> attribute names set or read on it (not called)
    attributes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # one-line simple statements inside functions: normalized text -> (names read, names set)
    statements: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    # names bound at module level: definitions, imports, assignments
    globals: set[str] = field(default_factory=set)


def _text(data: bytes, node: tree_sitter.Node) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _literal_type(node: tree_sitter.Node, data: bytes) -> str | None:
    """The literal's type when it may be mutated or used as a replacement, else None."""
    kind = node.type
    if kind not in _LITERALS:
        return None
    if kind in ("true", "false"):
        return "bool"
    if (
        node.end_byte - node.start_byte > MAX_LITERAL
        or b"\n" in data[node.start_byte : node.end_byte]
    ):
        return None
    parent = node.parent
    if kind == "string":
        if any(c.type == "interpolation" for c in node.named_children):
            return None  # an f-string
        if parent is not None and parent.type in ("expression_statement", "concatenated_string"):
            return None  # a docstring, or a piece of an implicit concatenation
    if parent is not None and parent.type == "unary_operator":
        return None  # -1: the operator's operand; the literal is the whole expression
    return "number" if kind in ("integer", "float") else kind


def _positional(arguments: tree_sitter.Node | None) -> int | None:
    """How many positional arguments a call passes; None with ``*args`` (unknown)."""
    if arguments is None or arguments.type != "argument_list":
        return None
    n = 0
    for child in named_children(arguments):
        if child.type in ("list_splat", "dictionary_splat"):
            return None
        if child.type != "keyword_argument":
            n += 1
    return n


def _arity(function: tree_sitter.Node) -> tuple[int, int]:
    """The fewest and most positional arguments a definition takes (a method's
    ``self``/``cls`` not counted)."""
    params = function.child_by_field_name("parameters")
    low = high = 0
    unbounded = False
    names: list[str] = []
    for child in named_children(params) if params is not None else []:
        if child.type in ("identifier", "typed_parameter"):
            low += 1
            high += 1
            names.append(child.text.decode() if child.text else "")
        elif child.type in ("default_parameter", "typed_default_parameter"):
            high += 1
            names.append("")
        elif child.type == "list_splat_pattern":
            unbounded = True
        elif child.type == "keyword_separator":
            break
    parent = function.parent
    if parent is not None and parent.type == "decorated_definition":
        parent = parent.parent
    if parent is not None and parent.type == "block" and parent.parent is not None:
        if parent.parent.type == "class_definition" and names and names[0] in ("self", "cls"):
            low, high = max(0, low - 1), high - 1
    return low, (1 << 20) if unbounded else high


@functools.lru_cache(maxsize=16)
def module_facts(source: str) -> ModuleFacts:
    """The literals, callees, definitions and attribute reads of a Python module."""
    from hone.retrieval.syntax import parser_for

    facts = ModuleFacts()
    parser = parser_for("python")
    if parser is None:
        return facts
    data = source.encode("utf-8")
    stack = [parser.parse(data).root_node]
    while stack:
        node = stack.pop()
        kind = node.type
        literal = _literal_type(node, data)
        if literal is not None:
            facts.literals[literal][_text(data, node)] += 1
        elif kind == "call":
            function = node.child_by_field_name("function")
            n = _positional(node.child_by_field_name("arguments"))
            if function is not None and n is not None:
                if function.type == "identifier":
                    facts.calls[_text(data, function)][n] += 1
                elif function.type == "attribute":
                    name = function.child_by_field_name("attribute")
                    if name is not None:
                        facts.methods[_text(data, name)][n] += 1
        elif kind in ("function_definition", "class_definition"):
            name = node.child_by_field_name("name")
            if name is not None and kind == "function_definition":
                facts.defined.setdefault(_text(data, name), _arity(node))
            if (
                name is not None
                and node.parent is not None
                and node.parent.type
                in (
                    "module",
                    "decorated_definition",
                )
            ):
                facts.globals.add(_text(data, name))
        elif kind == "expression_statement" and _inside_function(node):
            read, bound = _names(node, data)
            text = _text(data, node)
            if "\n" not in text and len(text) <= MAX_STATEMENT and _worth_inserting(node):
                facts.statements.setdefault(" ".join(text.split()), (read, bound))
        elif kind == "attribute":
            parent = node.parent
            called = (
                parent is not None
                and parent.type == "call"
                and _same(parent.child_by_field_name("function"), node)
            )
            receiver = node.child_by_field_name("object")
            name = node.child_by_field_name("attribute")
            if not called and receiver is not None and receiver.type == "identifier" and name:
                facts.attributes[_text(data, receiver)][_text(data, name)] += 1
        if node.type == "module":
            for child in node.named_children:
                facts.globals.update(_module_bindings(child, data))
        stack.extend(node.children)
    return facts


MAX_STATEMENT = 100  # characters of a statement copied from elsewhere
STATEMENT_FANOUT = 2  # statements inserted before one statement


def _inside_function(node: tree_sitter.Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_definition":
            return True
        parent = parent.parent
    return False


def _worth_inserting(node: tree_sitter.Node) -> bool:
    """An expression statement that is an assignment or a call (not a docstring, not a
    bare name; returns and raises end a block: the return template's business)."""
    inner = named_children(node)
    return bool(inner) and inner[0].type in ("assignment", "augmented_assignment", "call")


def _names(node: tree_sitter.Node, data: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """The plain names a statement reads and the ones it binds."""
    read: set[str] = set()
    bound: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            parent = n.parent
            field_of = None
            if parent is not None:
                for name in ("attribute", "name", "left"):
                    if _same(parent.child_by_field_name(name), n):
                        field_of = name
                        break
            if parent is not None and parent.type == "attribute" and field_of == "attribute":
                pass
            elif parent is not None and parent.type == "keyword_argument" and field_of == "name":
                pass
            elif parent is not None and parent.type == "assignment" and field_of == "left":
                bound.add(_text(data, n))
            else:
                read.add(_text(data, n))
        elif n.type in ("lambda", "list_comprehension", "generator_expression",
                        "set_comprehension", "dictionary_comprehension"):  # fmt: skip
            continue  # their own names: skipped rather than resolved
        stack.extend(n.children)
    return frozenset(read), frozenset(bound)


def _module_bindings(node: tree_sitter.Node, data: bytes) -> set[str]:
    """Names a top-level statement binds (imports, assignments)."""
    out: set[str] = set()
    if node.type in ("import_statement", "import_from_statement"):
        for child in node.named_children:
            if child.type == "dotted_name" and not _same(
                node.child_by_field_name("module_name"), child
            ):
                out.add(_text(data, child).split(".")[0])
            elif child.type == "aliased_import":
                alias = child.child_by_field_name("alias")
                if alias is not None:
                    out.add(_text(data, alias))
    elif node.type == "expression_statement":
        inner = named_children(node)
        if inner and inner[0].type == "assignment":
            left = inner[0].child_by_field_name("left")
            if left is not None and left.type == "identifier":
                out.add(_text(data, left))
    return out


def _alike(a: str, b: str) -> float:
    """How alike two names or literals look, 0-1 (a string literal's quotes left out)."""
    quoted = a[-1:] in ("'", '"') and b[-1:] in ("'", '"')
    a, b = _content(a), _content(b)
    ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    if quoted and len(a) == len(b) <= 2:
        # separators and the like (`"_"`, `"-"`, `", "`): as alike as their kind
        return max(ratio, 0.5)
    return ratio


def _content(text: str) -> str:
    if text[-1:] in ("'", '"'):
        return text.lstrip("rbuRBU").strip(text[-1])
    return text


def _ranked(
    site: str,
    pool: Counter[str],
    extra: dict[str, float] | None = None,
    near: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[float, str]]:
    """``pool``'s entries other than ``site``, weighted by likeness, use and nearness (in
    ``near``: the function uses it too); ``extra`` entries (weight given) join them."""
    top = max(pool.values(), default=1)
    scored: dict[str, float] = {}
    for other, count in pool.items():
        if other != site:
            nearby = 0.1 if other in near else 0.0
            scored[other] = 0.2 + 0.6 * _alike(site, other) + 0.1 * count / top + nearby
    for other, weight in (extra or {}).items():
        if other != site:
            scored[other] = max(scored.get(other, 0.0), weight)
    return sorted(((w, o) for o, w in scored.items()), key=lambda item: (-item[0], item[1]))


def _sites(fn: FunctionText) -> Iterator[tree_sitter.Node]:
    stack = [fn.node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def constants(fn: FunctionText, facts: ModuleFacts) -> Iterator[Mutation]:
    """A literal -> another of the same type from the module (alike, used in the function
    and used often first)."""
    mine: dict[str, set[str]] = defaultdict(set)
    sites = []
    for node in _sites(fn):
        literal = _literal_type(node, fn.data)
        if literal is not None:
            text = fn.text_of(node)
            mine[literal].add(text)
            sites.append((node, literal, text))
    for node, literal, text in sites:
        if literal == "bool":
            yield Mutation("constant", node.start_byte, node.end_byte, _BOOLEANS[text], 1.0)
            continue
        extra: dict[str, float] = {}
        if literal == "number":
            extra = {"0": 0.35, "1": 0.35}
        elif text[-2:] not in ('""', "''") or len(text) > 3:
            quote = text[-1]
            extra = {quote * 2 if quote in "\"'" else '""': 0.3}
        pool = facts.literals.get(literal, Counter())
        values = [_literal_value(text)]  # `'_'` -> `"_"` changes nothing
        ranked = []
        for weight, other in _ranked(text, pool, extra, mine[literal]):
            value = _literal_value(other)
            if value is None or value not in values:
                values.append(value)
                ranked.append((weight, other))
        for weight, other in ranked[:FANOUT]:
            yield Mutation("constant", node.start_byte, node.end_byte, other, weight)


def _literal_value(text: str) -> object:
    """The value of a literal's text (None when it cannot be read alone)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _accepts(facts: ModuleFacts, name: str, n: int) -> bool:
    if name in facts.defined:
        low, high = facts.defined[name]
        return low <= n <= high
    return n in facts.calls.get(name, ())


def calls(fn: FunctionText, facts: ModuleFacts) -> Iterator[Mutation]:
    """``f(...)`` -> ``g(...)`` and ``x.m(...)`` -> ``x.n(...)``, ``g``/``n`` from the module."""
    for node in _sites(fn):
        if node.type != "call":
            continue
        function = node.child_by_field_name("function")
        n = _positional(node.child_by_field_name("arguments"))
        if function is None or n is None:
            continue
        if function.type == "identifier":
            target, name = function, fn.text_of(function)
            pool = Counter(
                {g: sum(facts.calls.get(g, Counter()).values()) or 1
                 for g in {*facts.calls, *facts.defined}
                 if _accepts(facts, g, n) and g != name}
            )  # fmt: skip
        elif function.type == "attribute":
            target = function.child_by_field_name("attribute")
            if target is None:
                continue
            name = fn.text_of(target)
            pool = Counter(
                {m: counts[n] for m, counts in facts.methods.items() if counts[n] and m != name}
            )
        else:
            continue
        extra = {
            other: 1.0
            for other in OPPOSITES.get(name, ())
            if other in pool or function.type == "attribute" or hasattr(builtins, other)
        }
        for weight, other in _ranked(name, pool, extra)[:FANOUT]:
            yield Mutation("call", target.start_byte, target.end_byte, other, weight)


def attributes(fn: FunctionText, facts: ModuleFacts) -> Iterator[Mutation]:
    """``x.a`` (read) -> ``x.b``: ``b`` read off ``x`` elsewhere in the module, or off a
    name that shares another attribute with ``x`` (of the same kind, likely), first; then
    any attribute the module reads."""
    sites = []
    mine: set[str] = set()
    for node in _sites(fn):
        if node.type != "attribute":
            continue
        target = node.child_by_field_name("attribute")
        if target is not None:
            mine.add(fn.text_of(target))
        parent = node.parent
        if (
            parent is not None
            and parent.type == "call"
            and _same(parent.child_by_field_name("function"), node)
        ):
            continue  # a method call: the call template's
        if (
            parent is not None
            and parent.type in ("assignment", "augmented_assignment")
            and _same(parent.child_by_field_name("left"), node)
        ):
            continue  # written, not read
        receiver = node.child_by_field_name("object")
        if receiver is None or target is None or receiver.type != "identifier":
            continue
        sites.append((target, fn.text_of(receiver)))
    anywhere: Counter[str] = Counter()
    for counts in facts.attributes.values():
        anywhere.update(counts)
    for target, receiver in sites:
        name = fn.text_of(target)
        own = facts.attributes.get(receiver, Counter())
        # names read off a receiver that shares an attribute with this one: its kind
        kin: set[str] = set(own)
        for other, counts in facts.attributes.items():
            if other != receiver and set(counts) & (set(own) - {name}):
                kin.update(counts)
        extra = {
            a: 0.5 + 0.3 * _alike(name, a) + (0.1 if a in mine else 0.0) + 0.1 * (a in own)
            for a in kin
        }
        for weight, other in _ranked(name, anywhere, extra, mine)[:FANOUT]:
            yield Mutation("attribute", target.start_byte, target.end_byte, other, weight)


def statements(fn: FunctionText, facts: ModuleFacts) -> Iterator[Mutation]:
    """A one-line assignment or call from another function of the module, inserted before a
    statement of this one where every name it reads is bound (a parameter, a local
    bound earlier, a module name, a builtin) and that the function lacks; an assignment
    whose name the function reads afterwards first."""
    body = fn.node.child_by_field_name("body")
    if body is None or not facts.statements:
        return
    present = set()
    targets: list[tree_sitter.Node] = []
    bound_at: list[tuple[int, set[str]]] = []  # (row, names bound on it)
    params = fn.node.child_by_field_name("parameters")
    available = set(_names(params, fn.data)[0]) if params is not None else set()
    stack = [body]
    while stack:
        node = stack.pop()
        if node.type in ("function_definition", "class_definition", "lambda"):
            continue
        if node.type == "block":
            for child in named_children(node):
                if fn.starts_line(child):
                    targets.append(child)
        if node.type.endswith("_statement"):
            present.add(" ".join(fn.text_of(node).split()))
        if node.type in ("assignment", "augmented_assignment", "for_statement", "with_item"):
            target = node.child_by_field_name("left")
            if node.type == "with_item":
                value = node.child_by_field_name("value")
                target = value.child_by_field_name("alias") if value is not None else None
            bound_at.append((node.start_point.row, _targets(fn, target)))
        stack.extend(node.children)
    reads_after: dict[str, int] = {}  # name -> last row reading it
    for node in _sites(fn):
        if node.type == "identifier":
            name = fn.text_of(node)
            reads_after[name] = max(reads_after.get(name, -1), node.start_point.row)
    scope = available | facts.globals | set(dir(builtins))
    used = set(reads_after)
    everywhere_bound = {n for _row, names in bound_at for n in names}
    # names the function reads but nothing binds: a deleted assignment's, likely
    unbound = sorted(used - scope - everywhere_bound - _attribute_names(fn))
    for target in sorted(targets, key=lambda n: n.start_byte):
        row = target.start_point.row
        here = scope | {n for r, names in bound_at if r < row for n in names}
        scored = []
        for text, (read, bound) in facts.statements.items():
            if text in present or not read or not read <= here:
                continue
            overlap = len((read | bound) & used) / len(read | bound)
            later = any(reads_after.get(name, -1) >= row for name in bound)
            weight = 0.3 + 0.4 * overlap + (0.3 if later else 0.0)
            if bound and bound <= here:
                weight *= 0.7  # rebinds names already bound here
            scored.append((weight, text))
            if len(bound) == 1 and unbound:
                # the same assignment to the name nothing binds
                (name,) = bound
                match = re.match(rf"{re.escape(name)}\s*=(?!=)", text)
                # the more of what it reads the function uses, the likelier
                uses = len(read & used) / len(read)
                for missing in unbound if match else ():
                    if reads_after.get(missing, -1) >= row:
                        scored.append((0.7 + 0.3 * uses, missing + text[len(name) :]))
        scored.sort(key=lambda item: (-item[0], item[1]))
        indent = fn.indent(row)
        for weight, text in scored[:STATEMENT_FANOUT]:
            at = target.start_byte
            summary = f"insert `{short(text)}` (from elsewhere in the module)"
            yield Mutation("insert-statement", at, at, text + fn.newline + indent, weight, summary)


def _attribute_names(fn: FunctionText) -> set[str]:
    """Identifiers that are attribute or keyword names in the function (not variables)."""
    out = set()
    for node in _sites(fn):
        if node.type == "attribute":
            name = node.child_by_field_name("attribute")
            if name is not None:
                out.add(fn.text_of(name))
        elif node.type == "keyword_argument":
            name = node.child_by_field_name("name")
            if name is not None:
                out.add(fn.text_of(name))
    return out


def _targets(fn: FunctionText, node: tree_sitter.Node | None) -> set[str]:
    """The plain names an assignment target binds (``a``, ``a, (b, c)``; not ``a[i]``)."""
    if node is None:
        return set()
    if node.type == "identifier":
        return {fn.text_of(node)}
    if node.type in ("pattern_list", "tuple_pattern", "list_pattern", "as_pattern_target"):
        return {n for child in node.named_children for n in _targets(fn, child)}
    return set()
