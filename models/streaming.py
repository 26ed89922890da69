"""What every backend's decode loop shares: stop strings, early stop, cancellation, stats.

A backend writes a *step generator*: each ``next()`` does one unit of work (a decode
step, a scripted chunk) and yields the whole visible text generated so far. It sets
``stats.stop_reason`` to ``"eos"`` before returning at end of sequence and leaves
``"length"`` to this module. :func:`stream` turns it into the chunks the caller sees:

- cancellation is checked before every step (and by the step itself while it waits
  or prefills, with :func:`check_cancel`): it raises :class:`Cancelled` carrying the
  stats, with ``stats.cancel_noticed_at`` recorded;
- a stop string ends generation and is never yielded, even when it arrives split
  across steps: text that could be the start of a stop string is held back until
  it is known not to be one;
- ``request.should_stop(text_yielded_so_far)`` returning True ends generation with
  ``stop_reason == "early"``;
- the step generator is closed whenever the stream ends, so its ``finally`` blocks
  (cache bookkeeping, timing) always run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from hone.models.backend import Cancelled, CancelToken, GenerationRequest, GenerationStats


def check_cancel(cancel: CancelToken | None, stats: GenerationStats) -> None:
    """Raise Cancelled (recording when it was noticed) if ``cancel`` is set."""
    if cancel is not None and cancel.cancelled:
        stats.cancel_noticed_at = time.perf_counter()
        stats.stop_reason = "cancelled"
        raise Cancelled(stats=stats)


class StopScanner:
    """Finds stop strings in growing text and says how much of it is safe to show."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self.stops), default=0)
        self._searched = 0  # text[:_searched] is known to contain no complete stop string

    def find(self, text: str) -> int | None:
        """Index of the first stop string in ``text``, or None."""
        if not self.stops:
            return None
        start = max(0, self._searched - self._longest + 1)
        hits = [i for i in (text.find(s, start) for s in self.stops) if i >= 0]
        self._searched = len(text)
        return min(hits) if hits else None

    def safe_end(self, text: str) -> int:
        """Length of the prefix of ``text`` that cannot be the start of a stop string."""
        hold = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), hold, -1):
                if text.endswith(stop[:n]):
                    hold = n
                    break
        return len(text) - hold


def stream(
    steps: Iterator[str],
    request: GenerationRequest,
    stats: GenerationStats,
    cancel: CancelToken | None = None,
    pause: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
) -> Iterator[str]:
    """Drive ``steps`` (cumulative visible text per step) into caller-facing chunks.

    ``pause`` is the backend's way to lend the model out while the scheduler pauses this
    generation between steps (release its lock, keep its session); see
    :meth:`hone.models.backend.CancelToken.checkpoint`."""
    scanner = StopScanner(request.stop)
    shown = text = ""
    stats.stop_reason = "length"
    try:
        while True:
            if cancel is not None and cancel.yield_requested():
                # between steps, never inside one: a background job gives the model up
                # while interactive work waits (hone.models.scheduler)
                with pause() if pause is not None else contextlib.nullcontext():
                    cancel.checkpoint()
            check_cancel(cancel, stats)
            try:
                text = next(steps)
            except StopIteration:
                break
            stop_at = scanner.find(text)
            if stop_at is not None:
                chunk = text[len(shown) : stop_at]
                stats.stop_reason = "stop"
            else:
                chunk = text[len(shown) : scanner.safe_end(text)]
            if chunk:
                shown += chunk
                if stats.stop_reason != "stop" and _early(request, shown):
                    stats.stop_reason = "early"
                yield chunk
            if stats.stop_reason in ("stop", "early"):
                return
        # EOS or length: text held back as a possible stop-string start was real output.
        rest = text[len(shown) :]
        if rest:
            shown += rest
            if _early(request, shown):
                stats.stop_reason = "early"
            yield rest
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            close()


def _early(request: GenerationRequest, shown: str) -> bool:
    return request.should_stop is not None and bool(request.should_stop(shown))
