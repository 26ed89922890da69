"""A model folder plays the attacker: pickled weights that run code when unpickled, a model
that ships its own Python code. hone refuses both with a message and runs neither, through
the CLI and through the embedding model's loader; with the user's explicit choice
(`--trust-remote-code`) the code check gives way, the pickle check never does."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hone.models.backend import ModelError
from hone.models.hf.trust import UntrustedModel, check_folder, loader_kwargs
from hone.models.registry import load_backend
from hone.retrieval.embeddings import EmbeddingError, SentenceEmbedder


class Payload:
    """Unpickling this touches ``marker``: a stand-in for any command a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickle_folder(folder: Path, marker: Path, name: str = "pytorch_model.bin") -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / name).write_bytes(pickle.dumps(Payload(marker)))
    return folder


def code_folder(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    config = {"model_type": "evil", "auto_map": {"AutoModelForCausalLM": "evil.EvilModel"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass EvilModel: pass\n")
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return folder


def test_the_payload_is_live(tmp_path):
    """The pickle in these tests really runs code when loaded (else the checks prove nothing)."""
    marker = tmp_path / "ran"
    folder = pickle_folder(tmp_path / "m", marker)
    pickle.loads((folder / "pytorch_model.bin").read_bytes())  # noqa: S301 - the point
    assert marker.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.ckpt"])
def test_pickled_weights_are_refused_and_never_loaded(tmp_path, name):
    marker = tmp_path / "ran"
    folder = pickle_folder(tmp_path / "m", marker, name)
    backend = load_backend(str(folder), trust_remote_code=True)  # trusting code is not enough
    with pytest.raises(ModelError, match="pickle files .*safetensors or GGUF"):
        backend.load()
    assert not marker.exists()


def test_model_code_is_refused_unless_the_user_trusts_it(tmp_path):
    marker = tmp_path / "ran"
    folder = code_folder(tmp_path / "m", marker)
    with pytest.raises(UntrustedModel, match="own Python code .*--trust-remote-code"):
        load_backend(str(folder)).load()
    assert not marker.exists()
    check_folder(folder, trust_remote_code=True)  # the user's explicit choice
    assert loader_kwargs() == {"trust_remote_code": False, "use_safetensors": True}
    assert loader_kwargs(gguf=True) == {"trust_remote_code": False}


def test_the_cli_refuses_such_a_model_with_its_reason(tmp_path):
    marker = tmp_path / "ran"
    folder = code_folder(tmp_path / "m", marker)
    source = tmp_path / "a.py"
    source.write_text("def add(a, b):\n    return \n")
    out = subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "complete", f"{source}:2:12"]
        + ["--no-context", "--model", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 3, out.stderr  # `hone complete`'s model error
    assert "own Python code" in out.stderr and "--trust-remote-code" in out.stderr
    assert not marker.exists()


def test_embedding_models_are_held_to_the_same_rules(tmp_path):
    marker = tmp_path / "ran"
    folder = pickle_folder(tmp_path / "m", marker)
    (folder / "modules.json").write_text("[]")
    embedder = SentenceEmbedder(str(folder))
    with pytest.raises(EmbeddingError, match="pickle files"):
        embedder.load()
    code = code_folder(tmp_path / "c", marker)
    with pytest.raises(EmbeddingError, match="own Python code"):
        SentenceEmbedder(str(code)).load()
    assert not marker.exists()
