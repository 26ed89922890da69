"""End to end in a real editor over TCP: headless Neovim (0.12) with the hone plugin set up
with ``tcp = "127.0.0.1:PORT"``, attaching to a real ``hone serve --tcp`` started here (its
token in ITS environment only; Neovim reads it from an owner-only ``token_file``).

The scenario is tests/e2e/nvim/driver.lua, as in test_neovim.py (ghost text shown and
accepted), plus a second file in another folder (one client, one connection, both folders
known to the server) and ``:checkhealth hone``. A wrong token: no attach, the server's refusal
shown. No token: no connection at all. The token never appears in what Neovim shows or logs.
tests/e2e/nvim/tcp_config.lua checks the configuration itself (lsp_config(), token order).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_neovim import (
    ADD_SOURCE,
    EXPECTED_GHOST,
    FIXTURES,
    INIT_OPTIONS,
    PLUGIN,
    NvimRun,
    launch,
)
from tests.security.test_tcp import Served, free_port

pytestmark = pytest.mark.editor

SECRET = "tcp-e2e-secret-0123456789abcdef"
WRONG = "tcp-e2e-wrong-token-fedcba9876543210"


def owner_only(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def project(root: Path, name: str, source: str) -> Path:
    """A folder with a root marker and one Python file in it; the file's path."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{root.name}"\n')
    path = (root / name).resolve()
    path.write_text(source)
    return path


def run_tcp(
    nvim: str,
    tmp_path: Path,
    port: int,
    *,
    setup: dict[str, Any],
    second_file: Path | None = None,
    checkhealth: bool = False,
    attach_timeout_ms: int = 20_000,
) -> NvimRun:
    """driver.lua in headless Neovim set up with ``tcp = 127.0.0.1:port`` and ``setup``, on
    ``project/demo.py``. Neovim has no HONE_TOKEN and its own XDG_RUNTIME_DIR (no token file
    of the user's found by accident)."""
    target = project(tmp_path / "project", "demo.py", ADD_SOURCE)
    (tmp_path / "nvim-run").mkdir(mode=0o700)
    setup = {
        "tcp": f"127.0.0.1:{port}",
        "filetypes": ["python"],
        "init_options": INIT_OPTIONS,
        "keymaps": {"accept": "<Tab>"},
        **setup,
    }
    scenario = {
        "line": 2,
        "accept_key": "<Tab>",
        "attach_timeout_ms": attach_timeout_ms,
        "ghost_timeout_ms": 20_000,
        "max_retriggers": 0,
        "second_file": str(second_file) if second_file else None,
        "checkhealth": checkhealth,
    }
    return launch(
        nvim,
        tmp_path,
        cwd=target.parent,
        file=target,
        driver="driver.lua",
        setup=setup,
        scenario=scenario,
        timeout_s=2 * attach_timeout_ms / 1000 + 50,
        env_overrides={"HONE_TOKEN": None, "XDG_RUNTIME_DIR": str(tmp_path / "nvim-run")},
    )


def shown(run: NvimRun) -> str:
    """Everything Neovim showed or logged: the driver's record (messages, :HoneStatus,
    :checkhealth, status tables), its output, and lsp.log (at DEBUG level)."""
    return json.dumps(run.result) + "\n".join(run.logs.values())


@pytest.fixture
def server(tmp_path: Path):
    (tmp_path / "server").mkdir()
    served = Served(tmp_path / "server", HONE_TOKEN=SECRET)
    yield served
    served.close()


@pytest.mark.timeout(150)
def test_attaches_over_tcp_with_a_token_file_one_client_for_two_folders(
    nvim: str,
    tmp_path: Path,
    server: Served,
):
    token_file = owner_only(tmp_path / "token", SECRET + "\n")
    other = project(tmp_path / "elsewhere", "other.py", "x = 1\n")
    run = run_tcp(
        nvim,
        tmp_path,
        server.port,
        setup={"token_file": str(token_file)},
        second_file=other,
        checkhealth=True,
    )
    r = run.result
    report = run.report() + "\n--- server stderr ---\n" + server.stderr()
    assert r["ok"], r.get("error", "") + "\n" + report

    # Attached over TCP, to the hone server, and the ghost text went both ways.
    status = r["status"]
    assert status["attached"] and status["transport"] == "tcp", report
    assert status["clients"][0]["transport"] == "tcp", report
    assert status["clients"][0]["server_info"]["name"] == "hone", report
    assert status["token_source"] == f"token from token_file {token_file}", report
    assert "cmd" not in status, report
    assert f"tcp: 127.0.0.1:{server.port} (token from token_file" in r["status_command_output"]
    assert r["ghost"]["text"] == EXPECTED_GHOST, report
    assert r["after"] == ["def add(a, b):", "    return a + b"], report
    assert r["messages"] == [], report

    # The second file, in another folder: the same client, and the only one.
    second = r["second"]
    assert second["first_clients"] == second["second_clients"] == [status["clients"][0]["id"]]
    assert second["all_clients"] == 1, report
    # ...and the server knows both folders and both documents.
    folders = {f["uri"] for f in second["server"]["result"]["workspaceFolders"]}
    assert folders == {(tmp_path / "project").resolve().as_uri(), other.parent.as_uri()}, report
    documents = {d["uri"] for d in second["server"]["result"]["documents"]}
    assert other.as_uri() in documents, report
    # One connection: it attached once and refused nothing.
    assert len(re.findall(r"client \S+ attached", server.stderr())) == 1, report
    assert "refused" not in server.stderr(), report

    # :checkhealth hone says TCP, the address, where the token came from.
    health = "\n".join(r["checkhealth"])
    assert f"transport: TCP to 127.0.0.1:{server.port}" in health, health
    assert f"token from token_file {token_file}" in health, health
    assert "over TCP to" in health, health
    assert "ERROR" not in health, health

    # The token is nowhere Neovim shows or logs (lsp.log is at DEBUG, which logs each message).
    assert "rpc.send" in run.logs["nvim lsp.log"], "lsp.log at DEBUG level was expected"
    assert SECRET not in shown(run), report
    assert SECRET not in server.stderr()


@pytest.mark.timeout(120)
def test_a_wrong_token_is_refused_and_shown_and_nothing_attaches(
    nvim: str,
    tmp_path: Path,
    server: Served,
):
    token_file = owner_only(tmp_path / "token", WRONG + "\n")
    run = run_tcp(nvim, tmp_path, server.port, setup={"token_file": str(token_file)})
    r = run.result
    report = run.report() + "\n--- server stderr ---\n" + server.stderr()
    assert not r["ok"], report
    assert r["error"] == "the server exited before attaching", report
    assert not r["status"]["attached"], report
    # The user sees the server's refusal, and which token was refused.
    messages = r["nvim_messages"]
    assert f"hone: the server at 127.0.0.1:{server.port} refused the connection" in messages
    assert f"token from token_file {token_file}" in messages, report
    assert "hone refused the connection: a wrong token" in messages, report
    # One plain message, not Neovim's failed assertion in a callback.
    assert "RPC[Error]" not in messages and "Error in" not in run.logs["nvim output"], report
    server.wait_log("refused connection from")
    assert "a wrong token" in server.stderr(), report
    assert SECRET not in shown(run) and WRONG not in shown(run), report
    assert WRONG not in server.stderr() and SECRET not in server.stderr()


@pytest.mark.timeout(90)
def test_no_token_no_connection(nvim: str, tmp_path: Path):
    # Nothing listens: a connection attempt would show "Could not connect".
    port = free_port()
    run = run_tcp(nvim, tmp_path, port, setup={}, attach_timeout_ms=3000)
    r = run.result
    assert r["error"] == "the hone client did not attach to the buffer", run.report()
    messages = r["nvim_messages"]
    default = tmp_path / "nvim-run" / "hone" / f"tcp-{port}.token"
    assert f"hone: not attaching to the server at 127.0.0.1:{port}: no token" in messages
    assert "$HONE_TOKEN is not set" in messages and str(default) in messages, messages
    assert "Could not connect" not in messages, messages
    # Told plainly, not as an error thrown out of the FileType autocommand.
    assert "Error in" not in run.logs["nvim output"], run.report()
    assert r["status"]["clients"] == [] and "no token" in r["status"]["token_source"]


def test_lsp_config_and_token_order(nvim: str, tmp_path: Path):
    """tests/e2e/nvim/tcp_config.lua: the config without the token in it, the token's order
    of sources, bad addresses refused, stdio unchanged."""
    runtime = tmp_path / "run"
    (runtime / "hone").mkdir(parents=True)
    owner_only(runtime / "hone" / "tcp-2087.token", "from-the-default-file-0123456789\n")
    token_file = owner_only(tmp_path / "token", "  from-the-token-file-0123456789 \n")
    env = {k: v for k, v in os.environ.items() if k != "HONE_TOKEN"}
    env.update(
        HONE_NVIM_PLUGIN=str(PLUGIN),
        HONE_TEST_TOKEN_FILE=str(token_file),
        XDG_RUNTIME_DIR=str(runtime),
        **{f"XDG_{d}_HOME": str(tmp_path / "xdg" / d.lower()) for d in ("CONFIG", "STATE")},
    )
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-l", str(FIXTURES / "tcp_config.lua")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])

    # With tcp: cmd is a function (rpc.connect), one client for all roots, a root_dir gate.
    tcp = r["tcp_config"]
    assert tcp["cmd"] == "function" and tcp["reuse_client"] == "function", r
    assert tcp["root_dir"] == "function", r
    assert tcp["init_options"] == {"debounceMs": 0}, r
    assert not tcp["secret_in_config"] and not tcp["secret_in_status"], r
    assert tcp["token_source"] == "token from setup()", r
    # The order: token, token_file, $HONE_TOKEN, the server's generated file; trimmed.
    assert r["order"] == [
        ["from-setup-0123456789", "token from setup()"],
        ["from-the-token-file-0123456789", f"token from token_file {token_file}"],
        ["from-the-env-0123456789", "token from $HONE_TOKEN"],
        [
            "from-the-default-file-0123456789",
            f"token from {runtime / 'hone' / 'tcp-2087.token'}",
        ],
    ], r
    assert r["missing_token_file"].startswith("cannot read token_file "), r
    assert r["bad_addresses"] == {
        "localhost": False,
        "127.0.0.1:0": False,
        "127.0.0.1:70000": False,
        "127.0.0.1:x": False,
        "[::1]:2087": True,
        "localhost:2087": True,
    }, r
    # Without tcp: exactly the stdio config as before.
    stdio = r["stdio_config"]
    assert stdio["cmd"] == ["hone", "serve"] and stdio["root_dir"] is None, r
    assert stdio["reuse_client"] is None and stdio["transport"] == "stdio", r
    assert stdio["registered_cmd"] == ["hone", "serve"], r
    assert stdio["registered_root_dir"] == stdio["registered_reuse_client"] == "nil", r
