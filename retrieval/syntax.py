"""Tree-sitter and plain-text language helpers shared by the agent modules.

Grammars come from the per-language wheels (``tree_sitter_python`` and, when
installed, ``tree_sitter_javascript`` and friends); queries live as ``.scm`` files
in :mod:`hone.retrieval.queries` and are loaded with :mod:`importlib.resources`.

Parsers are cached per thread: a ``tree_sitter.Parser`` is not safe to share
between threads, and the completion pipeline runs in worker threads.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePath

import tree_sitter

__all__ = [
    "LanguageSpec",
    "Scan",
    "detect_indent_unit",
    "indent_width",
    "language_for_path",
    "language_object",
    "load_query",
    "parser_for",
    "scan_text",
    "spec_for",
]

# LSP language identifiers, keyed by lower-case file extension.
_BY_EXTENSION: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".swift": "swift",
    ".dart": "dart",
    ".rb": "ruby",
    ".php": "php",
    ".lua": "lua",
    ".sh": "shellscript",
    ".bash": "shellscript",
    ".zsh": "shellscript",
    ".sql": "sql",
    ".r": "r",
    ".jl": "julia",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".pl": "perl",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "scss",
}
_BY_FILENAME: dict[str, str] = {
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "dockerfile": "dockerfile",
}


def language_for_path(path: str) -> str:
    """The LSP language identifier for ``path`` by its extension; ``"plaintext"`` if unknown."""
    try:
        pure = PurePath(str(path))
    except Exception:
        return "plaintext"
    name = pure.name.lower()
    if name in _BY_FILENAME:
        return _BY_FILENAME[name]
    return _BY_EXTENSION.get(pure.suffix.lower(), "plaintext")


# language id -> (grammar module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}


@functools.cache
def language_object(language: str) -> tree_sitter.Language | None:
    """The tree-sitter ``Language`` for an LSP language id, or None when no grammar is installed."""
    entry = _GRAMMARS.get(language)
    if entry is None:
        return None
    module_name, func_name = entry
    try:
        module = importlib.import_module(module_name)
        return tree_sitter.Language(getattr(module, func_name)())
    except Exception:  # grammar wheel missing or incompatible
        return None


_local = threading.local()


def parser_for(language: str) -> tree_sitter.Parser | None:
    """A cached parser for ``language`` (one per thread), or None if the language is unsupported."""
    cache: dict[str, tree_sitter.Parser | None] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    if language not in cache:
        lang = language_object(language)
        cache[language] = tree_sitter.Parser(lang) if lang is not None else None
    return cache[language]


@functools.cache
def load_query(language: str, name: str) -> tree_sitter.Query | None:
    """The query in ``hone.retrieval.queries``: ``<language>-<name>.scm``; None if absent or bad."""
    lang = language_object(language)
    if lang is None:
        return None
    try:
        resource = importlib.resources.files("hone.retrieval.queries") / f"{language}-{name}.scm"
        return tree_sitter.Query(lang, resource.read_text(encoding="utf-8"))
    except Exception:
        return None


@dataclass(frozen=True)
class LanguageSpec:
    """Plain-text knowledge of a language, for the indentation and bracket fallbacks."""

    line_comments: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ('"', "'")
    multiline_quotes: tuple[str, ...] = ()  # delimiters whose strings may span lines
    block_open: str = ""  # last character of a line that opens an indented block
    offside: bool = False  # blocks end by dedent alone (no closing brace)


_C_LIKE = LanguageSpec(line_comments=("//",), block_open="{")
_SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        line_comments=("#",),
        multiline_quotes=('"""', "'''"),
        block_open=":",
        offside=True,
    ),
    "javascript": LanguageSpec(
        line_comments=("//",), quotes=('"', "'", "`"), multiline_quotes=("`",), block_open="{"
    ),
    "typescript": LanguageSpec(
        line_comments=("//",), quotes=('"', "'", "`"), multiline_quotes=("`",), block_open="{"
    ),
    "go": LanguageSpec(
        line_comments=("//",), quotes=('"', "'", "`"), multiline_quotes=("`",), block_open="{"
    ),
    "rust": LanguageSpec(line_comments=("//",), quotes=('"',), block_open="{"),
    "shellscript": LanguageSpec(line_comments=("#",)),
    "ruby": LanguageSpec(line_comments=("#",)),
    "yaml": LanguageSpec(line_comments=("#",)),
    "toml": LanguageSpec(line_comments=("#",)),
    "makefile": LanguageSpec(line_comments=("#",)),
    "dockerfile": LanguageSpec(line_comments=("#",)),
    "r": LanguageSpec(line_comments=("#",), block_open="{"),
    "perl": LanguageSpec(line_comments=("#",), block_open="{"),
    "julia": LanguageSpec(line_comments=("#",)),
    "elixir": LanguageSpec(line_comments=("#",)),
    "lua": LanguageSpec(line_comments=("--",)),
    "sql": LanguageSpec(line_comments=("--",)),
    "haskell": LanguageSpec(line_comments=("--",)),
    "plaintext": LanguageSpec(quotes=()),
    "markdown": LanguageSpec(quotes=()),
}
for _name in ("c", "cpp", "csharp", "java", "kotlin", "scala", "swift", "dart", "php", "css"):
    _SPECS[_name] = _C_LIKE
_SPECS["javascriptreact"] = _SPECS["javascript"]
_SPECS["typescriptreact"] = _SPECS["typescript"]
_DEFAULT_SPEC = LanguageSpec()


def spec_for(language: str) -> LanguageSpec:
    """The plain-text spec for ``language``; unknown languages get quotes and no comments."""
    return _SPECS.get(language, _DEFAULT_SPEC)


def indent_width(indent: str | bytes, tab_size: int = 8) -> int:
    """Display width of leading whitespace (tabs advance to the next multiple of ``tab_size``)."""
    width = 0
    for ch in indent.decode("latin-1") if isinstance(indent, bytes) else indent:
        if ch == "\t":
            width += tab_size - width % tab_size
        elif ch in " \f":
            width += 1
        else:
            break
    return width


_UNIT_SAMPLE_LINES = 2000


def detect_indent_unit(text: str) -> str:
    """The indentation step the document uses: ``"\\t"`` or N spaces (default four spaces).

    Looks at the first 2,000 lines: tabs win if more lines start with a tab than with
    spaces. Otherwise the unit is the most common increase in leading spaces (2, 3, 4
    or 8) right after a line ending in ``:`` or ``{``; increases after other lines
    (aligned continuation lines, say) only count when there are no such openers.
    """
    if not isinstance(text, str) or not text:
        return "    "
    tabs = spaces = 0
    after_opener: Counter[int] = Counter()
    elsewhere: Counter[int] = Counter()
    previous, opener = 0, False
    for count, line in enumerate(text.split("\n", _UNIT_SAMPLE_LINES)):
        if count >= _UNIT_SAMPLE_LINES:
            break
        stripped = line.strip(" \t\r")
        if not stripped or stripped.startswith(("#", "//", "*")):
            continue
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if lead.startswith("\t"):
            tabs += 1
            previous, opener = indent_width(lead), stripped.endswith((":", "{"))
            continue
        width = len(lead) if "\t" not in lead else indent_width(lead)
        if width:
            spaces += 1
        if width > previous and width - previous in (2, 3, 4, 8):
            (after_opener if opener else elsewhere)[width - previous] += 1
        previous, opener = width, stripped.endswith((":", "{"))
    if tabs > spaces:
        return "\t"
    steps = after_opener or elsewhere
    if not steps:
        return "    "
    best = max(steps.items(), key=lambda kv: (kv[1], kv[0] == 4, -kv[0]))[0]
    return " " * best


# --------------------------------------------------------------------------------------
# A light lexical scanner: strings, line comments and brackets, for any language.
# Used where a tree would be too slow (every streamed token) or is unavailable.

_PAIRS = {")": "(", "]": "[", "}": "{"}
_TOKEN_CACHE: dict[LanguageSpec, re.Pattern[str]] = {}


def _token_re(spec: LanguageSpec) -> re.Pattern[str]:
    pattern = _TOKEN_CACHE.get(spec)
    if pattern is None:
        alternatives = sorted(
            {*spec.multiline_quotes, *spec.quotes, *spec.line_comments}, key=len, reverse=True
        )
        pattern = re.compile("|".join([*map(re.escape, alternatives), r"[()\[\]{}\n]"]))
        _TOKEN_CACHE[spec] = pattern
    return pattern


@dataclass
class Scan:
    """What :func:`scan_text` saw in a piece of code."""

    excess: int = 0  # closers with no opener in the scanned text (or a mismatched one)
    open: str = ""  # openers still unclosed at the end, innermost last
    quote: str = ""  # string delimiter still open at the end ("" in code)
    in_comment: bool = False  # the text ends inside a line comment
    comment_start: int = -1  # offset of the first line comment, -1 if none
    # One entry per line after the first: True when that line starts inside a bracket
    # or a string opened earlier in the scanned text, or follows a backslash-newline
    # (a continuation line).
    continuation: list[bool] = field(default_factory=list)


def _string_end(text: str, pos: int, delim: str, multiline: bool) -> int:
    """Offset just past the delimiter closing a string whose content starts at ``pos``.

    -1 when the string does not close: it runs to the end of the text, or to the end
    of the line for a single-line delimiter (returned as the newline's offset, negated
    minus 2, so callers can tell the two apart).
    """
    start = pos
    newline = -1 if multiline else text.find("\n", pos)
    while True:
        j = text.find(delim, pos)
        if j < 0 or (newline >= 0 and newline < j):
            return -1 if newline < 0 else -2 - newline
        k = j
        while k > start and text[k - 1] == "\\":
            k -= 1
        if (j - k) % 2 == 0:
            return j + len(delim)
        pos = j + 1


def scan_text(text: str, language: str) -> Scan:
    """Scan ``text`` as code of ``language``: bracket balance, open string, comments.

    Best effort and never raises on odd input; strings and line comments are skipped
    so their brackets do not count. Strings with a single-line delimiter end at the
    line's end even when unterminated.
    """
    spec = spec_for(language)
    result = Scan()
    stack: list[str] = []
    pattern = _token_re(spec)
    pos, end = 0, len(text)
    while pos < end:
        match = pattern.search(text, pos)
        if match is None:
            break
        token, pos = match.group(), match.end()
        if token == "\n":
            escaped = match.start() > 0 and text[match.start() - 1] == "\\"
            result.continuation.append(bool(stack) or escaped)
        elif token in _PAIRS.values():
            stack.append(token)
        elif token in _PAIRS:
            if stack and stack[-1] == _PAIRS[token]:
                stack.pop()
            else:
                result.excess += 1
        elif token in spec.line_comments:
            if result.comment_start < 0:
                result.comment_start = match.start()
            newline = text.find("\n", pos)
            if newline < 0:
                result.in_comment = True
                break
            pos = newline
        else:  # a string delimiter
            multiline = token in spec.multiline_quotes
            close = _string_end(text, pos, token, multiline)
            if close == -1:
                result.continuation.extend([True] * text.count("\n", pos))
                result.quote = token
                break
            if close < -1:  # unterminated single-line string: ends at the newline
                pos = -2 - close
                continue
            if multiline:
                result.continuation.extend([True] * text.count("\n", pos, close))
            pos = close
    result.open = "".join(stack)
    return result
