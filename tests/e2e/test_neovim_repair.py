"""End to end in a real editor: "fix this failing test" and "localize" in headless Neovim
(0.12) with the hone plugin from editor-clients/neovim, against a real `hone serve` process
that runs a real (tiny) repository's tests.

The scenario runs inside Neovim (tests/e2e/nvim/repair_driver.lua, after the shared
tests/e2e/nvim/init.lua set the plugin up): it puts the cursor in a failing test, runs
:HoneFix / :HoneLocalize / the "Fix failing test" code lens, answers the plugin's Apply/Cancel
question (vim.ui.select) and writes what it saw to a JSON file that these tests assert on.
Every wait has a deadline on both sides, and the editor and the server share a process group
that is killed at the end. The server runs with repairModel false (mutation templates only),
so a fix takes seconds and needs no model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, write, write_script
from tests.e2e.test_neovim import NvimRun, launch

pytestmark = pytest.mark.editor

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editor-clients" / "neovim"
FIXTURES = Path(__file__).resolve().parent / "nvim"

AGES = "def is_adult(age):\n    return age > 18\n"
FIXED_LINES = ["def is_adult(age):", "    return age >= 18"]
TESTS = (
    "from pkg.ages import is_adult\n"
    "\n"
    "\n"
    "def test_adult_at_18():\n"
    "    assert is_adult(18)\n"
    "\n"
    "\n"
    "def test_child():\n"
    "    assert not is_adult(10)\n"
)
TEST_ID = "tests/test_ages.py::test_adult_at_18"
# Inside test_adult_at_18 (1-based line, byte column), as a user's cursor would be.
CURSOR = (5, 4)
SOURCE = "pkg/ages.py"
TEST_FILE = "tests/test_ages.py"
# The fast configuration: templates only, the tests run by the interpreter running these tests.
REPAIR_OPTIONS = {"repairModel": False, "python": sys.executable, "debounceMs": 0}


def make_repo(root: Path) -> Path:
    """A tiny repository with one failing test that a mutation template fixes (`>` -> `>=`)."""
    write(root / "pkg" / "__init__.py", "")
    write(root / SOURCE, AGES)
    write(root / TEST_FILE, TESTS)
    write(root / "pyproject.toml", "[tool.pytest.ini_options]\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def run_nvim(
    nvim: str,
    tmp_path: Path,
    scenario: dict[str, Any],
    *,
    run_code: bool = True,
    attach_timeout_ms: int = 20_000,
    run_timeout_ms: int = 90_000,
) -> NvimRun:
    """Open the fixture repository's test file in headless Neovim and play `scenario`."""
    project = make_repo(tmp_path / "project")
    server_log = tmp_path / "hone-server.log"  # where launch() reads it from
    model = write_script(tmp_path / "scripted.json", "pass\n")

    setup = {
        "cmd": [sys.executable, "-m", "hone.server.cli", "serve", "--model", model]
        + ["--log-file", str(server_log), "-v"],
        "filetypes": ["python"],
        "init_options": REPAIR_OPTIONS,
        "run_code": run_code,
        # Same process group as Neovim, so the test can always kill the server (and its tests).
        "detached": False,
    }
    scenario = {
        "line": CURSOR[0],
        "col": CURSOR[1],
        "files": [SOURCE, TEST_FILE],
        "attach_timeout_ms": attach_timeout_ms,
        "run_timeout_ms": run_timeout_ms,
        **scenario,
    }
    # The driver's own watchdog fires well before this; the margin covers startup and shutdown.
    run = launch(
        nvim,
        tmp_path,
        cwd=project,
        file=Path(TEST_FILE),  # relative to cwd, as a user opens it
        driver="repair_driver.lua",
        setup=setup,
        scenario=scenario,
        timeout_s=(2 * attach_timeout_ms + run_timeout_ms) / 1000 + 60,
    )
    result = run.result
    assert result.get("ok"), result.get("error", "") + "\n" + run.report()
    assert not run.timed_out, run.report()
    # The options the plugin sent (runCode, repairModel, python, ...) were all understood.
    assert not [m for m in result["server_messages"] if "unknown" in str(m).lower()], run.report()
    return run


def commands(r: dict[str, Any], name: str) -> list[Any]:
    """The arguments of each workspace/executeCommand `name` the plugin sent."""
    return [req["arguments"][0] for req in r["requests"] if req["command"] == name]


def notified(r: dict[str, Any], level: int | None = None) -> list[str]:
    """The hone notifications the user saw (at `level`: 1 DEBUG .. 4 ERROR)."""
    return [
        n["message"]
        for n in r["notifications"]
        if n["message"].startswith("hone:") and (level is None or n["level"] == level)
    ]


INFO, WARN, ERROR = 2, 3, 4


def assert_fix_asked(run: NvimRun) -> dict[str, Any]:
    """The plugin showed the fix's diff and asked Apply/Cancel; returns the question."""
    r = run.result
    questions = [s for s in r["selects"] if s["kind"] == "hone.fix"]
    assert len(questions) == 1, run.report()
    q = questions[0]
    assert q["items"] == ["Apply", "Cancel"], run.report()
    assert "test_adult_at_18" in q["prompt"], run.report()
    diff = q["diff"]
    assert diff is not None, "no diff buffer while asking\n" + run.report()
    assert diff["name"] == f"hone://fix/{TEST_ID}", run.report()
    assert diff["filetype"] == "diff" and diff["modifiable"] is False, run.report()
    assert diff["buftype"] == "nofile" and diff["displayed"], run.report()
    assert "-    return age > 18" in diff["lines"], run.report()
    assert "+    return age >= 18" in diff["lines"], run.report()
    # The diff view goes away with the answer.
    assert r.get("diff_after_answer") is None and r.get("diff_buffers") is None, run.report()
    # The request: the cursor's test, the client confirms (the server must not ask).
    [fix] = commands(r, "hone.fixFailingTest")
    assert fix["confirm"] == "client", run.report()
    assert not r["show_message_requests"], run.report()
    assert r["repair"]["last"]["result"]["status"] == "fixed", run.report()
    return q


def assert_progress_shown(run: NvimRun) -> None:
    r = run.result
    server = [p.get("message", "") for p in r["lsp_progress"] if p["kind"] == "report"]
    assert any(m.startswith(("running", "candidate")) for m in server), run.report()
    # The plugin showed them to the user (Neovim progress messages titled "hone").
    shown = [p["text"] for p in r["progress_echo"]]
    assert any(t.startswith(("running", "candidate")) for t in shown), run.report()
    # The plugin followed its own command's progress, not the server's other work (indexing).
    ours = [p for p in r["lsp_progress"] if p.get("title", "").startswith("hone: fix ")]
    followed = [p.get("message") for p in r["repair"]["progress"]]
    assert len(followed) >= 3, run.report()
    assert followed == [p.get("message") for p in ours][: len(followed)], run.report()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("source_open", [False, True], ids=["source-not-open", "source-open"])
def test_fix_shows_the_diff_and_applies_it_to_the_buffer(
    nvim: str, tmp_path: Path, source_open: bool
):
    run = run_nvim(
        nvim,
        tmp_path,
        {"kind": "fix", "answer": "Apply", "open": [SOURCE] if source_open else []},
    )
    r = run.result
    assert_fix_asked(run)
    assert_progress_shown(run)
    [fix] = commands(r, "hone.fixFailingTest")
    assert fix["uri"].endswith("/" + TEST_FILE), run.report()
    assert fix["position"] == {"line": CURSOR[0] - 1, "character": CURSOR[1]}, run.report()

    # Apply: hone.applyFix with the fix's id, the server's workspace/applyEdit, the buffer changed.
    fix_id = r["repair"]["last"]["result"]["fixId"]
    assert commands(r, "hone.applyFix") == [{"fixId": fix_id}], run.report()
    [edit] = r["apply_edits"]
    [change] = edit["params"]["edit"]["documentChanges"]
    assert change["textDocument"]["uri"].endswith("/" + SOURCE), run.report()
    if source_open:
        assert isinstance(change["textDocument"]["version"], int), run.report()
    assert edit["returned"]["applied"] is True, run.report()
    assert r["repair"]["last_apply"]["result"]["applied"] is True, run.report()
    source = r["files"][SOURCE]
    assert source.get("lines") == FIXED_LINES, run.report()
    assert source.get("modified") is True, run.report()
    # Nothing is written until the user writes the buffer.
    assert source["disk"] == AGES, run.report()
    assert r["files"][TEST_FILE]["disk"] == TESTS, run.report()
    applied = r["repair"]["last_apply"]["result"]["message"].removeprefix("hone: ")
    assert "ages.py" in applied, run.report()
    assert any(applied in m for m in notified(r, INFO)), run.report()
    assert not notified(r, ERROR), run.report()


@pytest.mark.timeout(240)
def test_fix_cancelled_changes_nothing(nvim: str, tmp_path: Path):
    run = run_nvim(nvim, tmp_path, {"kind": "fix", "answer": "Cancel", "open": [SOURCE]})
    r = run.result
    assert_fix_asked(run)
    assert commands(r, "hone.applyFix") == [], run.report()
    assert r["apply_edits"] == [], run.report()
    source = r["files"][SOURCE]
    assert source.get("lines") == AGES.splitlines(), run.report()
    assert source.get("modified") is False, run.report()
    assert source["disk"] == AGES, run.report()
    assert "hone: fix not applied" in notified(r, INFO), run.report()


@pytest.mark.timeout(240)
def test_fix_is_not_applied_over_a_newer_edit(nvim: str, tmp_path: Path):
    comment = "# edited by the user"
    run = run_nvim(
        nvim,
        tmp_path,
        {
            "kind": "fix",
            "answer": "Apply",
            "open": [SOURCE],
            "stale_edit": {"file": SOURCE, "text": comment},
        },
    )
    r = run.result
    assert_fix_asked(run)
    assert len(commands(r, "hone.applyFix")) == 1, run.report()
    # The user's edit stays, without the fix (refused by the server, or by Neovim's version check).
    source = r["files"][SOURCE]
    assert source.get("lines") == [comment, *AGES.splitlines()], run.report()
    assert source["disk"] == AGES, run.report()
    answer = r["repair"]["last_apply"]["result"]
    assert answer["applied"] is False, run.report()
    assert "ages.py" in answer["message"], run.report()
    assert any("ages.py" in m for m in notified(r, WARN)), run.report()


@pytest.mark.timeout(240)
def test_fix_cancel_stops_the_repair(nvim: str, tmp_path: Path):
    run = run_nvim(nvim, tmp_path, {"kind": "cancel", "answer": "Apply", "open": [SOURCE]})
    r = run.result
    assert len(commands(r, "hone.fixFailingTest")) == 1, run.report()
    assert r["pending_after_cancel"] is False, run.report()
    assert r["repair"]["last"] == {"kind": "fix", "cancelled": True}, run.report()
    assert "hone: fix cancelled" in notified(r, INFO), run.report()
    # The server stopped (its progress ended) well before the repair would have finished.
    assert r.get("server_end_ms") is not None, run.report()
    assert r["server_end_ms"] - r["cancelled_at_ms"] < 5000, run.report()
    # Nothing asked, nothing applied.
    assert r["selects"] == [] and r["apply_edits"] == [], run.report()
    assert commands(r, "hone.applyFix") == [], run.report()
    assert r["files"][SOURCE].get("lines") == AGES.splitlines(), run.report()


@pytest.mark.timeout(240)
def test_localize_fills_the_quickfix_list(nvim: str, tmp_path: Path):
    run = run_nvim(nvim, tmp_path, {"kind": "localize"})
    r = run.result
    [args] = commands(r, "hone.localize")
    assert args["uri"].endswith("/" + TEST_FILE) and "confirm" not in args, run.report()
    qf = r["quickfix"]
    assert qf["window_open"] and "test_adult_at_18" in qf["title"], run.report()
    first = qf["items"][0]
    assert first["filename"].endswith("/" + SOURCE), run.report()
    assert (first["lnum"], first["end_lnum"]) == (1, 2), run.report()
    assert first["text"].startswith("is_adult "), run.report()
    for signal in ("traceback", "spectrum", "similarity"):
        assert signal in first["text"], run.report()
    # Test files are not suspects.
    assert not any(i["filename"].endswith("/" + TEST_FILE) for i in qf["items"]), run.report()
    assert notified(r, INFO), run.report()
    assert r["files"][SOURCE]["disk"] == AGES, run.report()


@pytest.mark.timeout(240)
def test_fix_without_run_code_reports_how_to_enable_it(nvim: str, tmp_path: Path):
    run = run_nvim(
        nvim, tmp_path, {"kind": "fix", "answer": "Apply", "open": [SOURCE]}, run_code=False
    )
    r = run.result
    errors = notified(r, ERROR)
    assert len(errors) == 1 and "runCode" in errors[0], run.report()
    assert r["repair"]["last"].get("err"), run.report()
    assert r["selects"] == [] and r["apply_edits"] == [], run.report()
    assert r.get("diff_buffers") is None, run.report()
    source = r["files"][SOURCE]
    assert source.get("lines") == AGES.splitlines(), run.report()
    assert source.get("modified") is False, run.report()
    assert source["disk"] == AGES, run.report()
    assert r["files"][TEST_FILE]["modified"] is False, run.report()


@pytest.mark.timeout(240)
def test_code_lens_runs_the_fix_through_the_plugin(nvim: str, tmp_path: Path):
    run = run_nvim(
        nvim,
        tmp_path,
        {"kind": "codelens", "run_lens": "::test_adult_at_18", "answer": "Apply"},
    )
    r = run.result
    lenses = {lens["arguments"][0]["testId"]: lens for lens in r["lenses"]}
    assert set(lenses) == {TEST_ID, "tests/test_ages.py::test_child"}, run.report()
    lens = lenses[TEST_ID]
    assert lens["title"] == "Fix failing test", run.report()
    assert lens["command"] == "hone.fixFailingTest", run.report()
    assert lens["line"] == 3, run.report()  # the `def test_adult_at_18` line
    assert {"row": 3, "text": "Fix failing test"} in r["lens_marks"], run.report()
    # Running the lens went through the plugin: asked in the editor, then hone.applyFix.
    assert_fix_asked(run)
    [fix] = commands(r, "hone.fixFailingTest")
    assert fix["testId"] == TEST_ID, run.report()
    assert len(commands(r, "hone.applyFix")) == 1, run.report()
    assert r["files"][SOURCE].get("lines") == FIXED_LINES, run.report()
    assert r["files"][SOURCE]["disk"] == AGES, run.report()
