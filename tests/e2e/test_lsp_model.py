"""The real `hone serve` process with the real embedded model, over stdio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from lsprotocol import types

from tests.conftest import end_position, inline, lsp_session, open_doc, stats

pytestmark = pytest.mark.model

URI = "file:///tmp/hone-e2e/real.py"
# Real code from the standard library (textwrap.indent), with its body removed.
TEXT = '''def indent(text, prefix, predicate=None):
    """Adds 'prefix' to the beginning of selected lines in 'text'.

    If 'predicate' is provided, 'prefix' will only be added to the lines
    where 'predicate(line)' is True. If 'predicate' is not provided,
    it will default to adding 'prefix' to all non-empty lines that do not
    consist solely of whitespace characters.
    """
    '''


async def test_real_model_multi_line_completion_then_edit_reuses_the_prompt():
    async with lsp_session(None) as client:
        open_doc(client, URI, TEXT)
        items = await inline(client, URI, end_position(TEXT))
        assert len(items) == 1 and items[0].strip(), items
        first = (await stats(client))["recent"][-1]
        assert first["outcome"] == "multi", first
        # Post-processing kept it inside the function body: every line indented or blank.
        for line in items[0].split("\n")[1:]:
            assert not line or line.startswith("    "), items[0]
        # One character that differs from the suggestion: a new generation, same prompt start.
        edit = "z" if not items[0].startswith("z") else "q"
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=TEXT + edit)],
            )
        )
        await asyncio.sleep(0.3)
        await inline(client, URI, end_position(TEXT + edit))
        second = (await stats(client))["recent"][-1]
        assert second["stats"]["prompt_tokens"] > 50
        assert second["stats"]["reused_tokens"] >= 0.9 * second["stats"]["prompt_tokens"], second


async def test_real_model_superseded_generation_stops():
    async with lsp_session(None, init_options={"debounceMs": 0, "maxNewTokens": 200}) as client:
        open_doc(client, URI, TEXT)
        await inline(client, URI, end_position(TEXT))  # load and warm up
        first = asyncio.ensure_future(inline(client, URI, end_position(TEXT)))
        await asyncio.sleep(0.05)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(text=TEXT + "lines = []\n    ")
                ],
            )
        )
        second = asyncio.ensure_future(inline(client, URI, end_position(TEXT + "lines = []\n    ")))
        await asyncio.gather(first, second)
        recent = (await stats(client))["recent"]
        outcomes = [r["outcome"] for r in recent[-2:]]
        assert outcomes[0] in ("superseded", "cached"), recent[-2:]
        if outcomes[0] == "superseded" and "cancel_to_stop_ms" in recent[-2]:
            # noticed within one decode step (a chunk of prefill at most)
            assert recent[-2]["cancel_to_stop_ms"] < 2000


def test_cli_complete_with_real_model(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(TEXT + "\n")
    line = TEXT.count("\n") + 1
    out = subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "complete", f"{src}:{line}:5", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["items"] and data["items"][0]["insertText"].strip()
    assert data["mode"] == "multi" and data["stats"]["generated_tokens"] > 0
    assert data["timings"]["model_ms"] > 0


def test_doctor_loads_and_describes_the_embedded_model():
    out = subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "doctor", "--load", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(out.stdout)
    assert out.returncode == 0, data["problems"]
    model = data["model"]
    assert model["converted"] is True and float(model["load_s"]) > 0
    assert model["dtype"] == "int8" and model["device"] == "cpu"
    assert model["parameters"] == "134.5M"
