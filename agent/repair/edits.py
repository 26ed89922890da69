"""The model's edits: search-and-replace blocks, parsed, checked and applied.

The format, as code agents widely use it (aider's "diff" edit format)::

    path/to/file.py
    <<<<<<< SEARCH
    exact old lines
    =======
    new lines
    >>>>>>> REPLACE

:func:`parse_edits` reads every block out of a model's reply, however it is
wrapped: prose around and between blocks, Markdown fences (the path line may come
before or after the opening fence: bare, in backticks, in bold, as a heading, after
``File:``), several blocks and files, CRLF line breaks. A block with no path line
above it continues the previous block's file; the first takes ``default_path``.
Marker lines may carry 5 to 9 of their character.

:func:`apply_edits` applies them in order to the workspace's texts and returns the
new texts of the files they change, or raises :class:`EditError` with the reason
(``EditError.code`` names it for the repair loop's statistics):

- ``outside``: the path is absolute, climbs out with ``..``, or is not one of the
  workspace's files (``files``);
- ``test-file``: the path is a test file (``test_*.py``, ``*_test.py``,
  ``conftest.py``, anything under a ``tests/`` or ``test/`` folder): a candidate fixes
  the code, never the test that judges it;
- ``not-allowed``: the caller's ``allowed(path)`` said no;
- ``empty-search``: the SEARCH part is empty (it would match anywhere);
- ``not-found`` / ``ambiguous``: the SEARCH text must occur exactly once. An exact
  match is tried first; failing that, a line-wise match that ignores trailing
  whitespace and a uniform indentation difference (the model wrote the lines 4
  columns further left, say): every non-blank SEARCH line must equal the file's
  line with the same prefix added or removed, blank lines match blank lines. The
  REPLACE lines are then shifted by the same prefix;
- ``syntax``: a changed Python file (``.py``, ``.pyi``) no longer parses
  (:func:`ast.parse`); checked once all of a file's edits are applied.

A file with CRLF line breaks gets its SEARCH and REPLACE texts in CRLF too.

:func:`special_cases_inputs` flags a patch that special-cases the failing test's
inputs (``if x == 17: return 42``); :func:`unified_diff` renders a change for the
user, with git's ``a/`` and ``b/`` headers.
"""

from __future__ import annotations

import ast
import difflib
import posixpath
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import tree_sitter
from hone.retrieval.syntax import parser_for

__all__ = [
    "Edit",
    "EditError",
    "apply_edits",
    "function_edit",
    "is_test_path",
    "parse_edits",
    "special_cases_inputs",
    "unified_diff",
]


@dataclass(frozen=True)
class Edit:
    """Replace ``search`` (exact lines of the file at ``path``) with ``replace``."""

    path: str
    search: str
    replace: str


class EditError(ValueError):
    """A reply's edits that cannot be parsed or applied; ``reason`` says why."""

    def __init__(self, reason: str, *, code: str = "", edit: Edit | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # outside, test-file, not-allowed, empty-search, not-found, ...
        self.edit = edit


# --------------------------------------------------------------------------------------
# Parsing


_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$", re.IGNORECASE)
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$", re.IGNORECASE)
_FENCE = re.compile(r"^\s*(```|~~~)")
_PATH_LABEL = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)
_PATH = re.compile(r"[\w.\-/\\]+")


def _path_from(line: str) -> str | None:
    """The path a line names (``pkg/mod.py``, `` `pkg/mod.py` ``, ``**File: x.py**``)."""
    text = re.sub(r"^#+\s*", "", line.strip())  # a Markdown heading
    text = _PATH_LABEL.sub("", text.strip("*`'\"").strip())
    text = text.strip("*`'\":").strip()
    if not _PATH.fullmatch(text) or text.endswith((".", "/")):
        return None
    if "/" not in text and "\\" not in text and not re.search(r"\.\w+$", text):
        return None  # a lone word of prose ("Fix:"), not a file
    return text.replace("\\", "/")


def _block_path(lines: list[str], at: int, stop: int) -> str | None:
    """The path named by the line above line ``at`` (blank and fence lines skipped, not
    past line ``stop``), if it names one."""
    for i in range(at - 1, stop - 1, -1):
        line = lines[i].strip()
        if line and not _FENCE.match(line):
            return _path_from(line)
    return None


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def parse_edits(text: str, *, default_path: str | None = None) -> list[Edit]:
    """Every SEARCH/REPLACE block in ``text``, in order (see the module docstring).

    Raises :class:`EditError` (code ``malformed``) for a block left unfinished or
    without any path.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    edits: list[Edit] = []
    previous: str | None = None
    i, after_last = 0, 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        path = _block_path(lines, i, after_last) or previous or default_path
        if path is None:
            raise EditError(f"line {i + 1}: a SEARCH block with no file path", code="malformed")
        divider = next((j for j in range(i + 1, len(lines)) if _DIVIDER.match(lines[j])), None)
        if divider is None:
            raise EditError(f"line {i + 1}: a SEARCH block without =======", code="malformed")
        close = next((j for j in range(divider + 1, len(lines)) if _REPLACE.match(lines[j])), None)
        if close is None:
            raise EditError(
                f"line {i + 1}: a SEARCH block not closed by >>>>>>> REPLACE", code="malformed"
            )
        edits.append(
            Edit(path, _joined(lines[i + 1 : divider]), _joined(lines[divider + 1 : close]))
        )
        previous = path
        i = after_last = close + 1
    return edits


_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")


def function_edit(text: str, name: str, path: str, function: str) -> Edit | None:
    """The edit a reply makes when, instead of SEARCH/REPLACE blocks, it gives the whole
    function rewritten (what small models tend to do): the last definition of ``name``
    (the last part of a qualified ``Class.method``) in the reply, in a fenced block or
    bare, from its ``def`` line to the end of its body, re-indented as ``function`` (the
    function's current text) is, replacing ``function``. None when the reply holds no such
    definition, or only the function unchanged."""
    short_name = name.rsplit(".", 1)[-1]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found: list[str] | None = None
    i = 0
    while i < len(lines):
        match = _DEF.match(lines[i])
        if not match or match.group(2) != short_name:
            i += 1
            continue
        indent = len(match.group(1).expandtabs())
        body = [lines[i]]
        j = i + 1
        while j < len(lines):
            line = lines[j]
            if _FENCE.match(line):
                break
            if (
                line.strip()
                and len(line) - len(line.lstrip()) <= indent
                and not (
                    body[-1].rstrip().endswith(("(", ",", "[", "{", "\\"))
                    or line.lstrip()[:1] in ")]}"
                )
            ):
                break  # dedented: the body ended (a continued signature is not a dedent)
            body.append(line)
            j += 1
        while body and not body[-1].strip():
            body.pop()
        found = [line[indent:] if line[:indent].strip() == "" else line.lstrip() for line in body]
        i = j
    if not found:
        return None
    old_lines = function.rstrip("\n").split("\n")
    start = next((k for k, line in enumerate(old_lines) if _DEF.match(line)), 0)
    prefix = old_lines[start][: len(old_lines[start]) - len(old_lines[start].lstrip())]
    search = old_lines[start:]
    replace = [prefix + line if line.strip() else "" for line in found]
    if [line.rstrip() for line in replace] == [line.rstrip() for line in search]:
        return None
    return Edit(path, _joined(search), _joined(replace))


# --------------------------------------------------------------------------------------
# Applying


def is_test_path(path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is a test file (``test_*.py``,
    ``*_test.py``, ``conftest.py``) or lies in a ``tests``/``test``/``testing`` folder."""
    parts = path.split("/")
    name = parts[-1]
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    return any(part in ("tests", "test", "testing") for part in parts[:-1])


def _normal_path(path: str) -> str | None:
    """``path`` made relative and ``/``-separated; None if it leaves the workspace."""
    path = path.strip().replace("\\", "/")
    if not path or path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return None
    if ".." in path.split("/"):
        return None
    normal = posixpath.normpath(path)
    return None if normal in (".", "") else normal


def _check_path(path: str, files: Mapping[str, str], allowed: Callable[[str], bool]) -> str:
    normal = _normal_path(path)
    if normal is None:
        raise EditError(f"{path}: outside the workspace", code="outside")
    key = normal if normal in files else (path if path in files else None)
    if key is None:
        raise EditError(f"{path}: not a file of the workspace", code="outside")
    if is_test_path(normal):
        raise EditError(
            f"{path}: a test file; candidates change source files only", code="test-file"
        )
    if not allowed(key):
        raise EditError(f"{path}: not allowed to change", code="not-allowed")
    return key


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shift(search: list[str], window: list[str]) -> tuple[str, str] | None:
    """(added, removed): the indentation prefix that turns the SEARCH lines into the
    window's lines (trailing whitespace aside), or None if they differ otherwise."""
    pairs = [(s, w) for s, w in zip(search, window, strict=True) if s.strip() or w.strip()]
    if not pairs or any(not s.strip() or not w.strip() for s, w in pairs):
        return None
    s0, w0 = _indent(pairs[0][0]), _indent(pairs[0][1])
    if w0.endswith(s0):
        added, removed = w0[: len(w0) - len(s0)], ""
    elif s0.endswith(w0):
        added, removed = "", s0[: len(s0) - len(w0)]
    else:
        return None
    for s, w in pairs:
        if not s.startswith(removed) or added + s[len(removed) :].rstrip() != w.rstrip():
            return None
    return added, removed


def _lines(text: str) -> list[str]:
    """``text``'s lines, each with its line break (only ``\n`` ends a line: a form feed
    or other separators that ``str.splitlines`` honours do not)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _fuzzy(text: str, search: str, replace: str) -> list[str]:
    """Every result of replacing a loose match of ``search`` (see the module docstring)."""
    lines = _lines(text)
    wanted = [line.rstrip("\r\n") for line in _lines(search)]
    while wanted and not wanted[-1].strip():
        wanted.pop()
    while wanted and not wanted[0].strip():
        wanted.pop(0)
    if not wanted:
        return []
    results = []
    bare = [line.rstrip("\r\n") for line in lines]
    for start in range(len(lines) - len(wanted) + 1):
        shift = _shift(wanted, bare[start : start + len(wanted)])
        if shift is None:
            continue
        added, removed = shift
        newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
        new_lines = []
        for line in (line.rstrip("\r\n") for line in _lines(replace)):
            if line.strip():
                line = added + (line[len(removed) :] if line.startswith(removed) else line)
            new_lines.append(line + newline)
        end = start + len(wanted)
        if new_lines and not lines[end - 1].endswith("\n"):
            new_lines[-1] = new_lines[-1].rstrip("\r\n")
        results.append("".join(lines[:start] + new_lines + lines[end:]))
    return results


def _replace_once(text: str, edit: Edit, path: str) -> str:
    search, replace = edit.search, edit.replace
    if not search.strip():
        raise EditError(f"{path}: the SEARCH text is empty", code="empty-search", edit=edit)
    if "\r\n" in text and "\r\n" not in search:
        search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
    first = text.find(search)
    if first >= 0:
        if text.find(search, first + 1) >= 0:
            count = text.count(search)
            raise EditError(
                f"{path}: the SEARCH text occurs {count} times; it must match exactly once",
                code="ambiguous",
                edit=edit,
            )
        return text[:first] + replace + text[first + len(search) :]
    results = _fuzzy(text, search, replace)
    if len(results) == 1:
        return results[0]
    if results:
        raise EditError(
            f"{path}: the SEARCH text matches {len(results)} places (ignoring indentation"
            " and trailing whitespace); it must match exactly once",
            code="ambiguous",
            edit=edit,
        )
    head = next((line.strip() for line in search.splitlines() if line.strip()), "")
    raise EditError(
        f"{path}: the SEARCH text is not in the file (first line: {head[:80]!r})",
        code="not-found",
        edit=edit,
    )


def _check_syntax(path: str, text: str) -> None:
    if not path.endswith((".py", ".pyi")):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not our concern
            ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        line = getattr(error, "lineno", None)
        where = f"{path}:{line}" if line else path
        message = getattr(error, "msg", None) or str(error)
        raise EditError(f"{where}: the result does not parse: {message}", code="syntax") from None


def apply_edits(
    files: Mapping[str, str],
    edits: Iterable[Edit],
    *,
    allowed: Callable[[str], bool] = lambda path: True,
) -> dict[str, str]:
    """The new texts of the files ``edits`` change (keyed as in ``files``); raises
    :class:`EditError` for the first edit that cannot be applied (see the module
    docstring). ``files`` maps workspace-relative paths to their current texts."""
    changed: dict[str, str] = {}
    for edit in edits:
        key = _check_path(edit.path, files, allowed)
        current = changed.get(key, files[key])
        changed[key] = _replace_once(current, edit, edit.path)
    for key, text in changed.items():
        _check_syntax(key, text)
    return {key: text for key, text in changed.items() if text != files[key]}


# --------------------------------------------------------------------------------------
# Special-casing the test's inputs


# Literals too common to count as the test's: base cases legitimately compare with them.
_TRIVIAL = {0, 1, -1, 2, ""}
_LITERAL_NODES = {"integer", "float", "string", "concatenated_string", "true", "false", "none"}
_COLLECTIONS = {"tuple", "list", "set", "parenthesized_expression"}
_LITERAL = "<literal>"


def _value(node: tree_sitter.Node, data: bytes) -> tuple[bool, object]:
    """(is a literal, its value or None when it is too common or unhashable)."""
    if node.type == "unary_operator":
        operand = node.named_children[0] if node.named_child_count == 1 else None
        if operand is None or operand.type not in ("integer", "float"):
            return False, None
    elif node.type not in _LITERAL_NODES:
        return False, None
    text = data[node.start_byte : node.end_byte].decode("utf-8", "replace")
    try:
        value = ast.literal_eval(text)
        hash(value)
    except Exception:  # an f-string, an odd literal: a literal all the same
        return True, None
    if value is None or isinstance(value, bool) or value in _TRIVIAL:
        return True, None
    return True, value


def _literals(node: tree_sitter.Node, data: bytes) -> set[object]:
    """Every literal value in ``node``'s subtree (numbers with their sign, strings)."""
    found: set[object] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        literal, value = _value(current, data)
        if literal:
            if value is not None:
                found.add(value)
        else:
            stack.extend(current.children)
    return found


def _operand(node: tree_sitter.Node, data: bytes) -> set[object] | None:
    """The values of an operand that is a literal or a collection of literals, else None."""
    literal, value = _value(node, data)
    if literal:
        return {value} - {None}
    if node.type in _COLLECTIONS and node.named_child_count:
        values: set[object] = set()
        for child in node.named_children:
            inner = _operand(child, data)
            if inner is None:
                return None
            values |= inner
        return values
    return None


def _comparisons(root: tree_sitter.Node, data: bytes) -> list[tuple[tuple[str, ...], set]]:
    """Each comparison and ``case`` pattern: (its shape with literals blanked out, the
    literal values it tests against)."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "comparison_operator":
            shape, values = [], set()
            for child in node.children:
                inner = _operand(child, data) if child.is_named else None
                if inner is None:
                    shape.append(" ".join(_text(child, data).split()))
                else:
                    shape.append(_LITERAL)
                    values |= inner
            found.append((tuple(shape), values))
        elif node.type == "case_clause":
            match = node.parent.parent if node.parent is not None else None
            subject = match.child_by_field_name("subject") if match is not None else None
            subject_text = _text(subject, data) if subject is not None else ""
            patterns = [c for c in node.named_children if c.type == "case_pattern"]
            values = set().union(*(_literals(p, data) for p in patterns))
            found.append((("case", " ".join(subject_text.split())), values))
        stack.extend(node.children)
    return found


def _text(node: tree_sitter.Node, data: bytes) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _tree(text: str) -> tuple[tree_sitter.Node, bytes]:
    data = text.encode("utf-8")
    return parser_for("python").parse(data).root_node, data


def special_cases_inputs(old: str, new: str, test_source: str) -> bool:
    """Whether ``new`` special-cases the failing test's inputs: it adds a comparison
    (or a ``case``) against a literal that the test's source contains and ``old`` does
    not, as in ``if x == 17: return 42`` for a test of ``f(17) == 42``.

    A comparison is *added* when ``old`` has none of the same shape (the same operators
    and non-literal operands): moving a bound (``n > 3`` -> ``n > 4``) is a fix, not a
    special case. Literals as common as 0, 1, -1, 2, "", None, True and False do not
    count (base cases compare with them). Fragments and files that do not parse are
    read as far as tree-sitter can.
    """
    new_root, new_data = _tree(new)
    old_root, old_data = _tree(old)
    old_shapes = {shape for shape, _values in _comparisons(old_root, old_data)}
    suspicious: set[object] = set()
    for shape, values in _comparisons(new_root, new_data):
        if shape not in old_shapes:
            suspicious |= values
    if not suspicious:
        return False
    suspicious -= _literals(old_root, old_data)
    if not suspicious:
        return False
    test_root, test_data = _tree(test_source)
    return bool(suspicious & _literals(test_root, test_data))


# --------------------------------------------------------------------------------------


def unified_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff of one file (``diff --git a/p b/p``, ``--- a/p``,
    ``+++ b/p``, 3 lines of context); "" when nothing changed."""
    if old == new:
        return ""
    body = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    ):
        if line.endswith("\n"):
            body.append(line)
        else:
            body.append(line + "\n\\ No newline at end of file\n")
    return f"diff --git a/{path} b/{path}\n" + "".join(body)
