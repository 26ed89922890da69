"""Repository context changes what the real embedded model writes, through the real server.

A fixture workspace (a real git repository) has a call site in ``db/app.py`` whose
function is defined in ``db/pool.py``; the keyword parameters' names appear nowhere but in
that definition. With retrieval on, the completion at the call passes them; with the
option ``retrieval`` off (same server, same model, same document) it does not.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from hone.retrieval.store import index_home, workspace_key
from hone.server.lsp import CONTEXT_REQUEST, plain

from tests.conftest import end_position, git, inline, lsp_session, open_doc, stats, write

pytestmark = pytest.mark.model

POOL = '''"""Connection pool."""


def open_pool(dsn, max_connections=10, idle_timeout_s=60):
    """A pool of at most ``max_connections`` connections to ``dsn``."""
    return Pool(dsn, max_connections, idle_timeout_s)
'''
APP = '''"""The app."""

from db.pool import open_pool

DSN = "postgres://localhost/app"


def start():
    pool = open_pool(DSN, '''
ONLY_IN_POOL = ("max_connections", "idle_timeout_s")


@pytest.fixture
def workspace(tmp_path: Path):
    root = tmp_path / "dbws"
    write(root / "db" / "__init__.py", "")
    write(root / "db" / "pool.py", POOL)
    write(root / "db" / "app.py", APP)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "db")
    yield root
    shutil.rmtree(index_home() / workspace_key(root), ignore_errors=True)


async def indexed(client: Any, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = plain(await client.protocol.send_request_async(CONTEXT_REQUEST, None))
        if state["folders"] and all(f["state"] == "complete" for f in state["folders"]):
            return
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("retrieval", [True, False])
async def test_the_call_uses_the_signature_from_another_file(workspace: Path, retrieval: bool):
    opts = {"debounceMs": 0, "requestTimeoutMs": 300_000, "retrieval": retrieval}
    async with lsp_session(None, opts, folders=[workspace]) as client:
        if retrieval:
            await indexed(client)
        uri = (workspace / "db" / "app.py").as_uri()
        open_doc(client, uri, APP)
        items = await inline(client, uri, end_position(APP))
        entry = (await stats(client))["recent"][-1]
        print(f"\nretrieval={retrieval}: {items} {entry['stats'].get('context')}")
        assert len(items) == 1 and items[0].strip(), entry
        used = [name for name in ONLY_IN_POOL if name in items[0]]
        if retrieval:
            assert entry["stats"]["context"]["paths"][0] == "db/pool.py", entry
            assert used, items  # the parameters' names came from db/pool.py
        else:
            assert not used, items
