"""`hone.fixFailingTest`, `hone.applyFix`, `hone.localize` and the "Fix failing test" code lens,
over stdio against the real `hone serve` process, on a fixture repository with a real failing
test (server/repair.py; the contract in server/README.md, "Commands")."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hone.server.repair import line_edits
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import git, inline, lsp_session, open_doc, stats

AGES = (
    "def is_adult(age):\n    return age > 18\n\n\n"
    "def label(age):\n    return 'adult' if is_adult(age) else 'child'\n"
)
TESTS = """from pkg.ages import is_adult, label


def test_adult_at_18():
    assert is_adult(18)


def test_child():
    assert not is_adult(10)


class TestLabel:
    def test_label_child(self):
        assert label(3) == 'child'
"""
HANG = "def spin(n):\n    while n != 0:\n        n = n - 2\n    return True\n"
HANG_TEST = "from pkg.spin import spin\n\n\ndef test_odd():\n    assert spin(3)\n"

CAPS = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        code_lens=types.CodeLensWorkspaceClientCapabilities(refresh_support=True),
    ),
)
TRUSTED = {"debounceMs": 0, "runCode": True, "repairModel": False}


def make_repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "ages.py").write_text(AGES)
    (root / "pkg" / "spin.py").write_text(HANG)
    (root / "tests" / "test_ages.py").write_text(TESTS)
    (root / "tests" / "test_spin.py").write_text(HANG_TEST)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return root


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if ".git" in p.parts or not p.is_file():
            continue
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


class Recorder:
    """The client's side of the server's requests: applyEdit and showMessageRequest."""

    def __init__(self, client: Any, answer: str | None = "Apply", apply: bool = True) -> None:
        self.edits: list[types.ApplyWorkspaceEditParams] = []
        self.asked: list[types.ShowMessageRequestParams] = []
        self.answer = answer

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> Any:
            self.edits.append(params)
            return types.ApplyWorkspaceEditResult(applied=apply)

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def ask(params: types.ShowMessageRequestParams) -> Any:
            self.asked.append(params)
            if self.answer is None:
                return None
            return types.MessageActionItem(title=self.answer)

        self.refreshes = 0

        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def refresh(_params: None) -> None:
            self.refreshes += 1


async def command(client: Any, name: str, arg: Any, timeout: float = 150) -> Any:
    result = await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=[arg])
        ),
        timeout,
    )
    return json.loads(json.dumps(result, default=lambda o: o.__dict__)) if result else result


def messages(client: Any) -> list[str]:
    return [
        getattr(v, "message", None) or getattr(v, "title", "") or ""
        for reports in client.progress_reports.values()
        for v in reports
    ]


def apply_text(text: str, edits: list[types.TextEdit]) -> str:
    """Apply whole-line edits (positions at line starts, or the end of the text)."""
    from hone.server.documents import split_lines

    lines = split_lines(text)
    out = text
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))[::-1]:

        def offset(pos: types.Position) -> int:
            return sum(len(line) for line in lines[: pos.line]) + pos.character

        out = out[: offset(edit.range.start)] + edit.new_text + out[offset(edit.range.end) :]
    return out


async def test_fix_the_test_under_the_cursor_then_apply_with_the_copied_version(tmp_path):
    repo = make_repo(tmp_path / "repo")
    before = tree_hash(repo)
    ages_uri = (repo / "pkg" / "ages.py").as_uri()
    async with lsp_session(None, TRUSTED, folders=[repo], capabilities=CAPS) as client:
        rec = Recorder(client)
        open_doc(client, ages_uri, AGES, version=7)
        test_uri = (repo / "tests" / "test_ages.py").as_uri()
        # the cursor on the assert line of test_adult_at_18 (0-based line 4)
        result = await command(
            client,
            "hone.fixFailingTest",
            {"uri": test_uri, "position": {"line": 4, "character": 8}, "confirm": "client"},
        )
        assert result["status"] == "fixed", result
        assert result["test"] == "tests/test_ages.py::test_adult_at_18"
        assert (
            "-    return age > 18" in result["diff"] and "+    return age >= 18" in result["diff"]
        )
        assert result["source"] == "template" and result["explanation"]
        assert result["changes"] == [
            {"uri": ages_uri, "path": "pkg/ages.py", "text": AGES.replace(">", ">=")}
        ]
        assert result["localization"][0]["name"] == "is_adult"
        assert not rec.asked and not rec.edits  # confirm "client": the server asked nothing
        seen = messages(client)
        assert any(m.startswith("running tests/test_ages.py") for m in seen), seen
        assert any(m.startswith("candidate 1 of ") for m in seen), seen
        assert any(m.startswith("validating: tests/test_ages.py") for m in seen), seen
        assert tree_hash(repo) == before  # nothing written before the user accepts

        applied = await command(client, "hone.applyFix", {"fixId": result["fixId"]})
        assert applied["applied"] is True, applied
        (edit,) = rec.edits
        (doc_edit,) = edit.edit.document_changes
        assert doc_edit.text_document.uri == ages_uri
        assert doc_edit.text_document.version == 7  # the version the copy was made from
        assert apply_text(AGES, doc_edit.edits) == AGES.replace(">", ">=")
        assert tree_hash(repo) == before  # the editor applies it to its buffer, not hone

        with pytest.raises(JsonRpcException, match="no fix"):  # a fix applies once
            await command(client, "hone.applyFix", {"fixId": result["fixId"]})


async def test_server_side_confirmation_and_a_file_edited_meanwhile(tmp_path):
    repo = make_repo(tmp_path / "repo")
    ages_uri = (repo / "pkg" / "ages.py").as_uri()
    test_id = {"testId": "tests/test_ages.py::test_adult_at_18"}
    async with lsp_session(None, TRUSTED, folders=[repo], capabilities=CAPS) as client:
        # Cancel: asked, nothing sent.
        rec = Recorder(client, answer="Cancel")
        result = await command(client, "hone.fixFailingTest", test_id)
        assert result["status"] == "fixed" and result["applied"] is False
        assert len(rec.asked) == 1 and "+    return age >= 18" in rec.asked[0].message
        assert [a.title for a in rec.asked[0].actions] == ["Apply", "Cancel"]
        assert rec.edits == []
        # Apply: the file is not open, so the edit carries no version; the disk is checked.
        rec.answer = "Apply"
        result = await command(client, "hone.fixFailingTest", test_id)
        assert result["applied"] is True, result
        (doc_edit,) = rec.edits[-1].edit.document_changes
        assert doc_edit.text_document.version is None
        # The user edits the file between the fix and the Apply: refused, nothing sent.
        open_doc(client, ages_uri, AGES, version=1)
        result = await command(client, "hone.fixFailingTest", {**test_id, "confirm": "client"})
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=ages_uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument("# mine\n" + AGES)],
            )
        )
        sent = len(rec.edits)
        applied = await command(client, "hone.applyFix", {"fixId": result["fixId"]})
        assert applied["applied"] is False and "pkg/ages.py was edited" in applied["message"]
        assert len(rec.edits) == sent
        # The unsaved buffer is what the next repair copies.
        result = await command(client, "hone.fixFailingTest", {**test_id, "confirm": "client"})
        assert result["changes"][0]["text"] == "# mine\n" + AGES.replace(">", ">=")


async def test_localize_code_lens_and_trust(tmp_path):
    repo = make_repo(tmp_path / "repo")
    test_uri = (repo / "tests" / "test_ages.py").as_uri()
    untrusted = {"debounceMs": 0, "repairModel": False}
    async with lsp_session(None, untrusted, folders=[repo], capabilities=CAPS) as client:
        for name in ("hone.fixFailingTest", "hone.localize"):
            with pytest.raises(JsonRpcException, match="runCode"):
                await command(client, name, {"testId": "tests/test_ages.py::test_adult_at_18"})
        lens_params = types.CodeLensParams(text_document=types.TextDocumentIdentifier(test_uri))
        rec = Recorder(client)
        assert not await client.text_document_code_lens_async(lens_params)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"hone": {"runCode": True}})
        )
        lenses = await client.text_document_code_lens_async(lens_params)
        assert [
            (lens.range.start.line, lens.command.arguments[0]["testId"]) for lens in lenses
        ] == [
            (3, "tests/test_ages.py::test_adult_at_18"),
            (7, "tests/test_ages.py::test_child"),
            (12, "tests/test_ages.py::TestLabel::test_label_child"),
        ]
        assert {lens.command.command for lens in lenses} == {"hone.fixFailingTest"}
        assert rec.refreshes == 1  # runCode changed: the client was asked to ask again
        source_uri = (repo / "pkg" / "ages.py").as_uri()
        source_lens = types.CodeLensParams(text_document=types.TextDocumentIdentifier(source_uri))
        assert not await client.text_document_code_lens_async(source_lens)

        found = await command(
            client, "hone.localize", {"uri": test_uri, "position": {"line": 4, "character": 0}}
        )
        assert found["status"] == "localized" and found["outcome"] == "failed"
        best = found["functions"][0]
        assert (best["name"], best["path"], best["start_line"]) == ("is_adult", "pkg/ages.py", 1)
        assert best["uri"] == (repo / "pkg" / "ages.py").as_uri()
        assert set(best["signals"]) == {"traceback", "spectrum", "similarity"}
        passes = await command(
            client, "hone.localize", {"testId": "tests/test_ages.py::test_child"}
        )
        assert passes["status"] == "passes"
        with pytest.raises(JsonRpcException, match="no test function at line 2"):
            await command(
                client, "hone.localize", {"uri": test_uri, "position": {"line": 1, "character": 0}}
            )
        with pytest.raises(JsonRpcException, match="cannot run"):
            await command(client, "hone.localize", {"testId": "tests/test_ages.py::test_missing"})


async def test_cancel_stops_a_hanging_test_and_completions_keep_working(tmp_path, script):
    repo = make_repo(tmp_path / "repo")
    before = tree_hash(repo)
    model = script([{"match": None, "text": "return a + b"}], step_ms=1)
    opts = {**TRUSTED, "repairBudgetSeconds": 120}
    async with lsp_session(model, opts, folders=[repo], capabilities=CAPS) as client:
        Recorder(client)
        task = asyncio.ensure_future(
            command(client, "hone.fixFailingTest", {"testId": "tests/test_spin.py::test_odd"})
        )
        deadline = time.monotonic() + 60
        while not any(m.startswith("running") for m in messages(client)):
            assert time.monotonic() < deadline and not task.done(), messages(client)
            await asyncio.sleep(0.1)
        # A second command meanwhile is refused: one repair at a time.
        with pytest.raises(JsonRpcException, match="is running"):
            await command(client, "hone.localize", {"testId": "tests/test_ages.py::test_child"})
        # Typing keeps getting completions while the test process spins.
        uri = (repo / "pkg" / "new.py").as_uri()
        open_doc(client, uri, "def add(a, b):\n    ")
        items = await asyncio.wait_for(inline(client, uri, types.Position(1, 4)), 30)
        assert items == ["return a + b"]
        assert (await stats(client))["recent"][-1]["outcome"] != "timeout"
        # The user cancels from the progress UI.
        (token,) = [t for t in client.progress_reports if str(t).startswith("hone-repair")]
        t0 = time.monotonic()
        client.protocol.notify(
            types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token)
        )
        result = await asyncio.wait_for(task, 30)
        assert result["status"] == "cancelled", result
        assert time.monotonic() - t0 < 15
        assert client.progress_reports[token][-1].kind == "end"
        # The job is gone: the next command runs.
        found = await command(
            client, "hone.localize", {"testId": "tests/test_ages.py::test_adult_at_18"}
        )
        assert found["status"] == "localized"
        # $/cancelRequest on the command's request, its progress on the client's own token.
        params = types.ExecuteCommandParams(
            command="hone.fixFailingTest",
            arguments=[{"testId": "tests/test_spin.py::test_odd"}],
            work_done_token="mine",
        )
        client.progress_reports["mine"] = []
        future = client.protocol.send_request(types.WORKSPACE_EXECUTE_COMMAND, params, msg_id=77)
        deadline = time.monotonic() + 60
        while not any(
            getattr(v, "message", "") == "running tests/test_spin.py"
            for v in client.progress_reports["mine"]
        ):
            assert time.monotonic() < deadline, client.progress_reports["mine"]
            await asyncio.sleep(0.1)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=77))
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(asyncio.wrap_future(future), 10)
        deadline = time.monotonic() + 15
        while client.progress_reports["mine"][-1].kind != "end":  # the repair itself stopped
            assert time.monotonic() < deadline, client.progress_reports["mine"]
            await asyncio.sleep(0.1)
        found = await command(
            client, "hone.localize", {"testId": "tests/test_ages.py::test_adult_at_18"}
        )
        assert found["status"] == "localized"
    assert tree_hash(repo) == before


def test_line_edits_keep_line_ends_and_the_last_line():
    for old, new in [
        ("a\nb\nc", "a\nB\nc"),
        ("a\r\nb\r\n", "a\r\nb2\r\n"),
        ("x = 1", "x = 2"),
        ("x\n", "x\ny\n"),
        ("α𝛃\nz", "α𝛃\nzz"),
        ("a\nb\n", ""),
    ]:
        for encoding in ("utf-8", "utf-16", "utf-32"):
            edits = line_edits(old, new, encoding)
            assert edits and all(e.range.start.character == 0 for e in edits)
            if encoding == "utf-32":
                assert apply_text(old, edits) == new, (old, new)
    # the end of a last line without a line end, in code units of the encoding
    (edit,) = line_edits("α𝛃", "x", "utf-16")
    assert (edit.range.end.line, edit.range.end.character) == (0, 3)
    (edit,) = line_edits("α𝛃", "x", "utf-8")
    assert edit.range.end.character == 6


@pytest.mark.model
async def test_the_real_embedded_model_proposes_edits_through_the_scheduler(tmp_path):
    """A fault no template covers (a wrong constant): the repair asks the real embedded
    model, as background work, while completions still get answered."""
    repo = make_repo(tmp_path / "repo")
    (repo / "pkg" / "ages.py").write_text(AGES.replace("age > 18", "age >= 21"))
    git(repo, "commit", "-qam", "constant")
    opts = {"debounceMs": 0, "runCode": True, "repairBudgetSeconds": 45}
    opts["requestTimeoutMs"] = 300_000
    async with lsp_session(None, opts, folders=[repo], capabilities=CAPS) as client:
        rec = Recorder(client)
        task = asyncio.ensure_future(
            command(
                client,
                "hone.fixFailingTest",
                {"testId": "tests/test_ages.py::test_adult_at_18", "confirm": "client"},
                timeout=400,
            )
        )
        uri = (repo / "pkg" / "new.py").as_uri()
        open_doc(client, uri, "def add(a, b):\n    ")
        items = await asyncio.wait_for(inline(client, uri, types.Position(1, 4)), 300)
        assert items and items[0].strip()
        result = await task
        assert result["status"] == "not-fixed", result
        model = [c for c in result["candidates"] if c["source"] == "model"]
        assert model, result["candidates"]
        # its replies were checked and validated, or it was stopped at the time budget
        outcomes = ("invalid", "fails", "regression", "rejected", "timeout")
        assert all(c["outcome"] in outcomes for c in model), model
        assert result["timings"]["total_s"] < 45 + 15  # the budget stops the model too
        assert "no fix found" in result["message"] and "candidates" in result["message"]
        s = await stats(client)
        assert s["scheduler"]["background_running"] == 0 and not rec.edits
