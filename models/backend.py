"""The model backend seam: structured requests in, a streaming result with its own statistics out.

Every backend (embedded transformers, OpenAI-compatible, vLLM) is one module that
implements :class:`ModelBackend`. Nothing here knows about LSP.

A request says *what* to generate, never how the model spells it:

- :class:`Infill` — a code completion: the file's prefix and suffix, its path relative to
  the workspace root, its language and context snippets from other files. The backend
  renders it: local models with their family's template (``templates/families.toml``),
  servers with a native fill-in-the-middle endpoint with that.
- ``messages`` — a chat, ``[{"role": ..., "content": ...}]``, rendered with the model's
  chat template.
- ``prompt`` — text already rendered (benchmarks, probes of a base model).

``generate`` returns a :class:`Generation`: an iterator over text chunks that carries the
statistics of *this* request (``.stats``, final once it is exhausted); a
:class:`Cancelled` raised from it carries them too (``exc.stats``). There is no shared
"last statistics" state, so concurrent or interleaved requests cannot read each other's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Protocol, runtime_checkable


class ModelError(Exception):
    """A backend failed: it could not load, it raised while generating, or a request was bad."""


class Cancelled(Exception):  # noqa: N818 - control flow, not an error
    """Generation stopped because its request was cancelled or superseded.

    ``stats`` holds the statistics of the cancelled generation (None when it was cancelled
    before a backend saw it).
    """

    def __init__(self, *args: object, stats: GenerationStats | None = None) -> None:
        super().__init__(*args)
        self.stats = stats


class CancelToken:
    """Set by whoever supersedes or cancels a request; polled by the decode loop each step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.cancelled_at: float | None = None

    def cancel(self) -> None:
        if not self._event.is_set():
            self.cancelled_at = time.perf_counter()
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if cancelled meanwhile."""
        return self._event.wait(timeout)

    def yield_requested(self) -> bool:
        """Whether the job should pause at the next step boundary (never, here; a background
        job's :class:`hone.models.scheduler.Ticket` says yes while interactive work waits)."""
        return False

    def checkpoint(self) -> None:
        """Pause here, between decode steps, until the job may go on (a no-op here).
        :func:`hone.models.streaming.stream` calls it when :meth:`yield_requested` is true,
        inside the backend's ``pause`` (which lends the model out meanwhile)."""


def _relative(path: str, what: str) -> str:
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute():
        raise ModelError(f"{what} must be relative to the workspace root, got {path!r}")
    return path


@dataclass(frozen=True)
class Snippet:
    """Context from another file of the repository."""

    path: str  # relative to the workspace root
    text: str

    def __post_init__(self) -> None:
        _relative(self.path, "a context snippet's path")


@dataclass(frozen=True)
class Infill:
    """A code completion at a cursor: what the engine decided the model should see.

    The engine has already trimmed every piece to the token budget; the backend renders
    them (snippets first, then the file, so typing only changes the prompt's tail).
    """

    prefix: str
    suffix: str = ""
    path: str | None = None  # relative to the workspace root; never absolute
    language: str = "plaintext"
    snippets: tuple[Snippet, ...] = ()

    def __post_init__(self) -> None:
        if self.path:
            _relative(self.path, "the file's path")
        object.__setattr__(self, "snippets", tuple(self.snippets))


Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass
class GenerationRequest:
    """One request. Give exactly one of ``prompt`` (rendered text), ``infill`` or ``messages``."""

    prompt: str = ""
    max_new_tokens: int = 64
    # Stop strings in addition to those of the backend's prompt family (an Infill also
    # stops at its family's control tokens; the backend adds them).
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    # Take back the prompt's last token(s) and let the model re-choose them (see the
    # transformers backend). Ignored for chats.
    token_healing: bool = True
    # Called with the text generated so far; returning True stops generation early
    # (the post-processor knows the suggestion is complete).
    should_stop: Callable[[str], bool] | None = None
    infill: Infill | None = None
    messages: Sequence[Message] | None = None
    # Samples wanted. At temperature 0 decoding is deterministic: one sample comes back.
    n: int = 1
    seed: int | None = None  # makes sampling reproducible
    # The text must go on from the prompt's last line: a line break is not chosen before
    # the first visible non-whitespace character, nor right after an opening parenthesis
    # (a call being written, ``x = f(``, wants its arguments on this line; a
    # single-line suggestion that starts with a line break shows nothing, one that breaks
    # after ``f(`` shows half a call). Backends that cannot constrain decoding ignore it.
    continue_line: bool = False
    # Which kept KV cache to reuse: the document's URI for interactive completions,
    # "background" for background work; None shares one default session.
    session: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("prompt", "infill", "messages") if getattr(self, k)]
        if len(given) > 1:
            raise ModelError(f"a generation request takes one of {', '.join(given)}, not several")
        if self.n < 1:
            raise ModelError(f"n must be at least 1, got {self.n}")
        if self.messages is not None:
            for m in self.messages:
                if not isinstance(m, Mapping) or not all(
                    isinstance(m.get(k), str) for k in ("role", "content")
                ):
                    raise ModelError(f"a chat message needs a role and a content: {m!r}")

    @property
    def kind(self) -> str:
        """The request's kind: "infill", "chat" or "text"."""
        if self.infill is not None:
            return "infill"
        if self.messages:
            return "chat"
        return "text"

    @property
    def samples(self) -> int:
        """How many samples the backend produces: ``n``, or 1 when decoding is greedy."""
        return self.n if self.temperature > 0 else 1


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

    @classmethod
    def combine(cls, parts: Sequence[GenerationStats]) -> GenerationStats:
        """One request's totals over its samples (the prompt is the first sample's)."""
        if not parts:
            return cls()
        first, last = parts[0], parts[-1]
        return cls(
            prompt_tokens=first.prompt_tokens,
            reused_tokens=first.reused_tokens,
            generated_tokens=sum(p.generated_tokens for p in parts),
            prefill_s=sum(p.prefill_s for p in parts),
            decode_s=sum(p.decode_s for p in parts),
            draft_tokens=sum(p.draft_tokens for p in parts),
            accepted_tokens=sum(p.accepted_tokens for p in parts),
            stop_reason=last.stop_reason,
            cancel_noticed_at=last.cancel_noticed_at,
        )


@dataclass
class Sample:
    text: str = ""
    stats: GenerationStats = field(default_factory=GenerationStats)


class Generation(Iterator[str]):
    """What ``generate`` returns: text chunks as they are produced, with their statistics.

    Iterate it (``"".join(generation)`` for the whole text). With several samples the
    chunks of each sample follow the previous sample's; ``samples`` holds each one's text
    and stats, ``texts()`` drains the iterator and returns the texts. ``stats`` covers the
    whole request and is final once the iterator is exhausted. Nothing runs before the
    first ``next()``; ``close()`` (or dropping it) ends the generation early.

    Backends build one from a generator function ``run(generation)`` that calls
    :meth:`start_sample` before each sample's chunks and records into the stats it returns
    (before the first sample, :attr:`pending` is the stats object to record into).
    """

    def __init__(self, run: Callable[[Generation], Iterator[str]]) -> None:
        self.samples: list[Sample] = []
        self.pending = GenerationStats()  # becomes the first sample's stats
        self._chunks = run(self)

    def start_sample(self) -> GenerationStats:
        stats = self.pending if not self.samples else GenerationStats()
        self.samples.append(Sample(stats=stats))
        return stats

    @property
    def stats(self) -> GenerationStats:
        if len(self.samples) <= 1:
            return self.pending
        return GenerationStats.combine([s.stats for s in self.samples])

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        try:
            chunk = next(self._chunks)
        except Cancelled as exc:
            exc.stats = self.stats
            raise
        if not self.samples:
            self.start_sample()
        self.samples[-1].text += chunk
        return chunk

    def texts(self) -> list[str]:
        """Run to the end; every sample's text."""
        for _ in self:
            pass
        return [s.text for s in self.samples]

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]


@runtime_checkable
class ModelBackend(Protocol):
    """A loaded (or lazily loading) model."""

    name: str

    def load(self) -> None:
        """Load weights now (idempotent). Raises ModelError."""

    def count_tokens(self, text: str) -> int | None:
        """Tokens ``text`` takes with this model's tokenizer; None when the backend has
        none here (a remote server): the caller estimates."""
        ...

    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Generation:
        """The request's text, streamed.

        Each sample stops at a stop sequence (not included in the output), at EOS, at
        ``max_new_tokens``, or when ``request.should_stop`` says so; when ``cancel`` is set
        the iterator raises :class:`Cancelled` (carrying the stats).
        """
        ...

    def describe(self) -> dict[str, str]:
        """Facts for `hone doctor`: model, device, dtype, path."""
        ...


def estimate_tokens(text: str) -> int:
    """A conservative token count for a backend without a tokenizer: two UTF-8 bytes a
    token, rounded up (code tokenizers average three to four bytes a token)."""
    return -(-len(text.encode("utf-8")) // 2)


def token_counter(backend: ModelBackend) -> Callable[[str], int]:
    """``backend.count_tokens``, falling back to :func:`estimate_tokens` where it has none."""

    def count(text: str) -> int:
        n = backend.count_tokens(text)
        return estimate_tokens(text) if n is None else n

    return count
