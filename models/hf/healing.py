"""Token healing: a prompt that ends mid-token (``json.du``, or on a newline and spaces)
makes the model continue from a tokenization it rarely saw. The last token (two when the
last is whitespace only) is taken back, and the first generated tokens are constrained to
re-produce its text, so the model picks the tokenization it would have used; the caller
only ever sees text after the original prompt end."""

from __future__ import annotations

import bisect
from typing import Any

from hone.models.hf.tokens import token_texts


class Healer:
    """Each token's text, and which tokens can start a given text."""

    def __init__(self, tokenizer: Any) -> None:
        self.text = token_texts(tokenizer)
        special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        special.update(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        for i in special:
            if 0 <= i < len(self.text):
                self.text[i] = ""  # never part of healed text
        order = sorted(range(len(self.text)), key=self.text.__getitem__)
        self._sorted = [self.text[i] for i in order]
        self._sorted_ids = order
        self._exact: dict[str, list[int]] = {}
        for i, t in enumerate(self.text):
            if t:
                self._exact.setdefault(t, []).append(i)
        self._special = frozenset(special)

    def allowed(self, rest: str) -> list[int]:
        """Tokens whose text starts with ``rest`` or is a non-empty prefix of it.

        When ``rest`` ends in spaces or tabs (indentation the user typed), a token that
        goes on with more of them is not allowed: the healed text would indent deeper
        than the user did.
        """
        lo = bisect.bisect_left(self._sorted, rest)
        hi = bisect.bisect_left(self._sorted, rest + "\U0010ffff", lo)
        ids = self._sorted_ids[lo:hi]
        if rest[-1:] in (" ", "\t"):
            n = len(rest)
            ids = [i for i in ids if self.text[i][n : n + 1] not in (" ", "\t")]
        for n in range(1, len(rest)):
            ids = ids + self._exact.get(rest[:n], [])
        return ids

    def heal(self, ids: list[int]) -> tuple[list[int], str, int]:
        """Take back the last token (two if it is whitespace only).

        Returns the remaining ids, the taken-back text and the number of tokens.
        """
        back = 0
        for _ in range(2):
            if len(ids) - back <= 1:  # keep at least one token to feed
                break
            token = ids[-1 - back]
            text = self.text[token] if token < len(self.text) else ""
            if token in self._special or not text or "\ufffd" in text:
                break
            back += 1
            if text.strip():  # only whitespace-only last tokens take the one before too
                break
        if not back:
            return ids, "", 0
        removed = "".join(self.text[t] for t in ids[-back:])
        return ids[:-back], removed, back

    def within(self, rest: str, token: int) -> bool:
        """Whether ``token`` lies wholly inside the healed text ``rest`` (no new text)."""
        return len(self.text[token]) <= len(rest)

    def consume(self, rest: str, token: int) -> str:
        """What is left of the healed text ``rest`` after ``token`` was generated."""
        piece = self.text[token]
        return rest[len(piece) :] if len(piece) < len(rest) else ""
