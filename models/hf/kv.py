"""KV sessions: the keys and values of the tokens a session fed the model last, kept so the
next request of the same session prefills only what changed.

A new prompt reuses the longest common token prefix with the session's tokens (the cache
is cropped to it), so one more typed character costs a few tokens of prefill, not the
whole prompt. :class:`KVSessions` keeps a few sessions by key (least recently used goes
first): the document's URI for interactive completions, ``"background"`` for background
work, so switching between two files or running a background job does not evict the
cached prefix of the file being edited. Each kept session costs its cache's memory: for the
embedded model (30 layers, 3 KV heads of 64, fp32 activations) 45 KiB a token, 34 MiB for
a 768-token prompt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT = "default"  # the session of requests that name none


class KVSession:
    """A KV cache and the tokens whose keys and values it holds, in order."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.cache: Any = None
        self.ids: list[int] = []

    def reset(self) -> None:
        self.cache = None
        self.ids = []

    def prepare(self, ids: list[int], new_cache: Callable[[], Any]) -> int:
        """Crop the cache to its longest common prefix with ``ids``, keeping at least one
        token of ``ids`` to feed (its logits start the generation). Returns the number of
        reused tokens."""
        reuse = min(common_prefix(self.ids, ids), len(ids) - 1)
        if self.cache is not None and reuse <= 0 and getattr(self.cache, "is_compileable", False):
            # a static cache is kept (its buffers are what a captured graph reads and
            # writes) and emptied in place: the next tokens overwrite it
            self.drop(len(self.ids))
            return 0
        if self.cache is None or reuse <= 0:
            self.cache = new_cache()
            self.ids = []
            return 0
        if len(self.ids) > reuse:
            self.drop(len(self.ids) - reuse)
        return reuse

    def drop(self, n: int) -> None:
        """Forget the last ``n`` tokens (rejected draft tokens, a changed tail)."""
        if n > 0:
            # Negative: the number of tokens to drop (transformers >= 4.4x and 5.x).
            self.cache.crop(-n)
            del self.ids[-n:]

    def rollback(self) -> None:
        """After a forward pass stopped half-way, drop what some layers already cached."""
        keep = len(self.ids)
        for layer in getattr(self.cache, "layers", ()):
            extra = layer.get_seq_length() - keep
            if extra > 0:
                layer.crop(-extra)


class KVSessions:
    """Up to ``capacity`` sessions by key; the least recently used one is dropped first."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = max(1, capacity)
        self._sessions: OrderedDict[str, KVSession] = OrderedDict()

    def get(self, key: str | None) -> KVSession:
        """The session for ``key`` (None: the default one), now the most recently used."""
        key = key or DEFAULT
        session = self._sessions.pop(key, None) or KVSession(key)
        self._sessions[key] = session
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)
        return session

    def peek(self, key: str | None) -> KVSession | None:
        """The session for ``key`` if it is kept, without touching the order."""
        return self._sessions.get(key or DEFAULT)

    def keys(self) -> list[str]:
        """Kept session keys, least recently used first."""
        return list(self._sessions)

    def clear(self) -> None:
        self._sessions.clear()


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
