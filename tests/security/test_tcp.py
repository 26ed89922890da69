"""The TCP listener plays against an attacker: a real `hone serve --tcp` process, real sockets.

Each attempt (an HTTP request from a web page, no token, a wrong token, a first message that
is not `initialize`, a second client while one is attached, TLS spoken to, plaintext spoken to
TLS) is refused with its reason logged, the secret never in the log, and the attached client
keeps being served."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from tests.conftest import write_script
from tests.e2e.wire import INITIALIZE, message

SECRET = "s3cret-token-for-the-tcp-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on ``port``, from /proc/net/tcp."""
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = row.split()[1], row.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HONE_TOKEN"}
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    env.update(extra)
    return env


class Served:
    """`hone serve --tcp` on a free loopback port, its stderr in a file."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"stderr-{self.port}.txt"
        spec = write_script(tmp_path / "s.json", "return a + b\n")
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hone.server.cli", "serve", "--model", spec, "-v"]
                + ["--tcp", f"127.0.0.1:{self.port}", *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=environment(tmp_path, **env),
            )
        deadline = time.monotonic() + 60
        while "hone serve:" not in self.stderr():
            assert self.proc.poll() is None, self.stderr()
            assert time.monotonic() < deadline, "no banner"
            time.sleep(0.05)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 10
        while self.stderr().count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{self.stderr()}"
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def exchange(port: int, data: bytes, context: ssl.SSLContext | None = None) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it (10 s at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = context.wrap_socket(raw, server_hostname="localhost") if context else raw
        received = b""
        try:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:  # closed with our bytes unread: the kernel resets
            pass
        return received


def read_message(sock: socket.socket) -> bytes:
    """One framed message from ``sock`` (its header and body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    length = int(received.split(b"\r\n")[0].split(b":")[1])
    while len(received.partition(b"\r\n\r\n")[2]) < length:
        received += sock.recv(65536)
    return received


def response(received: bytes) -> dict:
    header, _, body = received.partition(b"\r\n\r\n")
    assert header.lower().startswith(b"content-length:"), received
    return json.loads(body[: int(header.split(b"\r\n")[0].split(b":")[1])])


def initialize(token: str | None, ident: int = 1) -> bytes:
    options = {} if token is None else {"token": token}
    params = {"processId": None, "rootUri": None, "capabilities": {}}
    return message(
        id=ident, method="initialize", params={**params, "initializationOptions": options}
    )


async def attach(port: int, token: str) -> LanguageClient:
    client = LanguageClient("attacker-test", "0")
    await client.start_tcp("127.0.0.1", port)
    result = await asyncio.wait_for(
        client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(), initialization_options={"token": token}
            )
        ),
        30,
    )
    assert result.capabilities.inline_completion_provider is not None
    client.initialized(types.InitializedParams())
    return client


async def complete(client: LanguageClient) -> list[str]:
    uri = "file:///tmp/tcp/x.py"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="def add(a, b):\n    "
            )
        )
    )
    res = await asyncio.wait_for(
        client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=1, character=4),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        ),
        30,
    )
    return [i.insert_text for i in res.items]


async def test_every_attempt_is_refused_and_the_client_keeps_being_served(tmp_path):
    served = Served(tmp_path, HONE_TOKEN=SECRET)
    try:
        # A web page's request: closed at its first line, no HTTP answer.
        page = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\r\n"
        assert exchange(served.port, page) == b""
        served.wait_log("refused connection from 127.0.0.1:")
        assert "not LSP framing" in served.stderr()
        # A POST carrying a JSON-RPC body (what a page can send without a preflight).
        post = b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}"
        assert exchange(served.port, post) == b""
        # No token, then a wrong one: an error response that says what is missing, then closed.
        for token, reason in ((None, "no token"), ("x" * 40, "a wrong token")):
            error = response(exchange(served.port, initialize(token)))["error"]
            assert error["code"] == -32001 and "initializationOptions.token" in error["message"]
            served.wait_log(reason)
        # The token of the right length but not the secret (compared in constant time).
        wrong = SECRET[:-1] + ("0" if SECRET[-1] != "0" else "1")
        assert "error" in response(exchange(served.port, initialize(wrong)))
        # A first message that is not initialize (straight to the command that runs tests).
        run = message(
            id=2,
            method="workspace/executeCommand",
            params={"command": "hone.fixFailingTest", "arguments": [{"testId": "t.py::t"}]},
        )
        assert exchange(served.port, run) == b""
        served.wait_log("not the initialize request")
        # Plain garbage, and a slow client that never ends its header.
        assert exchange(served.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") == b""
        assert exchange(served.port, b"Content-Length: 99999999999\r\n\r\n") == b""

        # Only loopback: the port is bound to 127.0.0.1, not to every interface.
        assert listening_addresses(served.port) == {"127.0.0.1"}
        # The user's editor attaches with the token and is served.
        client = await attach(served.port, SECRET)
        try:
            assert await complete(client) == ["return a + b"]
            # A second client while one is attached, even with the right token: closed at once.
            assert exchange(served.port, initialize(SECRET)) == b""
            served.wait_log("is already attached")
            # The attached client is still served (the second one took nothing over).
            assert await complete(client) == ["return a + b"]
            assert served.proc.poll() is None
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        finally:
            await client.stop()
        assert served.proc.wait(20) == 0  # the client's exit stops the server
    finally:
        served.close()
    log = served.stderr()
    assert log.count("refused connection from") == 9, log
    assert SECRET not in log and "x" * 40 not in log and wrong not in log


async def test_generated_token_is_owner_only_printed_and_removed(tmp_path):
    served = Served(tmp_path)  # no HONE_TOKEN, no --token-file
    try:
        path = tmp_path / "run" / "hone" / f"tcp-{served.port}.token"
        assert str(path) in served.stderr()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        secret = path.read_text().strip()
        assert len(secret) >= 32 and secret not in served.stderr()
        assert "error" in response(exchange(served.port, initialize("guess-" * 8)))
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(initialize(secret, ident=3))
            answer = response(read_message(sock))
            assert answer["id"] == 3 and "capabilities" in answer["result"]
        # The editor went away without shutdown (a crash): the server stops.
        assert served.proc.wait(20) == 0
        assert not path.exists()
    finally:
        served.close()


def hone(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "serve", "--model", "scripted:/nonexistent"]
        + list(args),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_refuses_to_start_without_what_a_listener_needs(tmp_path):
    env = environment(tmp_path)
    port = str(free_port())
    out = hone("--tcp", f"0.0.0.0:{port}", env=env)
    assert out.returncode == 2 and "only loopback" in out.stderr
    out = hone("--tcp", f"0.0.0.0:{port}", "--allow-remote", env=env)
    assert out.returncode == 2 and "without TLS" in out.stderr and "ssh -L" in out.stderr
    shared = tmp_path / "token"
    shared.write_text(SECRET)
    shared.chmod(0o644)
    out = hone("--tcp", f"127.0.0.1:{port}", "--token-file", str(shared), env=env)
    assert out.returncode == 2 and "can be read by others" in out.stderr
    assert SECRET not in out.stderr
    out = hone("--tcp", f"127.0.0.1:{port}", env={**env, "HONE_TOKEN": "short"})
    assert out.returncode == 2 and "too short" in out.stderr
    out = hone("--tcp", f"127.0.0.1:{port}", "--tls-cert", str(shared), env=env)
    assert out.returncode == 2 and "go together" in out.stderr
    out = hone("--token-file", str(shared), env=env)
    assert out.returncode == 2 and "are for --tcp" in out.stderr


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_listener_serves_tls_and_refuses_plaintext(tmp_path, certificate):
    cert, key = certificate
    token = tmp_path / "token"
    token.write_text(SECRET + "\n")
    token.chmod(0o600)
    served = Served(
        tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token)
    )
    try:
        assert "(TLS)" in served.stderr()
        # Plaintext LSP to the TLS port: no answer.
        assert exchange(served.port, INITIALIZE) == b""
        context = ssl.create_default_context(cafile=str(cert))
        # Over TLS without the token: refused like on plain TCP.
        assert "error" in response(exchange(served.port, initialize(None), context))
        # Over TLS with the token: initialize answers.
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(initialize(SECRET, ident=7))
                answer = response(read_message(sock))
        assert answer["id"] == 7 and "capabilities" in answer["result"]
    finally:
        served.close()
    assert SECRET not in served.stderr()


def test_the_generated_token_file_goes_when_hone_is_told_to_stop(tmp_path):
    served = Served(tmp_path)
    path = tmp_path / "run" / "hone" / f"tcp-{served.port}.token"
    try:
        assert path.exists()
        served.proc.terminate()  # SIGTERM, as a service manager stops it
        served.proc.wait(20)
        assert not path.exists()
    finally:
        served.close()
