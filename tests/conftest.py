"""Shared fixtures: a real `hone serve` process over stdio, driven by an LSP client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hone.server.lsp import STATS_REQUEST, plain
from lsprotocol import types
from pytest_lsp import ClientServerConfig

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("HONE_CACHE_DIR") or REPO / ".hone-cache")
os.environ.setdefault("HONE_CACHE_DIR", str(CACHE))


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Plain git in a test repository, as a user would run it (no protections): stdout."""
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=cwd,
        check=check,
        capture_output=True,
        text=True,
    )
    return result.stdout


def write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, no newline translation) at ``path``, folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def write_script(path: Path, text: str | list[dict[str, Any]], **extra: Any) -> str:
    """A scripted fake model; returns its --model spec."""
    responses = [{"match": None, "text": text}] if isinstance(text, str) else text
    path.write_text(json.dumps({"responses": responses, "step_ms": 5, **extra}))
    return f"scripted:{path}"


@pytest.fixture
def script(tmp_path: Path):
    def make(text: str | list[dict[str, Any]], **extra: Any) -> str:
        return write_script(tmp_path / f"script{len(list(tmp_path.iterdir()))}.json", text, **extra)

    return make


@contextlib.asynccontextmanager
async def lsp_session(
    model: str | None,
    init_options: dict[str, Any] | None = None,
    extra_args: list[str] = (),
    folders: list[Path] = (),
    capabilities: types.ClientCapabilities | None = None,
) -> AsyncIterator[Any]:
    """A started and initialized `hone serve`; ``folders`` are its workspace folders;
    ``capabilities`` the client's (default: work-done progress only)."""
    cmd = [sys.executable, "-m", "hone.server.cli", "serve", *extra_args]
    if model:
        cmd += ["--model", model]
    env = {**os.environ, "HONE_CACHE_DIR": str(CACHE)}
    client = await ClientServerConfig(server_command=cmd, server_env=env).start()
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities
                or types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True)
                ),
                initialization_options=init_options or {"debounceMs": 0},
                workspace_folders=[
                    types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in folders
                ]
                or None,
            )
        )
        client.init_result = result
        yield client
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        proc = getattr(client, "_server", None)
        if proc is not None and proc.returncode is None:
            proc.kill()  # the test failed mid-session: do not wait for a graceful exit
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), 10)


@pytest.fixture
def session():
    return lsp_session


def open_doc(client: Any, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=version, text=text
            )
        )
    )


def end_position(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)


async def inline(client: Any, uri: str, pos: types.Position) -> list[str]:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=pos,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return [i.insert_text if isinstance(i.insert_text, str) else i.insert_text.value for i in items]


async def stats(client: Any) -> dict[str, Any]:
    """The server's `hone/stats` answer as plain dicts and lists."""
    return plain(await client.protocol.send_request_async(STATS_REQUEST, None))
