"""After `shutdown`: requests get an InvalidRequest error (the client must not wait forever),
notifications other than `exit` are dropped, and `exit` ends the process with code 0."""

from __future__ import annotations

from tests.conftest import write_script
from tests.e2e.wire import INITIALIZE, Wire, message

INVALID_REQUEST = -32600


def test_requests_after_shutdown_get_invalid_request(tmp_path):
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    wire = Wire(tmp_path, "--model", spec)
    try:
        wire.send(INITIALIZE, message(method="initialized", params={}))
        assert "capabilities" in wire.answer("init")["result"]
        wire.send(message(id="before", method="hone/stats", params=None))
        assert wire.answer("before").get("error", {}).get("code") != INVALID_REQUEST

        wire.send(message(id="down", method="shutdown"))
        assert wire.answer("down") == {"jsonrpc": "2.0", "id": "down", "result": None}
        wire.send(
            message(id=2, method="hone/stats", params=None),
            message(id=3, method="no/such/method", params=None),
            # Would be answered with a window/showMessage (unknown setting) before shutdown.
            message(method="workspace/didChangeConfiguration", params={"settings": {"bogus": 1}}),
            message(id=4, method="shutdown"),
        )
        for msg_id in (2, 3, 4):
            error = wire.answer(msg_id)["error"]
            assert error["code"] == INVALID_REQUEST, error
            assert "shut down" in error["message"]
        assert not any(m.get("method") == "window/showMessage" for m in wire.received), (
            wire.received  # the notification was dropped (it would have come before id 4)
        )

        wire.send(message(method="exit"))
        assert wire.exit_code() == 0
    finally:
        wire.close()


def test_exit_without_shutdown_exits_with_1(tmp_path):
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    wire = Wire(tmp_path, "--model", spec)
    try:
        wire.send(INITIALIZE)
        assert "capabilities" in wire.answer("init")["result"]
        wire.send(message(method="exit"))
        assert wire.exit_code() == 1
    finally:
        wire.close()
