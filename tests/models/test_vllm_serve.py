"""`hone model serve`: the vLLM command it builds and what it refuses (vLLM itself runs
only on a GPU machine; nothing here needs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hone.models.backend import ModelError
from hone.models.vllm_serve import ServeConfig, build_command, client_spec, server_environment
from hone.server.cli import main

KEY = "sk-team-0123456789abcdef"


def adapter(folder: Path, weights: str = "adapter_model.safetensors") -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 16, "peft_type": "LORA"}))
    (folder / weights).write_bytes(b"\0" * 16)
    return folder


def test_the_command_carries_prefix_caching_parallelism_and_adapters(tmp_path: Path):
    lora = adapter(tmp_path / "mine")
    config = ServeConfig(
        "Qwen/Qwen2.5-Coder-7B",
        host="0.0.0.0",
        port=9000,
        tensor_parallel=2,
        pipeline_parallel=2,
        ray=True,
        loras={"mine": str(lora)},
        max_lora_rank=32,
        extra=["--max-num-seqs", "64"],
    )
    config.check({"HONE_API_KEY": KEY})
    cmd = build_command(config)
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen2.5-Coder-7B"]
    joined = " ".join(cmd)
    for part in (
        "--host 0.0.0.0 --port 9000",
        "--served-model-name Qwen/Qwen2.5-Coder-7B",
        "--enable-prefix-caching",
        "--tensor-parallel-size 2",
        "--pipeline-parallel-size 2",
        "--distributed-executor-backend ray",
        f"--enable-lora --lora-modules mine={lora}",
        "--max-lora-rank 32",
    ):
        assert part in joined, part
    assert cmd[-2:] == ["--max-num-seqs", "64"]
    assert "--trust-remote-code" not in cmd
    one_gpu = build_command(ServeConfig("m"))
    assert "--tensor-parallel-size" not in one_gpu and "--enable-lora" not in one_gpu
    assert "--enable-prefix-caching" in one_gpu
    assert "--enable-prefix-caching" not in build_command(ServeConfig("m", prefix_caching=False))


def test_the_api_key_goes_in_the_environment_never_on_the_command_line():
    config = ServeConfig("m", host="10.0.0.2")
    env = server_environment({"HONE_API_KEY": KEY, "PATH": "/bin"})
    assert env["VLLM_API_KEY"] == KEY
    assert KEY not in " ".join(build_command(config))
    assert "VLLM_API_KEY" not in server_environment({"PATH": "/bin"})


def test_a_server_off_loopback_needs_a_key_or_an_explicit_flag():
    with pytest.raises(ModelError, match="no API key"):
        ServeConfig("m", host="0.0.0.0").check({})
    ServeConfig("m", host="0.0.0.0", allow_no_api_key=True).check({})
    ServeConfig("m", host="127.0.0.1").check({})  # loopback: only this machine


def test_adapters_and_model_folders_are_checked_like_any_model(tmp_path: Path):
    pickled = adapter(tmp_path / "pickled", weights="adapter_model.bin")
    with pytest.raises(ModelError, match="pickle"):
        ServeConfig("m", loras={"p": str(pickled)}).check({})
    with pytest.raises(ModelError, match="adapter_config.json"):
        ServeConfig("m", loras={"x": str(tmp_path)}).check({})
    with pytest.raises(ModelError, match="plain word"):
        ServeConfig("m", loras={"a/b": str(adapter(tmp_path / "ok"))}).check({})
    coded = tmp_path / "coded"
    coded.mkdir()
    (coded / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Y"}}))
    (coded / "model.safetensors").write_bytes(b"\0")
    with pytest.raises(ModelError, match="own Python code"):
        ServeConfig(str(coded)).check({})
    ServeConfig(str(coded), trust_remote_code=True).check({})


def test_clients_are_told_their_spec():
    assert client_spec(ServeConfig("m", port=8001)) == "openai:http://127.0.0.1:8001/v1#m"
    assert client_spec(ServeConfig("m", host="0.0.0.0")) == "openai:http://HOST:8000/v1#m"
    assert client_spec(ServeConfig("m", host="::1"), name="mine").endswith("[::1]:8000/v1#mine")


def test_the_cli_prints_the_command_and_passes_arguments_after_the_dashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HONE_API_KEY", KEY)
    lora = adapter(tmp_path / "mine")
    rc = main(
        ["model", "serve", "m", "--host", "0.0.0.0", "--lora", f"mine={lora}", "--dry-run",
         "--", "--max-num-seqs", "8", "--host", "ignored-by-hone"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0
    assert out.startswith("vllm serve m --host 0.0.0.0 ")
    assert out.rstrip().endswith("--max-num-seqs 8 --host ignored-by-hone")
    assert "clients: --model openai:http://HOST:8000/v1#m" in err
    assert "clients: --model openai:http://HOST:8000/v1#mine" in err
    assert KEY not in out + err
    monkeypatch.delenv("HONE_API_KEY")
    assert main(["model", "serve", "m", "--host", "0.0.0.0", "--dry-run"]) == 2
    assert "no API key" in capsys.readouterr().err


def test_without_vllm_installed_it_says_how_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["model", "serve", "m"]) == 2
    assert "pip install 'hone[gpu]'" in capsys.readouterr().err
