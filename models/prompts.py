"""Prompt templates per model family, loaded from ``templates/families.toml``.

A :class:`PromptTemplate` renders an :class:`~hone.models.backend.Infill` (prefix,
suffix, path, context snippets) into the text a model of its family was trained on:
context snippets from other files laid out the way the family saw repositories,
fill-in-the-middle tokens, a file-path header, and the stop strings that end a
completion. Snippets always come before the file's own text: that text is what changes
while the user types, and a backend reuses the KV cache of the longest unchanged
token prefix. Families are detected from the model's name or path,
then from the special tokens its tokenizer has, falling back to the prefix-only
``plain`` family; a user can also name a family outright.
"""

from __future__ import annotations

import functools
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any

from hone.models.backend import Infill, ModelError, Snippet

FALLBACK = "plain"
_TEMPLATE_FIELDS = frozenset({"context", "header", "prefix", "suffix"})
_HEADER_FIELDS = frozenset({"path", "comment"})
_SNIPPET_FIELDS = frozenset({"path", "comment", "text"})
DEFAULT_SNIPPET = "{comment} {path}\n{text}\n"

# A compiled format string: literal text and field names, alternating (literal first).
_Compiled = tuple[str, ...]


@dataclass(frozen=True)
class PromptTemplate:
    family: str
    fim: bool
    stop: tuple[str, ...]
    template: str = "{context}{header}{prefix}"
    header: str = ""
    snippet: str = DEFAULT_SNIPPET
    names: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    priority: int = 0
    comments: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _parts: _Compiled = field(init=False, repr=False, compare=False)
    _header_parts: _Compiled = field(init=False, repr=False, compare=False)
    _snippet_parts: _Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _compile(self.template, _TEMPLATE_FIELDS, self.family)
        header_parts = _compile(self.header, _HEADER_FIELDS, self.family)
        snippet_parts = _compile(self.snippet, _SNIPPET_FIELDS, self.family)
        names = list(parts[1::2])
        fields = set(names)
        if "prefix" not in fields:
            raise ModelError(f"prompt family {self.family!r}: template lacks {{prefix}}")
        if "context" in fields and names.index("context") > names.index("prefix"):
            raise ModelError(
                f"prompt family {self.family!r}: {{context}} must come before {{prefix}} "
                "(the file's text changes while typing; what precedes it stays cached)"
            )
        if "text" not in snippet_parts[1::2]:
            raise ModelError(f"prompt family {self.family!r}: snippet lacks {{text}}")
        if self.fim and "suffix" not in fields:
            raise ModelError(f"prompt family {self.family!r}: a FIM template needs {{suffix}}")
        if not self.fim and "suffix" in fields:
            raise ModelError(f"prompt family {self.family!r}: {{suffix}} in a prefix-only template")
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_header_parts", header_parts)
        object.__setattr__(self, "_snippet_parts", snippet_parts)

    def render(
        self, prefix: str, suffix: str, path: str | None, snippets: Iterable[Snippet] = ()
    ) -> str:
        """The prompt text; ``suffix`` is ignored when the family is not FIM.

        A template without ``{context}`` (a user's older file) gets its snippets at the
        very start of the prompt.
        """
        context = self.render_context(snippets)
        values = {
            "context": context,
            "header": self.render_header(path),
            "prefix": prefix,
            "suffix": suffix,
        }
        parts = self._parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        if context and "context" not in parts[1::2]:
            out.insert(0, context)
        return "".join(out)

    def render_infill(self, infill: Infill) -> str:
        """The prompt for a structured completion request."""
        return self.render(infill.prefix, infill.suffix, infill.path, infill.snippets)

    def render_context(self, snippets: Iterable[Snippet]) -> str:
        """All snippets, in the order given."""
        return "".join(self.render_snippet(s) for s in snippets)

    def render_snippet(self, snippet: Snippet) -> str:
        """One snippet as this family lays out another file of the repository. Its text
        ends with a line break; a layout needing ``{comment}`` for a file type with no
        known comment marker leaves the snippet out ("")."""
        text = snippet.text if snippet.text.endswith("\n") else snippet.text + "\n"
        values = {"path": snippet.path, "text": text}
        parts = self._snippet_parts
        if "comment" in parts[1::2]:
            comment = comment_marker(snippet.path, self.comments)
            if comment is None:
                return ""
            values["comment"] = comment
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out)

    def render_header(self, path: str | None) -> str:
        """The file-path header for ``path`` ("" when unknown or not expressible)."""
        parts = self._header_parts
        if not path or len(parts) == 1 and not parts[0]:
            return ""
        values = {"path": path}
        if "comment" in parts[1::2]:
            comment = comment_marker(path, self.comments)
            if comment is None:
                return ""
            values["comment"] = comment
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out)


def comment_marker(path: str, comments: Mapping[str, str]) -> str | None:
    """The line-comment marker for ``path`` by extension (or whole name), if known."""
    name = PurePath(path).name.lower()
    ext = name.rsplit(".", 1)[1] if "." in name else name
    return comments.get(ext)


@functools.cache
def _default_templates() -> Mapping[str, PromptTemplate]:
    text = resources.files("hone.models.templates").joinpath("families.toml").read_text("utf-8")
    return MappingProxyType(parse_templates(tomllib.loads(text), "families.toml"))


def load_templates(extra: str | Path | None = None) -> dict[str, PromptTemplate]:
    """All families: the shipped ones, then those in ``extra`` (a TOML file) over them."""
    templates = dict(_default_templates())
    if extra is not None:
        try:
            data = tomllib.loads(Path(extra).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ModelError(f"cannot read prompt templates from {extra}: {exc}") from exc
        base_comments = next(iter(templates.values())).comments if templates else {}
        templates.update(parse_templates(data, str(extra), base_comments))
    return templates


def parse_templates(
    data: Mapping[str, Any], source: str, base_comments: Mapping[str, str] | None = None
) -> dict[str, PromptTemplate]:
    """Build templates from a parsed families TOML document."""
    comments: dict[str, str] = dict(base_comments or {})
    for marker, exts in (data.get("comments") or {}).items():
        for ext in exts:
            comments[str(ext).lower()] = str(marker)
    frozen_comments = MappingProxyType(comments)
    out: dict[str, PromptTemplate] = {}
    for family, spec in (data.get("families") or {}).items():
        try:
            out[family] = PromptTemplate(
                family=family,
                fim=bool(spec["fim"]),
                stop=tuple(spec.get("stop", ())),
                template=spec["template"],
                header=spec.get("header", ""),
                snippet=spec.get("snippet", DEFAULT_SNIPPET),
                names=tuple(n.lower() for n in spec.get("names", ())),
                tokens=tuple(spec.get("tokens", ())),
                priority=int(spec.get("priority", 0)),
                comments=frozen_comments,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: prompt family {family!r} is malformed: {exc!r}") from exc
    return out


def template_by_name(
    family: str, templates: Mapping[str, PromptTemplate] | None = None
) -> PromptTemplate:
    """The family called ``family`` (a user's explicit choice); ModelError if unknown."""
    templates = _default_templates() if templates is None else templates
    try:
        return templates[family.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(templates))
        raise ModelError(f"unknown prompt family {family!r}; known: {known}") from None


def template_for(
    model_name: str,
    special_tokens: Iterable[str] = (),
    templates: Mapping[str, PromptTemplate] | None = None,
) -> PromptTemplate:
    """Detect the family of a model from its name or path and its tokenizer's tokens.

    An exact family name wins; then a family whose ``names`` occur in ``model_name``
    (unless ``special_tokens`` is given and lacks that family's tokens, as for a base
    model renamed without its FIM tokens); then the family whose ``tokens`` all occur in
    ``special_tokens`` (the most specific one); then ``plain``.
    """
    templates = _default_templates() if templates is None else templates
    name = model_name.strip().lower()
    if name in templates:
        return templates[name]
    tokens = special_tokens if isinstance(special_tokens, set | frozenset) else set(special_tokens)

    def has_tokens(t: PromptTemplate) -> bool:
        return all(tok in tokens for tok in t.tokens)

    by_name = [
        (t.priority, max(len(n) for n in t.names if n in name), t)
        for t in templates.values()
        if any(n in name for n in t.names)
    ]
    for _, _, t in sorted(by_name, key=lambda c: c[:2], reverse=True):
        if not tokens or has_tokens(t):
            return t
    by_tokens = [t for t in templates.values() if t.tokens and has_tokens(t)]
    if by_tokens:
        return max(by_tokens, key=lambda t: (len(t.tokens), t.priority))
    return templates.get(FALLBACK) or PromptTemplate(family=FALLBACK, fim=False, stop=())


def template_for_backend(backend: object, family: str | None = None) -> PromptTemplate:
    """The template for a backend: ``family`` if given, else what the backend detects.

    Backends may offer ``detect_template() -> PromptTemplate`` (the transformers backend
    looks at its tokenizer); otherwise the backend's ``name`` is matched.
    """
    if family:
        return template_by_name(family)
    detect = getattr(backend, "detect_template", None)
    if callable(detect):
        return detect()
    return template_for(str(getattr(backend, "name", "")))


def _compile(fmt: str, allowed: frozenset[str], family: str) -> _Compiled:
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise ModelError(f"prompt family {family!r}: bad format {fmt!r}: {exc}") from exc
    literal = ""
    for text, name, spec, conv in parsed:
        literal += text
        if name is None:
            continue
        if name not in allowed or spec or conv:
            raise ModelError(f"prompt family {family!r}: unknown field {{{name}}} in {fmt!r}")
        parts.extend((literal, name))
        literal = ""
    parts.append(literal)
    return tuple(parts)
