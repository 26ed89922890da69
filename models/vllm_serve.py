"""``hone model serve``: vLLM's OpenAI-compatible server for a team's editors.

One GPU box (or a cluster) runs the model for everyone; each developer's hone points at it
with ``--model openai:http://HOST:PORT/v1#NAME`` (:mod:`hone.models.openai_backend`).
This module builds the ``vllm serve`` command (unit-tested without vLLM) and runs it:

- prefix caching on (``--enable-prefix-caching``): completions of one file share their
  prompt's head, and repository snippets come first in it for that reason;
- the fine-tuning pipeline's LoRA adapters (``--lora NAME=FOLDER``, repeatable): served
  under their own model names beside the base model (``openai:...#NAME`` picks one), each
  folder checked first like any model folder (safetensors only, no code of its own:
  :func:`hone.models.hf.trust.check_folder`);
- tensor- and pipeline-parallel sizes passed through; ``--ray`` selects vLLM's Ray
  executor, for a model spread over several machines (start the Ray cluster first: see
  the deployment guide, ``models/SERVING.md``);
- the API key: ``HONE_API_KEY`` becomes vLLM's ``VLLM_API_KEY`` in the server's
  environment (never on its command line, where ``ps`` shows it); a server listening off
  loopback without a key is started only with ``--no-api-key``.

vLLM is not a dependency of hone: ``pip install 'hone[gpu]'`` on the GPU machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from hone.models.backend import ModelError
from hone.models.hf.trust import check_folder
from hone.models.openai_backend import is_loopback

__all__ = ["ServeConfig", "build_command", "client_spec", "server_environment"]

KEY_VARIABLE = "HONE_API_KEY"
VLLM_KEY_VARIABLE = "VLLM_API_KEY"


@dataclasses.dataclass
class ServeConfig:
    model: str  # a hub id or a local folder
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str | None = None  # the name clients ask for (default: the model)
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    loras: Mapping[str, str] = dataclasses.field(default_factory=dict)  # name -> folder
    max_lora_rank: int | None = None
    prefix_caching: bool = True
    ray: bool = False
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    trust_remote_code: bool = False
    allow_no_api_key: bool = False
    extra: Sequence[str] = ()  # more `vllm serve` arguments, as given

    def check(self, env: Mapping[str, str]) -> None:
        """Refuse what would not work or would be unsafe, with the reason."""
        if not 0 < self.port < 65536:
            raise ModelError(f"--port must be 1-65535, got {self.port}")
        for what, n in (("tensor", self.tensor_parallel), ("pipeline", self.pipeline_parallel)):
            if n < 1:
                raise ModelError(f"the {what}-parallel size must be at least 1, got {n}")
        for name, folder in self.loras.items():
            if not name or "=" in name or "/" in name:
                raise ModelError(f"a LoRA adapter's name must be a plain word, got {name!r}")
            path = Path(folder).expanduser()
            if not path.is_dir():
                raise ModelError(f"LoRA adapter {name}: {folder} is not a folder")
            if not (path / "adapter_config.json").is_file():
                raise ModelError(f"LoRA adapter {name}: {folder} has no adapter_config.json")
            check_folder(path, trust_remote_code=False)
        if Path(self.model).expanduser().is_dir():
            check_folder(Path(self.model).expanduser(), trust_remote_code=self.trust_remote_code)
        keyless = not env.get(KEY_VARIABLE) and not self.allow_no_api_key
        if keyless and not is_loopback(self.host):
            raise ModelError(
                f"the model server would listen on {self.host} with no API key: anyone who "
                f"can reach the port could use the GPU. Set {KEY_VARIABLE} (the clients "
                "send it too), or pass --no-api-key on a network you trust."
            )


def build_command(config: ServeConfig, vllm: str = "vllm") -> list[str]:
    """The ``vllm serve`` command line for ``config`` (no secret in it)."""
    cmd = [vllm, "serve", config.model, "--host", config.host, "--port", str(config.port)]
    cmd += ["--served-model-name", config.served_name or config.model]
    if config.prefix_caching:
        cmd.append("--enable-prefix-caching")
    if config.tensor_parallel > 1:
        cmd += ["--tensor-parallel-size", str(config.tensor_parallel)]
    if config.pipeline_parallel > 1:
        cmd += ["--pipeline-parallel-size", str(config.pipeline_parallel)]
    if config.ray:
        cmd += ["--distributed-executor-backend", "ray"]
    if config.loras:
        cmd.append("--enable-lora")
        cmd += ["--lora-modules", *(f"{n}={Path(p).expanduser()}" for n, p in config.loras.items())]
        if config.max_lora_rank:
            cmd += ["--max-lora-rank", str(config.max_lora_rank)]
    if config.max_model_len:
        cmd += ["--max-model-len", str(config.max_model_len)]
    if config.gpu_memory_utilization:
        cmd += ["--gpu-memory-utilization", f"{config.gpu_memory_utilization:g}"]
    if config.trust_remote_code:
        cmd.append("--trust-remote-code")
    cmd += list(config.extra)
    return cmd


def server_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: ``base`` with the API key as vLLM reads it."""
    env = dict(base)
    key = env.get(KEY_VARIABLE)
    if key:
        env[VLLM_KEY_VARIABLE] = key
    return env


def client_spec(config: ServeConfig, host: str | None = None, name: str | None = None) -> str:
    """The ``--model`` spec for hone clients of this server (``host``: how they reach it)."""
    where = host or (config.host if config.host not in ("0.0.0.0", "::") else "HOST")
    if ":" in where and not where.startswith("["):
        where = f"[{where}]"
    model = name or config.served_name or config.model
    return f"openai:http://{where}:{config.port}/v1#{model}"


def find_vllm() -> str:
    """The ``vllm`` executable, or a ModelError saying how to install it."""
    found = shutil.which("vllm")
    if found is None:
        raise ModelError(
            "vLLM is not installed here: on the GPU machine, pip install 'hone[gpu]' "
            "(or pip install vllm), then run hone model serve again"
        )
    return found


def serve(config: ServeConfig, *, dry_run: bool = False) -> list[str]:
    """Check ``config``, then replace this process with vLLM's server (``dry_run``: only
    return the command)."""
    env = os.environ
    config.check(env)
    if dry_run:
        return build_command(config)
    cmd = build_command(config, find_vllm())
    os.execvpe(cmd[0], cmd, server_environment(env))  # noqa: S606 - the user's own command
    return cmd  # not reached
