"""The decode loop, written by hand: one forward pass per step into a KV session.

- *Prefill* feeds only the prompt tokens the session does not hold yet, in chunks.
- *Cancellation* is checked before every step and, through a hook, before every decoder
  layer, so a superseded request stops within a fraction of a forward pass even in the
  middle of a prefill chunk; the half-updated layers are rolled back.
- *Token healing* (:mod:`hone.models.hf.healing`) constrains the first tokens.
- *Prompt-lookup drafts* (:mod:`hone.models.hf.drafting`, greedy only) are verified in one
  forward pass; the rejected tail is cropped from the cache.

Stop strings, early stop and the chunks the caller sees are :mod:`hone.models.streaming`'s.

*Static decoding* (``static=True``; the default on a GPU): every KV session is a
transformers ``StaticCache`` of :data:`STATIC_TOKENS` positions, allocated once per
session and cropped in place (a new prompt overwrites what it does not share), so one
decode step always runs the same kernels on the same buffers: what a CUDA graph captures.
On a GPU that step is compiled (``torch.compile``, mode ``reduce-overhead``: CUDA graphs),
the per-layer cancellation hooks are left out (a graph cannot run them; a step takes a few
milliseconds, and cancellation is checked between steps) and prompt-lookup drafts are off
(they would need a graph per draft length). On a CPU the same static path runs eagerly:
the tests prove it gives the same tokens as the dynamic one, in fp32. Measured on an H200
with the embedded model (issue 8): an eager step 22-25 ms, the same step as a CUDA graph
3.3 ms; hone's own GPU timings are benchmarks/bench_gpu.py's, once a GPU run records them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hone.models.backend import (
    Cancelled,
    CancelToken,
    GenerationRequest,
    GenerationStats,
    ModelError,
)
from hone.models.hf.drafting import Drafter
from hone.models.hf.healing import Healer
from hone.models.hf.kv import KVSession
from hone.models.hf.loading import Loaded
from hone.models.hf.tokens import Tokens
from hone.models.streaming import check_cancel

STATIC_TOKENS = 2048  # a static session's positions: the prompt window and the new tokens


class Decoder:
    def __init__(
        self,
        loaded: Loaded,
        tokens: Tokens,
        healer: Healer,
        *,
        name: str,
        prefill_chunk: int = 256,
        speculate: bool = True,
        static: bool | None = None,
        compile_steps: bool | None = None,
    ) -> None:
        """``static``: static KV caches (None: on a GPU). ``compile_steps``: compile the
        static decode step into CUDA graphs (None: on a GPU with static caches)."""
        self.torch = loaded.torch
        self.model = loaded.model
        self.device = loaded.device
        self.eos = loaded.eos
        self.cache_kw = loaded.cache_kw
        self.keep_kw = loaded.keep_kw
        self.tokens = tokens
        self.healer = healer
        self.name = name
        self.prefill_chunk = max(1, prefill_chunk)
        gpu = getattr(self.device, "type", str(self.device)) == "cuda"
        self.static = gpu if static is None else static
        self.compile_steps = (gpu and self.static) if compile_steps is None else compile_steps
        self.speculate = speculate and not self.static  # a graph per draft length: no
        self._step: Any = None  # the compiled decode step, made on first use
        # Tokens whose text is a line break after nothing but spaces and tabs: refused
        # while a ``continue_line`` line is unfinished (see :func:`_unfinished`); and the
        # tokens holding a line break anywhere (where such a generation's drafts stop).
        self._breaks = [
            i for i, t in enumerate(healer.text) if t and t.lstrip(" \t")[:1] in ("\n", "\r")
        ]
        self._has_break = frozenset(i for i, t in enumerate(healer.text) if "\n" in t or "\r" in t)
        # (cancel token, stats) of the generation running now: read by the per-layer hook.
        self.active: tuple[CancelToken | None, GenerationStats] | None = None
        if not self.compile_steps:  # a compiled step cannot run Python hooks
            self._hook_layers()

    def _hook_layers(self) -> None:
        inner = getattr(self.model, "model", None)
        layers = getattr(inner, "layers", None) or getattr(self.model, "layers", None)
        if layers is None:
            return

        def before_layer(module: Any, args: Any) -> None:
            if self.active is not None:
                check_cancel(*self.active)

        for layer in layers:
            layer.register_forward_pre_hook(before_layer)

    # -- one sample --------------------------------------------------------------------

    def steps(
        self,
        session: KVSession,
        ids: list[int],
        request: GenerationRequest,
        stats: GenerationStats,
        cancel: CancelToken | None,
        *,
        heal: bool,
        generator: Any = None,
    ) -> Iterator[str]:
        """One decode step per ``next()``, yielding the visible text so far."""
        healer, tokens = self.healer, self.tokens
        healed, taken_back = "", 0
        if heal:
            ids, healed, taken_back = healer.heal(ids)
        # Tokens that only re-produce the taken-back text do not count against
        # max_new_tokens; the one that completes it and carries new text does.
        cap = request.max_new_tokens
        ids = self.fit_context(ids, cap + taken_back)
        stats.prompt_tokens = len(ids)

        history = list(session.ids) if self.speculate else []
        started = time.perf_counter()
        logits = self.prefill(session, ids, stats, cancel)
        stats.prefill_s = time.perf_counter() - started

        if request.max_new_tokens <= 0:  # prefill only: warms the cache for what follows
            return
        anchor = ids[-1:]
        anchor_text = tokens.decode(anchor)
        generated: list[int] = []
        inside = 0  # generated tokens wholly inside the healed text
        rest = healed  # text the generation must still start with
        shown = ""
        # Prompt-lookup drafts: continuations of the last few tokens found earlier in the
        # session's previous tokens or in this prompt, verified in one forward pass.
        # The previous request's tokens come last, so its suggestion wins a tie.
        greedy = request.temperature <= 0
        drafter = Drafter(ids + history) if self.speculate and greedy else None
        # continue_line: no line break while the line is unfinished
        hold = request.continue_line
        started = time.perf_counter()
        try:
            while True:
                token = self.pick(logits, rest, request.temperature, generator, hold)
                if token in self.eos:
                    stats.stop_reason = "eos"
                    break
                new = [token]
                if rest:
                    inside += healer.within(rest, token)
                    rest = healer.consume(rest, token)
                check_cancel(cancel, stats)
                draft = []
                if drafter is not None and not rest:
                    tail = (ids[-drafter.n :] + generated + new)[-drafter.n :]
                    room = cap - (len(generated) + 1 - inside)
                    draft = drafter.draft(tail, room, self.eos) if room > 0 else []
                    if request.continue_line:  # the line ends at a break: no drafts past it
                        cut = next((k for k, t in enumerate(draft) if t in self._has_break), None)
                        draft = draft if cut is None else draft[:cut]
                if draft:
                    accepted, logits = self.verify(session, token, draft)
                    stats.draft_tokens += len(draft)
                    stats.accepted_tokens += accepted
                    new += draft[:accepted]
                else:
                    logits = None  # computed lazily below, after the budget check
                generated += new
                if drafter is not None:
                    drafter.push(new)
                stats.generated_tokens = len(generated)
                text = tokens.decode(anchor + generated)[len(anchor_text) + len(healed) :]
                if request.continue_line and not rest:
                    hold = _unfinished(text)
                if rest or text.endswith("\ufffd"):  # still healing, or a partial character
                    pass
                elif text != shown:
                    shown = text
                    yield text
                if len(generated) - inside >= cap:
                    stats.stop_reason = stats.stop_reason or "length"
                    break
                if logits is None:
                    check_cancel(cancel, stats)
                    logits = self.forward(session, [generated[-1]])
        finally:
            stats.decode_s = time.perf_counter() - started

    # -- forward passes ------------------------------------------------------------------

    def fit_context(self, ids: list[int], budget: int) -> list[int]:
        limit = self.static_size() if self.static else None
        limit = limit or getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and len(ids) + budget > limit:
            keep = max(1, limit - budget)
            ids = ids[-keep:]
        return ids

    def static_size(self) -> int:
        """A static session's positions: :data:`STATIC_TOKENS`, or the model's context when
        it is shorter."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return min(limit, STATIC_TOKENS) if isinstance(limit, int) else STATIC_TOKENS

    def new_cache(self) -> Any:
        if self.static:
            from transformers import StaticCache

            return StaticCache(config=self.model.config, max_cache_len=self.static_size())
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def prefill(
        self,
        session: KVSession,
        ids: list[int],
        stats: GenerationStats,
        cancel: CancelToken | None,
    ) -> Any:
        reuse = session.prepare(ids, self.new_cache)
        stats.reused_tokens = reuse
        tail = ids[reuse:]
        logits = None
        for start in range(0, len(tail), self.prefill_chunk):
            check_cancel(cancel, stats)
            logits = self.forward(session, tail[start : start + self.prefill_chunk])
        return logits

    def verify(self, session: KVSession, token: int, draft: list[int]) -> tuple[int, Any]:
        """Feed ``token`` and ``draft`` at once; keep the draft's longest prefix the model
        agrees with (greedy), drop the rest from the cache. Returns (accepted, next logits)."""
        all_logits = self.forward(session, [token, *draft], keep=len(draft) + 1)
        predicted = all_logits.argmax(-1).tolist()
        accepted = 0
        while accepted < len(draft) and predicted[accepted] == draft[accepted]:
            accepted += 1
        session.drop(len(draft) - accepted)
        return accepted, all_logits[accepted]

    def forward(self, session: KVSession, chunk: list[int], keep: int = 1) -> Any:
        """Feed ``chunk``; the logits of its last token (of its last ``keep`` tokens)."""
        torch = self.torch
        kwargs = {self.cache_kw: session.cache, "use_cache": True}
        if self.keep_kw:
            kwargs["logits_to_keep"] = keep
        try:
            with torch.inference_mode():
                input_ids = torch.tensor([chunk], dtype=torch.long, device=self.device)
                if self.static:  # explicit positions: a compiled step's input, not a shape
                    start = len(session.ids)
                    kwargs["cache_position"] = torch.arange(
                        start, start + len(chunk), device=self.device
                    )
                if self.compile_steps and len(chunk) == 1:
                    out = self.compiled_step()(input_ids=input_ids, **kwargs)
                else:
                    out = self.model(input_ids=input_ids, **kwargs)
                logits = out.logits[0, -1].float() if keep == 1 else out.logits[0, -keep:].float()
        except Cancelled:
            session.rollback()
            raise
        except Exception as exc:
            session.reset()  # the cache may hold part of this chunk: start clean next time
            raise ModelError(f"{self.name}: forward pass failed: {exc}") from exc
        session.ids.extend(chunk)
        return logits

    def compiled_step(self) -> Any:
        """The model's forward for one-token decode steps, compiled into CUDA graphs
        (``reduce-overhead``); the eager forward where compiling is not possible."""
        if self._step is None:
            try:
                self._step = self.torch.compile(self.model, mode="reduce-overhead")
            except Exception:  # noqa: BLE001 - an old torch, no compiler: eager steps
                self._step = self.model
        return self._step

    def pick(
        self,
        logits: Any,
        rest: str,
        temperature: float,
        generator: Any = None,
        no_break: bool = False,
    ) -> int:
        """The next token: sampled or greedy, among those that re-produce the healed text
        ``rest`` (if any) and, with ``no_break``, that add no line break before visible
        text."""
        torch = self.torch
        size = logits.shape[-1]
        if rest:
            allowed = [i for i in self.healer.allowed(rest) if i < size]
            if no_break:
                text, n = self.healer.text, len(rest)
                allowed = [i for i in allowed if text[i][n:].lstrip(" \t")[:1] not in ("\n", "\r")]
            if allowed:
                mask = torch.full_like(logits, float("-inf"))
                mask[allowed] = 0.0
                logits = logits + mask
        elif no_break:
            logits = logits.clone()
            logits[[i for i in self._breaks if i < size]] = float("-inf")
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            return int(torch.multinomial(probs, 1, generator=generator).item())
        return int(torch.argmax(logits).item())


def _unfinished(line: str) -> bool:
    """Whether a ``continue_line`` generation's text so far leaves its line unfinished:
    nothing visible yet, or ending in an opening parenthesis (a line break there would end
    a single-line suggestion in the middle of a call). After ``[`` or ``{`` a line break
    is left allowed: held on one line, a small model's literal tends to loop."""
    end = line.rstrip(" \t")
    return not end or ("\n" not in end and end[-1] == "(")
