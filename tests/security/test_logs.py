"""The log holds no document text at the default level nor with -v: not from documents that
arrive well formed, not from ones that arrive broken (a parse error names the field, never
its value). Positions, URIs and method names are logged; what the user wrote is not."""

from __future__ import annotations

import pytest

from tests.conftest import write_script
from tests.e2e.wire import INITIALIZE, Wire, message

TEXT = "db_password = 'MARKER-correct-horse'\n"


def document(version: object, text: str = TEXT) -> dict:
    return {"uri": "file:///w/a.py", "languageId": "python", "version": version, "text": text}


@pytest.mark.parametrize("flags", [(), ("-v",)])
def test_document_text_stays_out_of_the_log(tmp_path, flags):
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    log = tmp_path / "hone.log"
    wire = Wire(tmp_path, "--model", spec, *flags, "--log-file", str(log))
    change = {"textDocument": {"uri": "file:///w/b.py", "version": 2}}
    bad_range = {"start": {"line": "a", "character": 0}, "end": {"line": 0, "character": 0}}
    try:
        wire.send(INITIALIZE, message(method="initialized", params={}))
        wire.answer("init")
        wire.send(
            message(method="textDocument/didOpen", params={"textDocument": document("x")}),
            message(method="textDocument/didOpen", params={"textDocument": document(1)}),
            message(
                method="textDocument/didChange",
                params={**change, "contentChanges": [{"text": TEXT}]},  # not open
            ),
            message(
                method="textDocument/didChange",
                params={
                    "textDocument": {"uri": "file:///w/a.py", "version": 2},
                    "contentChanges": [{"text": TEXT, "range": bad_range}],
                },
            ),
            message(
                id=3,
                method="textDocument/inlineCompletion",
                params={
                    "textDocument": {"uri": "file:///w/a.py"},
                    "position": {"line": 1, "character": 0},
                    "context": {"triggerKind": 1},
                },
            ),
        )
        wire.answer(3)
        wire.send(message(id="bye", method="shutdown"), message(method="exit"))
        wire.answer("bye")
        assert wire.exit_code() == 0
    finally:
        wire.close()
    text = log.read_text()
    assert "params do not parse" in text and "which is not open" in text  # logged, and
    assert "MARKER" not in text and "correct-horse" not in text  # without the text
