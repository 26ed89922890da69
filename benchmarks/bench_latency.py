"""Latency benchmark: the real `hone serve` process over stdio, the embedded model, real
files from the standard library (code nobody on the team wrote).

Reports: server overhead excluding model time (p50/p95); end-to-end latency for single-
and multi-line requests; the request after a one-character edit as a ratio of the first;
typed-ahead hits; generations started per burst of 10 keystrokes 40 ms apart; how long a
superseded generation takes to stop, in decode steps.

    python benchmarks/bench_latency.py [--model SPEC] [--cases 16] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from hone.server.lsp import STATS_REQUEST, plain
from lsprotocol import types
from pygls.lsp.client import LanguageClient

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Fixed evaluation files: chosen before any tuning, never used to tune prompts.
FILES = [
    "textwrap.py",
    "shlex.py",
    "csv.py",
    "heapq.py",
    "bisect.py",
    "calendar.py",
    "fractions.py",
    "json/decoder.py",
    "json/encoder.py",
    "string.py",
    "glob.py",
    "fnmatch.py",
    "colorsys.py",
    "netrc.py",
    "gettext.py",
    "quopri.py",
]


@dataclass
class Case:
    name: str
    text: str  # the document as the user has it
    line: int
    character: int
    next_text: str  # what the original code had after the cursor (what the user types next)
    kind: str  # "single" | "multi"


def _utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def build_cases(
    n: int, seed: int = 7, files: list[str] = FILES, per_file: int = 1
) -> tuple[list[Case], list[Case]]:
    """Up to ``n`` single-line and ``n`` multi-line cases, ``per_file`` of each per file."""
    rng = random.Random(seed)
    singles: list[Case] = []
    multis: list[Case] = []
    for rel in [f for f in files for _ in range(per_file)]:
        path = STDLIB / rel
        lines = path.read_text(encoding="utf-8").split("\n")
        # multi: a function header whose body we remove; the cursor sits on the body's
        # first line after its indentation.
        headers = [
            i
            for i, ln in enumerate(lines)
            if ln.lstrip().startswith("def ")
            and ln.rstrip().endswith(":")
            and i + 1 < len(lines)
            and lines[i + 1].strip()
            and not lines[i + 1].lstrip().startswith(('"""', "'''", "#"))
        ]
        if headers:
            i = rng.choice(headers)
            indent = len(lines[i]) - len(lines[i].lstrip())
            j = i + 1
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                j += 1
            body_indent = lines[i + 1][: len(lines[i + 1]) - len(lines[i + 1].lstrip())]
            doc = "\n".join(lines[: i + 1] + [body_indent] + [""] + lines[j:])
            multis.append(
                Case(
                    f"{rel}:{i + 2}",
                    doc,
                    i + 1,
                    _utf16(body_indent),
                    lines[i + 1].lstrip(),
                    "multi",
                )
            )
        # single: a statement line inside a body, cut after its first '=' or '('.
        stmts = [
            k
            for k, ln in enumerate(lines)
            if ln.startswith("        ")
            and ("= " in ln or "(" in ln)
            and not ln.lstrip().startswith("#")
            and len(ln.strip()) > 20
        ]
        if stmts:
            k = rng.choice(stmts)
            ln = lines[k]
            cut = min(
                p for p in (ln.find("= ") + 2 if "= " in ln else 10**9, ln.find("(") + 1 or 10**9)
            )
            doc = "\n".join(lines[:k] + [ln[:cut]] + lines[k + 1 :])
            singles.append(Case(f"{rel}:{k + 1}", doc, k, _utf16(ln[:cut]), ln[cut:], "single"))
    return singles[:n], multis[:n]


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


class Bench:
    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.version: dict[str, int] = {}

    def open(self, uri: str, text: str) -> None:
        self.version[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        self.replace(uri, line, character, character, text)

    def replace(self, uri: str, line: int, start: int, end: int, text: str) -> None:
        self.version[uri] += 1
        rng = types.Range(
            start=types.Position(line=line, character=start),
            end=types.Position(line=line, character=end),
        )
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.version[uri]
                ),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    async def request(self, uri: str, line: int, character: int) -> tuple[list[str], float]:
        t0 = time.perf_counter()
        res = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        rtt = (time.perf_counter() - t0) * 1000
        items = res.items if res else []
        return [i.insert_text for i in items], rtt

    async def type_and_ask(self, uri: str, line: int, col: int, ch: str) -> tuple[float, dict]:
        """Type ``ch`` at the cursor after a pause, ask again, then take ``ch`` back out."""
        self.insert(uri, line, col, ch)
        await asyncio.sleep(0.2)  # a pause in typing: no debounce
        _, took = await self.request(uri, line, col + _utf16(ch))
        entry = await self.last()
        self.replace(uri, line, col, col + _utf16(ch), "")
        return took, entry

    async def stats(self) -> dict:
        return plain(await self.client.protocol.send_request_async(STATS_REQUEST, None))

    async def last(self) -> dict:
        return (await self.stats())["recent"][-1]


async def run(args: argparse.Namespace) -> dict:
    singles, multis = build_cases(args.cases)
    client = LanguageClient("hone-bench", "0")
    cmd = [sys.executable, "-m", "hone.server.cli", "serve"] + (
        ["--model", args.model] if args.model else []
    )
    await client.start_io(*cmd)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"debounceMs": args.debounce_ms},
        )
    )
    client.initialized(types.InitializedParams())
    b = Bench(client)
    res: dict = {
        "overhead_ms": [],
        "client_overhead_ms": [],
        "single_ms": [],
        "multi_ms": [],
        "edit_ratio": [],
        "typed_ahead_ms": [],
        "typed_ahead_hits": 0,
        "typed_ahead_tries": 0,
        "burst_generations": [],
        "cancel_to_stop_ms": [],
        "step_ms": [],
        "tokens_per_pass": [],
        "edit_prefill_ratio": [],
        "next_char_ratio": [],
        "examples": [],
    }

    # Warm-up: loads (and on a fresh machine converts) the model; not measured.
    t0 = time.perf_counter()
    b.open("file:///bench/warmup.py", "def f(x):\n    ")
    await b.request("file:///bench/warmup.py", 1, 4)
    res["first_request_incl_load_s"] = round(time.perf_counter() - t0, 2)

    for case in singles + multis:
        uri = f"file:///bench/{case.kind}/{case.name.replace(':', '_')}"
        b.open(uri, case.text)
        await asyncio.sleep(0.2)  # not part of a typing burst
        items, rtt = await b.request(uri, case.line, case.character)
        entry = await b.last()
        model_ms = entry.get("timings", {}).get("model_ms", 0.0)
        res[f"{case.kind}_ms"].append(rtt)
        st = entry.get("stats", {})
        if st.get("generated_tokens"):
            passes = max(1, st["generated_tokens"] - st.get("accepted_tokens", 0))
            res["step_ms"].append(st["decode_ms"] / passes)
            res["tokens_per_pass"].append(st["generated_tokens"] / passes)
        res["overhead_ms"].append(entry["server_ms"] - model_ms)
        res["client_overhead_ms"].append(rtt - model_ms)
        if len(res["examples"]) < 8 and items:
            res["examples"].append(
                {
                    "case": case.name,
                    "kind": case.kind,
                    "suggestion": items[0][:200],
                    "original": case.next_text[:120],
                }
            )
        if not items:
            continue
        sugg = items[0]
        at = (uri, case.line, case.character)
        # Typed-ahead: the user types the first character of the suggestion.
        res["typed_ahead_tries"] += 1
        took, entry = await b.type_and_ask(*at, sugg[0])
        if entry["outcome"] == "cached":
            res["typed_ahead_hits"] += 1
            res["typed_ahead_ms"].append(took)
        # One character as typing goes on: the original code's next character, where the
        # suggestion does not start with it (else it is a typed-ahead hit, above).
        nxt = case.next_text[:1]
        if nxt and nxt != "\n" and not sugg.startswith(nxt):
            took, entry = await b.type_and_ask(*at, nxt)
            if entry.get("outcome") in ("single", "multi"):
                res["next_char_ratio"].append(took / rtt)
        # One arbitrary character that does not match the suggestion (adversarial: the
        # code stops making sense), always a new model call.
        took, entry = await b.type_and_ask(*at, next(c for c in "qzjx_" if not sugg.startswith(c)))
        if entry.get("outcome") in ("single", "multi"):
            res["edit_ratio"].append(took / rtt)
            if st.get("prefill_ms"):
                res["edit_prefill_ratio"].append(entry["stats"]["prefill_ms"] / st["prefill_ms"])
            res.setdefault("edit_reuse", []).append(
                entry["stats"]["reused_tokens"] / max(1, entry["stats"]["prompt_tokens"])
            )

    # Bursts: 10 keystrokes 40 ms apart, each followed by a request (as an editor does).
    for case in (singles + multis)[: args.bursts]:
        uri = f"file:///bench/burst/{case.name.replace(':', '_')}"
        b.open(uri, case.text)
        await asyncio.sleep(0.3)
        before = (await b.stats())["generations_started"]
        typed = (case.next_text + "          ")[:10]
        pending = []
        for i, ch in enumerate(typed):
            b.insert(uri, case.line, case.character + i, ch)
            pending.append(asyncio.ensure_future(b.request(uri, case.line, case.character + i + 1)))
            await asyncio.sleep(0.04)
        await asyncio.gather(*pending)
        s = await b.stats()
        res["burst_generations"].append(s["generations_started"] - before)
        for r in s["recent"][-10:]:
            if "cancel_to_stop_ms" in r:
                res["cancel_to_stop_ms"].append(r["cancel_to_stop_ms"])

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return res


def summarise(res: dict, args: argparse.Namespace) -> dict:
    def p(xs: list[float]) -> dict:
        return {"n": len(xs), "p50": round(pct(xs, 0.5), 2), "p95": round(pct(xs, 0.95), 2)}

    tries = res["typed_ahead_tries"]
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, no GPU",
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model or "embedded SmolLM2-135M-Instruct (int8 weights, CPU)",
        "first_request_incl_load_s": res["first_request_incl_load_s"],
        "server_overhead_ms": p(res["overhead_ms"]),
        "client_roundtrip_overhead_ms": p(res["client_overhead_ms"]),
        "single_line_ms": p(res["single_ms"]),
        "multi_line_ms": p(res["multi_ms"]),
        "one_char_edit_ratio": {
            **p(res["edit_ratio"]),
            "mean": round(statistics.fmean(res["edit_ratio"]), 3) if res["edit_ratio"] else None,
        },
        "one_char_edit_prompt_reuse": p(res.get("edit_reuse", [])),
        # the same, when the character typed is the original code's next one
        "next_char_ratio": {
            **p(res["next_char_ratio"]),
            "mean": round(statistics.fmean(res["next_char_ratio"]), 3)
            if res["next_char_ratio"]
            else None,
        },
        "typed_ahead": {
            "hits": res["typed_ahead_hits"],
            "tries": tries,
            **p(res["typed_ahead_ms"]),
        },
        "generations_per_burst": {
            "bursts": len(res["burst_generations"]),
            "max": max(res["burst_generations"], default=None),
            "each": res["burst_generations"],
        },
        "superseded_stop_ms": p(res["cancel_to_stop_ms"]),
        "decode_step_ms": p(res["step_ms"]),
        "tokens_per_forward_pass": p(res["tokens_per_pass"]),
        # a superseded generation's stop latency, in units of the median decode step
        "superseded_stop_decode_steps": p(
            [x / pct(res["step_ms"], 0.5) for x in res["cancel_to_stop_ms"]]
            if res["step_ms"]
            else []
        ),
        "one_char_edit_prefill_ratio": p(res["edit_prefill_ratio"]),
        "examples": res["examples"],
    }
    return out


def emit(results: dict, out: Path | None) -> None:
    """Print the results as JSON and, if asked, write them to ``out`` (every benchmark)."""
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("HONE_MODEL"))
    ap.add_argument("--cases", type=int, default=12, help="cases per kind (single, multi)")
    ap.add_argument("--bursts", type=int, default=6)
    ap.add_argument("--debounce-ms", type=int, default=60)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    summary = summarise(asyncio.run(run(args)), args)
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
