"""One scheduler owns the model: interactive work first, background work preempted.

Every call into a backend (a completion, an index embedding, a repair candidate) goes
through :meth:`Scheduler.submit` with a :class:`Priority`. At most ``slots`` jobs use the
model at once (1 for an embedded model; a small bound of requests in flight for an HTTP
server). Interactive jobs take a free slot before any waiting background job.

Preemption is cooperative and happens between decode steps: a background job's ticket
(its :class:`~hone.models.backend.CancelToken`) is asked by the backend's stream before
every step (:func:`hone.models.streaming.stream` calls :meth:`Ticket.checkpoint` when
:meth:`Ticket.yield_requested`). When interactive work is waiting, the background job gives
its slot up right there (the backend's ``pause`` lends the model out: its lock, not its
KV session) and takes it back once no interactive work is waiting and a slot is free, so
a completion waits for at most one decode step of background work. The paused job keeps
its own state (its generator, its KV session), so nothing of the interactive job's cached
prefix is evicted by it, provided the backend keeps a session per caller (the transformers
backend's ``session`` keys).

Jobs run on a small thread pool: a paused background job holds a thread, not the model.
"""

from __future__ import annotations

import concurrent.futures
import enum
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from hone.models.backend import Cancelled, CancelToken

T = TypeVar("T")


class Priority(enum.IntEnum):
    INTERACTIVE = 0
    BACKGROUND = 1


class Ticket(CancelToken):
    """A job's cancel token, which also lets a background job yield the model."""

    def __init__(self, scheduler: Scheduler, priority: Priority) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.priority = Priority(priority)
        self.preemptions = 0  # times this job gave its slot up to interactive work

    def cancel(self) -> None:
        super().cancel()
        self.scheduler._wake()  # a job waiting for a slot notices at once

    def yield_requested(self) -> bool:
        return self.priority is Priority.BACKGROUND and self.scheduler._interactive_waiting()

    def checkpoint(self) -> None:
        """Between decode steps: a background job pauses while interactive work waits."""
        if self.priority is Priority.BACKGROUND:
            self.scheduler._yield_to_interactive(self)


class Scheduler:
    """Priority slots over a thread pool (see the module docstring)."""

    def __init__(self, slots: int = 1, threads: int | None = None, name: str = "hone-model"):
        if slots < 1:
            raise ValueError("a scheduler needs at least one slot")
        self.slots = slots
        self._cond = threading.Condition()
        self._running = {Priority.INTERACTIVE: 0, Priority.BACKGROUND: 0}
        self._waiting = {Priority.INTERACTIVE: 0, Priority.BACKGROUND: 0}
        # Paused background jobs hold threads; keep some for interactive work.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            threads or slots + 3, thread_name_prefix=name
        )
        self._closed = False

    # -- public ----------------------------------------------------------------------
    def ticket(self, priority: Priority = Priority.INTERACTIVE) -> Ticket:
        return Ticket(self, priority)

    def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        ticket: Ticket | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` when a slot is free for ``ticket``'s priority.

        The ticket is the job's cancel token: pass it on to the backend. A job cancelled
        while it waits for a slot raises :class:`Cancelled` without running.
        """
        ticket = ticket or self.ticket(priority)
        if self._closed:
            raise RuntimeError("the scheduler is shut down")

        def job() -> T:
            self._acquire(ticket)
            try:
                return fn(*args)
            finally:
                self._release(ticket.priority)

        return self._pool.submit(job)

    def snapshot(self) -> dict[str, int]:
        """Jobs running and waiting, per priority (for `hone/stats` and tests)."""
        with self._cond:
            return {
                "interactive_running": self._running[Priority.INTERACTIVE],
                "interactive_waiting": self._waiting[Priority.INTERACTIVE],
                "background_running": self._running[Priority.BACKGROUND],
                "background_waiting": self._waiting[Priority.BACKGROUND],
            }

    def shutdown(self) -> None:
        """Drop queued jobs; running ones end when their tickets are cancelled."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wake()

    # -- slots -----------------------------------------------------------------------
    def _busy(self) -> int:
        return self._running[Priority.INTERACTIVE] + self._running[Priority.BACKGROUND]

    def _may_run(self, priority: Priority) -> bool:
        if self._busy() >= self.slots:
            return False
        return priority is Priority.INTERACTIVE or self._waiting[Priority.INTERACTIVE] == 0

    def _acquire(self, ticket: Ticket) -> None:
        p = ticket.priority
        with self._cond:
            self._waiting[p] += 1
            try:
                while not self._may_run(p):
                    if ticket.cancelled or self._closed:
                        raise Cancelled("cancelled while waiting for the model")
                    self._cond.wait()
                if ticket.cancelled:
                    raise Cancelled("cancelled while waiting for the model")
            finally:
                self._waiting[p] -= 1
            self._running[p] += 1

    def _release(self, priority: Priority) -> None:
        with self._cond:
            self._running[priority] -= 1
            self._cond.notify_all()

    def _interactive_waiting(self) -> bool:
        with self._cond:
            return self._waiting[Priority.INTERACTIVE] > 0

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _yield_to_interactive(self, ticket: Ticket) -> None:
        with self._cond:
            if self._waiting[Priority.INTERACTIVE] == 0:
                return
            ticket.preemptions += 1
            self._running[Priority.BACKGROUND] -= 1
            self._cond.notify_all()
            self._waiting[Priority.BACKGROUND] += 1
            try:
                while not self._may_run(Priority.BACKGROUND):
                    if ticket.cancelled or self._closed:
                        break  # take the slot back so the caller's release balances
                    self._cond.wait()
            finally:
                self._waiting[Priority.BACKGROUND] -= 1
                self._running[Priority.BACKGROUND] += 1
