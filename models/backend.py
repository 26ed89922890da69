"""The model backend seam: streaming, cancellable generation with stop sequences.

Every backend (embedded transformers, OpenAI-compatible, vLLM) is one module that
implements :class:`ModelBackend`. Nothing here knows about LSP or prompts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class ModelError(Exception):
    """A backend failed: it could not load, or it raised while generating."""


class Cancelled(Exception):  # noqa: N818 - control flow, not an error
    """Generation stopped because its request was cancelled or superseded."""


class CancelToken:
    """Set by whoever supersedes or cancels a request; polled by the decode loop each step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.cancelled_at: float | None = None

    def cancel(self) -> None:
        if not self._event.is_set():
            import time

            self.cancelled_at = time.perf_counter()
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if cancelled meanwhile."""
        return self._event.wait(timeout)


@dataclass
class GenerationRequest:
    prompt: str
    max_new_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    # Text the prompt logically ends with but that was held back for token healing is
    # handled inside the backend; callers pass the whole prompt.
    token_healing: bool = True
    # Called with the text generated so far; returning True stops generation early
    # (the post-processor knows the suggestion is complete).
    should_stop: Callable[[str], bool] | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV came from the cache
    generated_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    draft_tokens: int = 0  # speculative (prompt-lookup) tokens proposed
    accepted_tokens: int = 0  # ... and accepted by the model
    stop_reason: str = ""  # "stop", "length", "eos", "early", "cancelled"
    # perf_counter() when the decode loop noticed cancellation (for the stop-latency benchmark)
    cancel_noticed_at: float | None = None


@runtime_checkable
class ModelBackend(Protocol):
    """A loaded (or lazily loading) model."""

    name: str

    def load(self) -> None:
        """Load weights now (idempotent). Raises ModelError."""

    def count_tokens(self, text: str) -> int: ...

    def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> Iterator[str]:
        """Yield decoded text chunks as they are produced.

        Stops at a stop sequence (not included in the output), at EOS, at
        ``max_new_tokens``, when ``request.should_stop`` says so, or when ``cancel`` is set
        (then raises :class:`Cancelled`). ``last_stats`` describes the latest generation.
        """
        ...

    @property
    def last_stats(self) -> GenerationStats: ...

    def describe(self) -> dict[str, str]:
        """Facts for `hone doctor`: model, device, dtype, path."""
        ...
