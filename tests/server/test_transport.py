"""The TCP listener's first-message reader, its replay and the handshake deadline, in process."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from hone.server.transport import (
    Refused,
    TcpListener,
    _Replay,
    read_first_message,
    take_token,
)


def framed(obj: dict) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
NEXT = {"jsonrpc": "2.0", "method": "initialized", "params": {}}


async def first(data: bytes, eof: bool = True):
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return await asyncio.wait_for(read_first_message(reader), 2), reader


async def test_the_first_message_and_what_came_after_it_are_kept():
    (message, leftover), reader = await first(framed(INIT) + framed(NEXT))
    assert message == INIT and leftover == framed(NEXT)
    replay = _Replay(b"Content-Length: 2\r\n\r\n{}" + leftover, reader)
    assert await replay.readline() == b"Content-Length: 2\r\n"
    assert await replay.readline() == b"\r\n"
    assert await replay.readexactly(2) == b"{}"
    assert (await replay.readline()).startswith(b"Content-Length:")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not LSP framing"),
        (b"G", "not LSP framing"),  # refused at its first byte, before a line ends
        (b"Content-Type: x\r\n\r\n", "no Content-Length"),
        (b"Content-Length: abc\r\n\r\n", "bad Content-Length"),
        (b"Content-Length: 3\r\n\r\n{x}", "not JSON"),
        (b"Content-Length: 2\r\n\r\n[]", "not a JSON object"),
        (b"Content-Length: 10\r\n\r\n{}", "in the middle"),
        (b"Content-Length: 99999999\r\n\r\n", "bytes \\(at most"),
        (b"Content-Length: 2\r\n" * 20 + b"\r\n{}", "too many header lines"),
        (b"", "closed before"),
    ],
)
async def test_what_is_refused(data, reason):
    with pytest.raises(Refused, match=reason):
        await first(data, eof=True)


async def test_a_line_that_cannot_become_a_header_is_refused_without_waiting_for_its_end():
    with pytest.raises(Refused, match="not LSP framing"):
        await first(b"\x16\x03\x01", eof=False)  # a TLS hello to a plain port


def test_the_token_is_taken_out_of_the_message():
    message = {**INIT, "params": {"initializationOptions": {"token": "t" * 20, "debounceMs": 0}}}
    token, rest = take_token(message)
    assert token == "t" * 20 and rest["params"]["initializationOptions"] == {"debounceMs": 0}
    assert take_token(INIT) == (None, INIT)
    number = {**INIT, "params": {"initializationOptions": {"token": 12345}}}
    assert take_token(number)[0] is None


class _Server:
    """Just what the listener touches when nothing authenticates."""

    protocol = None
    _stop_event = None
    _server = None

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()


def test_a_silent_connection_is_closed_at_the_handshake_deadline():
    import socket
    import time

    server = _Server()
    listener = TcpListener(server, "s" * 20, handshake_timeout=0.3)
    bound: list = []
    ready = threading.Event()

    def on_ready(address):
        bound.append(address)
        ready.set()

    thread = threading.Thread(target=listener.start, args=("127.0.0.1", 0, on_ready), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        with socket.create_connection(bound[0], timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server
            assert time.monotonic() - started < 3
        assert listener.refused == 1 and listener.client is None
    finally:
        server.shutdown()
        thread.join(5)
