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
    ModelBackend,
    ModelError,
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
    chunks = list(backend.generate(GenerationRequest(prompt="def add(a, b):\n    ")))
    assert chunks == ["ret", "urn", " a ", "+ b", "\n"]
    assert backend.last_stats.generated_tokens == 5
    assert backend.last_stats.stop_reason == "eos"
    assert "".join(backend.generate(GenerationRequest(prompt="x = "))) == "pass\n"


def test_default_text_when_nothing_matches(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": "zzz", "text": "no"}], default="dflt")
    assert "".join(backend.generate(GenerationRequest(prompt="abc"))) == "dflt"


def test_stop_sequence_split_across_chunks(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "x = 1\n\ndef g():"}])
    chunks = list(backend.generate(GenerationRequest(prompt="", stop=["\n\ndef"])))
    assert "".join(chunks) == "x = 1"
    assert backend.last_stats.stop_reason == "stop"


def test_max_new_tokens(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "abcdefghij"}])
    out = "".join(backend.generate(GenerationRequest(prompt="", max_new_tokens=2)))
    assert out == "abcdef"
    assert backend.last_stats.stop_reason == "length"


def test_should_stop(tmp_path: Path):
    backend = scripted(tmp_path, responses=[{"match": None, "text": "a = 1\nb = 2\nc = 3\n"}])
    request = GenerationRequest(prompt="", should_stop=lambda text: "\n" in text)
    out = "".join(backend.generate(request))
    assert out == "a = 1\n"
    assert backend.last_stats.stop_reason == "early"


def test_cancellation_is_noticed_within_one_step(tmp_path: Path):
    backend = scripted(
        tmp_path, responses=[{"match": None, "text": "x" * 300}], step_ms=50, chunk_chars=1
    )
    cancel = CancelToken()
    got: list[str] = []
    with pytest.raises(Cancelled):
        for chunk in backend.generate(GenerationRequest(prompt="", max_new_tokens=300), cancel):
            got.append(chunk)
            if len(got) == 2:
                threading.Timer(0.02, cancel.cancel).start()
    stats = backend.last_stats
    assert stats.stop_reason == "cancelled"
    assert stats.cancel_noticed_at - cancel.cancelled_at < 0.045  # well within a 50 ms step
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
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        list(backend.generate(GenerationRequest(prompt="x"), cancel))
    assert 0.15 < time.perf_counter() - start < 2.0
    assert backend.last_stats.cancel_noticed_at - cancel.cancelled_at < 0.1


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
