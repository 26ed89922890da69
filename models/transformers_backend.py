"""A ModelBackend on Hugging Face transformers: a local folder or a hub model id.

What a user feels on a CPU, and how this module handles it:

- *Latency while typing.* The previous request's tokens and their KV cache are kept;
  a new prompt reuses the longest common token prefix (the cache is cropped to it) and
  only the new tail is prefilled, so one more typed character costs a few tokens of
  prefill, not the whole prompt.
- *Prompts ending mid-token.* With token healing, the last prompt token (two when the
  last one is whitespace only) is taken back and the first generated tokens are
  constrained to re-produce its text, so the model picks the tokenization it would
  have used; the caller only ever sees text after the original prompt end.
- *Cancellation.* The decode loop is written by hand, one forward per token, and checks
  the cancel token before every step (and between prefill chunks).

One generation runs at a time. Everything model-specific stays here; stop strings,
early stop and cancellation bookkeeping are shared with other backends through
:mod:`hone.models.streaming`.
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hone.models.backend import (
    Cancelled,
    CancelToken,
    GenerationRequest,
    GenerationStats,
    ModelError,
)
from hone.models.prompts import PromptTemplate, template_for
from hone.models.streaming import check_cancel, stream

_DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
    # Weights in int8, activations in fp32 (dynamic quantization of the Linear layers):
    # the CPU default, see _pick_dtype.
    "int8": "int8",
}


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers' progress bars (they would clutter a server's stderr)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class TransformersBackend:
    """Greedy or sampled generation on a causal LM, with prefix KV reuse."""

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        device: str = "auto",
        name: str | None = None,
        resolve: Callable[[], str | Path] | None = None,
        prefill_chunk: int = 256,
        speculate: bool = True,
    ) -> None:
        """``model`` is a folder or hub id; ``resolve``, if given, is called by load()
        to produce the folder (the embedded model converts itself there)."""
        if dtype != "auto" and dtype.lower() not in _DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}; use auto, {', '.join(sorted(_DTYPES))}")
        self.model_id = model
        self.name = name or model
        self.gguf_file = gguf_file
        self.dtype = dtype
        self.threads = threads
        self.device = device
        self.prefill_chunk = max(1, prefill_chunk)
        self.speculate = speculate
        self._resolve = resolve
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._loaded = False
        self._load_error: ModelError | None = None
        self._stats = GenerationStats()
        self.path: str | None = None
        self.load_s: float | None = None
        self.weights = ""  # the weight format in use once loaded
        self.parameters = 0
        # Set by load():
        self._torch: Any = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._cache_kw = "cache"
        self._keep_kw = False
        self._eos: frozenset[int] = frozenset()
        self._vocab: _Vocab | None = None
        # The tokens whose keys and values are in self._cache, in order.
        self._cache: Any = None
        self._cache_ids: list[int] = []
        self._active_cancel: CancelToken | None = None  # read by the per-layer hook

    # -- loading -------------------------------------------------------------------

    def load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            if self._load_error is not None:  # do not retry a 10-second failure per request
                raise self._load_error
            try:
                self._load()
            except ModelError as exc:
                self._load_error = exc
                raise
            except Exception as exc:
                self._load_error = ModelError(f"could not load model {self.name}: {exc}")
                raise self._load_error from exc
            self._loaded = True

    def _load(self) -> None:
        started = time.perf_counter()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        path = str(self._resolve()) if self._resolve is not None else self.model_id
        self.path = path
        torch.set_num_threads(self.threads or os.cpu_count() or 1)
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self._pick_dtype(torch, device)
        kwargs: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        with quiet_progress():
            tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=getattr(torch, "float32" if dtype == "int8" else dtype), **kwargs
            )
        model.to(device)
        model.eval()
        self.parameters = sum(p.numel() for p in model.parameters())  # before quantizing
        if dtype == "int8":
            if device != "cpu":
                raise ModelError("dtype int8 (dynamic quantization) runs on the CPU only")
            model = self._quantize_int8(torch, model)
        self.weights = dtype
        self._device = torch.device(device)
        self._model = model
        self._tokenizer = tokenizer
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" in params
        self._eos = self._eos_ids(model, tokenizer)
        self._vocab = _Vocab(tokenizer)
        self._hook_layers(model)
        self.load_s = time.perf_counter() - started

    def _hook_layers(self, model: Any) -> None:
        """Check for cancellation before every decoder layer, so a superseded request
        stops within a fraction of a forward pass, even in the middle of a prefill chunk."""
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None) or getattr(model, "layers", None)
        if layers is None:
            return

        def before_layer(module: Any, args: Any) -> None:
            check_cancel(self._active_cancel, self._stats)

        for layer in layers:
            layer.register_forward_pre_hook(before_layer)

    def _rollback(self) -> None:
        """After a forward pass stopped half-way, drop what some layers already cached."""
        keep = len(self._cache_ids)
        for layer in getattr(self._cache, "layers", ()):
            extra = layer.get_seq_length() - keep
            if extra > 0:
                layer.crop(-extra)

    def _pick_dtype(self, torch: Any, device: str) -> str:
        """The weight format: a torch dtype name, or "int8"."""
        if self.dtype != "auto":
            return _DTYPES[self.dtype.lower()]
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        # On CPU decoding is bound by reading the weights: int8 weights (dynamic
        # quantization) measured 12.8 ms per decode step against 29 ms bf16 and 42 ms fp32
        # for the embedded model on 2 cores, and prefill was faster too (435 vs 514 ms for
        # 768 tokens). The embedded model's weights were 4-bit already, so little is lost.
        return "int8"

    @staticmethod
    def _quantize_int8(torch: Any, model: Any) -> Any:
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated, still works
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
        ids: set[int] = set()
        for source in (getattr(model, "generation_config", None), model.config, tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(v for v in value if isinstance(v, int))
        # Base models end a document with <|endoftext|> even when the chat EOS differs.
        end = tokenizer.get_vocab().get("<|endoftext|>")
        if isinstance(end, int):
            ids.add(end)
        return frozenset(ids)

    # -- the protocol ----------------------------------------------------------------

    @property
    def last_stats(self) -> GenerationStats:
        return self._stats

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._encode(text, special=False))

    def _encode(self, text: str, special: bool) -> list[int]:
        # The Rust tokenizer directly: the Python wrapper re-applies truncation settings on
        # every call, which is slower and not safe while another thread is encoding.
        fast = getattr(self._tokenizer, "backend_tokenizer", None)
        if fast is not None:
            return fast.encode(text, add_special_tokens=special).ids
        return list(self._tokenizer.encode(text, add_special_tokens=special))

    def _decode(self, ids: list[int]) -> str:
        fast = getattr(self._tokenizer, "backend_tokenizer", None)
        if fast is not None:
            return fast.decode(ids, skip_special_tokens=False)
        return self._tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def describe(self) -> dict[str, str]:
        facts = {"model": self.name, "path": self.path or self.model_id}
        if self.gguf_file:
            facts["gguf_file"] = self.gguf_file
        try:
            import torch
            import transformers

            facts["torch"] = torch.__version__
            facts["transformers"] = transformers.__version__
            facts["threads"] = str(torch.get_num_threads())
        except ImportError as exc:  # pragma: no cover - hard dependencies
            facts["error"] = str(exc)
        if self._loaded:
            facts["dtype"] = self.weights
            facts["device"] = str(self._device)
            count = self.parameters
            facts["parameters"] = f"{count / 1e6:.1f}M"
            facts["load_s"] = f"{self.load_s:.2f}"
        else:
            facts["dtype"] = self.dtype
            facts["device"] = self.device
            facts["parameters"] = "not loaded"
        if self._load_error is not None:
            facts["error"] = str(self._load_error)
        return facts

    def detect_template(self) -> PromptTemplate:
        """The prompt family for this model, from its name, path and tokenizer."""
        self.load()
        hint = f"{self.name} {self.path or ''}"
        return template_for(hint, frozenset(self._tokenizer.get_vocab()))

    def reset_cache(self) -> None:
        """Forget the kept KV cache (the next request prefills from scratch)."""
        with self._gen_lock:
            self._cache = None
            self._cache_ids = []

    def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> Iterator[str]:
        stats = GenerationStats()
        self.load()
        while not self._gen_lock.acquire(timeout=0.01):
            check_cancel(cancel, stats)
        try:
            self._stats = stats
            self._active_cancel = cancel
            torch = self._torch
            wanted = self.threads or os.cpu_count() or 1
            if torch.get_num_threads() != wanted:  # per thread with some OpenMP runtimes
                torch.set_num_threads(wanted)
            yield from stream(self._steps(request, stats, cancel), request, stats, cancel)
        finally:
            self._active_cancel = None
            self._gen_lock.release()

    # -- decoding --------------------------------------------------------------------

    def _steps(
        self, request: GenerationRequest, stats: GenerationStats, cancel: CancelToken | None
    ) -> Iterator[str]:
        """One decode step per ``next()``, yielding the visible text so far."""
        vocab = self._vocab
        assert vocab is not None
        ids = self._encode_prompt(request.prompt)
        healed, taken_back = "", 0
        if request.token_healing:
            ids, healed, taken_back = vocab.heal(ids)
        # Re-generating the taken-back tokens does not count against max_new_tokens.
        budget = request.max_new_tokens + taken_back
        ids = self._fit_context(ids, budget)
        stats.prompt_tokens = len(ids)

        history = list(self._cache_ids) if self.speculate else []
        started = time.perf_counter()
        logits = self._prefill(ids, stats, cancel)
        stats.prefill_s = time.perf_counter() - started

        if request.max_new_tokens <= 0:  # prefill only: warms the cache for what follows
            return
        anchor = ids[-1:]
        anchor_text = self._decode(anchor)
        generated: list[int] = []
        rest = healed  # text the generation must still start with
        shown = ""
        # Prompt-lookup drafts: continuations of the last few tokens found earlier in the
        # previous request's tokens or in this prompt, verified in one forward pass.
        # The previous request's tokens come last, so its suggestion wins a tie.
        drafter = _Drafter(ids + history) if self.speculate and request.temperature <= 0 else None
        started = time.perf_counter()
        try:
            while True:
                token = self._pick(logits, rest, request.temperature)
                if token in self._eos:
                    stats.stop_reason = "eos"
                    break
                new = [token]
                if rest:
                    piece = vocab.text[token]
                    rest = rest[len(piece) :] if len(piece) < len(rest) else ""
                check_cancel(cancel, stats)
                draft = []
                if drafter is not None and not rest:
                    tail = (ids[-drafter.n :] + generated + new)[-drafter.n :]
                    draft = drafter.draft(tail, budget - len(generated) - 1, self._eos)
                if draft:
                    accepted, logits = self._verify(token, draft)
                    stats.draft_tokens += len(draft)
                    stats.accepted_tokens += accepted
                    new += draft[:accepted]
                else:
                    logits = None  # computed lazily below, after the budget check
                generated += new
                if drafter is not None:
                    drafter.push(new)
                stats.generated_tokens = len(generated)
                text = self._decode(anchor + generated)[len(anchor_text) + len(healed) :]
                if rest or text.endswith("\ufffd"):  # still healing, or a partial character
                    pass
                elif text != shown:
                    shown = text
                    yield text
                if len(generated) >= budget:
                    stats.stop_reason = stats.stop_reason or "length"
                    break
                if logits is None:
                    check_cancel(cancel, stats)
                    logits = self._forward([generated[-1]])
        finally:
            stats.decode_s = time.perf_counter() - started

    def _verify(self, token: int, draft: list[int]) -> tuple[int, Any]:
        """Feed ``token`` and ``draft`` at once; keep the draft's longest prefix the model
        agrees with (greedy), drop the rest from the cache. Returns (accepted, next logits)."""
        all_logits = self._forward([token, *draft], keep=len(draft) + 1)
        predicted = all_logits.argmax(-1).tolist()
        accepted = 0
        while accepted < len(draft) and predicted[accepted] == draft[accepted]:
            accepted += 1
        rejected = len(draft) - accepted
        if rejected:
            self._cache.crop(-rejected)
            del self._cache_ids[-rejected:]
        return accepted, all_logits[accepted]

    def _encode_prompt(self, prompt: str) -> list[int]:
        ids = self._encode(prompt, special=True)
        if not ids:  # an empty prompt: start a document
            start = self._tokenizer.bos_token_id
            if start is None:
                start = min(self._eos) if self._eos else 0
            ids = [start]
        return ids

    def _fit_context(self, ids: list[int], budget: int) -> list[int]:
        limit = getattr(self._model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and len(ids) + budget > limit:
            keep = max(1, limit - budget)
            ids = ids[-keep:]
        return ids

    def _prefill(self, ids: list[int], stats: GenerationStats, cancel: CancelToken | None) -> Any:
        common = _common_prefix(self._cache_ids, ids)
        reuse = min(common, len(ids) - 1)  # feed at least one token to get logits
        if self._cache is None or reuse <= 0:
            from transformers import DynamicCache

            self._cache = DynamicCache(config=self._model.config)
            self._cache_ids = []
            reuse = 0
        elif len(self._cache_ids) > reuse:
            # Negative: the number of tokens to drop (transformers >= 4.4x and 5.x).
            self._cache.crop(reuse - len(self._cache_ids))
            del self._cache_ids[reuse:]
        stats.reused_tokens = reuse
        tail = ids[reuse:]
        logits = None
        for start in range(0, len(tail), self.prefill_chunk):
            check_cancel(cancel, stats)
            logits = self._forward(tail[start : start + self.prefill_chunk])
        return logits

    def _forward(self, chunk: list[int], keep: int = 1) -> Any:
        """Feed ``chunk``; the logits of its last token (of its last ``keep`` tokens)."""
        torch = self._torch
        kwargs = {self._cache_kw: self._cache, "use_cache": True}
        if self._keep_kw:
            kwargs["logits_to_keep"] = keep
        try:
            with torch.inference_mode():
                input_ids = torch.tensor([chunk], dtype=torch.long, device=self._device)
                out = self._model(input_ids=input_ids, **kwargs)
                logits = out.logits[0, -1].float() if keep == 1 else out.logits[0, -keep:].float()
        except Cancelled:
            self._rollback()
            raise
        except Exception as exc:
            # The cache may hold part of this chunk: start clean next time.
            self._cache = None
            self._cache_ids = []
            raise ModelError(f"{self.name}: forward pass failed: {exc}") from exc
        self._cache_ids.extend(chunk)
        return logits

    def _pick(self, logits: Any, rest: str, temperature: float) -> int:
        torch = self._torch
        if rest:
            allowed = self._vocab.allowed(rest) if self._vocab else []
            allowed = [i for i in allowed if i < logits.shape[-1]]
            if allowed:
                mask = torch.full_like(logits, float("-inf"))
                mask[allowed] = 0.0
                logits = logits + mask
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            return int(torch.multinomial(probs, 1).item())
        return int(torch.argmax(logits).item())


class _Vocab:
    """Each token's text, for token healing: which tokens can start a given text."""

    def __init__(self, tokenizer: Any) -> None:
        self.text = _token_texts(tokenizer)
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
        """Tokens whose text starts with ``rest`` or is a non-empty prefix of it."""
        lo = bisect.bisect_left(self._sorted, rest)
        hi = bisect.bisect_left(self._sorted, rest + "\U0010ffff", lo)
        ids = self._sorted_ids[lo:hi]
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


class _Drafter:
    """Prompt-lookup drafting: the tokens that followed the latest earlier occurrence of
    the last ``n`` tokens. Code repeats itself, and after a one-character edit the previous
    suggestion is often still right a few tokens on."""

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


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _token_texts(tokenizer: Any) -> list[str]:
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
