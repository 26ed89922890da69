"""The scheduler with the real embedded model: a background generation yields to a
completion between decode steps, and does not evict the completion's cached prefix."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hone.models.backend import GenerationRequest
from hone.models.scheduler import Priority, Scheduler

pytestmark = pytest.mark.model

SOURCE = (Path(__file__).resolve().parents[2] / "models" / "scheduler.py").read_text()


def test_background_generation_yields_to_a_completion_and_keeps_its_prefix(embedded):
    sched = Scheduler(slots=1)
    interactive_prompt = SOURCE[:2500]
    background_prompt = SOURCE[2500:5000]

    def complete(ticket):
        gen = embedded.generate(
            GenerationRequest(prompt=interactive_prompt, max_new_tokens=8, session="doc"), ticket
        )
        return "".join(gen), gen.stats

    # The completion's prefix is cached in its session.
    warm = sched.ticket()
    _, first_stats = sched.submit(complete, warm, ticket=warm).result(120)
    assert first_stats.prompt_tokens > 300

    progress: list[int] = []  # background text length at each step
    decoding = threading.Event()

    def watch(text: str) -> bool:
        progress.append(len(text))
        decoding.set()
        return False

    def background(ticket):
        gen = embedded.generate(
            GenerationRequest(
                prompt=background_prompt,
                max_new_tokens=48,
                session="background",
                should_stop=watch,
                token_healing=False,
            ),
            ticket,
        )
        return "".join(gen), gen.stats

    bg_ticket = sched.ticket(Priority.BACKGROUND)
    bg_future = sched.submit(background, bg_ticket, ticket=bg_ticket)
    assert decoding.wait(120), "the background generation never started decoding"

    seen: dict[str, int] = {}

    def complete_and_note(ticket):
        seen["background_steps_at_start"] = len(progress)
        out = complete(ticket)
        seen["background_steps_at_end"] = len(progress)
        seen["background_done_at_end"] = bg_future.done()
        return out

    it = sched.ticket()
    _, stats = sched.submit(complete_and_note, it, ticket=it).result(120)
    bg_text, bg_stats = bg_future.result(300)

    assert bg_ticket.preemptions >= 1
    # the background job did not step while the completion ran, and was not finished
    assert seen["background_steps_at_start"] == seen["background_steps_at_end"]
    assert seen["background_done_at_end"] is False
    # the completion's cached prefix survived the background generation
    assert stats.reused_tokens >= stats.prompt_tokens - 2, stats
    # and the background generation went on to its end afterwards
    assert bg_stats.generated_tokens > 0 and len(progress) > seen["background_steps_at_end"]
    assert bg_stats.stop_reason in ("length", "eos", "stop")
    assert sched.snapshot()["background_running"] == 0
