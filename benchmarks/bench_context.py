"""Retrieval inside the running server, on a repository of 2,000 real files.

A git repository of the standard library's modules (topped up with installed packages'
modules to ``--files``), indexed by ``hone index``, then served by the real ``hone serve``
process over stdio with the embedded model, the workspace folder being the repository.
At ``--sites`` random places in its files (a line's code up to a random column), the
editor's way: open the file, delete the line's rest from the cursor (as if not typed yet),
ask for an inline completion after a pause, then type the code's real next character and
ask again (the one-character edit), close the file.

Twice, one server after the other, on the same sites: retrieval on (the default) and off
(option ``retrieval: false``). Reports, from the server's own ``hone/stats`` entries:

- ``retrieval_ms``: the time the request spent getting its context (every source, fused,
  turned into snippets; in the model worker, before the model) p50/p95, and how much of it
  each source took;
- the one-character-edit ratio (the second request's time over the first request's model
  time, p50, where the first suggestion did not start with the typed character: those are
  typed-ahead hits, counted apart), with and without context: the target is that context
  moves it by at most 0.05;
- the first request's end-to-end time and prompt size with and without context.

Embeddings are off (the default, by measurement: see retrieval/README.md); their query
embedding is measured by ``make bench-embeddings``.

    python benchmarks/bench_context.py [--files 2000] [--sites 100] [--model M] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import Bench, _utf16, emit, machine, p  # noqa: E402
from hone.server.lsp import CONTEXT_REQUEST, plain  # noqa: E402
from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PURELIB = Path(sysconfig.get_paths()["purelib"])
MAX_BYTES = 300_000


def build_repository(root: Path, n_files: int) -> int:
    """``n_files`` Python files (the standard library's, then installed packages') in a
    committed git work tree at ``root``; the number copied."""
    sources = [(STDLIB, f) for f in sorted(STDLIB.rglob("*.py")) if "site-packages" not in f.parts]
    sources += [(PURELIB, f) for f in sorted(PURELIB.rglob("*.py"))]
    copied = 0
    for base, source in sources:
        if copied >= n_files:
            break
        try:
            if source.stat().st_size >= MAX_BYTES or source.is_symlink():
                continue
        except OSError:
            continue
        prefix = "stdlib" if base == STDLIB else "packages"
        target = root / prefix / source.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied += 1
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=b@x", *args],
            cwd=root,
            check=True,
        )
    return copied


def pick_sites(root: Path, n: int, seed: int = 7) -> list[tuple[str, str, int, int, str]]:
    """(relative path, the file's text, line, character, the code's next character) at
    ``n`` random places: inside a line of code, after at least one character of it."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*.py") if ".git" not in p.parts)
    sites = []
    while len(sites) < n:
        path = rng.choice(files)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines = text.split("\n")
        candidates = [
            i
            for i, line in enumerate(lines)
            if len(line.strip()) >= 8 and not line.strip().startswith(("#", '"', "'"))
        ]
        if not candidates:
            continue
        line = rng.choice(candidates)
        code = lines[line]
        indent = len(code) - len(code.lstrip())
        col = rng.randrange(indent + 1, len(code))
        if not code[col].isascii() or code[col].isspace():
            continue
        sites.append((path.relative_to(root).as_posix(), text, line, col, code[col]))
    return sites


async def serve(root: Path, sites: list, retrieval: bool, model: str | None) -> dict:
    client = LanguageClient("hone-bench-context", "0")
    cmd = [sys.executable, "-m", "hone.server.cli", "serve"] + (["--model", model] if model else [])
    await client.start_io(*cmd)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={"retrieval": retrieval},
        )
    )
    client.initialized(types.InitializedParams())
    b = Bench(client)
    out: dict = {
        "retrieval_ms": [],
        "sources_ms": {},
        "first_ms": [],
        "model_ms": [],
        "prompt_tokens": [],
        "snippets": [],
        "ratio": [],
        "second_retrieval_ms": [],
        "not_answered": 0,
        "typed_ahead_hits": 0,
    }
    t0 = time.perf_counter()
    warm = root / "stdlib" / "warmup_bench.py"
    b.open(warm.as_uri(), "def f(x):\n    ")
    await b.request(warm.as_uri(), 1, 4)
    out["first_request_incl_load_s"] = round(time.perf_counter() - t0, 2)
    if retrieval:  # the index is already built: the server only checks it
        deadline = time.perf_counter() + 600
        while True:
            state = plain(await client.protocol.send_request_async(CONTEXT_REQUEST, None))
            if state["folders"] and all(f["state"] == "complete" for f in state["folders"]):
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the index did not complete: {state}")
            await asyncio.sleep(0.5)
        out["index"] = {k: state["folders"][0].get(k) for k in ("files", "chunks", "state")}
    out["backend"] = (await b.stats())["backend"]
    for rel, text, line, col, nxt in sites:
        uri = (root / rel).as_uri()
        # The file as saved, then an edit: the line's rest deleted (not typed yet). The open
        # text matches the index; edits are not indexed (the snippets stay the same while
        # the user types on the line).
        b.open(uri, text)
        code = text.split("\n")[line]
        col, end = _utf16(code[:col]), _utf16(code)  # LSP positions: UTF-16 code units
        b.replace(uri, line, col, end, "")
        await asyncio.sleep(0.25)  # a pause: no debounce
        _, rtt = await b.request(uri, line, col)
        first = await b.last()
        if first.get("outcome") not in ("single", "multi"):
            out["not_answered"] += 1
        else:
            timings, stats = first.get("timings", {}), first.get("stats", {})
            out["first_ms"].append(rtt)
            out["model_ms"].append(timings.get("model_ms", 0.0))
            out["prompt_tokens"].append(stats.get("prompt_tokens", 0))
            context = stats.get("context") or {}
            out["snippets"].append(context.get("snippets", 0))
            if retrieval:
                out["retrieval_ms"].append(timings.get("retrieval_ms", float("nan")))
                for source, ms in (context.get("sources") or {}).items():
                    out["sources_ms"].setdefault(source, []).append(ms)
            took, entry = await b.type_and_ask(uri, line, col, nxt)
            model_ms = timings.get("model_ms", 0.0)
            if entry.get("outcome") == "cached":
                out["typed_ahead_hits"] += 1  # the suggestion started with it
            elif entry.get("outcome") in ("single", "multi") and model_ms > 0:
                out["ratio"].append(took / model_ms)
                if retrieval:
                    out["second_retrieval_ms"].append(
                        entry.get("timings", {}).get("retrieval_ms", float("nan"))
                    )
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return out


def summary(run: dict, retrieval: bool) -> dict:
    out = {
        "answered": len(run["first_ms"]),
        "not_answered": run["not_answered"],
        "first_request_ms": p(run["first_ms"], 0),
        "model_ms": p(run["model_ms"], 0),
        "prompt_tokens": p(run["prompt_tokens"], 0),
        # where the suggestion did not start with the typed character (else it is a
        # typed-ahead hit: answered from the cache, no model)
        "one_char_edit_ratio": p(run["ratio"]),
        "typed_ahead_hits": run["typed_ahead_hits"],
        "backend": run["backend"],
    }
    if retrieval:
        out["index"] = run.get("index")
        out["snippets"] = p(run["snippets"], 0)
        out["retrieval_ms"] = p(run["retrieval_ms"])
        out["retrieval_ms_by_source"] = {k: p(v) for k, v in sorted(run["sources_ms"].items())}
        out["second_request_retrieval_ms"] = p(run["second_retrieval_ms"])
    return out


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        os.environ["HONE_CACHE_DIR"] = str(Path(tmp) / "cache")  # the servers inherit it
        copied = build_repository(root, args.files)
        t = time.perf_counter()
        index = subprocess.run(
            [sys.executable, "-m", "hone.server.cli", "index", str(root), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        index_s = time.perf_counter() - t
        report = json.loads(index.stdout)
        sites = pick_sites(root, args.sites)
        runs = {}
        for name, retrieval in (("with_context", True), ("without_context", False)):
            runs[name] = summary(await serve(root, sites, retrieval, args.model), retrieval)
    with_, without = runs["with_context"], runs["without_context"]
    model = with_["backend"]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": model.get("model"),
        "device": model.get("device"),
        "weights": model.get("dtype"),
        "repository": {
            "files": copied,
            "indexed_files": report.get("files"),
            "chunks": report.get("chunks"),
            "hone_index_s": round(index_s, 1),
            "files_per_minute": round(copied / index_s * 60),
        },
        "sites": len(sites),
        "embeddings": False,
        **runs,
        "one_char_edit_ratio_p50_difference": round(
            with_["one_char_edit_ratio"]["p50"] - without["one_char_edit_ratio"]["p50"], 3
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--model", help="the server's model (default: the embedded one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    emit(asyncio.run(run(args)), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
