"""End to end in a real editor: headless Neovim (0.12) with the hone plugin from
editor-clients/neovim, talking to a real `hone serve` process over stdio.

Neovim's built-in `vim.lsp.inline_completion` draws the server's answer as ghost text
(extmarks in the `nvim.lsp.inline_completion` namespace); the plugin's <Tab> keymap accepts it.
The scenario itself runs inside Neovim (tests/e2e/nvim/driver.lua) and writes what it saw to a
JSON file; these tests assert on that record. Every wait has a deadline on both sides, and the
editor and the server share a process group that is killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.editor

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editor-clients" / "neovim"
FIXTURES = Path(__file__).resolve().parent / "nvim"
ADD_SOURCE = "def add(a, b):\n    \n"
EXPECTED_GHOST = "return a + b"
# Options the clients send; the server must accept them without a warning.
INIT_OPTIONS = {"maxNewTokens": 64, "multiline": True, "debounceMs": 0}


def server_cmd() -> list[str]:
    """`hone serve` from the environment running the tests."""
    script = Path(sys.executable).parent / "hone"
    if script.exists():
        return [str(script), "serve"]
    code = "import sys; from hone.server.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "serve"]


@dataclass
class NvimRun:
    result: dict[str, Any]
    returncode: int | None
    timed_out: bool
    logs: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        """Everything worth reading when an assertion fails."""
        parts = [
            f"nvim exit code: {self.returncode}, killed after timeout: {self.timed_out}",
            "driver record:\n" + json.dumps(self.result, indent=1)[-6000:],
        ]
        for name, text in self.logs.items():
            if text.strip():
                parts.append(f"--- {name} (tail) ---\n{text[-4000:]}")
        return "\n".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _kill_group(pgid: int, grace_s: float) -> None:
    """Give the group (Neovim and the server it started) `grace_s` to exit, then SIGKILL it."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def launch(
    nvim: str,
    tmp_path: Path,
    *,
    cwd: Path,
    file: Path,
    driver: str,
    setup: dict[str, Any],
    scenario: dict[str, Any],
    timeout_s: float,
    position_encodings: list[str] | None = None,
    env_overrides: dict[str, str | None] | None = None,
) -> NvimRun:
    """Headless Neovim with the plugin (``setup``) on ``file``, playing ``scenario`` with the
    driver script ``driver`` (in tests/e2e/nvim); its own XDG folders under ``tmp_path``,
    its result in ``tmp_path/result.json``, the server's log expected in
    ``tmp_path/hone-server.log`` (``setup``'s command names it). The editor's process group
    is killed at the end, or at ``timeout_s``."""
    result_path = tmp_path / "result.json"
    nvim_out = tmp_path / "nvim.out"
    env = dict(os.environ)
    for sub in ("config", "data", "state", "cache"):
        env[f"XDG_{sub.upper()}_HOME"] = str(tmp_path / "xdg" / sub)
    env.setdefault("HONE_CACHE_DIR", str(REPO / ".hone-cache"))
    env.update(
        HONE_NVIM_PLUGIN=str(PLUGIN),
        HONE_NVIM_SETUP=json.dumps(setup),
        HONE_NVIM_SCENARIO=json.dumps(scenario),
        HONE_NVIM_RESULT=str(result_path),
        HONE_NVIM_POSITION_ENCODINGS=json.dumps(position_encodings) if position_encodings else "",
    )
    for key, value in (env_overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    argv = [
        nvim, "--headless", "--clean", "-n", "-u", str(FIXTURES / "init.lua"), str(file),
        "-c", f"luafile {FIXTURES / driver}",
    ]  # fmt: skip
    timed_out = False
    with nvim_out.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid, grace_s=0 if timed_out else 5)
            proc.wait(timeout=30)

    text = _read(result_path)
    result = json.loads(text) if text else {"ok": False, "error": "driver wrote no result"}
    logs = {
        "nvim output": _read(nvim_out),
        "hone server log": _read(tmp_path / "hone-server.log"),
        "nvim lsp.log": _read(tmp_path / "xdg" / "state" / "nvim" / "lsp.log"),
    }
    return NvimRun(result, proc.returncode, timed_out, logs)


def run_nvim(
    nvim: str,
    tmp_path: Path,
    *,
    source: str,
    line: int,
    server_args: list[str],
    env_overrides: dict[str, str | None] | None = None,
    init_options: dict[str, Any] | None = None,
    attach_timeout_ms: int = 20_000,
    ghost_timeout_ms: int = 20_000,
    max_retriggers: int = 0,
    position_encodings: list[str] | None = None,
) -> NvimRun:
    """Open `source` as a Python file in headless Neovim and run driver.lua on it."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    target = project / "demo.py"
    target.write_text(source)
    server_log = tmp_path / "hone-server.log"  # where launch() reads it from

    setup = {
        "cmd": server_cmd() + ["--log-file", str(server_log), "-v", *server_args],
        "filetypes": ["python"],
        "init_options": init_options or {},
        # Same process group as Neovim, so the test can always kill the server too.
        "detached": False,
        "keymaps": {"accept": "<Tab>"},
    }
    scenario = {
        "line": line,
        "accept_key": "<Tab>",
        "attach_timeout_ms": attach_timeout_ms,
        "ghost_timeout_ms": ghost_timeout_ms,
        "max_retriggers": max_retriggers,
    }
    return launch(
        nvim,
        tmp_path,
        cwd=project,
        file=target,
        driver="driver.lua",
        setup=setup,
        scenario=scenario,
        # The driver quits by itself well before this; the margin covers startup and shutdown.
        timeout_s=(attach_timeout_ms + ghost_timeout_ms) / 1000 + 30,
        position_encodings=position_encodings,
        env_overrides=env_overrides,
    )


def insert_at_end_of_line(lines: list[str], line: int, text: str) -> list[str]:
    """`lines` after typing `text` at the end of 1-based `line`."""
    new = text.split("\n")
    head = lines[: line - 1]
    current = lines[line - 1]
    tail = lines[line:]
    if len(new) == 1:
        return head + [current + new[0]] + tail
    return head + [current + new[0], *new[1:]] + tail


def assert_real_ghost_accepted(run: NvimRun, line: int) -> str:
    """A real model's suggestion: the run went well, some ghost text showed at the end of
    1-based ``line``, and accepting it inserted exactly that text. Returns the text."""
    r = run.result
    assert r["ok"], r.get("error", "") + "\n" + run.report()
    ghost = r["ghost"]["text"]
    assert ghost.strip(), run.report()
    assert r["after"] == insert_at_end_of_line(r["before"], line, ghost), run.report()
    return ghost


@pytest.fixture
def scripted_model(tmp_path: Path) -> Path:
    path = tmp_path / "scripted.json"
    script = {"responses": [{"match": None, "text": "return a + b\n"}], "step_ms": 5}
    path.write_text(json.dumps(script))
    return path


@pytest.mark.timeout(120)
def test_ghost_text_shown_and_accepted_scripted(nvim: str, tmp_path: Path, scripted_model: Path):
    run = run_nvim(
        nvim,
        tmp_path,
        source=ADD_SOURCE,
        line=2,
        server_args=["--model", f"scripted:{scripted_model}"],
        init_options=INIT_OPTIONS,
    )
    r = run.result
    assert r["ok"], r.get("error", "") + "\n" + run.report()
    assert not run.timed_out, run.report()

    status = r["status"]
    assert status["attached"] and status["inline_completion_enabled"], run.report()
    assert status["clients"][0]["inline_completion"], "server lacks inlineCompletionProvider"
    assert status["clients"][0]["server_info"]["name"] == "hone", run.report()
    assert "hone: attached for buffer" in r["status_command_output"], run.report()
    assert "inlineCompletionProvider: true" in r["status_command_output"], run.report()

    # Ghost text: drawn inline at the cursor (row 1, col 4), in insert mode.
    ghost = r["ghost"]
    assert ghost["text"] == EXPECTED_GHOST, run.report()
    assert (ghost["row"], ghost["col"]) == (1, 4), run.report()
    assert r["mode_when_shown"] == "i", run.report()

    # Accepting inserts exactly the ghost text, clears it, stays in insert mode after it.
    assert r["before"] == ["def add(a, b):", "    "], run.report()
    assert r["after"] == ["def add(a, b):", "    return a + b"], run.report()
    assert r.get("ghost_after") is None, run.report()
    assert r["mode_after"] == "i", run.report()
    assert r["cursor_after"] == [2, len("    return a + b")], run.report()

    # The options the client sent were all understood.
    assert r["messages"] == [], run.report()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("offered", "negotiated"),
    [(None, "utf-32"), (["utf-8"], "utf-8"), (["utf-16"], "utf-16")],
    ids=["neovim-default", "utf-8", "utf-16"],
)
def test_ghost_text_at_the_end_of_a_non_ascii_line(
    nvim: str, tmp_path: Path, offered: list[str] | None, negotiated: str
):
    # Neovim columns are bytes; the server must read positions in the negotiated encoding
    # (a UTF-16 reading of a UTF-8 column at this line's end would be past the end).
    line = "name = 'naïve 😀'; x = "
    script = {"responses": [{"match": "'naïve 😀'; x = ", "text": "len(name)\n"}]}
    path = tmp_path / "scripted.json"
    path.write_text(json.dumps({**script, "default": "WRONG", "step_ms": 5}))
    run = run_nvim(
        nvim,
        tmp_path,
        source=f"{line}\nprint(x)\n",
        line=1,
        server_args=["--model", f"scripted:{path}"],
        init_options=INIT_OPTIONS,
        position_encodings=offered,
    )
    r = run.result
    assert r["ok"], r.get("error", "") + "\n" + run.report()
    assert r["offset_encoding"] == negotiated, run.report()
    ghost = r["ghost"]
    assert ghost["text"] == "len(name)", run.report()
    assert (ghost["row"], ghost["col"]) == (0, len(line.encode())), run.report()
    assert r["after"] == [line + "len(name)", "print(x)"], run.report()
    assert r["cursor_after"] == [1, len((line + "len(name)").encode())], run.report()


@pytest.mark.model
@pytest.mark.timeout(420)
def test_ghost_text_shown_and_accepted_embedded_model(nvim: str, tmp_path: Path):
    source = (
        "def fibonacci(n):\n"
        '    """Return the n-th Fibonacci number."""\n'
        "    if n < 2:\n"
        "        return n\n"
        "    \n"
    )
    run = run_nvim(
        nvim,
        tmp_path,
        source=source,
        line=5,
        server_args=[],  # the embedded default model
        env_overrides={"HONE_MODEL": None},
        init_options={"maxNewTokens": 32},
        attach_timeout_ms=60_000,
        # First use may load and convert the model (cached under HONE_CACHE_DIR afterwards).
        ghost_timeout_ms=240_000,
        max_retriggers=8,
    )
    assert_real_ghost_accepted(run, 5)
    assert run.result["mode_after"] == "i", run.report()
