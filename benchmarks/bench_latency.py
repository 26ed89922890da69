"""Latency benchmark: the real `hone serve` process over stdio, the embedded model, real
files from the standard library (code nobody on the team wrote).

Reports: server overhead excluding model time (p50/p95); end-to-end latency for single-
and multi-line requests; the one-character-edit ratio (headline: the request after typing
the original code's next character, its round trip divided by the first request's model
time; secondary: the same after an arbitrary character); typed-ahead hits; generations
started per burst of 10 keystrokes 40 ms apart; how long a superseded generation and one
stopped by `$/cancelRequest` take to stop; how long a declined request waits while a
generation runs; and, in-process, the cost of the completion policy, the post-processor's
completeness check and prompt rendering. Records the machine, and the model, device and
weight format the server reports in `hone/stats`.

    python benchmarks/bench_latency.py [--model SPEC] [--cases 12] [--bursts 6] [--out FILE]
    python benchmarks/bench_latency.py --quick   # a smoke run: 1 case per kind, 1 burst

"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

    @staticmethod
    def params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )

    async def request(self, uri: str, line: int, character: int) -> tuple[list[str], float]:
        t0 = time.perf_counter()
        res = await self.client.text_document_inline_completion_async(
            self.params(uri, line, character)
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

    async def generation_started(self, count: int, deadline_s: float = 60) -> bool:
        """Wait until the server has started ``count`` generations in all."""
        end = time.perf_counter() + deadline_s
        while time.perf_counter() < end:
            if (await self.stats())["generations_started"] >= count:
                return True
            await asyncio.sleep(0.002)
        return False


def machine() -> dict:
    """The machine the benchmark ran on (the server runs on the same one)."""
    info: dict = {
        "arch": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "gpu": None,
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def components(repeat: int = 400) -> dict[str, list[float]]:
    """In-process cost (ms) of the per-keystroke work outside the model: the completion
    policy on a 2,000-line file that changes with every keystroke and on 5 MB documents,
    the post-processor's completeness check on a growing multi-line suggestion, prompt
    rendering; and constructing the embedded backend (before any model is read)."""
    from hone.agent.completion import policy
    from hone.agent.completion.policy import Mode, decide
    from hone.agent.completion.postprocess import is_complete
    from hone.models.prompts import template_by_name
    from hone.models.registry import load_backend

    out: dict[str, list[float]] = {k: [] for k in ("policy", "policy_5mb", "is_complete")}
    out |= {"render": [], "construct": []}
    text = (STDLIB / "difflib.py").read_text(encoding="utf-8")
    rng = random.Random(1)
    policy._TREE_CACHE.clear()
    for offset in (rng.randrange(len(text) + 1) for _ in range(repeat)):
        edited = text[:offset] + "x" + text[offset:]  # a new document, as when typing
        t0 = time.perf_counter()
        decide(edited, offset + 1, "python")
        out["policy"].append((time.perf_counter() - t0) * 1000)
    # ~5 MB documents: real code repeated, and one line of 5 MB
    big = text * (5_000_000 // len(text) + 1)
    for doc in (big, "x = " + "a + " * 1_250_000):
        for offset in [0, len(doc), *(rng.randrange(len(doc)) for _ in range(20))]:
            t0 = time.perf_counter()
            decide(doc, offset, "python")
            out["policy_5mb"].append((time.perf_counter() - t0) * 1000)

    body = "".join(f"    value_{i} = compute(value_{i - 1}, {i})  # step {i}\n" for i in range(25))
    raw = "\n" + body + "\ndef other():\n    pass\n"
    prefix = "import os\n" * 200 + "def f(value_0):"
    for end in range(1, len(raw) + 1):
        t0 = time.perf_counter()
        is_complete(raw[:end], prefix=prefix, suffix="\n", mode=Mode.MULTI, language="python")
        out["is_complete"].append((time.perf_counter() - t0) * 1000)

    template = template_by_name("qwen2.5-coder")
    before, after = "x = 1\n" * 2000, "y = 2\n" * 500
    for _ in range(repeat):
        t0 = time.perf_counter()
        template.render(before, after, "pkg/mod.py")
        out["render"].append((time.perf_counter() - t0) * 1000)

    # the embedded backend's constructor (the server's start): no model is read yet
    for _ in range(5):
        t0 = time.perf_counter()
        load_backend("embedded")
        out["construct"].append((time.perf_counter() - t0) * 1000)
    return out


def context_edits(singles: list[Case], multis: list[Case], model: str | None) -> dict:
    """The one-character-edit ratio with context snippets in the prompt, in-process (the
    server with its retrieval: ``make bench-context``): the completion engine on the model the
    server runs, each case twice, without and with two snippets from another file (the
    definitions nearest the top of the next module in FILES, up to retrievalTokens).
    Per case: a first request from an empty KV cache, then the original code's next
    character typed and a second request; ratio = its time ÷ the first's model time."""
    from hone.agent.completion.engine import CompletionEngine, CompletionRequest
    from hone.models.backend import Snippet
    from hone.models.registry import load_backend

    backend = load_backend(model or "embedded")
    backend.load()
    engine = CompletionEngine(backend)
    out: dict = {v: {"ratio": [], "prefill_ratio": [], "reuse": []} for v in ("none", "snippets")}
    out["snippet_tokens"] = []
    for n, case in enumerate(singles + multis):
        other = FILES[(FILES.index(case.name.split(":")[0]) + 1) % len(FILES)]
        source = (STDLIB / other).read_text(encoding="utf-8")
        defs = [i for i in range(len(source)) if source.startswith("\ndef ", i)][:3]
        pieces = [source[a + 1 : b] for a, b in zip(defs, defs[1:], strict=False)]
        snippets = tuple(Snippet(other, piece) for piece in pieces[:2])
        lines = case.text.split("\n")
        line = lines[case.line]
        col = len(line.encode("utf-16-le")[: case.character * 2].decode("utf-16-le"))
        offset = sum(len(x) + 1 for x in lines[: case.line]) + col
        nxt = case.next_text[:1]
        if not nxt or nxt == "\n":
            continue
        edited = case.text[:offset] + nxt + case.text[offset:]
        for variant, ctx in (("none", ()), ("snippets", snippets)):
            if hasattr(backend, "reset_cache"):  # a server's cache is its own (OpenAI backend)
                backend.reset_cache()
            engine.cache = type(engine.cache)()
            key = f"bench/{n}.py"
            first = engine.complete(
                CompletionRequest(key, case.text, offset, key, "python", snippets=ctx)
            )
            if first.mode not in ("single", "multi") or not first.items:
                continue
            if first.items[0].startswith(nxt):
                continue  # a typed-ahead hit, not a model call
            if variant == "snippets":
                out["snippet_tokens"].append(first.stats.get("snippet_tokens", 0))
            t0 = time.perf_counter()
            second = engine.complete(
                CompletionRequest(key, edited, offset + 1, key, "python", snippets=ctx)
            )
            took = (time.perf_counter() - t0) * 1000
            if second.mode not in ("single", "multi"):
                continue
            out[variant]["ratio"].append(took / first.timings["model_ms"])
            a, b = first.stats, second.stats
            if a.get("prefill_ms"):
                out[variant]["prefill_ratio"].append(b["prefill_ms"] / a["prefill_ms"])
            if b.get("prompt_tokens"):
                out[variant]["reuse"].append(b["reused_tokens"] / b["prompt_tokens"])
    return out


async def run(args: argparse.Namespace) -> dict:
    singles, multis = build_cases(args.cases)
    res: dict = {
        "overhead_ms": [],
        "client_overhead_ms": [],
        "single_ms": [],
        "multi_ms": [],
        "typed_ahead_ms": [],
        "typed_ahead_hits": 0,
        "typed_ahead_tries": 0,
        "burst_generations": [],
        "cancel_to_stop_ms": [],
        "cancel_request_stop_ms": [],
        "declined_while_busy_ms": [],
        "declined_before_busy_done": 0,
        "step_ms": [],
        "tokens_per_pass": [],
        # one character typed after the first suggestion: "next" is the original code's
        # next character, "adversarial" an arbitrary one that does not match the suggestion
        "next": {"ratio": [], "prefill_ratio": [], "reuse": []},
        "adversarial": {"ratio": [], "prefill_ratio": [], "reuse": []},
        "examples": [],
        "not_answered": [],  # cases whose first request got no model answer, and why
    }
    # In-process first, while no server competes for the cores.
    res["components"] = components()

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

    # Warm-up: loads (and on a fresh machine converts) the model; not measured.
    t0 = time.perf_counter()
    b.open("file:///bench/warmup.py", "def f(x):\n    ")
    await b.request("file:///bench/warmup.py", 1, 4)
    res["first_request_incl_load_s"] = round(time.perf_counter() - t0, 2)
    # What the server actually runs: model, device, weight format.
    res["backend"] = (await b.stats())["backend"]

    def edit(variant: str, took: float, first: dict, entry: dict) -> None:
        """Record the request after a one-character edit against the first request."""
        if entry.get("outcome") not in ("single", "multi"):
            return  # answered without the model (declined, or cached)
        model_ms = first.get("timings", {}).get("model_ms", 0.0)
        if model_ms > 0:
            res[variant]["ratio"].append(took / model_ms)
        before, after = first.get("stats", {}), entry.get("stats", {})
        if before.get("prefill_ms") and "prefill_ms" in after:
            res[variant]["prefill_ratio"].append(after["prefill_ms"] / before["prefill_ms"])
        if after.get("prompt_tokens"):
            res[variant]["reuse"].append(after["reused_tokens"] / after["prompt_tokens"])

    for case in singles + multis:
        uri = f"file:///bench/{case.kind}/{case.name.replace(':', '_')}"
        b.open(uri, case.text)
        await asyncio.sleep(0.2)  # not part of a typing burst
        items, rtt = await b.request(uri, case.line, case.character)
        first = await b.last()
        if first.get("outcome") not in ("single", "multi"):  # declined, timed out, failed
            res["not_answered"].append(f"{case.name}: {first.get('outcome')}")
            continue
        model_ms = first.get("timings", {}).get("model_ms", 0.0)
        res[f"{case.kind}_ms"].append(rtt)
        st = first.get("stats", {})
        if st.get("generated_tokens"):
            passes = max(1, st["generated_tokens"] - st.get("accepted_tokens", 0))
            res["step_ms"].append(st["decode_ms"] / passes)
            res["tokens_per_pass"].append(st["generated_tokens"] / passes)
        res["overhead_ms"].append(first["server_ms"] - model_ms)
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
        # The headline: one character as typing goes on, the original code's next
        # character, where the suggestion does not start with it (else it is a
        # typed-ahead hit, above).
        nxt = case.next_text[:1]
        if nxt and nxt != "\n" and not sugg.startswith(nxt):
            took, entry = await b.type_and_ask(*at, nxt)
            edit("next", took, first, entry)
        # One arbitrary character that does not match the suggestion (adversarial: the
        # code stops making sense), always a new model call.
        took, entry = await b.type_and_ask(*at, next(c for c in "qzjx_" if not sugg.startswith(c)))
        edit("adversarial", took, first, entry)

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

    # While a generation runs: a request the policy declines (the cursor inside a string)
    # is answered at once, and `$/cancelRequest` stops the generation.
    declined = "file:///bench/declined.py"
    b.open(declined, 'x = "hello world"\n')
    for i, case in enumerate((singles + multis)[: args.bursts]):
        uri = f"file:///bench/busy/{case.name.replace(':', '_')}"
        b.open(uri, case.text)
        await asyncio.sleep(0.3)
        started = (await b.stats())["generations_started"]
        fut = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            b.params(uri, case.line, case.character),
            msg_id=900_000 + i,
        )
        if not await b.generation_started(started + 1):
            continue
        _, took = await b.request(declined, 0, 8)
        if (await b.last())["outcome"] == "none":
            res["declined_while_busy_ms"].append(took)
            res["declined_before_busy_done"] += not fut.done()
        if fut.done():
            continue  # the generation ended by itself: nothing to cancel
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=900_000 + i))
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(fut)
        # Once the worker has stopped, the server notes in the request's entry how soon
        # the decode loop noticed (cancel_to_stop_ms) and how far it got.
        for _ in range(3000):
            entry = next((r for r in reversed((await b.stats())["recent"]) if r["uri"] == uri), {})
            if "stats" in entry:
                if "cancel_to_stop_ms" in entry:
                    res["cancel_request_stop_ms"].append(entry["cancel_to_stop_ms"])
                break
            await asyncio.sleep(0.01)

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    res["context_edits"] = context_edits(singles, multis, args.model)
    return res


def p(xs: list[float], digits: int = 2) -> dict:
    if not xs:
        return {"n": 0, "p50": None, "p95": None}  # JSON has no NaN
    return {"n": len(xs), "p50": round(pct(xs, 0.5), digits), "p95": round(pct(xs, 0.95), digits)}


DEFINITION = "the new request's round trip ÷ the first request's model time"
TYPED = {
    "next": "the original code's next character, where the first suggestion did not start "
    "with it (the headline)",
    "adversarial": "an arbitrary character that does not match the first suggestion",
}


def ratio(variant: str, res: dict) -> dict:
    xs = res[variant]["ratio"]
    return {
        **p(xs),
        "mean": round(statistics.fmean(xs), 3) if xs else None,
        "definition": DEFINITION,
        "typed": TYPED[variant],
        # the new request's prompt processing (prefill) / the first request's
        "prefill_ratio": p(res[variant]["prefill_ratio"]),
        # share of the new request's prompt tokens whose KV cache was reused
        "prompt_reuse": p(res[variant]["reuse"]),
    }


def summarise(res: dict, args: argparse.Namespace) -> dict:
    from hone.server.options import Options

    tries = res["typed_ahead_tries"]
    backend = res["backend"]
    comp = res["components"]
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        # as the server reported it in hone/stats: model, device, dtype (weight format), ...
        "backend": backend,
        "model": backend.get("model", args.model),
        "device": backend.get("device"),
        "dtype": backend.get("dtype"),
        "settings": {
            "cases_per_kind": args.cases,
            "debounce_ms": args.debounce_ms,
            "context_tokens": Options().context_tokens,
        },
        "first_request_incl_load_s": res["first_request_incl_load_s"],
        "server_overhead_ms": p(res["overhead_ms"]),
        "client_roundtrip_overhead_ms": p(res["client_overhead_ms"]),
        "single_line_ms": p(res["single_ms"]),
        "multi_line_ms": p(res["multi_ms"]),
        # the headline: the original code's next character, p50
        "one_char_edit_ratio": ratio("next", res),
        "one_char_edit_ratio_adversarial": ratio("adversarial", res),
        # in-process, the same cases without and with context snippets in the prompt
        "one_char_edit_ratio_context": {
            "definition": "the new request's engine time ÷ the first request's model time "
            "(in-process, fixed snippets; through the server with retrieval: bench_context.py)",
            "typed": TYPED["next"],
            "snippet_tokens": p(res["context_edits"]["snippet_tokens"], 0),
            **{
                variant: {
                    **p(res["context_edits"][variant]["ratio"]),
                    "prefill_ratio": p(res["context_edits"][variant]["prefill_ratio"]),
                    "prompt_reuse": p(res["context_edits"][variant]["reuse"]),
                }
                for variant in ("none", "snippets")
            },
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
        # a superseded generation's stop latency, in units of the median decode step
        "superseded_stop_decode_steps": p(
            [x / pct(res["step_ms"], 0.5) for x in res["cancel_to_stop_ms"]]
            if res["step_ms"]
            else []
        ),
        # the same for a generation stopped by $/cancelRequest
        "cancel_request_stop_ms": p(res["cancel_request_stop_ms"]),
        # round trip of a request the policy declines while another document's
        # generation runs; answered_first: how many came back before that generation
        "declined_while_busy_ms": {
            **p(res["declined_while_busy_ms"]),
            "answered_first": res["declined_before_busy_done"],
        },
        "decode_step_ms": p(res["step_ms"]),
        "tokens_per_forward_pass": p(res["tokens_per_pass"]),
        "components_ms": {
            "policy_decide_2000_lines": p(comp["policy"], 3),
            "policy_decide_5mb": p(comp["policy_5mb"], 3),
            "is_complete_multi_line": p(comp["is_complete"], 4),
            "prompt_render_2500_lines": p(comp["render"], 4),
            "embedded_backend_construct": p(comp["construct"], 3),
        },
        "not_answered": res["not_answered"],
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
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 case per kind, 1 burst")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.cases, args.bursts = 1, 1
    summary = summarise(asyncio.run(run(args)), args)
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
