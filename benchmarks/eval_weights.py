"""Completion quality per weight format: the same sites through the same engine path.

The sites, the engine and the scores are :mod:`eval_completion`'s (both splits, single- and
multi-line); only the weights differ. Runs can be sharded across processes (the sites are
built the same way in each and split ``k::n``), then merged into one paired comparison:

    python benchmarks/eval_weights.py run --dtype int8 --device cpu --shard 0/4 --out A0.json
    python benchmarks/eval_weights.py run --dtype bf16 --device cpu --shard 0/4 --out B0.json
    ...
    python benchmarks/eval_weights.py merge --a 'A*.json' --b 'B*.json' \
        --out benchmarks/results/eval-weights.json

``merge`` pairs the sites of the two formats and writes, per kind, each format's exact
match and edit similarity with 95% bootstrap intervals, and the paired difference
(b - a) with its interval, absolute and relative to a. ``HONE_EVAL_STDLIB`` points at a
copy of the standard library the sites are cut from (another machine's Python version
has other files).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_completion as ec  # noqa: E402
from bench_latency import emit, machine  # noqa: E402
from hone.agent.completion.engine import CompletionEngine  # noqa: E402


def run(args: argparse.Namespace) -> int:
    if os.environ.get("HONE_EVAL_STDLIB"):
        ec.STDLIB = Path(os.environ["HONE_EVAL_STDLIB"])
    from hone.models.registry import embedded_backend

    backend = embedded_backend(dtype=args.dtype, threads=args.threads)
    if args.device != "auto":
        backend.device = args.device  # read by load()
    backend.load()
    engine = CompletionEngine(backend)
    k, n = (int(x) for x in args.shard.split("/"))
    facts = backend.describe()
    # Interleave splits and kinds, so that a run cut short still covers all four.
    groups = []
    for split in ("dev", "heldout"):
        sites = ec.build_sites(split, args.multi, args.single, args.sources, backend.count_tokens)
        for kind in ("single", "multi"):
            groups.append([(split, s) for s in sites if s.kind == kind])
    ordered = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
    rows: list[dict] = []
    t0 = time.perf_counter()
    head = {
        "machine": machine(),
        "device": facts.get("device", ""),
        "weights": facts.get("dtype", args.dtype),
        "model": facts.get("model", ""),
        "shard": args.shard,
    }
    for split, site in ordered[k::n]:
        row = ec.evaluate(engine, [site], ["engine"])[0]
        rows.append(
            {
                "split": split,
                "site": row["site"],
                "kind": row["kind"],
                "source": row["source"],
                "exact": row["engine"]["exact"],
                "es": row["engine"]["es"],
                "text": row["engine_text"],
            }
        )
        # written after every site: a run stopped by a time limit keeps what it scored
        out = head | {"seconds": round(time.perf_counter() - t0, 1), "rows": rows}
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _load(pattern: str) -> tuple[dict, dict[tuple[str, str, str], dict]]:
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no files match {pattern}")
    parts = [json.loads(Path(f).read_text()) for f in files]
    rows = {(r["split"], r["kind"], r["site"]): r for p in parts for r in p["rows"]}
    head = {k: parts[0][k] for k in ("machine", "device", "weights", "model")}
    head["seconds"] = round(sum(p["seconds"] for p in parts), 1)
    head["shards"] = len(parts)
    return head, rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def merge(args: argparse.Namespace) -> int:
    head_a, rows_a = _load(args.a)
    head_b, rows_b = _load(args.b)
    keys = sorted(set(rows_a) & set(rows_b))
    rng = random.Random(ec.SEED)
    label_a, label_b = head_a["weights"], head_b["weights"]
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": head_a["machine"],
        "model": head_a["model"],
        "a": head_a,
        "b": head_b,
        "comparison": f"{label_b} - {label_a}, paired by site",
        "unpaired_sites": len(set(rows_a) ^ set(rows_b)),
    }
    for kind in ("single", "multi"):
        ks = [key for key in keys if key[1] == kind]
        if not ks:
            continue
        block: dict = {"n": len(ks)}
        for metric in ("exact", "es"):
            a = [rows_a[key][metric] for key in ks]
            b = [rows_b[key][metric] for key in ks]
            diff = [y - x for x, y in zip(a, b, strict=True)]
            mean_a = _mean(a)
            block[metric] = {
                label_a: round(mean_a, 4),
                f"{label_a}_ci95": ec.bootstrap(a, rng),
                label_b: round(_mean(b), 4),
                f"{label_b}_ci95": ec.bootstrap(b, rng),
                "diff": round(_mean(diff), 4),
                "diff_ci95": ec.bootstrap(diff, rng),
                "relative_diff": round(_mean(diff) / mean_a, 4) if mean_a else None,
            }
        block["identical_suggestions"] = sum(rows_a[k]["text"] == rows_b[k]["text"] for k in ks)
        result[kind] = block
    emit(result, args.out)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dtype", default="int8")
    r.add_argument("--device", default="auto")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--shard", default="0/1")
    r.add_argument("--multi", type=int, default=150, help="multi-line sites per split")
    r.add_argument("--single", type=int, default=150, help="single-line sites per split")
    r.add_argument("--sources", type=Path, default=ec.SOURCES)
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("merge")
    m.add_argument("--a", required=True, help="glob of the first format's shard files")
    m.add_argument("--b", required=True, help="glob of the second format's shard files")
    m.add_argument("--out", type=Path)
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else merge(args)


if __name__ == "__main__":
    sys.exit(main())
