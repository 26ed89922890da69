"""The completion engine's options: the one typed definition.

The server's :class:`hone.server.options.Options` extends this class with what only the
server uses (debounce, timeouts); the README's configuration table and the VS Code
extension's settings schema are checked against both (``tests/server/test_options.py``).
Each field carries its documentation and valid range as metadata; the LSP name is the
camelCase form of the field name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def option(default: object, doc: str, range: tuple[float, float] | None = None) -> object:
    """A documented option field (``range`` is inclusive)."""
    metadata: dict[str, object] = {"doc": doc}
    if range is not None:
        metadata["range"] = range
    return field(default=default, metadata=metadata)


@dataclass
class CompletionOptions:
    multiline: bool = option(True, "Allow multi-line suggestions where they are not jarring.")
    max_new_tokens_single: int = option(32, "Token cap for a single-line suggestion.", (1, 512))
    max_new_tokens_multi: int = option(96, "Token cap for a multi-line suggestion.", (1, 2048))
    max_lines: int = option(
        12, "Line cap for a multi-line suggestion (longer ones are cut at a line end).", (1, 200)
    )
    context_tokens: int = option(
        768,
        "Token budget of the whole prompt: prefix, suffix (FIM models) and context snippets.",
        (64, 32768),
    )
    retrieval_tokens: int = option(
        256,
        "Tokens of the contextTokens budget set aside for context snippets from the "
        "repository (0 turns them off).",
        (0, 16384),
    )
    suffix_share: float = option(
        0.25, "Share of the budget given to the suffix (FIM models).", (0.0, 0.9)
    )
    max_document_chars: int = option(
        8_000_000, "Larger documents get no completions.", (1000, 100_000_000)
    )
