"""`hone serve --tcp`: listens on loopback and serves a real client over TCP."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from tests.conftest import write_script


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


async def test_tcp_server_on_loopback_answers_inline_completion(tmp_path):
    port = free_port()
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hone.server.cli",
            "serve",
            "--tcp",
            f"127.0.0.1:{port}",
            "--model",
            spec,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = LanguageClient("tcp-test", "0")
    try:
        for _ in range(100):  # wait for the listening socket
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("hone serve --tcp did not listen")
        # Only loopback: the port is bound to 127.0.0.1, not to every interface.
        assert listening_addresses(port) == {"127.0.0.1"}
        result = await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(capabilities=types.ClientCapabilities())
            ),
            30,
        )
        assert result.capabilities.inline_completion_provider is not None
        client.initialized(types.InitializedParams())
        uri = "file:///tmp/tcp/x.py"
        text = "def add(a, b):\n    "
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
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
        assert [i.insert_text for i in res.items] == ["return a + b"]
        await asyncio.wait_for(client.shutdown_async(None), 10)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stderr.close()
        await client.stop()
