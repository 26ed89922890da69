"""Prompt-lookup drafting for speculative decoding: propose the tokens that followed the
latest earlier occurrence of the last ``n`` tokens; the decode loop verifies a draft in one
forward pass and keeps the prefix the model agrees with. Code repeats itself, and after a
one-character edit the previous suggestion is often still right a few tokens on."""

from __future__ import annotations


class Drafter:
    def __init__(self, corpus: list[int], n: int = 3, k: int = 8) -> None:
        self.n, self.k = n, k
        self.seq: list[int] = []
        self.index: dict[tuple[int, ...], int] = {}
        self.push(corpus)

    def push(self, tokens: list[int]) -> None:
        n = self.n
        for t in tokens:
            self.seq.append(t)
            j = len(self.seq) - 2  # the n-gram ending at j now has a known continuation
            if j >= n - 1:
                self.index[tuple(self.seq[j - n + 1 : j + 1])] = j + 1

    def draft(self, tail: list[int], limit: int, stop: frozenset[int]) -> list[int]:
        """Up to ``limit`` tokens that followed ``tail``'s last n tokens before."""
        if limit <= 0 or len(tail) < self.n:
            return []
        pos = self.index.get(tuple(tail[-self.n :]))
        if pos is None:
            return []
        out = []
        for t in self.seq[pos : pos + min(self.k, limit)]:
            if t in stop:
                break
            out.append(t)
        return out
