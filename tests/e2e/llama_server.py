"""llama.cpp's OpenAI-compatible server (llama-cpp-python's `server` extra, installed by
`make setup` from a wheel built once outside the repository) on the embedded model's
GGUF file: the real server the HTTP backend is tested and benchmarked against."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STARTUP_S = 120.0


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(
    gguf: Path | None = None,
    *,
    threads: int = 2,
    n_ctx: int = 2048,
    log: Path | None = None,
) -> Iterator[str]:
    """Start the server on a free loopback port; yield its base URL (``.../v1``) once
    ``GET /v1/models`` answers; stop it (its whole process group) at the end."""
    if gguf is None:
        from hone.models.embedded import gguf_path

        gguf = gguf_path()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--n_ctx", str(n_ctx),
    ]  # fmt: skip
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"llama.cpp's server exited ({proc.returncode}): {tail}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as reply:
                    if json.load(reply).get("data"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama.cpp's server did not answer within {STARTUP_S:g} s")
            time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if log:
            out.close()
