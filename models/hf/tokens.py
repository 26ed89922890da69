"""The tokenizer as the backend uses it: fast encode and decode, counting, chat rendering,
and the text of every token (for token healing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hone.models.backend import Message, ModelError


class Tokens:
    def __init__(self, tokenizer: Any, eos: frozenset[int]) -> None:
        self.tokenizer = tokenizer
        self.eos = eos
        # The Rust tokenizer directly: the Python wrapper re-applies truncation settings on
        # every call, which is slower and not safe while another thread is encoding.
        self._fast = getattr(tokenizer, "backend_tokenizer", None)

    def encode(self, text: str, special: bool) -> list[int]:
        if self._fast is not None:
            return self._fast.encode(text, add_special_tokens=special).ids
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    def decode(self, ids: list[int]) -> str:
        if self._fast is not None:
            return self._fast.decode(ids, skip_special_tokens=False)
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def count(self, text: str) -> int:
        return len(self.encode(text, special=False))

    def encode_prompt(self, prompt: str) -> list[int]:
        """The prompt's ids (special tokens written in it are recognised); never empty."""
        ids = self.encode(prompt, special=True)
        if not ids:  # an empty prompt: start a document
            start = self.tokenizer.bos_token_id
            if start is None:
                start = min(self.eos) if self.eos else 0
            ids = [start]
        return ids

    def vocabulary(self) -> frozenset[str]:
        return frozenset(self.tokenizer.get_vocab())

    def chat(self, messages: Sequence[Message]) -> str:
        """The messages in the model's chat template, ready for the assistant's turn."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError("this model has no chat template; chat requests need one")
        return self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )


def token_texts(tokenizer: Any) -> list[str]:
    """The text of every token id, as it reads in the middle of a sequence."""
    size = len(tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is not None and type(decoder).__name__ == "ByteLevel":
        # GPT-2-style byte-level BPE: map each token's characters back to bytes.
        table = {ord(c): b for b, c in _bytes_to_unicode().items()}
        texts = []
        for token in tokenizer.convert_ids_to_tokens(list(range(size))):
            token = token or ""
            try:
                raw = token.translate(table).encode("latin-1")
            except UnicodeEncodeError:  # not a byte-level token (an added token)
                texts.append(token)
            else:
                texts.append(raw.decode("utf-8", errors="replace"))
        return texts
    # Anything else (SentencePiece and friends): decode each token after an anchor so a
    # leading space is kept, and strip the anchor.
    anchor_id = tokenizer.convert_tokens_to_ids("a")
    if not isinstance(anchor_id, int):
        anchor_id = 0
    anchor = tokenizer.decode([anchor_id], skip_special_tokens=False)
    decoded = tokenizer.batch_decode(
        [[anchor_id, i] for i in range(size)],
        skip_special_tokens=False,
        clean_up_tokenization_spaces=False,
    )
    return [d[len(anchor) :] if d.startswith(anchor) else d for d in decoded]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))
