"""The decode-loop logic shared by every backend: stop strings, early stop, cancellation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hone.models.backend import Cancelled, CancelToken, GenerationRequest, GenerationStats
from hone.models.streaming import StopScanner, stream


def steps_of(pieces: list[str], stats: GenerationStats, eos: bool = True) -> Iterator[str]:
    text = ""
    for piece in pieces:
        text += piece
        stats.generated_tokens += 1
        yield text
    if eos:
        stats.stop_reason = "eos"


def run(pieces: list[str], **request: object) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    req = GenerationRequest(prompt="p", **request)  # type: ignore[arg-type]
    return list(stream(steps_of(pieces, stats), req, stats)), stats


def test_plain_text_passes_through_and_ends_at_eos():
    chunks, stats = run(["ab", "cd", "ef"])
    assert chunks == ["ab", "cd", "ef"]
    assert stats.stop_reason == "eos"


def test_stop_string_split_across_pieces_is_never_shown():
    chunks, stats = run(["x = 1", "\n\n", "de", "f g"], stop=["\ndef"])
    assert "".join(chunks) == "x = 1\n"
    assert stats.stop_reason == "stop"


def test_held_back_text_is_released_when_it_turns_out_not_to_be_a_stop():
    chunks, stats = run(["a<", "|x", "y"], stop=["<|end|>"])
    assert chunks == ["a", "<|x", "y"]
    assert stats.stop_reason == "eos"


def test_held_back_text_is_flushed_at_the_end():
    chunks, _ = run(["value <|en"], stop=["<|end|>"])
    assert "".join(chunks) == "value <|en"


def test_earliest_of_several_stop_strings_wins():
    chunks, _ = run(["abc", "STOP2", "STOP1"], stop=["STOP1", "STOP2"])
    assert "".join(chunks) == "abc"


def test_should_stop_sees_exactly_the_text_yielded():
    seen: list[str] = []

    def should_stop(text: str) -> bool:
        seen.append(text)
        return text.count("\n") >= 2

    chunks, stats = run(["a\n", "b", "\nc", "d"], should_stop=should_stop)
    assert "".join(chunks) == "a\nb\nc"
    assert seen[-1] == "a\nb\nc"
    assert stats.stop_reason == "early"


def test_length_when_steps_run_out_without_eos():
    stats = GenerationStats()
    out = list(stream(steps_of(["a", "b"], stats, eos=False), GenerationRequest("p"), stats))
    assert out == ["a", "b"]
    assert stats.stop_reason == "length"


def test_cancel_is_checked_before_every_step_and_closes_the_steps():
    stats = GenerationStats()
    closed = []

    def steps() -> Iterator[str]:
        try:
            yield "a"
            yield "ab"
        finally:
            closed.append(True)

    cancel = CancelToken()
    gen = stream(steps(), GenerationRequest("p"), stats, cancel)
    assert next(gen) == "a"
    cancel.cancel()
    with pytest.raises(Cancelled) as raised:
        next(gen)
    assert raised.value.stats is stats  # the cancelled generation's own statistics
    assert closed == [True]
    assert stats.stop_reason == "cancelled"
    assert stats.cancel_noticed_at is not None
    assert stats.cancel_noticed_at >= cancel.cancelled_at


def test_scanner_safe_end():
    scanner = StopScanner(["\nclass", "```"])
    assert scanner.safe_end("x = 1\ncl") == len("x = 1")
    assert scanner.safe_end("x = 1\n``") == len("x = 1\n")
    assert scanner.safe_end("x = 1") == 5
    assert StopScanner([]).safe_end("abc") == 3
