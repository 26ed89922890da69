"""Typed-ahead reuse: when the user types the start of the shown suggestion, answer
with the rest of it from memory, without a model call.

An entry does not keep the text: only the lengths of the prefix and suffix it was made
for, their hashes, a bounded tail of the prefix and head of the suffix (compared first: a
miss near the cursor costs no hashing), and the suggestion. A lookup hits only when the
text before the remembered cursor and the text after the current cursor hash (and
measure) the same as then, so an edit anywhere in that text, near the cursor or far from
it, turns the entry off. The engine passes the text the suggestion was made from: for a
large document, the window around the cursor the server sends (the prompt and the policy
read nothing else), so the cost stays bounded by the window, not the document.
"""

from __future__ import annotations

from dataclasses import dataclass

NEAR = 1024  # characters kept on each side of the remembered cursor


@dataclass(frozen=True)
class _Entry:
    prefix_len: int
    prefix_hash: int
    prefix_tail: str  # the last NEAR characters of the prefix
    suffix_len: int
    suffix_hash: int
    suffix_head: str  # the first NEAR characters of the suffix
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
        self._entries[key] = _Entry(
            len(prefix),
            hash(prefix),
            prefix[-NEAR:],
            len(suffix),
            hash(suffix),
            suffix[:NEAR],
            completion,
        )

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def lookup(self, key: str, prefix: str, suffix: str) -> str | None:
        """The rest of the remembered suggestion, if ``prefix`` is the remembered prefix
        plus a start of the suggestion and the text after the cursor is unchanged."""
        entry = self._entries.get(key)
        if entry is None or len(suffix) != entry.suffix_len:
            return None
        n = entry.prefix_len
        if len(prefix) < n:
            return None
        typed = prefix[n:]
        if not entry.completion.startswith(typed):
            return None
        rest = entry.completion[len(typed) :]
        if not rest:
            return None
        # Near the cursor first (cheap), then the whole text on both sides (hashes).
        if not suffix.startswith(entry.suffix_head) or not prefix.endswith(entry.prefix_tail, 0, n):
            return None
        if hash(suffix) != entry.suffix_hash:
            return None
        if hash(prefix[:n] if typed else prefix) != entry.prefix_hash:
            return None
        return rest
