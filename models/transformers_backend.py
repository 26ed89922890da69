"""A ModelBackend on Hugging Face transformers: a local folder or a hub model id.

What a user feels on a CPU, and where this backend handles it (each concern has its room
in :mod:`hone.models.hf`):

- *Latency while typing* (``hf/kv.py``). Each session (a document, background work) keeps
  the tokens it fed last and their KV cache; a new prompt reuses the longest common token
  prefix and only the new tail is prefilled, so one more typed character costs a few
  tokens of prefill, not the whole prompt. A few sessions are kept at once.
- *Prompts ending mid-token* (``hf/healing.py``). The last prompt token (two when the last
  one is whitespace only) is taken back and re-chosen by the model under a constraint.
- *Cancellation* (``hf/decode.py``). The decode loop is written by hand, one forward per
  token, and checks the cancel token before every step and every decoder layer.
- *Repetitive code* (``hf/drafting.py``). Prompt-lookup drafts, verified in one pass.
- *Loading* (``hf/loading.py``) and the tokenizer (``hf/tokens.py``).

This module is the entry point: it renders requests (an Infill with the family's
template, a chat with the tokenizer's chat template), runs one generation at a time, and
streams each sample through :mod:`hone.models.streaming`, shared with other backends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hone.models.backend import (
    CancelToken,
    Generation,
    GenerationRequest,
    ModelError,
)
from hone.models.hf.decode import Decoder
from hone.models.hf.healing import Healer
from hone.models.hf.kv import KVSession, KVSessions
from hone.models.hf.loading import check_dtype, load_model, quiet_progress
from hone.models.hf.tokens import Tokens
from hone.models.prompts import PromptTemplate, template_for
from hone.models.streaming import check_cancel, stream

__all__ = ["TransformersBackend", "quiet_progress"]


class TransformersBackend:
    """Greedy or sampled generation on a causal LM, with prefix KV reuse per session."""

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
        kv_sessions: int = 4,
        trust_remote_code: bool = False,
        static: bool | None = None,
    ) -> None:
        """``model`` is a folder or hub id; ``resolve``, if given, is called by load()
        to produce the folder (the embedded model converts itself there). ``kv_sessions``
        KV caches are kept at once (by the requests' ``session`` key). ``trust_remote_code``:
        run the model folder's own code (off: such a folder is refused, see hf/trust.py).
        ``static``: static KV caches and, on a GPU, decode steps as CUDA graphs (None: on a
        GPU; see hf/decode.py)."""
        check_dtype(dtype)
        self.model_id = model
        self.name = name or model
        self.gguf_file = gguf_file
        self.trust_remote_code = trust_remote_code
        self.dtype = dtype
        self.threads = threads
        self.device = device
        self.prefill_chunk = prefill_chunk
        self.speculate = speculate
        self.static = static
        self.sessions = KVSessions(kv_sessions)
        self._resolve = resolve
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._loaded = False
        self._load_error: ModelError | None = None
        self._template: PromptTemplate | None = None
        self.path: str | None = None
        self.load_s: float | None = None
        self.weights = ""  # the weight format in use once loaded
        self.parameters = 0
        # Set by load():
        self.torch: Any = None
        self.tokens: Tokens | None = None
        self.healer: Healer | None = None
        self.decoder: Decoder | None = None
        self._device: Any = None

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
        path = str(self._resolve()) if self._resolve is not None else self.model_id
        self.path = path
        loaded = load_model(
            path,
            gguf_file=self.gguf_file,
            dtype=self.dtype,
            device=self.device,
            threads=self.threads,
            trust_remote_code=self.trust_remote_code,
        )
        self.torch = loaded.torch
        self.weights = loaded.weights
        self.parameters = loaded.parameters
        self._device = loaded.device
        self.tokens = Tokens(loaded.tokenizer, loaded.eos)
        self.healer = Healer(loaded.tokenizer)
        self.decoder = Decoder(
            loaded,
            self.tokens,
            self.healer,
            name=self.name,
            prefill_chunk=self.prefill_chunk,
            speculate=self.speculate,
            static=self.static,
        )
        self.load_s = time.perf_counter() - started

    # -- the protocol ----------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        self.load()
        assert self.tokens is not None
        return self.tokens.count(text)

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
            facts["parameters"] = f"{self.parameters / 1e6:.1f}M"
            if self.decoder is not None:
                decoder = self.decoder
                facts["decode"] = (
                    "static KV cache, CUDA-graph steps" if decoder.compile_steps
                    else "static KV cache" if decoder.static else "dynamic KV cache"
                )  # fmt: skip
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
        if self._template is None:
            self.load()
            assert self.tokens is not None
            hint = f"{self.name} {self.path or ''}"
            self._template = template_for(hint, self.tokens.vocabulary())
        return self._template

    def render(self, request: GenerationRequest) -> str:
        """The exact text the model is fed for ``request`` (before token healing)."""
        if request.kind == "infill":
            assert request.infill is not None
            return self.detect_template().render_infill(request.infill)
        if request.kind == "chat":
            self.load()
            assert self.tokens is not None and request.messages is not None
            return self.tokens.chat(request.messages)
        return request.prompt

    def reset_cache(self) -> None:
        """Forget every kept KV session (the next request prefills from scratch)."""
        with self._gen_lock:
            self.sessions.clear()

    def session(self, key: str | None) -> KVSession | None:
        """The kept KV session for ``key`` (None: the default one), if any."""
        return self.sessions.peek(key)

    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Generation:
        return Generation(lambda generation: self._run(generation, request, cancel))

    @contextlib.contextmanager
    def _lend(self, decoder: Any, cancel: CancelToken | None, stats: Any) -> Iterator[None]:
        """While the scheduler pauses this generation between steps, another may run: give
        the generation lock and the layer hook up; this generation's KV session stays put."""
        active = decoder.active
        decoder.active = None
        self._gen_lock.release()
        try:
            yield
        finally:
            self._gen_lock.acquire()
            decoder.active = active
            wanted = self.threads or os.cpu_count() or 1
            if self.torch.get_num_threads() != wanted:
                self.torch.set_num_threads(wanted)

    def _run(
        self, generation: Generation, request: GenerationRequest, cancel: CancelToken | None
    ) -> Iterator[str]:
        self.load()
        while not self._gen_lock.acquire(timeout=0.01):
            check_cancel(cancel, generation.pending)
        decoder, tokens = self.decoder, self.tokens
        assert decoder is not None and tokens is not None
        try:
            torch = self.torch
            wanted = self.threads or os.cpu_count() or 1
            if torch.get_num_threads() != wanted:  # per thread with some OpenMP runtimes
                torch.set_num_threads(wanted)
            if request.kind == "infill":
                stops = [*request.stop, *self.detect_template().stop]
                request = dataclasses.replace(request, stop=stops)
            ids = tokens.encode_prompt(self.render(request))
            heal = request.token_healing and request.kind != "chat"
            generator = None
            if request.seed is not None and request.temperature > 0:
                generator = torch.Generator(device=self._device).manual_seed(request.seed)
            session = self.sessions.get(request.session)
            for _ in range(request.samples):
                stats = generation.start_sample()
                decoder.active = (cancel, stats)
                steps = decoder.steps(
                    session, ids, request, stats, cancel, heal=heal, generator=generator
                )
                pause = functools.partial(self._lend, decoder, cancel, stats)
                yield from stream(steps, request, stats, cancel, pause)
        finally:
            decoder.active = None
            self._gen_lock.release()
