"""A small OpenAI-compatible HTTP server that plays scripted answers, for plumbing tests
of the HTTP backend: a server that is down, slow, answers garbage or drops the stream
midway is hard to get from a real one. The real one (llama.cpp's) is in
tests/e2e/test_openai_llama.py.

``FakeOpenAI(mode=...)``: ``"ok"`` streams ``text`` a few characters an event;
``"slow"`` sleeps ``delay_s`` before each event; ``"garbage"`` answers a 200 with HTML;
``"bad-event"`` sends an event that is not JSON; ``"drop"`` sends two events and closes
the connection mid-stream; ``"status"`` answers 503 with an OpenAI error object;
``"hang"`` sends nothing until the client goes away; ``"one-choice"`` answers a request
for n samples with one; ``"strict"`` refuses a body with ``stream_options`` (400, naming
the field), like a server that forbids fields it does not know. With ``bytes_per_token``
set, a stream that asks for it ends with a usage report: the prompt's UTF-8 bytes over
``bytes_per_token`` (rounded up), and one completion token per event; and with
``tokenize_route`` set too (``/tokenize``: vLLM's, ``/extras/tokenize/count``:
llama-cpp-python's), that route counts a text's tokens the same way. Requests are
recorded (path, headers, JSON body) in ``requests``; ``closed`` counts streams whose client
went away before the end, ``most_active`` the most streams sent at once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(
        self,
        text: str = "return a + b\n",
        mode: str = "ok",
        model: str = "fake-coder",
        port: int = 0,
    ):
        self.text = text
        self.mode = mode
        self.model = model
        self.delay_s = 0.05
        self.chunk = 3
        self.bytes_per_token: float | None = None
        self.tokenize_route: str | None = None
        self.requests: list[dict[str, Any]] = []
        self.closed = 0
        self.served = 0
        self.active = 0  # streams being sent now
        self.most_active = 0  # the most at once
        self._count = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def text_for(self, index: int) -> str:
        """Sample ``index``'s text: ``text``, then ``text`` with ``# sample k`` added."""
        return self.text if index == 0 else f"{self.text}# sample {index}\n"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append({"path": self.path, "headers": dict(self.headers)})
                if fake.mode == "garbage":
                    return self._send(200, b"<html>hello</html>", "text/html")
                data = {"object": "list", "data": [{"id": fake.model, "object": "model"}]}
                self._send(200, json.dumps(data).encode(), "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                mode = fake.mode
                if not self.path.endswith(("/v1/completions", "/v1/chat/completions")):
                    return self._tokenize(body)
                if mode == "status":
                    error = {"error": {"message": "the model is overloaded", "code": 503}}
                    return self._send(503, json.dumps(error).encode(), "application/json")
                if mode == "garbage":
                    return self._send(200, b"<html>not an API</html>", "text/html")
                if mode == "strict" and "stream_options" in body:
                    error = {"error": {"message": "stream_options: extra fields not permitted"}}
                    return self._send(400, json.dumps(error).encode(), "application/json")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                with fake._count:
                    fake.active += 1
                    fake.most_active = max(fake.most_active, fake.active)
                try:
                    self._stream(body, mode)
                finally:
                    with fake._count:
                        fake.active -= 1

            def _stream(self, body: dict, mode: str) -> None:
                chat = self.path.endswith("/chat/completions")
                n = 1 if mode == "one-choice" else int(body.get("n") or 1)
                try:
                    if mode == "hang":
                        while True:  # until the client goes away
                            self.wfile.write(b": waiting\n\n")
                            self.wfile.flush()
                            time.sleep(0.05)
                    if mode == "bad-event":
                        self.wfile.write(b"data: {not json\n\n")
                        self.wfile.flush()
                        return
                    texts = [fake.text_for(index) for index in range(n)]
                    size = fake.chunk
                    steps = max(-(-len(t) // size) for t in texts)
                    for k in range(steps):
                        if mode == "drop" and k == 2:
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        if mode == "slow":
                            time.sleep(fake.delay_s)
                        for index, text in enumerate(texts):
                            piece = text[k * size : (k + 1) * size]
                            if piece:
                                self._event(chat, index, piece, None)
                    for index in range(n):
                        self._event(chat, index, "", "stop")
                    if fake.bytes_per_token and (body.get("stream_options") or {}).get(
                        "include_usage"
                    ):
                        prompt = body.get("prompt") or "".join(
                            m["content"] for m in body.get("messages", [])
                        )
                        tokens = -(-len(prompt.encode()) // fake.bytes_per_token)
                        usage = {"prompt_tokens": int(tokens), "completion_tokens": steps * n}
                        data = {"id": "x", "object": "chunk", "choices": [], "usage": usage}
                        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    fake.served += 1
                except (BrokenPipeError, ConnectionResetError):
                    fake.closed += 1

            def _event(self, chat: bool, index: int, piece: str, finish: str | None) -> None:
                if chat:
                    choice = {"index": index, "delta": {"content": piece}, "finish_reason": finish}
                else:
                    choice = {"index": index, "text": piece, "finish_reason": finish}
                data = {"id": "x", "object": "chunk", "model": fake.model, "choices": [choice]}
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _tokenize(self, body: dict) -> None:
                if not fake.bytes_per_token or self.path != fake.tokenize_route:
                    return self._send(404, b'{"detail": "Not Found"}', "application/json")
                text = body.get("prompt") or body.get("input") or ""
                count = int(-(-len(text.encode()) // fake.bytes_per_token))
                data = {"count": count} if "extras" in self.path else {"tokens": [1] * count}
                self._send(200, json.dumps(data).encode(), "application/json")

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def free_port() -> int:
    """A port nothing listens on (for a server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
