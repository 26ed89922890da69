"""Malformed JSON-RPC on the wire: the server says so and keeps serving."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

from tests.conftest import write_script


def frame(payload: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(payload) + payload


def read_messages(proc: subprocess.Popen, want: int, timeout: float = 30) -> list[dict]:
    """Up to ``want`` messages from the server, read in a thread so a silent server fails
    the test at ``timeout`` instead of hanging it."""
    found: queue.Queue[dict] = queue.Queue()

    def reader() -> None:
        while True:
            header = proc.stdout.readline()
            if not header:
                return
            if header.lower().startswith(b"content-length"):
                length = int(header.split(b":")[1])
                while proc.stdout.readline() not in (b"\r\n", b""):
                    pass
                found.put(json.loads(proc.stdout.read(length)))

    threading.Thread(target=reader, daemon=True).start()
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and (left := deadline - time.monotonic()) > 0:
        try:
            out.append(found.get(timeout=left))
        except queue.Empty:
            break
    return out


def test_garbage_then_valid_requests_are_answered(tmp_path):
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hone.server.cli", "serve", "--model", spec],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {}},
        }
        proc.stdin.write(frame(b"{this is not json"))
        proc.stdin.write(
            frame(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 7,
                        "method": "textDocument/inlineCompletion",
                        "params": {"bogus": True},
                    }
                ).encode()
            )
        )
        proc.stdin.write(frame(json.dumps(init).encode()))
        proc.stdin.flush()
        messages = read_messages(proc, 4)
        by_id = {m.get("id"): m for m in messages if "id" in m}
        assert 1 in by_id and "capabilities" in by_id[1]["result"], messages
        assert by_id[7]["error"]["code"] == -32602, messages  # InvalidParams, not silence
        shown = [
            m["params"]["message"] for m in messages if m.get("method") == "window/showMessage"
        ]
        assert any("Expecting property name" in s for s in shown), shown  # the garbage, reported
        proc.stdin.write(
            frame(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}).encode())
        )
        proc.stdin.write(frame(json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()))
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()
        proc.stdin.close()
