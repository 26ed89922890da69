"""Positions and documents over stdio against the real `hone serve` (scripted model): the
negotiated position encoding, the server's copy of a document after edits with every kind
of line break and non-ASCII text, supersession across documents, workspace folders and
file events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hone.server.lsp import DOCUMENT_REQUEST, WORKSPACE_REQUEST, plain
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.conftest import CACHE, end_position, inline, open_doc, stats
from tests.server.test_documents import PIECES, ref_lines, ref_offset, ref_units

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
URI = "file:///tmp/hone-e2e/positions.py"
ADD = "def add(a, b):\n    "


@contextlib.asynccontextmanager
async def session(
    model: str,
    *,
    encodings: list[str] | None = None,
    workspace: types.WorkspaceClientCapabilities | None = None,
    folders: list[types.WorkspaceFolder] | None = None,
    root_uri: str | None = None,
    on_register: list[types.RegistrationParams] | None = None,
) -> AsyncIterator[Any]:
    """A `hone serve` session whose client offers ``encodings`` (None: says nothing)."""
    cmd = [sys.executable, "-m", "hone.server.cli", "serve", "--model", model]
    env = {**os.environ, "HONE_CACHE_DIR": str(CACHE)}
    client = await ClientServerConfig(server_command=cmd, server_env=env).start()
    if on_register is not None:

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register(params: types.RegistrationParams) -> None:
            on_register.append(params)

    general = types.GeneralClientCapabilities(position_encodings=encodings) if encodings else None
    try:
        client.init_result = await client.initialize_session(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(general=general, workspace=workspace),
                initialization_options={"debounceMs": 0},
                workspace_folders=folders,
                root_uri=root_uri,
            )
        )
        yield client
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        proc = getattr(client, "_server", None)
        if proc is not None and proc.returncode is None:
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), 10)


async def document(client: Any, uri: str) -> dict[str, Any] | None:
    return plain(await client.protocol.send_request_async(DOCUMENT_REQUEST, {"uri": uri}))


async def workspace(client: Any) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async(WORKSPACE_REQUEST, {}))


def change(client: Any, uri: str, version: int, start, end, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(*start), end=types.Position(*end)),
                    text=text,
                )
            ],
        )
    )


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([UTF8, UTF16, UTF32], UTF32),  # what Neovim offers: utf-32 costs hone nothing
        ([UTF8], UTF8),
        ([UTF16, UTF8], UTF16),
        (None, UTF16),  # LSP's default
    ],
)
async def test_position_encoding_is_negotiated_and_advertised(script, offered, chosen):
    async with session(script("x\n"), encodings=offered) as client:
        assert client.init_result.capabilities.position_encoding == chosen
        assert (await workspace(client))["positionEncoding"] == chosen


@pytest.mark.parametrize("encoding", [UTF8, UTF16, UTF32])
async def test_completion_at_the_end_of_a_non_ascii_line(script, encoding):
    line = "name = 'naïve 😀'; x = "
    text = f"{line}\nprint(name)\n"
    spec = script([{"match": "'naïve 😀'; x = ", "text": "len(name)\n"}], default="WRONG")
    async with session(spec, encodings=[encoding]) as client:
        open_doc(client, URI, text)
        col = ref_units(line, encoding)
        assert col == {UTF8: len(line) + 1 + 3, UTF16: len(line) + 1, UTF32: len(line)}[encoding]
        assert await inline(client, URI, types.Position(0, col)) == ["len(name)"]
        assert (await stats(client))["recent"][-1]["offset"] == len(line)
        assert await inline(client, URI, types.Position(0, col + 1)) == []
        assert "past the end of its line" in (await stats(client))["recent"][-1]["outcome"]
        # Mid-line, after the non-ASCII characters (text to the right: no completion there,
        # but the position still maps to its offset).
        mid = line.index(";")
        assert await inline(client, URI, types.Position(0, ref_units(line[:mid], encoding))) == []
        assert (await stats(client))["recent"][-1]["offset"] == mid


@pytest.mark.parametrize("encoding", [UTF8, UTF16, UTF32])
async def test_incremental_edits_keep_the_servers_text_identical(script, encoding):
    rng = random.Random(f"edits-{encoding}")
    text = "".join(rng.choice(PIECES) for _ in range(60))
    async with session(script("x\n"), encodings=[encoding]) as client:
        open_doc(client, URI, text)
        for version in range(2, 62):
            lines = ref_lines(text)
            at = []
            for _ in range(2):
                line = rng.randrange(len(lines))
                content = lines[line][0]
                at.append((line, ref_units(content[: rng.randint(0, len(content))], encoding)))
            start, end = sorted(at)
            new = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))
            a, b = (ref_offset(text, *p, encoding) for p in (start, end))
            change(client, URI, version, start, end, new)
            text = text[:a] + new + text[b:]
            if version % 10 == 0:  # the completion's offset for a position after the edit
                lines = ref_lines(text)
                line = rng.randrange(len(lines))
                content = lines[line][0]
                col = ref_units(content[: rng.randint(0, len(content))], encoding)
                await inline(client, URI, types.Position(line, col))
                rec = (await stats(client))["recent"][-1]
                assert rec["offset"] == ref_offset(text, line, col, encoding), rec
        doc = await document(client, URI)
        assert doc["text"] == text
        assert (doc["version"], doc["lines"], doc["length"]) == (
            61,
            len(ref_lines(text)),
            len(text),
        )
        changes = (await workspace(client))["changes"]
        assert [c["version"] for c in changes] == list(range(2, 62))
        assert all(c["ms"] >= 0 for c in changes)
        assert await document(client, "file:///not/open.py") is None


async def test_large_document_completion_sees_the_text_around_the_cursor(script):
    # Over 320 kB the engine gets a window of the text: the offset and the prompt must
    # still be the document's.
    body = "".join(f"def f{i}(x):\n    return x + {i}  # naïve\r\n\n" for i in range(12_000))
    line = "name = 'naïve 😀'; x = "
    text = body + line + "\nprint(x)\n"
    assert len(text) > 500_000
    spec = script([{"match": "# naïve\r\n\nname = 'naïve 😀'; y = ", "text": "len(name)\n"}])
    async with session(spec, encodings=[UTF8]) as client:
        open_doc(client, URI, text)
        n = len(ref_lines(text)) - 3  # the line typed on
        x = ref_units(line[: line.index("x = ")], UTF8)  # bytes
        change(client, URI, 2, (n, x), (n, x + 1), "y")
        text = text.replace("; x = ", "; y = ")
        col = ref_units(line, UTF8)
        assert await inline(client, URI, types.Position(n, col)) == ["len(name)"]
        assert (await stats(client))["recent"][-1]["offset"] == len(body) + len(line)
        assert (await document(client, URI))["text"] == text


async def test_request_for_another_document_supersedes_the_one_in_flight(script):
    slow = script("return a + b  # " + "x" * 200 + "\n", step_ms=30)  # 72 steps: under the cap
    other = "file:///tmp/hone-e2e/other.py"
    async with session(slow) as client:
        open_doc(client, URI, ADD)
        open_doc(client, other, ADD)
        first = asyncio.ensure_future(inline(client, URI, end_position(ADD)))
        await asyncio.sleep(0.3)  # the first generation is running
        second = asyncio.ensure_future(inline(client, other, end_position(ADD)))
        assert await first == []
        assert (await second)[0].startswith("return a + b")
        recent = (await stats(client))["recent"]
        assert [(r["uri"], r["outcome"]) for r in recent] == [
            (URI, "superseded"),
            (other, "multi"),
        ]


async def test_workspace_folders_saves_and_watched_files_reach_the_server(script, tmp_path):
    folders = [
        types.WorkspaceFolder(uri=(tmp_path / "a").as_uri(), name="a"),
        types.WorkspaceFolder(uri=(tmp_path / "b").as_uri(), name="b"),
    ]
    caps = types.WorkspaceClientCapabilities(
        did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
            dynamic_registration=True
        )
    )
    registrations: list[types.RegistrationParams] = []
    async with session(
        script("x\n"), workspace=caps, folders=folders, on_register=registrations
    ) as client:
        save = client.init_result.capabilities.text_document_sync.save
        assert save == types.SaveOptions(include_text=False)
        saved = (tmp_path / "a" / "m.py").as_uri()
        open_doc(client, saved, "x = 1\n")
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(saved))
        )
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[
                    types.FileEvent(
                        uri=(tmp_path / "b" / "new.py").as_uri(), type=types.FileChangeType.Created
                    ),
                    types.FileEvent(
                        uri=(tmp_path / "b" / "old.py").as_uri(), type=types.FileChangeType.Deleted
                    ),
                ]
            )
        )
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=(tmp_path / "c").as_uri(), name="c")],
                    removed=[folders[0]],
                )
            )
        )
        ws = await workspace(client)
        events = [(e["uri"], e["kind"]) for e in ws["fileEvents"]]
        assert events == [
            (saved, "saved"),
            ((tmp_path / "b" / "new.py").as_uri(), "created"),
            ((tmp_path / "b" / "old.py").as_uri(), "deleted"),
        ]
        assert [f["name"] for f in ws["workspaceFolders"]] == ["b", "c"]
        assert [d["uri"] for d in ws["documents"]] == [saved]
        # The client supports dynamic registration: the server asked it to watch files.
        for _ in range(100):  # the registration is a request of its own: wait for its answer
            if ws["watchingFiles"]:
                break
            await asyncio.sleep(0.05)
            ws = await workspace(client)
        assert ws["watchingFiles"]
        (registration,) = [r for p in registrations for r in p.registrations]
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES


async def test_without_dynamic_registration_watched_files_are_still_handled(script, tmp_path):
    root = (tmp_path / "project").as_uri()
    caps = types.WorkspaceClientCapabilities(
        did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
            dynamic_registration=False
        )
    )
    registrations: list[types.RegistrationParams] = []
    async with session(
        script("x\n"), workspace=caps, root_uri=root, on_register=registrations
    ) as client:
        changed = (tmp_path / "project" / "m.py").as_uri()
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=changed, type=types.FileChangeType.Changed)]
            )
        )
        ws = await workspace(client)
        assert [(e["uri"], e["kind"]) for e in ws["fileEvents"]] == [(changed, "changed")]
        assert ws["workspaceFolders"] == [{"uri": root, "name": "project"}]  # from rootUri
        assert not ws["watchingFiles"] and registrations == []
