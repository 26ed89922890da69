"""The model scheduler: interactive first, background preempted between steps.

Real threads, real scheduler; the jobs are small step loops that record what ran when
(ordering, not timing, is asserted).
"""

from __future__ import annotations

import threading

import pytest
from hone.models.backend import Cancelled
from hone.models.scheduler import Priority, Scheduler


class StepJob:
    """A job of ``steps`` steps that checks its ticket before each one, like a decode loop."""

    def __init__(self, name: str, steps: int, log: list[str], gate: threading.Event | None = None):
        self.name, self.steps, self.log, self.gate = name, steps, log, gate
        self.started = threading.Event()

    def __call__(self, ticket) -> str:
        for i in range(self.steps):
            ticket.checkpoint()
            if ticket.cancelled:
                raise Cancelled()
            self.log.append(f"{self.name}{i}")
            self.started.set()
            if self.gate is not None:
                self.gate.wait(5)
        return self.name


def test_interactive_preempts_background_within_one_step():
    sched = Scheduler(slots=1)
    log: list[str] = []
    gate = threading.Event()  # holds the background job inside its first step
    bg_ticket = sched.ticket(Priority.BACKGROUND)
    bg = StepJob("b", 5, log, gate)
    bg_future = sched.submit(bg, bg_ticket, ticket=bg_ticket)
    assert bg.started.wait(5)
    it_ticket = sched.ticket(Priority.INTERACTIVE)
    it_future = sched.submit(StepJob("i", 3, log), it_ticket, ticket=it_ticket)
    # the interactive job is waiting for the slot the background job holds
    for _ in range(100):
        if sched.snapshot()["interactive_waiting"] == 1:
            break
        threading.Event().wait(0.01)
    assert sched.snapshot()["interactive_waiting"] == 1
    gate.set()  # the background step ends; at its next checkpoint it must yield
    assert it_future.result(5) == "i"
    assert bg_future.result(5) == "b"
    # exactly one background step ran before the whole interactive job
    assert log[:4] == ["b0", "i0", "i1", "i2"], log
    assert log[4:] == ["b1", "b2", "b3", "b4"]
    assert bg_ticket.preemptions == 1


def test_waiting_background_does_not_start_before_waiting_interactive():
    sched = Scheduler(slots=1)
    log: list[str] = []
    gate = threading.Event()
    first = StepJob("x", 1, log, gate)
    t0 = sched.ticket(Priority.INTERACTIVE)
    f0 = sched.submit(first, t0, ticket=t0)
    assert first.started.wait(5)
    tb = sched.ticket(Priority.BACKGROUND)
    fb = sched.submit(StepJob("b", 1, log), tb, ticket=tb)
    ti = sched.ticket(Priority.INTERACTIVE)
    fi = sched.submit(StepJob("i", 1, log), ti, ticket=ti)
    for _ in range(100):
        snap = sched.snapshot()
        if snap["interactive_waiting"] == 1 and snap["background_waiting"] == 1:
            break
        threading.Event().wait(0.01)
    gate.set()
    fi.result(5), fb.result(5), f0.result(5)
    assert log == ["x0", "i0", "b0"]


def test_cancelled_while_waiting_never_runs():
    sched = Scheduler(slots=1)
    log: list[str] = []
    gate = threading.Event()
    holder = StepJob("h", 1, log, gate)
    th = sched.ticket()
    fh = sched.submit(holder, th, ticket=th)
    assert holder.started.wait(5)
    tw = sched.ticket()
    fw = sched.submit(StepJob("w", 1, log), tw, ticket=tw)
    tw.cancel()
    with pytest.raises(Cancelled):
        fw.result(5)
    gate.set()
    assert fh.result(5) == "h"
    assert log == ["h0"]
    snap = sched.snapshot()
    assert snap == {
        "interactive_running": 0,
        "interactive_waiting": 0,
        "background_running": 0,
        "background_waiting": 0,
    }


def test_slots_bound_jobs_in_flight():
    sched = Scheduler(slots=2)
    inside = []
    peak = []
    lock = threading.Lock()
    release = threading.Event()

    def job(ticket):
        with lock:
            inside.append(1)
            peak.append(len(inside))
        release.wait(5)
        with lock:
            inside.pop()
        return True

    tickets = [sched.ticket() for _ in range(4)]
    futures = [sched.submit(job, t, ticket=t) for t in tickets]
    for _ in range(100):
        if sched.snapshot()["interactive_running"] == 2:
            break
        threading.Event().wait(0.01)
    assert sched.snapshot()["interactive_running"] == 2
    assert sched.snapshot()["interactive_waiting"] == 2
    release.set()
    assert all(f.result(5) for f in futures)
    assert max(peak) == 2
