"""Completion quality on held-out real code: standard-library modules that nobody on the
team wrote, and that no prompt or threshold was tuned on (disjoint from the latency
benchmark's files). The engine runs in-process with the real model.

Single-line: the line is cut after its first '=' or '('; the suggestion is compared with the
rest of the original line. Multi-line: a function body is removed; the suggestion's first
line is compared with the original body's first line.

    python benchmarks/eval_completion.py [--model SPEC] [--cases 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import difflib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import build_cases, emit  # noqa: E402
from hone.agent.completion.engine import CompletionEngine, CompletionRequest  # noqa: E402
from hone.models.registry import load_backend  # noqa: E402

# Held out: never used for tuning; do not add files that appear in bench_latency.FILES.
EVAL_FILES = [
    "ipaddress.py",
    "statistics.py",
    "pprint.py",
    "base64.py",
    "dataclasses.py",
    "tokenize.py",
    "configparser.py",
    "shutil.py",
    "operator.py",
    "locale.py",
]


def first_line(text: str) -> str:
    return next((ln.strip() for ln in text.split("\n") if ln.strip()), "")


def score(suggestion: str, original: str) -> dict[str, float]:
    s, o = suggestion.strip(), original.strip()
    return {
        "exact": float(bool(s) and s == o),
        "prefix": float(bool(s) and o.startswith(s)),
        "similarity": difflib.SequenceMatcher(None, s, o).ratio() if s else 0.0,
        "empty": float(not s),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("HONE_MODEL"))
    ap.add_argument("--cases", type=int, default=20, help="cases per kind")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    singles, multis = build_cases(args.cases, seed=11, files=EVAL_FILES, per_file=2)
    backend = load_backend(args.model)
    backend.load()
    engine = CompletionEngine(backend)
    results: dict[str, list[dict[str, float]]] = {"single": [], "multi": []}
    examples = []
    t0 = time.perf_counter()
    for case in singles + multis:
        lines = case.text.split("\n")
        offset = sum(len(x) + 1 for x in lines[: case.line]) + case.character
        req = CompletionRequest(case.name, case.text, offset, case.name, "python")
        out = engine.complete(req)
        suggestion = out.items[0] if out.items else ""
        if case.kind == "single":
            sc = score(suggestion.split("\n")[0], case.next_text)
        else:
            sc = score(first_line(suggestion), first_line(case.next_text))
        results[case.kind].append(sc)
        if len(examples) < 6:
            examples.append(
                {"case": case.name, "got": suggestion[:120], "want": case.next_text[:120]}
            )
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model or "embedded SmolLM2-135M-Instruct",
        "files": EVAL_FILES,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    for kind, rows in results.items():
        summary[kind] = (
            {"n": len(rows)}
            | {
                k: round(statistics.fmean(r[k] for r in rows), 3)
                for k in ("exact", "prefix", "similarity", "empty")
            }
            if rows
            else {"n": 0}
        )
    summary["examples"] = examples
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
