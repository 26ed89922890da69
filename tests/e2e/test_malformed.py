"""Malformed JSON-RPC on the wire: the server says so, once, and keeps serving."""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import pytest

from tests.conftest import write_script
from tests.e2e.wire import INITIALIZE, Wire, frame, message

INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32600, -32601, -32602

# One log record per line: "2026-11-25 10:00:00,123 WARNING hone.server.protocol: ..."
RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: "
)
STATS = "hone/stats"


def hostile(count: int, seed: int = 0) -> list[tuple[bytes, str | None, int | None]]:
    """``count`` malformed messages, each (bytes on the wire, the id it can be answered
    under or None, the error code expected there), cycling through kinds of damage: bad
    JSON, bad framing, JSON that is not JSON-RPC, wrong types in the envelope, params that
    do not parse, unknown methods, responses to nothing. Framing junk that is no message
    at all (stray header lines) goes in between."""
    rng = random.Random(seed)
    ids = itertools.count()
    inline = "textDocument/inlineCompletion"
    doc, pos, ctx = {"uri": "file:///w/a.py"}, {"line": 0, "character": 0}, {"triggerKind": 1}
    valid = json.dumps({"jsonrpc": "2.0", "id": "v", "method": STATS, "params": None}).encode()

    def ask(code: int, **fields: Any) -> tuple[bytes, str, int]:
        """A request that can be answered: it must get error ``code`` under its own id."""
        msg_id = f"h{next(ids)}"
        return message(id=msg_id, **fields), msg_id, code

    def say(raw: bytes) -> tuple[bytes, None, None]:
        """A message that cannot be answered (no usable id, or not a request)."""
        return raw, None, None

    def kinds(i: int) -> list[tuple[bytes, str | None, int | None]]:
        return [
            # bad JSON
            say(frame(valid[: rng.randrange(1, len(valid) - 1)])),
            say(frame(b"{this is not json")),
            say(frame(b'{"jsonrpc": "2.0", "id": 1,}')),
            say(frame(bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 40))))),
            say(frame(b"[" * rng.randrange(20_000, 60_000))),
            # bad framing: a Content-Length shorter than the body (the rest is a junk line)
            say(b"Content-Length: 9\r\n\r\n" + valid + b"\r\n"),
            # JSON that is not a JSON-RPC object
            say(frame(rng.choice([b"[]", b"[1, 2]", b"42", b'"hello"', b"null", b"true", b"{}"]))),
            say(frame(json.dumps({"id": i, "method": STATS}).encode())),
            # wrong types in the envelope
            ask(INVALID_REQUEST, jsonrpc="1.0", method=STATS, params=None),
            ask(INVALID_REQUEST, jsonrpc=2, method=STATS, params=None),
            ask(INVALID_REQUEST, method=rng.choice([i, ["x"], None, {"m": STATS}])),
            say(message(id=rng.choice([{"a": i}, [i], 1.5, True, None]), method=STATS)),
            say(message(id=i)),
            say(message()),
            # params that do not parse
            ask(INVALID_PARAMS, method=inline, params={"bogus": i}),
            ask(
                INVALID_PARAMS,
                method=inline,
                params={
                    "textDocument": doc,
                    "position": {"line": -1 - i, "character": 0},
                    "context": ctx,
                },
            ),
            ask(
                INVALID_PARAMS,
                method=inline,
                params={"textDocument": doc, "position": pos, "context": "now"},
            ),
            ask(INVALID_PARAMS, method="initialize", params=rng.choice([5, "x", [1]])),
            say(message(method="textDocument/didOpen", params={"textDocument": i})),
            say(message(method="textDocument/didChange", params=[i])),
            say(message(method="$/cancelRequest", params={"id": {"x": i}})),
            # unknown methods
            ask(METHOD_NOT_FOUND, method=f"hone/nothing{i}", params=None),
            ask(
                METHOD_NOT_FOUND,
                method="textDocument/hover",
                params={"textDocument": doc, "position": pos},
            ),
            say(message(method=f"made/up{i}", params={})),
            # responses to requests never sent, and a response that does not parse
            say(message(id=10_000 + i, result=None)),
            say(message(id=20_000 + i, error=rng.choice([5, "bad", {"code": "x"}]))),
        ]

    out: list[tuple[bytes, str | None, int | None]] = []
    for i in itertools.count():
        if len(out) >= count:
            break
        out.extend(kinds(i))
    junk = [b"X-Junk: 1\r\n", b"Content-Length: abc\r\n", b"\r\n", b"Content-Length: 0\r\n"]
    return [
        (rng.choice(junk) + raw if rng.random() < 0.2 else raw, msg_id, code)
        for raw, msg_id, code in out[:count]
    ]


def run_hostile(tmp_path, count: int, *flags: str) -> list[str]:
    """``count`` hostile messages to a real server started with ``flags``, then a request
    that must be answered as usual (``shutdown``); returns the lines of its --log-file (the
    server has exited cleanly)."""
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    log_file = tmp_path / "hone.log"
    wire = Wire(tmp_path, "--model", spec, *flags, "--log-file", str(log_file))
    try:
        wire.send(INITIALIZE, message(method="initialized", params={}))
        assert "capabilities" in wire.answer("init")["result"]
        corpus = hostile(count)
        wire.send(*(raw for raw, _, _ in corpus))
        # The probe: a request after all of that is answered as usual.
        wire.send(message(id="bye", method="shutdown"), message(method="exit"))
        assert wire.answer("bye")["result"] is None
        assert wire.exit_code() == 0
        # Every request that can be answered got its error, and nothing else was answered.
        expected = {msg_id: code for _, msg_id, code in corpus if msg_id is not None}
        answered = {
            m["id"]: m.get("error", {}).get("code")
            for m in wire.received
            if "id" in m and "method" not in m and m["id"] not in ("init", "bye")
        }
        assert answered == expected
    finally:
        wire.close()
    return log_file.read_text().splitlines()


@pytest.mark.parametrize("flags", [(), ("-v",)], ids=["default", "-v"])
def test_hostile_messages_get_one_log_line_each(tmp_path, flags):
    count = 300
    lines = run_hostile(tmp_path, count, *flags)
    bad = [line for line in lines if "bad message: " in line]
    assert len(bad) == count, "\n".join(lines[:40])
    # Each record is one line (no tracebacks, no continuation lines), and nothing else is
    # written per message: the few other lines are the server's own start-up and shutdown.
    assert all(RECORD.match(line) for line in lines), [ln for ln in lines if not RECORD.match(ln)][
        :5
    ]
    assert not any("Traceback" in line for line in lines)
    assert len(lines) - len(bad) <= 5, [ln for ln in lines if "bad message: " not in ln]
    # Each line says what was wrong.
    text = "\n".join(bad)
    for reason in (
        "not valid JSON (",
        "not a JSON-RPC 2.0 object (an array)",
        'jsonrpc must be "2.0"',
        "id must be an integer or a string",
        "method must be a string",
        "params do not parse (required field missing @ $.params.",
        "Position.line should be in range",
        "unknown method; answered MethodNotFound",
        "response 10000: no request has this id",
    ):
        assert reason in text, reason


def test_tracebacks_only_at_debug_level(tmp_path):
    count = 60
    lines = run_hostile(tmp_path, count, "-vv")
    assert sum("bad message: " in line for line in lines) == count
    text = "\n".join(lines)
    assert "Traceback (most recent call last)" in text  # JSON that does not parse
    assert "Exception Group Traceback" in text  # params that do not parse (cattrs)


def test_garbage_then_valid_requests_are_answered(tmp_path):
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    wire = Wire(tmp_path, "--model", spec)
    try:
        wire.send(
            frame(b"{this is not json"),
            message(id=7, method="textDocument/inlineCompletion", params={"bogus": True}),
            INITIALIZE,
        )
        assert "capabilities" in wire.answer("init")["result"]
        error = wire.answer(7)["error"]
        assert error["code"] == INVALID_PARAMS, error  # not silence
        assert "textDocument/inlineCompletion" in error["message"]
        shown = wire.wait_for(lambda m: m.get("method") == "window/showMessage")
        assert "Expecting property name" in shown["params"]["message"]  # the garbage, reported
        wire.send(message(id=2, method="shutdown"), message(method="exit"))
        assert wire.exit_code() == 0
    finally:
        wire.close()
