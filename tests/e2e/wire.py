"""A real `hone serve` over stdio, spoken to byte by byte (for malformed input and protocol
corner cases that an LSP client library would refuse to send)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def frame(payload: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(payload) + payload


def message(**fields: Any) -> bytes:
    """A framed JSON-RPC 2.0 message (``jsonrpc`` added unless given)."""
    return frame(json.dumps({"jsonrpc": "2.0", **fields}).encode())


INITIALIZE = message(
    id="init",
    method="initialize",
    params={"processId": None, "rootUri": None, "capabilities": {}},
)


class Wire:
    """The server process, a thread reading everything it writes, and waits on that."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hone.server.cli", "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,  # a file: a full pipe would stall the server's logging
        )
        self.received: list[dict] = []
        self._queue: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while header := out.readline():
            if header.lower().startswith(b"content-length"):
                length = int(header.split(b":")[1])
                while out.readline() not in (b"\r\n", b""):
                    pass
                self._queue.put(json.loads(out.read(length)))

    def send(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.proc.stdin.write(chunk)
        self.proc.stdin.flush()

    def wait_for(self, want: Callable[[dict], bool], timeout: float = 30) -> dict:
        """The first message (received so far or later) for which ``want`` is true; a silent
        server fails the test after ``timeout`` seconds instead of hanging it."""
        for m in self.received:
            if want(m):
                return m
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                m = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.received.append(m)
            if want(m):
                return m
        raise AssertionError(f"no such message from the server; got {self.received[-20:]}")

    def answer(self, msg_id: Any, timeout: float = 30) -> dict:
        return self.wait_for(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    def exit_code(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass  # the server is gone; its pipe may already be broken
        self.stderr.close()
