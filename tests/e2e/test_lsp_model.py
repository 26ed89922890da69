"""The real `hone serve` process with the real embedded model, over stdio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import end_position, inline, lsp_session, open_doc, stats

pytestmark = pytest.mark.model

STDLIB = Path(sysconfig.get_paths()["stdlib"])

URI = "file:///tmp/hone-e2e/real.py"
WARM_URI = "file:///tmp/hone-e2e/warm.py"
WARM_TEXT = "def add(a, b):\n    "
LONG_URI = "file:///tmp/hone-e2e/long.py"
# Real code from the standard library (textwrap.indent), with its body removed.
TEXT = '''def indent(text, prefix, predicate=None):
    """Adds 'prefix' to the beginning of selected lines in 'text'.

    If 'predicate' is provided, 'prefix' will only be added to the lines
    where 'predicate(line)' is True. If 'predicate' is not provided,
    it will default to adding 'prefix' to all non-empty lines that do not
    consist solely of whitespace characters.
    """
    '''
# The whole of textwrap.py before indent(), then indent() with its body removed.
_TEXTWRAP = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
LONG_TEXT = _TEXTWRAP[: _TEXTWRAP.index("def indent(")] + TEXT


async def test_real_model_multi_line_completion_then_edit_reuses_the_prompt():
    # A busy machine can be slow: the timeout guards against a hung model, not this test.
    opts = {"debounceMs": 0, "requestTimeoutMs": 300_000}
    async with lsp_session(None, init_options=opts) as client:
        open_doc(client, URI, TEXT)
        items = await inline(client, URI, end_position(TEXT))
        assert len(items) == 1 and items[0].strip(), items
        s = await stats(client)
        first = s["recent"][-1]
        assert first["outcome"] == "multi", first
        # hone/stats names what the server runs: the embedded model, bf16 weights on CPU.
        assert "SmolLM2" in s["backend"]["model"], s["backend"]
        assert (s["backend"]["device"], s["backend"]["dtype"]) == ("cpu", "bfloat16"), s["backend"]
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
    """A request superseded while its generation runs: the generation is stopped part-way
    (the decode loop noticed the cancellation) and the newer request gets the model."""
    cap = 64
    # A busy machine can be slow: the timeout guards against a hung model, not this test.
    opts = {"debounceMs": 0, "maxNewTokensSingle": cap, "maxNewTokensMulti": cap}
    opts["requestTimeoutMs"] = 300_000
    async with lsp_session(None, init_options=opts) as client:
        # Warm up (load the model) in another document: the typed-ahead cache keeps one
        # suggestion per document, so nothing below can be answered from it.
        open_doc(client, WARM_URI, WARM_TEXT)
        assert await inline(client, WARM_URI, end_position(WARM_TEXT))
        assert (await stats(client))["generations_started"] == 1
        # A long real document, new to the model's KV cache: hundreds of prompt tokens to
        # prefill before the first new token.
        open_doc(client, LONG_URI, LONG_TEXT)
        first = asyncio.ensure_future(inline(client, LONG_URI, end_position(LONG_TEXT)))
        for _ in range(1000):  # until the first request's generation has started
            if (await stats(client))["generations_started"] == 2:
                break
            await asyncio.sleep(0.005)
        # The user types a statement and a new line: a new document version and position.
        edited = LONG_TEXT + "lines = []\n    "
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=LONG_URI, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)],
            )
        )
        second = await inline(client, LONG_URI, end_position(edited))
        assert await first == []
        s = await stats(client)
        older, newer = s["recent"][-2:]
        assert older["outcome"] == "superseded", older
        assert "cancel_to_stop_ms" in older, older  # the decode loop noticed the cancellation
        assert older["stats"]["stop_reason"] == "cancelled", older
        assert older["stats"]["prompt_tokens"] > 300, older
        assert older["stats"]["generated_tokens"] < cap, older
        assert newer["outcome"] in ("single", "multi"), newer
        assert newer["stats"]["generated_tokens"] > 0 and second, newer
        assert s["generations_started"] == 3  # warm-up, superseded, newer: no cached answer


# The whole of textwrap.py up to shorten()'s docstring, its body removed: the model (bf16)
# writes a one-line body here (on indent() it loops, and the loop is rightly cut).
_SHORTEN = _TEXTWRAP.index("\ndef shorten(") + 1
SHORTEN_TEXT = (
    _TEXTWRAP[: _TEXTWRAP.index('"""', _TEXTWRAP.index('"""', _SHORTEN) + 3) + 3] + "\n    "
)


def test_cli_complete_with_real_model(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(SHORTEN_TEXT + "\n")  # the whole module before the cursor: real context
    line = SHORTEN_TEXT.count("\n") + 1
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
    assert model["dtype"] == "bfloat16" and model["device"] == "cpu"
    assert model["parameters"] == "134.5M"
