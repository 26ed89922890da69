"""Repository context in the real `hone serve` process (stdio): the workspace folder's index
is built in the background, kept fresh by didSave, and a completion at a call site in one
file gets the definition from another file of the workspace in its prompt."""

from __future__ import annotations

import asyncio
import fcntl
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hone.retrieval.store import index_home, workspace_key
from hone.server.lsp import CONTEXT_REQUEST, plain
from lsprotocol import types

from tests.conftest import end_position, git, inline, lsp_session, open_doc, stats

PRICING = '''"""Prices of an order."""


def total_amount(prices, discount_rate, shipping_fee=0.0):
    """The order's total: the prices summed, discounted, plus shipping."""
    subtotal = sum(prices)
    return round(subtotal * (1 - discount_rate) + shipping_fee, 2)


def tax_of(amount, tax_rate):
    return round(amount * tax_rate, 2)
'''
INVENTORY = '''"""What the shop has in stock."""


class Inventory:
    def __init__(self):
        self.levels = {}

    def restock(self, sku_code, quantity_added):
        """Add ``quantity_added`` items of ``sku_code``."""
        self.levels[sku_code] = self.levels.get(sku_code, 0) + quantity_added
        return self.levels[sku_code]
'''
CART_HEAD = '''"""A shopping cart."""

from shop.inventory import Inventory
from shop.pricing import total_amount


class Cart:
    def __init__(self):
        self.items = []
        self.inventory = Inventory()

    def checkout(self, discount_rate):
        prices = [item.price for item in self.items]
'''
CALL = "        amount = total_amount("
CART = CART_HEAD + CALL  # the cursor at the end: the call being written
# What the scripted model answers when the prompt holds the definition from pricing.py.
DEFINITION = "def total_amount(prices, discount_rate, shipping_fee"
ANSWER = "prices, discount_rate)"


@pytest.fixture
def workspace(tmp_path: Path):
    """A real git repository: a call site in shop/cart.py needs shop/pricing.py."""
    root = tmp_path / "shopws"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "pricing.py").write_text(PRICING)
    (root / "shop" / "inventory.py").write_text(INVENTORY)
    (root / "shop" / "cart.py").write_text(CART)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "shop")
    yield root
    shutil.rmtree(index_home() / workspace_key(root), ignore_errors=True)


def uri_of(path: Path) -> str:
    return path.as_uri()


async def context(client: Any) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async(CONTEXT_REQUEST, None))


async def wait_indexed(client: Any, generation: int = 1, timeout: float = 60) -> dict[str, Any]:
    """Until every folder's index is complete at ``generation`` or later, nothing queued."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await context(client)
        folders = state["folders"]
        if (
            folders
            and all(f["state"] == "complete" and f["generation"] >= generation for f in folders)
            and state["pendingJobs"] == 0
            and state["pendingPaths"] == 0
        ):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"indexing did not finish: {state}")
        await asyncio.sleep(0.05)


def last_entry(s: dict[str, Any]) -> dict[str, Any]:
    return s["recent"][-1]


def scripted(script, *more: dict[str, str]) -> str:
    """A scripted model: ANSWER if the prompt holds pricing.py's definition (the ``more``
    responses are looked up first), else "None)"."""
    return script([*more, {"match": DEFINITION, "text": ANSWER}], default="None)")


def type_at(client: Any, uri: str, version: int, pos: types.Position, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=text)
            ],
        )
    )


async def test_completion_at_a_call_site_gets_the_definition_from_another_file(
    script, workspace: Path
):
    async with lsp_session(scripted(script), folders=[workspace]) as client:
        state = await wait_indexed(client)
        (folder,) = state["folders"]
        assert state["enabled"] and folder["path"] == str(workspace)
        assert folder["files"] == 4 and folder["chunks"] >= 6, folder
        index = Path(folder["index"])
        assert index.is_dir() and not index.resolve().is_relative_to(workspace.resolve())
        # $/progress: begin "indexing shopws", end "N files, M chunks in S s"
        ends = [
            r.message
            for reports in client.progress_reports.values()
            for r in reports
            if isinstance(r, types.WorkDoneProgressEnd) and r.message
        ]
        assert any(re.fullmatch(r"4 files, \d+ chunks in [\d.]+ s", m) for m in ends), ends

        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        # The scripted model answers ANSWER only if the prompt holds pricing.py's definition.
        assert await inline(client, cart, end_position(CART)) == [ANSWER]
        entry = last_entry(await stats(client))
        got = entry["stats"]["context"]
        assert got["paths"][0] == "shop/pricing.py", got
        assert got["snippets"] >= 1 and got["sticky"] is False, got
        assert entry["stats"]["snippets"] >= 1  # packed into the prompt
        assert entry["timings"]["retrieval_ms"] > 0


async def test_retrieval_off_builds_no_index_then_turning_it_on_does(script, workspace: Path):
    opts = {"debounceMs": 0, "retrieval": False}
    async with lsp_session(scripted(script), opts, folders=[workspace]) as client:
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        assert await inline(client, cart, end_position(CART)) == ["None)"]
        entry = last_entry(await stats(client))
        assert "context" not in entry["stats"] and entry["stats"]["snippets"] == 0, entry
        state = await context(client)
        assert state["folders"] == [] and state["disabledBy"] == "retrieval option", state
        assert not (index_home() / workspace_key(workspace)).exists()

        # On at runtime: the folder is indexed and the next completion has the definition.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"hone": {"retrieval": True}})
        )
        await wait_indexed(client)
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(cart))
        )  # (forgets the typed-ahead suggestion)
        open_doc(client, cart, CART)
        assert await inline(client, cart, end_position(CART)) == [ANSWER]


async def test_no_context_flag_wins_over_the_option(script, workspace: Path):
    async with lsp_session(
        scripted(script), extra_args=["--no-context"], folders=[workspace]
    ) as client:
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        assert await inline(client, cart, end_position(CART)) == ["None)"]
        state = await context(client)
        assert state["folders"] == [] and state["disabledBy"] == "--no-context", state


async def test_a_saved_file_is_reindexed(script, workspace: Path):
    quote = "def shipping_quote(weight_kg, zone_code"
    spec = scripted(script, {"match": quote, "text": "weight_kg, zone_code)"})
    async with lsp_session(spec, folders=[workspace]) as client:
        await wait_indexed(client)
        pricing = workspace / "shop" / "pricing.py"
        pricing.write_text(
            PRICING + f"\n\n{quote}):\n    return 4.5 + weight_kg * 1.25 * zone_code\n"
        )
        text = CART_HEAD + "        cost = shipping_quote("
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, text)
        # Written on disk but not saved through the editor: not in the index yet (the
        # prompt has the imported total_amount, not shipping_quote).
        assert await inline(client, cart, end_position(text)) == [ANSWER]
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri_of(pricing))
            )
        )
        await wait_indexed(client, generation=2)
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(cart))
        )
        open_doc(client, cart, text)
        assert await inline(client, cart, end_position(text)) == ["weight_kg, zone_code)"]
        assert last_entry(await stats(client))["stats"]["context"]["paths"][0] == (
            "shop/pricing.py"
        )


async def test_snippets_stay_while_typing_on_one_line_and_follow_the_next_line(
    script, workspace: Path
):
    async with lsp_session(scripted(script), folders=[workspace]) as client:
        await wait_indexed(client)
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        assert await inline(client, cart, end_position(CART)) == [ANSWER]
        first = last_entry(await stats(client))["stats"]["context"]
        assert first["sticky"] is False and first["paths"][0] == "shop/pricing.py"

        # Typing on the same line (not what was suggested, so the model runs again): the
        # same snippets, although a fresh retrieval would now rank restock() first.
        typed = CART + "self.inventory.restock("
        type_at(client, cart, 2, end_position(CART), "self.inventory.restock(")
        await inline(client, cart, end_position(typed))
        second = last_entry(await stats(client))["stats"]["context"]
        assert second["sticky"] is True, second
        assert (second["digest"], second["paths"]) == (first["digest"], first["paths"])

        # The next line: retrieved again, for what is written there.
        nxt = typed + "\n        self.inventory.restock("
        type_at(client, cart, 3, end_position(typed), "\n        self.inventory.restock(")
        await inline(client, cart, end_position(nxt))
        third = last_entry(await stats(client))["stats"]["context"]
        assert third["sticky"] is False, third
        assert third["paths"][0] == "shop/inventory.py", third


async def test_folder_changes_excludes_and_a_bad_folder(script, workspace: Path, tmp_path: Path):
    missing = tmp_path / "gone"
    async with lsp_session(scripted(script), folders=[missing]) as client:
        # A folder that cannot be read: an error in its state, and the server serves on.
        for _ in range(400):
            (folder,) = (await context(client))["folders"]
            if folder["state"] == "error":
                break
            await asyncio.sleep(0.05)
        assert folder["state"] == "error" and folder["error"], folder
        other = "file:///tmp/hone-e2e/outside.py"
        open_doc(client, other, "def add(a, b):\n    ")
        assert await inline(client, other, types.Position(1, 4)) == ["None)"]

        # Folders added and removed at runtime.
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri_of(workspace), "shopws")],
                    removed=[types.WorkspaceFolder(uri_of(missing), "gone")],
                )
            )
        )
        await asyncio.sleep(0.1)
        state = await wait_indexed(client)
        assert [f["path"] for f in state["folders"]] == [str(workspace)]
        assert state["folders"][0]["files"] == 4

        # New exclude globs: indexed again without what they match.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"exclude": ["shop/inventory.py"]})
        )
        await asyncio.sleep(0.1)
        state = await wait_indexed(client)
        assert state["exclude"] == ["shop/inventory.py"]
        assert state["folders"][0]["files"] == 3, state
        assert state["folders"][0]["report"]["skipped"] == {"excluded": 1}

        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[], removed=[types.WorkspaceFolder(uri_of(workspace), "shopws")]
                )
            )
        )
        await asyncio.sleep(0.1)
        assert (await context(client))["folders"] == []


@pytest.mark.model
async def test_real_model_completion_gets_the_other_files_definition(workspace: Path):
    """The embedded model, through the LSP: the call site's completion has pricing.py's
    definition in its prompt."""
    opts = {"debounceMs": 0, "requestTimeoutMs": 300_000}
    async with lsp_session(None, opts, folders=[workspace]) as client:
        await wait_indexed(client)
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        items = await inline(client, cart, end_position(CART))
        entry = last_entry(await stats(client))
        got = entry["stats"]["context"]
        assert got["snippets"] > 0 and got["paths"][0] == "shop/pricing.py", got
        assert entry["stats"]["snippets"] >= 1 and entry["stats"]["snippet_tokens"] > 0, entry
        assert len(items) == 1 and items[0].strip(), entry


def test_cli_complete_uses_the_index_unless_no_context(script, workspace: Path):
    spec = scripted(script)
    cart = workspace / "shop" / "cart.py"
    where = f"{cart}:{CART.count(chr(10)) + 1}:{len(CALL) + 1}"
    cmd = [sys.executable, "-m", "hone.server.cli", "complete", where, "--model", spec, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workspace / "shop")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["items"] == [{"insertText": ANSWER}]
    assert data["context"]["root"] == str(workspace.resolve())
    assert data["context"]["paths"][0] == "shop/pricing.py" and data["stats"]["snippets"] >= 1
    out = subprocess.run([*cmd, "--no-context"], capture_output=True, text=True, timeout=120)
    data = json.loads(out.stdout)
    assert data["items"] == [{"insertText": "None)"}] and data["context"] is None


async def test_an_open_buffer_is_indexed_from_its_text_until_closed(script, workspace: Path):
    helper = "def unsaved_helper(alpha_beta, gamma_delta"
    spec = scripted(script, {"match": helper, "text": "alpha_beta, gamma_delta)"})
    pricing = workspace / "shop" / "pricing.py"
    async with lsp_session(spec, folders=[workspace]) as client:
        await wait_indexed(client)
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)  # the same text as on disk: nothing to index
        state = await wait_indexed(client)
        assert state["folders"][0]["generation"] == 1 and state["folders"][0]["live"] == []

        edited = PRICING + f"\n\n{helper}):\n    return alpha_beta - gamma_delta\n"
        open_doc(client, uri_of(pricing), edited)  # unsaved text
        await asyncio.sleep(0.1)
        state = await wait_indexed(client, generation=2)
        assert state["folders"][0]["live"] == ["shop/pricing.py"], state
        text = CART_HEAD + "        left = unsaved_helper("
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=cart, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        assert await inline(client, cart, end_position(text)) == ["alpha_beta, gamma_delta)"]

        # Closed without saving: the index has the file on disk again; the file is untouched.
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri_of(pricing))
            )
        )
        await asyncio.sleep(0.1)
        state = await wait_indexed(client, generation=3)
        assert state["folders"][0]["live"] == [], state
        assert pricing.read_text() == PRICING


async def test_an_index_another_process_writes_is_waited_for(script, workspace: Path):
    """`hone index` holds the writer lock: the server serves completions meanwhile and
    indexes once the lock is free."""
    folder = index_home() / workspace_key(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "writer.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        async with lsp_session(scripted(script), folders=[workspace]) as client:
            for _ in range(400):
                (state,) = (await context(client))["folders"]
                if state["state"] == "waiting":
                    break
                await asyncio.sleep(0.05)
            assert state["state"] == "waiting", state
            cart = uri_of(workspace / "shop" / "cart.py")
            open_doc(client, cart, CART)
            assert await inline(client, cart, end_position(CART)) == ["None)"]
            fcntl.flock(lock, fcntl.LOCK_UN)
            await wait_indexed(client, timeout=30)
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(cart))
            )
            open_doc(client, cart, CART)
            assert await inline(client, cart, end_position(CART)) == [ANSWER]


async def test_a_corrupt_index_is_rebuilt(script, workspace: Path):
    folder = index_home() / workspace_key(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.sqlite").write_bytes(b"not a database" * 100)
    async with lsp_session(scripted(script), folders=[workspace]) as client:
        state = await wait_indexed(client)
        report = state["folders"][0]["report"]
        assert report["rebuilt_because"].startswith("unreadable index"), report
        assert state["folders"][0]["files"] == 4
        cart = uri_of(workspace / "shop" / "cart.py")
        open_doc(client, cart, CART)
        assert await inline(client, cart, end_position(CART)) == [ANSWER]
