"""ScriptedBackend: the deterministic fake model used by server plumbing tests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hone.models.backend import (
    Cancelled,
    CancelToken,
    GenerationRequest,
    Infill,
    ModelBackend,
    ModelError,
    Snippet,
    estimate_tokens,
    token_counter,
)
from hone.models.registry import load_backend
from hone.models.scripted import ScriptedBackend


def scripted(tmp_path: Path, **spec: object) -> ScriptedBackend:
    path = tmp_path / "script.json"
    spec.setdefault("step_ms", 1)
    path.write_text(json.dumps(spec))
    backend = load_backend(f"scripted:{path}")
    assert isinstance(backend, ScriptedBackend)
    return backend


def test_is_a_model_backend(tmp_path: Path):
    backend = scripted(tmp_path, responses=[])
    assert isinstance(backend, ModelBackend)
    backend.load()
    assert backend.describe()["model"].startswith("scripted:")
    assert backend.count_tokens("12345678") == 2


def test_first_matching_response_is_played_in_chunks(tmp_path: Path):
    backend = scripted(
        tmp_path,
        responses=[
            {"match": "def add", "text": "return a + b\n"},
            {"match": None, "text": "pass\n"},
        ],
        chunk_chars=3,
    )
    generation = backend.generate(GenerationRequest(prompt="def add(a, b):\n    "))
    assert list(generation) == ["ret", "urn", " a ", "+ b", "\n"]
    assert generation.stats.generated_tokens == 5
    assert generation.stats.stop_reason == "eos"
    assert "".join(backend.generate(GenerationRequest(prompt="x = "))) == "pass\n"


def test_default_text_when_nothing_matches(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": "zzz", "text": "no"}], default="dflt")
    assert "".join(backend.generate(GenerationRequest(prompt="abc"))) == "dflt"


def test_stop_sequence_split_across_chunks(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "x = 1\n\ndef g():"}])
    generation = backend.generate(GenerationRequest(prompt="", stop=["\n\ndef"]))
    assert "".join(generation) == "x = 1"
    assert generation.stats.stop_reason == "stop"


def test_max_new_tokens(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "abcdefghij"}])
    generation = backend.generate(GenerationRequest(prompt="", max_new_tokens=2))
    assert "".join(generation) == "abcdef"
    assert generation.stats.stop_reason == "length"


def test_should_stop(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "a = 1\nb = 2\nc = 3\n"}])
    request = GenerationRequest(prompt="", should_stop=lambda text: "\n" in text)
    generation = backend.generate(request)
    assert "".join(generation) == "a = 1\n"
    assert generation.stats.stop_reason == "early"


def test_cancellation_is_noticed_within_one_step(tmp_path: Path):
    backend = scripted(
        tmp_path, responses=[{"match": None, "text": "x" * 300}], step_ms=50, chunk_chars=1
    )
    cancel = CancelToken()
    got: list[str] = []
    with pytest.raises(Cancelled) as raised:
        for chunk in backend.generate(GenerationRequest(prompt="", max_new_tokens=300), cancel):
            got.append(chunk)
            if len(got) == 2:
                threading.Timer(0.02, cancel.cancel).start()
    stats = raised.value.stats  # the cancelled generation's own statistics
    assert stats.stop_reason == "cancelled"
    assert stats.cancel_noticed_at >= cancel.cancelled_at  # (the delay: bench_latency)
    assert len(got) <= 3


def test_raise(tmp_path: Path):
    backend = scripted(tmp_path, responses=[], **{"raise": True})
    backend.load()
    with pytest.raises(ModelError, match="told to fail"):
        list(backend.generate(GenerationRequest(prompt="x")))
    failing_load = scripted(tmp_path, responses=[], **{"raise": "load"})
    with pytest.raises(ModelError):
        failing_load.load()


def test_hang_waits_until_cancelled(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "never"}], hang=True)
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    with pytest.raises(Cancelled) as raised:
        list(backend.generate(GenerationRequest(prompt="x"), cancel))
    # it waited for the cancel (nothing generated), and noticed it
    assert raised.value.stats.generated_tokens == 0
    assert raised.value.stats.cancel_noticed_at >= cancel.cancelled_at


def test_one_generation_at_a_time_and_a_cancelled_waiter_gives_up(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "abcdef"}], step_ms=30)
    first = backend.generate(GenerationRequest(prompt="x"))
    assert next(first) == "abc"  # holds the generation lock now
    cancel = CancelToken()
    threading.Timer(0.05, cancel.cancel).start()
    with pytest.raises(Cancelled):
        list(backend.generate(GenerationRequest(prompt="y"), cancel))
    assert "".join(first) == "def"


def test_script_is_reread_when_the_file_changes(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "one"}])
    assert "".join(backend.generate(GenerationRequest(prompt=""))) == "one"
    time.sleep(0.01)
    backend.path.write_text(json.dumps({"responses": [{"match": None, "text": "two!"}]}))
    assert "".join(backend.generate(GenerationRequest(prompt=""))) == "two!"


def test_bad_script_is_a_model_error(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        ScriptedBackend(path).load()
    with pytest.raises(ModelError, match="cannot read"):
        ScriptedBackend(tmp_path / "missing.json").load()
    path.write_text(json.dumps({"responses": [{"match": None}]}))
    with pytest.raises(ModelError, match="bad response"):
        ScriptedBackend(path).load()


def test_family_is_reported_for_prompt_templates(tmp_path: Path):
    from hone.models.registry import template_for_backend

    assert template_for_backend(scripted(tmp_path, family="starcoder")).family == "starcoder"
    assert template_for_backend(scripted(tmp_path)).family == "plain"


def test_each_generation_carries_its_own_stats_while_another_runs(tmp_path: Path):
    """Interleaved requests: stats travel with each result, not through shared state."""
    backend = scripted(
        tmp_path,
        responses=[{"match": "long", "text": "a" * 12}, {"match": None, "text": "b" * 3}],
        chunk_chars=1,
    )
    first = backend.generate(GenerationRequest(prompt="long"))
    assert next(first) == "a"
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled) as raised:  # waits for the model, gives up at once
        list(backend.generate(GenerationRequest(prompt="short"), cancel))
    assert raised.value.stats.stop_reason == "cancelled"
    assert raised.value.stats.generated_tokens == 0
    assert "".join(first) == "a" * 11
    assert first.stats.generated_tokens == 12 and first.stats.stop_reason == "eos"
    second = backend.generate(GenerationRequest(prompt="short"))
    assert "".join(second) == "bbb"
    assert (second.stats.generated_tokens, first.stats.generated_tokens) == (3, 12)


def test_infill_is_rendered_with_the_family_template_and_its_stops(tmp_path: Path):
    backend = scripted(
        tmp_path,
        family="smollm",
        responses=[{"match": "<file_sep>lib/util.py\ndef helper", "text": "x + 1<file_sep>more"}],
        default="no match",
    )
    infill = Infill(
        "def f(x):\n    return ",
        path="src/m.py",
        language="python",
        snippets=(Snippet("lib/util.py", "def helper(x):\n    return x\n"),),
    )
    request = GenerationRequest(infill=infill)
    assert backend.render(request) == (
        "<file_sep>lib/util.py\ndef helper(x):\n    return x\n"
        "<file_sep>src/m.py\ndef f(x):\n    return "
    )
    # The family's own stop strings apply without the caller naming them.
    assert "".join(backend.generate(request)) == "x + 1"


def test_several_samples_and_greedy_gives_one(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "texts": ["one", "two", "three"]}])
    generation = backend.generate(GenerationRequest(prompt="p", n=3, temperature=0.8))
    assert generation.texts() == ["one", "two", "three"]
    assert [s.stats.generated_tokens for s in generation.samples] == [1, 1, 2]
    assert generation.stats.generated_tokens == 4
    greedy = backend.generate(GenerationRequest(prompt="p", n=3, temperature=0.0))
    assert greedy.texts() == ["one"]


def test_chat_messages_are_rendered(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": "user: why?\n", "text": "because"}])
    request = GenerationRequest(messages=[{"role": "user", "content": "why?"}])
    assert request.kind == "chat"
    assert "".join(backend.generate(request)) == "because"


def test_a_backend_without_a_tokenizer_counts_none(tmp_path: Path):
    assert scripted(tmp_path, tokenizer=False).count_tokens("abcd") is None
    assert estimate_tokens("abcd") == 2 and estimate_tokens("é") == 1
    assert token_counter(scripted(tmp_path, tokenizer=False))("abcdefg") == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "x", "messages": [{"role": "user", "content": "y"}]},
        {"prompt": "x", "infill": Infill("a")},
        {"messages": [{"role": "user"}]},
        {"prompt": "x", "n": 0},
    ],
)
def test_malformed_requests_are_refused(kwargs: dict):
    with pytest.raises(ModelError):
        GenerationRequest(**kwargs)


@pytest.mark.parametrize("path", ["/home/me/src/m.py", "C:\\work\\m.py"])
def test_absolute_paths_never_reach_a_backend(path: str):
    with pytest.raises(ModelError, match="relative to the workspace root"):
        Infill("x", path=path)
    with pytest.raises(ModelError, match="relative to the workspace root"):
        Snippet(path, "x")


def test_a_cancelled_request_of_several_samples_carries_all_of_their_stats(tmp_path: Path):
    backend = scripted(
        tmp_path, responses=[{"match": None, "texts": ["abc", "defghi"]}], chunk_chars=1
    )
    cancel = CancelToken()
    generation = backend.generate(GenerationRequest(prompt="p", n=2, temperature=1.0), cancel)
    with pytest.raises(Cancelled) as raised:
        for chunk in generation:
            if chunk == "e":  # in the second sample
                cancel.cancel()
    assert [s.text for s in generation.samples] == ["abc", "de"]
    assert raised.value.stats.generated_tokens == 3 + 2
    assert raised.value.stats.stop_reason == "cancelled"
