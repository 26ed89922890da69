"""Typing in a large document: server time per change and per inline-completion request.

The real `hone serve` over stdio with a scripted model (answers at once, so the model is
idle when each request comes). A ~1 MB document built from standard-library modules (real
code, form feeds included, plus non-ASCII comments) is opened; then, at three places (near
the start, the middle and the end), a new line is typed one character at a time, each
keystroke a didChange followed by an inline-completion request at the new cursor, answered
before the next keystroke. Measured server-side, once per position encoding:

- per change: the server's time to apply each didChange (`hone/workspace` "changes");
- per request (`hone/stats`): the document's part (`document_ms`: the position converted
  to an offset, the text), the event-loop time to turn the request into a plan
  (`prepare_ms`: that, the typed-ahead cache and the completion policy), the policy alone
  (`policy_ms`), and the request's whole server time excluding the model's
  (`server_ms` - `model_ms`: also prompt building and post-processing in the worker).

Also, in-process on the same text: pygls' own document (what hone used before) against
hone's document store, per change and per position-to-offset conversion.

    python benchmarks/bench_documents.py [--size 1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit, machine, pct  # noqa: E402
from hone.server.documents import Document  # noqa: E402
from hone.server.lsp import DOCUMENT_REQUEST, STATS_REQUEST, WORKSPACE_REQUEST, plain  # noqa: E402
from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TYPED = "total = compute(alpha, beta)  # naïve café 😀 ok"  # typed after the indentation
# A statement line in a function body: where a new line of code is typed.
STATEMENT = re.compile(r"^( {4}| {8})(return |self\.|[a-z_]+ = )[^\"'\\]*$")
URI = "file:///bench/large.py"


def p(xs: list[float]) -> dict:
    return {"n": len(xs), "p50": round(pct(xs, 0.5), 3), "p95": round(pct(xs, 0.95), 3)}


def large_document(size: int) -> str:
    """Standard-library modules (sorted, so the same Python gives the same text) joined
    until ``size`` characters, with a non-ASCII comment every 500 lines."""
    parts: list[str] = []
    total = 0
    for path in sorted(STDLIB.glob("*.py")) + sorted((STDLIB / "email").glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total >= size:
            break
    # LSP lines here are "\n" lines: no carriage returns (the benchmark counts lines by "\n")
    lines = "".join(parts)[:size].replace("\r", "").split("\n")
    for i in range(len(lines) - len(lines) % 500, 0, -500):  # a comment line: valid anywhere
        lines.insert(i, "# naïve café 😀")
    return "\n".join(lines)


def typing_places(lines: list[str]) -> list[tuple[int, str]]:
    """(line, indentation) of the first statement line at or after (else before) 1%, 50% and
    99% of the document: a new line is typed after it, at its indentation."""
    places = []
    for where in (0.01, 0.5, 0.99):
        start = int(len(lines) * where)
        order = [*range(start, len(lines)), *range(start - 1, -1, -1)]  # after, else before
        line = next(i for i in order if STATEMENT.match(lines[i]))
        places.append((line, STATEMENT.match(lines[line]).group(1)))
    return places


def units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


async def session(script: Path, encoding: str, text: str) -> dict:
    client = LanguageClient("hone-bench-documents", "0")
    await client.start_io(
        sys.executable, "-m", "hone.server.cli", "serve", "--model", f"scripted:{script}"
    )
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                general=types.GeneralClientCapabilities(position_encodings=[encoding])
            ),
            initialization_options={"debounceMs": 0},
        )
    )
    client.initialized(types.InitializedParams())

    async def request(method: str, params: object) -> dict:
        return plain(await client.protocol.send_request_async(method, params))

    t0 = time.perf_counter()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="python", version=1, text=text
            )
        )
    )
    doc = await request(DOCUMENT_REQUEST, {"uri": URI, "text": False})
    open_ms = (time.perf_counter() - t0) * 1000
    assert doc["length"] == len(text), doc

    lines = text.split("\n")
    version = 1
    changes: list[float] = []
    document: list[float] = []
    prepare: list[float] = []
    policy: list[float] = []
    server: list[float] = []
    outcomes: dict[str, int] = {}
    # Warm-up: the first request waits for the (scripted) model to load.
    await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=0, character=0),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    for n, (line, indent) in enumerate(typing_places(lines)):
        line += n  # below the lines typed before
        typed = ""
        for ch in "\n" + indent + TYPED:
            version += 1
            if ch == "\n":  # a new line after this one, then the text on it
                at = types.Position(line=line, character=units(lines[line], encoding))
            else:
                at = types.Position(line=line + 1, character=units(typed, encoding))
                typed += ch
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(start=at, end=at), text=ch
                        )
                    ],
                )
            )
            await client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI),
                    position=types.Position(line=line + 1, character=units(typed, encoding)),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                )
            )
        lines.insert(line + 1, typed)
    # The server keeps its last 256 requests and 512 changes: all of these (after warm-up).
    st = await request(STATS_REQUEST, None)
    for r in st["recent"][1:]:
        outcome = r["outcome"].split(":")[0]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        timings = r.get("timings") or {}
        document.append(r["document_ms"])
        prepare.append(r["prepare_ms"])
        if "policy_ms" in timings:
            policy.append(timings["policy_ms"])
        server.append(r["server_ms"] - timings.get("model_ms", 0.0))
    changes = [c["ms"] for c in (await request(WORKSPACE_REQUEST, {}))["changes"]]
    assert len(changes) == version - 1 and len(prepare) == version - 1
    final = await request(DOCUMENT_REQUEST, {"uri": URI})
    assert final["text"] == "\n".join(lines), "the server's text differs from the client's"
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {
        "backend": st.get("backend"),
        "open_roundtrip_ms": round(open_ms, 1),
        "per_change_ms": p(changes),
        "per_request_document_ms": p(document),
        "per_request_prepare_ms": p(prepare),
        "per_request_policy_ms": p(policy),
        "per_request_server_ms_excl_model": p(server),
        "outcomes": outcomes,
    }


def in_process(text: str, reps: int = 200) -> dict:
    """pygls' TextDocument against hone's Document on the same text: one-character edits in
    the middle, each followed by a position-to-offset conversion (what a request needs)."""
    from pygls.workspace import TextDocument

    line = text.count("\n") // 2
    figures = {}
    for name in ("pygls", "hone"):
        if name == "pygls":
            doc = TextDocument(URI, text, version=1)
        else:
            doc = Document(URI, text, 1, "python", "utf-16")
        edit_ms: list[float] = []
        offset_ms: list[float] = []
        for i in range(reps):
            pos = types.Position(line=line, character=i)
            change = types.TextDocumentContentChangePartial(
                range=types.Range(start=pos, end=pos), text="x"
            )
            t0 = time.perf_counter()
            doc.apply_change(change) if name == "pygls" else doc.apply(change)
            t1 = time.perf_counter()
            after = types.Position(line=line, character=i + 1)
            doc.offset_at_position(after) if name == "pygls" else doc.offset_at(line, i + 1)
            t2 = time.perf_counter()
            edit_ms.append((t1 - t0) * 1000)
            offset_ms.append((t2 - t1) * 1000)
        figures[name] = {"per_change_ms": p(edit_ms), "offset_of_position_ms": p(offset_ms)}
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="document size in characters")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = large_document(args.size)
    load_before = round(os.getloadavg()[0], 2)  # the machine is shared: tails depend on it
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scripted.json"
        script.write_text(
            json.dumps({"responses": [{"match": None, "text": "x + 1\n"}], "step_ms": 0})
        )
        # The same typing in a 50 kB document (utf-16): what does not depend on the size.
        small = asyncio.run(session(script, "utf-16", large_document(50_000)))
        small.pop("backend", None)
        per_encoding = {
            enc: asyncio.run(session(script, enc, text)) for enc in ("utf-8", "utf-16", "utf-32")
        }
    backend = next(iter(per_encoding.values())).pop("backend", None)
    for figures in per_encoding.values():
        figures.pop("backend", None)
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "python": platform.python_version(),
        "load_average_1min_before_and_after": [load_before, round(os.getloadavg()[0], 2)],
        "model": "scripted (answers at once: the model is idle)",
        "backend": backend,
        "document": {
            "characters": len(text),
            "utf8_bytes": len(text.encode("utf-8")),
            "lines": text.count("\n") + 1,
            "keystrokes per encoding": sum(
                len(i + TYPED) + 1 for _, i in typing_places(text.split("\n"))
            ),
        },
        "target": "per change and per request (server time excluding the model), p95 <= 5 ms",
        "encodings": per_encoding,
        "small_document_50kB_utf16": small,
        "in_process_pygls_vs_hone": in_process(text),
    }
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
