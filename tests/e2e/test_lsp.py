"""End to end over stdio against the real `hone serve` process (scripted model for plumbing)."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from tests.conftest import end_position, inline, lsp_session, open_doc, stats

URI = "file:///tmp/hone-e2e/example.py"
ADD = "def add(a, b):\n    "


async def test_capabilities_advertise_inline_completion_and_incremental_sync(script):
    async with lsp_session(script("return a + b\n")) as client:
        caps = client.init_result.capabilities
        assert caps.inline_completion_provider is not None
        sync = caps.text_document_sync
        kind = sync.change if isinstance(sync, types.TextDocumentSyncOptions) else sync
        assert kind == types.TextDocumentSyncKind.Incremental
        assert client.init_result.server_info.name == "hone"


async def test_stats_report_the_backend_the_server_runs_on(script):
    spec = script("return a + b\n")
    async with lsp_session(spec) as client:
        backend = (await stats(client))["backend"]
        assert backend["model"] == spec, backend
        assert (backend["device"], backend["dtype"]) == ("none", "none"), backend


async def test_completion_then_incremental_edit_and_typed_ahead(script):
    async with lsp_session(script("return a + b\n")) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == ["return a + b"]
        # Type "ret" with an incremental change: answered from the typed-ahead cache.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=types.Position(1, 4), end=types.Position(1, 4)),
                        text="ret",
                    )
                ],
            )
        )
        assert await inline(client, URI, types.Position(1, 7)) == ["urn a + b"]
        s = await stats(client)
        assert s["generations_started"] == 1
        assert s["recent"][-1]["outcome"] == "cached"


async def test_blank_line_after_header_gets_indentation_in_prompt_and_insert(script, tmp_path):
    # The cursor sits at column 0 of the line after a block header: hone ends the prompt with
    # the indentation (the model sees "    ") and inserts that indentation itself.
    text = "def add(a, b):\n"
    async with lsp_session(script("return a + b\n")) as client:
        open_doc(client, URI, text)
        assert await inline(client, URI, types.Position(1, 0)) == ["    return a + b"]


async def test_no_completion_inside_string_or_mid_identifier(script):
    async with lsp_session(script("zzz\n")) as client:
        text = 'x = "hello world"\nvalue = compute_total(1)\n'
        open_doc(client, URI, text)
        assert await inline(client, URI, types.Position(0, 8)) == []  # inside the string
        assert await inline(client, URI, types.Position(1, 10)) == []  # mid-identifier
        s = await stats(client)
        assert s["generations_started"] == 0


async def test_bad_options_are_reported_and_defaults_kept(script):
    opts = {"maxNewTokens": "lots", "noSuchOption": 1, "debounceMs": 0}
    async with lsp_session(script("return a + b\n"), init_options=opts) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == ["return a + b"]
        texts = [m.message for m in client.messages]
        assert any("maxNewTokens" in t and "keeping 96" in t for t in texts), texts
        assert any("noSuchOption" in t for t in texts), texts
        # didChangeConfiguration: a good value applies, a bad one is reported.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"hone": {"enable": False, "debounceMs": -5}}
            )
        )
        assert await inline(client, URI, end_position(ADD)) == []
        assert any("debounceMs" in m.message for m in client.messages)
        assert (await stats(client))["recent"][-1]["outcome"] == "disabled"


async def test_bad_input_gets_empty_result_and_server_keeps_serving(script):
    async with lsp_session(script("return a + b\n")) as client:
        # Unknown document.
        assert await inline(client, "file:///nowhere/unknown.py", types.Position(0, 0)) == []
        open_doc(client, URI, ADD)
        # Position past the end of the file, and past the end of a line.
        assert await inline(client, URI, types.Position(40, 0)) == []
        assert await inline(client, URI, types.Position(0, 200)) == []
        # Binary text.
        binary_uri = "file:///tmp/hone-e2e/blob.py"
        open_doc(client, binary_uri, "\x00\x01\x02\xff\xfe" * 100)
        assert await inline(client, binary_uri, types.Position(0, 3)) == []
        outcomes = [r["outcome"] for r in (await stats(client))["recent"]]
        assert all(o.startswith("refused") for o in outcomes), outcomes
        assert "unknown document" in outcomes[0]
        assert "past the end" in outcomes[1] and "past the end" in outcomes[2]
        assert "binary" in outcomes[3]
        # Still serving.
        assert await inline(client, URI, end_position(ADD)) == ["return a + b"]


async def test_five_megabyte_file_is_served(script):
    body = "def f{0}(x):\n    return x + {0}\n\n"
    text = "".join(body.format(i) for i in range(170_000)) + ADD
    assert len(text.encode()) > 5_000_000
    async with lsp_session(script("return a + b\n")) as client:
        open_doc(client, URI, text)
        assert await inline(client, URI, end_position(text)) == ["return a + b"]
        rec = (await stats(client))["recent"][-1]
        assert rec["stats"]["prompt_tokens"] <= 768


async def test_model_that_raises_gives_message_and_empty_result(script):
    async with lsp_session(script("x", **{"raise": True})) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == []
        assert any("model failed" in m.message for m in client.messages)
        assert await inline(client, URI, end_position(ADD)) == []  # still answering


async def test_hanging_model_times_out_and_server_keeps_serving(script):
    opts = {"requestTimeoutMs": 500, "debounceMs": 0}
    async with lsp_session(script("x", hang=True), init_options=opts) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == []
        assert any("no answer within 500 ms" in m.message for m in client.messages)
        # The hung generation was cancelled, so the worker is free for the next request.
        assert await inline(client, URI, end_position(ADD)) == []
        s = await stats(client)
        assert [r["outcome"] for r in s["recent"]] == ["timeout", "timeout"]
        assert s["generations_started"] == 2


async def test_newer_request_supersedes_older(script):
    slow = script("return a + b  # " + "x" * 200 + "\n", step_ms=30)  # 72 steps: under the cap
    async with lsp_session(slow) as client:
        open_doc(client, URI, ADD)
        first = asyncio.ensure_future(inline(client, URI, end_position(ADD)))
        await asyncio.sleep(0.3)  # the first generation is running
        second = asyncio.ensure_future(inline(client, URI, end_position(ADD)))
        assert await first == []
        assert (await second)[0].startswith("return a + b")
        recent = (await stats(client))["recent"]
        assert [r["outcome"] for r in recent] == ["superseded", "multi"]
        # The superseded generation was stopped mid-way, not left to run to its cap.
        assert "cancel_to_stop_ms" in recent[0], recent[0]
        assert recent[0]["stats"]["stop_reason"] == "cancelled", recent[0]
        assert 0 < recent[0]["stats"]["generated_tokens"] < 96, recent[0]


async def test_cancel_request_stops_generation(script):
    slow = script("return a + b  # " + "x" * 200 + "\n", step_ms=30)  # 72 steps: under the cap
    async with lsp_session(slow) as client:
        open_doc(client, URI, ADD)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=end_position(ADD),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
        fut = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=4242
        )
        await asyncio.sleep(0.3)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=4242))
        with pytest.raises(Exception, match="cancel"):
            await asyncio.wait_for(asyncio.wrap_future(fut), 10)
        rec = (await stats(client))["recent"][-1]
        assert rec["outcome"] == "cancelled", rec
        # The generation itself stopped, not only the reply: once the model worker is done
        # with it, the entry says how far it got (uncancelled, the script runs to its
        # 96-token cap). A deadline, not a timing: the worker stops asynchronously.
        for _ in range(200):
            if "stats" in rec:
                break
            await asyncio.sleep(0.05)
            rec = (await stats(client))["recent"][-1]
        assert rec["stats"]["stop_reason"] == "cancelled", rec
        assert 0 < rec["stats"]["generated_tokens"] < 96, rec
        assert "cancel_to_stop_ms" in rec, rec


async def test_model_that_fails_to_load_is_reported_once_and_server_keeps_serving(script):
    async with lsp_session(script("x", **{"raise": "load"})) as client:
        open_doc(client, URI, ADD)
        for _ in range(50):
            if any("failed to load" in m.message for m in client.messages):
                break
            await asyncio.sleep(0.1)
        assert any(
            "failed to load" in m.message and "hone doctor" in m.message for m in client.messages
        )
        assert await inline(client, URI, end_position(ADD)) == []
        assert (await stats(client))["recent"][-1]["outcome"] == "model-unavailable"


async def test_model_load_is_reported_as_progress(script):
    async with lsp_session(script("return a + b\n")) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == ["return a + b"]
        for _ in range(50):
            reports = [r for rs in client.progress_reports.values() for r in rs]
            if any(isinstance(r, types.WorkDoneProgressEnd) for r in reports):
                break
            await asyncio.sleep(0.1)
        assert (
            isinstance(reports[0], types.WorkDoneProgressBegin) and "loading" in reports[0].message
        )
        assert isinstance(reports[-1], types.WorkDoneProgressEnd) and "ready" in reports[-1].message


async def test_first_request_waits_for_a_slow_model_load_without_timing_out(script):
    opts = {"requestTimeoutMs": 300, "debounceMs": 0}
    async with lsp_session(script("return a + b\n", load_ms=1500), init_options=opts) as client:
        open_doc(client, URI, ADD)
        assert await inline(client, URI, end_position(ADD)) == ["return a + b"]
        rec = (await stats(client))["recent"][-1]
        assert rec["waited_for_load"] and rec["outcome"] == "multi", rec
        assert not any("no answer" in m.message for m in client.messages)


async def test_utf16_columns_after_astral_characters(script):
    # "😀" is one Python character but two UTF-16 units: the LSP column counts units.
    text = "s = '😀😀'; value = \n"
    spec = script([{"match": "'😀😀'; value = ", "text": "len(s)\n"}], default="WRONG")
    async with lsp_session(spec) as client:
        open_doc(client, URI, text)
        col = len("s = '😀😀'; value = ".encode("utf-16-le")) // 2
        assert await inline(client, URI, types.Position(line=0, character=col)) == ["len(s)"]
        assert (await stats(client))["recent"][-1]["offset"] == len("s = '😀😀'; value = ")
        assert (
            await inline(client, URI, types.Position(line=0, character=col + 1)) == []
        )  # past end


async def test_no_completion_answer_does_not_wait_behind_a_running_generation(script):
    slow = script("return a + b  # " + "x" * 200 + "\n", step_ms=30)  # about 2 s, under the cap
    async with lsp_session(slow) as client:
        open_doc(client, URI, ADD)
        other = "file:///tmp/hone-e2e/other.py"
        open_doc(client, other, 'x = "hello world"\n')
        busy = asyncio.ensure_future(inline(client, URI, end_position(ADD)))
        await asyncio.sleep(0.3)  # the generation is running in the model worker
        assert await inline(client, other, types.Position(line=0, character=8)) == []
        rec = (await stats(client))["recent"][-1]
        assert rec["outcome"] == "none", rec
        # Answered while the generation still runs: had it queued behind the model worker,
        # the busy request would have been answered first.
        assert not busy.done()
        assert (await busy)[0].startswith("return a + b")
