"""An untrusted workspace plays the attacker: its conftest.py would run code the moment pytest
imports it. With `runCode` off (the default; VS Code sets it from workspace trust) every
command that runs tests is refused with how to enable it, nothing of the repository runs,
nothing is applied, and the server keeps serving completions."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import end_position, inline, lsp_session, open_doc, write_script
from tests.e2e.test_repair_lsp import CAPS, Recorder, command, make_repo, tree_hash


async def test_commands_that_run_code_are_refused_on_an_untrusted_workspace(tmp_path):
    repo = make_repo(tmp_path / "repo")
    marker = tmp_path / "ran"
    (repo / "conftest.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    before = tree_hash(repo)
    test_uri = (repo / "tests" / "test_ages.py").as_uri()
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    untrusted = {"debounceMs": 0, "repairModel": False}
    log = tmp_path / "hone.log"
    args = ["--log-file", str(log)]  # the default level: warnings
    async with lsp_session(spec, untrusted, args, [repo], CAPS) as client:
        rec = Recorder(client)
        attempts = [
            ("hone.fixFailingTest", {"testId": "tests/test_ages.py::test_adult_at_18"}),
            ("hone.fixFailingTest", {"uri": test_uri, "position": {"line": 4, "character": 4}}),
            ("hone.localize", {"testId": "tests/test_ages.py::test_adult_at_18"}),
        ]
        for name, arg in attempts:
            with pytest.raises(JsonRpcException, match="runCode") as refused:
                await command(client, name, arg)
            assert "trust" in str(refused.value)  # says how to enable it
        # A forged fix id applies nothing.
        with pytest.raises(JsonRpcException, match="no fix"):
            await command(client, "hone.applyFix", {"fixId": "0" * 16})
        assert rec.edits == []
        # No code lens offers to run anything.
        lens = types.CodeLensParams(text_document=types.TextDocumentIdentifier(test_uri))
        assert not await client.text_document_code_lens_async(lens)
        # The server keeps serving.
        uri = (repo / "pkg" / "new.py").as_uri()
        text = "def add(a, b):\n    "
        open_doc(client, uri, text)
        assert await inline(client, uri, end_position(text)) == ["return a + b"]
    assert not marker.exists()
    assert tree_hash(repo) == before
    assert log.read_text().count("refused a command that runs the repository's tests") == 3
