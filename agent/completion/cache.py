"""Typed-ahead reuse: when the user types the start of the shown suggestion, answer
with the rest of it from memory, without a model call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    prefix: str
    suffix: str
    completion: str


class TypedAheadCache:
    """One remembered suggestion per document (the one most recently shown)."""

    def __init__(self, max_documents: int = 64) -> None:
        self._entries: dict[str, _Entry] = {}
        self._max = max_documents

    def remember(self, key: str, prefix: str, suffix: str, completion: str) -> None:
        if not completion:
            return
        self._entries.pop(key, None)
        if len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = _Entry(prefix, suffix, completion)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def lookup(self, key: str, prefix: str, suffix: str) -> str | None:
        """The rest of the remembered suggestion, if ``prefix`` is the remembered prefix
        plus a start of the suggestion and the text after the cursor is unchanged."""
        entry = self._entries.get(key)
        if entry is None or suffix != entry.suffix:
            return None
        if len(prefix) < len(entry.prefix) or not prefix.startswith(entry.prefix):
            return None
        typed = prefix[len(entry.prefix) :]
        if not entry.completion.startswith(typed):
            return None
        rest = entry.completion[len(typed) :]
        return rest or None
