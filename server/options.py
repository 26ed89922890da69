"""Server options: fully defaulted, documented, validated.

Options arrive as camelCase keys in ``initializationOptions`` and in
``workspace/didChangeConfiguration`` (either flat or under a ``hone`` section).
Unknown keys and bad values are reported back as messages; defaults are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Options:
    enable: bool = field(
        default=True, metadata={"doc": "Answer inline completion requests at all."}
    )
    multiline: bool = field(
        default=True, metadata={"doc": "Allow multi-line suggestions where they are not jarring."}
    )
    max_new_tokens_single: int = field(
        default=32, metadata={"doc": "Token cap for a single-line suggestion.", "range": (1, 512)}
    )
    max_new_tokens_multi: int = field(
        default=96, metadata={"doc": "Token cap for a multi-line suggestion.", "range": (1, 2048)}
    )
    context_tokens: int = field(
        default=768,
        metadata={"doc": "Token budget of the prompt (prefix and suffix).", "range": (64, 32768)},
    )
    suffix_share: float = field(
        default=0.25,
        metadata={
            "doc": "Share of the budget given to the suffix (FIM models).",
            "range": (0.0, 0.9),
        },
    )
    debounce_ms: int = field(
        default=60,
        metadata={
            "doc": "While the user is typing fast (requests closer than burstWindowMs), wait this "
            "long before starting the model; a newer request in the meantime replaces it.",
            "range": (0, 2000),
        },
    )
    burst_window_ms: int = field(
        default=150,
        metadata={
            "doc": "Requests closer than this count as one typing burst.",
            "range": (0, 5000),
        },
    )
    request_timeout_ms: int = field(
        default=30000,
        metadata={
            "doc": "Give up on a model call after this long (a hung backend); the result is empty.",
            "range": (100, 600000),
        },
    )
    max_document_chars: int = field(
        default=8_000_000,
        metadata={"doc": "Larger documents get no completions.", "range": (1000, 100_000_000)},
    )


ALIASES = {"maxNewTokens": "max_new_tokens_multi"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


_FIELDS = {_camel(f.name): f for f in dataclasses.fields(Options)}


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    if f.type in ("bool", bool):
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if f.type in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ValueError("expected an integer")
        value = int(value)
    elif f.type in ("float", float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("expected a number")
        value = float(value)
    lo, hi = f.metadata.get("range", (None, None))
    if lo is not None and not lo <= value <= hi:
        raise ValueError(f"expected a value between {lo} and {hi}")
    return value


def apply_settings(current: Options, settings: Any) -> tuple[Options, list[str]]:
    """Return new options with ``settings`` applied, and a list of problems found.

    Bad or unknown entries are skipped (and reported); everything else applies.
    """
    problems: list[str] = []
    if settings is None or settings == []:  # Neovim encodes an empty Lua table as []
        return current, problems
    if not isinstance(settings, dict):
        return current, [f"hone: settings must be an object, got {type(settings).__name__}"]
    if isinstance(settings.get("hone"), dict):
        settings = settings["hone"]
    changes: dict[str, Any] = {}
    for key, value in settings.items():
        name = ALIASES.get(key, key)
        f = _FIELDS.get(name) or _FIELDS.get(_camel(name))
        if f is None:
            if key == "model":  # chosen on the command line / HONE_MODEL; accepted silently
                continue
            problems.append(f"hone: unknown setting {key!r} ignored")
            continue
        try:
            changes[f.name] = _coerce(f, value)
        except ValueError as exc:
            default = getattr(current, f.name)
            problems.append(f"hone: setting {key!r}={value!r} ignored ({exc}); keeping {default!r}")
    return dataclasses.replace(current, **changes), problems


def describe() -> list[tuple[str, Any, str]]:
    """(camelCase name, default, doc) for every option: used by the README and `hone doctor`."""
    return [
        (_camel(f.name), f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(Options)
    ]
