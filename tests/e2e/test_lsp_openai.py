"""A real `hone serve` on an OpenAI-compatible server (`--model openai:URL`): completions
flow editor -> hone -> HTTP -> server, and a server that fails costs an empty answer and
one message, never the session. The scripted HTTP server (tests/models/openai_fake.py)
plays the failures; tests/e2e/test_openai_llama.py runs llama.cpp's real server."""

from __future__ import annotations

import pytest

from tests.conftest import end_position, inline, open_doc, stats
from tests.models.openai_fake import FakeOpenAI, free_port

pytestmark = pytest.mark.asyncio(loop_scope="function")

TEXT = "def add(a, b):\n    "


async def test_completions_go_through_the_http_server(session):
    with FakeOpenAI(text="return a + b\n") as server:
        async with session(f"openai:{server.url}") as client:
            open_doc(client, "file:///w/m.py", TEXT)
            items = await inline(client, "file:///w/m.py", end_position(TEXT))
            assert items and items[0].startswith("return a + b")
            post = [r for r in server.requests if r["path"].endswith("/completions")][-1]
            assert post["body"]["stream"] is True and "def add(a, b):" in post["body"]["prompt"]
            backend = (await stats(client))["backend"]
            assert backend["device"].startswith("this machine") and backend["model"] == "fake-coder"


async def test_a_failing_server_costs_an_empty_answer_and_one_message(session):
    with FakeOpenAI(text="return a + b\n") as server:
        async with session(f"openai:{server.url}") as client:
            open_doc(client, "file:///w/m.py", TEXT)
            for mode in ("status", "garbage", "drop", "status"):
                server.mode = mode
                assert await inline(client, "file:///w/m.py", end_position(TEXT)) == []
            failed = [m.message for m in client.messages if "model failed" in m.message]
            # three different reasons shown; the fourth, a repeat, only logged
            assert len(failed) == 3, failed
            assert any("answered 503" in m for m in failed)
            assert any("not an OpenAI stream" in m for m in failed)
            assert any("broke the stream off" in m for m in failed)
            server.mode = "ok"  # the server recovers: the next request works
            items = await inline(client, "file:///w/m.py", end_position(TEXT))
            assert items and items[0].startswith("return a + b")
            recent = (await stats(client))["recent"]
            outcomes = [e["outcome"] for e in recent]
            assert sum(o.startswith("model-error") for o in outcomes) == 4


async def test_a_server_down_at_start_is_found_once_it_is_up(session):
    port = free_port()
    async with session(f"openai:http://127.0.0.1:{port}/v1") as client:
        open_doc(client, "file:///w/m.py", TEXT)
        assert await inline(client, "file:///w/m.py", end_position(TEXT)) == []
        assert any("cannot be reached" in m.message for m in client.messages)
        with FakeOpenAI(text="return a + b\n", port=port) as server:  # now it is up
            open_doc(client, "file:///w/n.py", TEXT)
            items = await inline(client, "file:///w/n.py", end_position(TEXT))
            assert items and items[0].startswith("return a + b")
            # the model, its tokenizer's counts (this fake has no tokenize route), the request
            assert [r["path"] for r in server.requests][:4] == [
                "/v1/models",
                "/tokenize",
                "/extras/tokenize/count",
                "/v1/completions",
            ]
