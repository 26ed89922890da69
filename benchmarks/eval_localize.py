"""Fault localization on the injected-fault bug set (``bugs.py``): is the faulty function
first, or in the top 5, of ``localize``'s ranking, and of the two baselines'?

Per bug: its repository (``bugs.materialize`` into a temporary folder), then
``hone.agent.repair.localize.localize(root, test)`` for the bug's first failing test
(with no cap on the number of functions returned, so that every candidate is ranked).
The target is the function the fault is in: the same path and qualified name, with lines
overlapping the function's in the buggy file. Three rankings of the same candidates:

- ``fused``: ``localize``'s own ranking (its ``WEIGHTS`` over the signals);
- ``traceback`` (baseline): the candidates with a ``traceback`` signal, by that signal
  alone: the deepest in-repository frame's enclosing function first (1), each frame
  further up ``TRACEBACK_DECAY`` times the one below; functions with no frame are not
  ranked (a miss when the target is one of them);
- ``ochiai`` (baseline, plain Ochiai at function level): the functions the failing test
  ran, by ``1 / sqrt(1 + p)`` where ``p`` counts the passing tests of the test's file that
  ran any line of the function (one failing test: the one being localized);
- ``spectrum`` (ablation, not a baseline): the candidates with a ``spectrum`` signal, by
  that signal alone: hone's own spectrum (per line Ochiai over all the failing tests of the
  file, the best line, with a little for lines only failing tests ran).

Ties (equal scores) are broken by (path, start line), the order ``localize`` itself
uses; ``top1_expected`` and ``top5_expected`` are the hit rates expected when ties are
broken at random instead (a target tied with ``t`` functions, ``a`` ranked ahead of them,
counts ``(k - a) / t`` at top-k, between 0 and 1). A bug whose localization fails (the
test passes, cannot be run) is a miss for every ranking. Intervals are 95% bootstrap
intervals of the mean over bugs (seed fixed); the margin is the fused ranking's rate
minus the better baseline's, with a paired interval.

    python benchmarks/eval_localize.py --package toolz [--split dev] [--out FILE]
    python benchmarks/eval_localize.py --split dev      # every package of the split
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bugs as bugset  # noqa: E402
from bench_latency import emit, machine, pct  # noqa: E402
from eval_completion import bootstrap  # noqa: E402
from hone.agent.repair import localize as localize_module  # noqa: E402
from hone.agent.repair.localize import (  # noqa: E402
    Localization,
    LocalizeError,
    Suspect,
    localize,
)

SEED = bugset.SEED
SYSTEMS = ("fused", "traceback", "ochiai", "spectrum")
BASELINES = ("traceback", "ochiai")
KS = (1, 5)
TIMEOUT_S = 120


def rankings(
    functions: list[Suspect], ochiai: dict[tuple[str, str, int], float]
) -> dict[str, tuple[list[Suspect], Callable]]:
    """The rankings of ``localize``'s candidates, each with its scoring function."""

    def by(score: Callable[[Suspect], float]) -> tuple[list[Suspect], Callable]:
        ranked = [s for s in functions if score(s) > 0]
        ranked.sort(key=lambda s: (-score(s), s.path, s.start_line))
        return ranked, score

    return {
        "fused": (list(functions), lambda s: s.score),
        "traceback": by(lambda s: s.signals.get("traceback", 0.0)),
        "ochiai": by(lambda s: ochiai.get((s.path, s.name, s.start_line), 0.0)),
        "spectrum": by(lambda s: s.signals.get("spectrum", 0.0)),
    }


def plain_ochiai(found: Localization, functions: list[Suspect]) -> dict:
    """Function-level Ochiai with the one failing test against its file's passing tests."""
    run = found.run
    coverage = (run.coverage or {}) if run is not None else {}
    failed = coverage.get(found.test, {})
    passing = [
        coverage[n]
        for n, r in (run.results.items() if run is not None else ())
        if r.outcome == "passed" and n in coverage
    ]
    out = {}
    for s in functions:
        span = range(s.start_line, s.end_line + 1)
        if not any(line in span for line in failed.get(s.path, ())):
            continue
        p = sum(1 for cov in passing if any(line in span for line in cov.get(s.path, ())))
        out[(s.path, s.name, s.start_line)] = 1 / math.sqrt(1 + p)
    return out


def is_target(suspect: Suspect, bug: dict) -> bool:
    return (
        suspect.path == bug["path"]
        and suspect.name == bug["function"]
        and suspect.start_line <= bug["end_line"]
        and suspect.end_line >= bug["start_line"]
    )


def place(ranked: list[Suspect], score: Callable, bug: dict) -> dict:
    """The target's rank (1-based; None when not ranked), and how many functions score
    higher (``ahead``) or the same (``ties``, the target included)."""
    for i, suspect in enumerate(ranked, 1):
        if is_target(suspect, bug):
            mine = round(score(suspect), 9)
            ahead = sum(round(score(s), 9) > mine for s in ranked)
            ties = sum(round(score(s), 9) == mine for s in ranked)
            return {"rank": i, "ahead": ahead, "ties": ties}
    return {"rank": None, "ahead": None, "ties": None}


def hit(p: dict, k: int) -> float:
    return float(p["rank"] is not None and p["rank"] <= k)


def expected_hit(p: dict, k: int) -> float:
    if p["rank"] is None:
        return 0.0
    return min(1.0, max(0.0, (k - p["ahead"]) / p["ties"]))


def evaluate(bug: dict, sources: Path) -> dict:
    """Materialize ``bug``, localize its first failing test, place the target."""
    row: dict = {
        "id": bug["id"],
        "kind": bug["kind"],
        "target": f"{bug['path']}::{bug['function']}",
        "test": bug["failing_tests"][0],
        "failing_tests": len(bug["failing_tests"]),
    }
    with tempfile.TemporaryDirectory(prefix="hone-localize-") as tmp:
        root = Path(tmp) / bug["package"]
        t0 = time.perf_counter()
        bugset.materialize(bug, root, sources)
        row["materialize_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        try:
            found = localize(root, row["test"], timeout_s=TIMEOUT_S, limit=1_000_000)
        except LocalizeError as exc:  # TestPasses too
            row["localize_s"] = round(time.perf_counter() - t0, 3)
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            row["ranks"] = {s: place([], lambda s: 0.0, bug) for s in SYSTEMS}
            return row
        row["localize_s"] = round(time.perf_counter() - t0, 3)
    functions = found.functions
    row["message"] = found.message[:200]
    row["candidates"] = len(functions)
    row["passing_tests"] = found.passing_tests
    row["notes"] = found.notes
    target = next((s for s in functions if is_target(s, bug)), None)
    row["target_signals"] = row_signals(target) if target is not None else None
    ochiai = plain_ochiai(found, functions)
    row["ranks"] = {
        system: place(r, score, bug) for system, (r, score) in rankings(functions, ochiai).items()
    }
    row["top5"] = [
        {"function": f"{s.path}::{s.name}", "score": round(s.score, 4), **row_signals(s)}
        for s in functions[:5]
    ]
    return row


def row_signals(suspect: Suspect) -> dict[str, float]:
    return {k: round(v, 4) for k, v in suspect.signals.items()}


def rate(values: list[float], rng: random.Random) -> dict:
    return {"mean": round(statistics.fmean(values), 3), "ci95": bootstrap(values, rng)}


def summarise(rows: list[dict]) -> dict:
    """Hit rates per ranking with intervals, the margin over the better baseline, and how
    often each signal reaches the target."""
    rng = random.Random(SEED)
    out: dict = {"n": len(rows), "errors": sum("error" in r for r in rows)}
    if not rows:
        return out
    for system in SYSTEMS:
        block: dict = {}
        for k in KS:
            block[f"top{k}"] = rate([hit(r["ranks"][system], k) for r in rows], rng)
            block[f"top{k}_expected"] = round(
                statistics.fmean(expected_hit(r["ranks"][system], k) for r in rows), 3
            )
        block["ranked"] = round(
            statistics.fmean(r["ranks"][system]["rank"] is not None for r in rows), 3
        )
        out[system] = block
    for k in KS:
        best = max(BASELINES, key=lambda b: out[b][f"top{k}"]["mean"])
        diffs = [hit(r["ranks"]["fused"], k) - hit(r["ranks"][best], k) for r in rows]
        out[f"margin_top{k}"] = {"over": best, **rate(diffs, rng)}
    signals = [r.get("target_signals") or {} for r in rows]
    out["target_has_signal"] = {
        name: round(statistics.fmean(s.get(name, 0.0) > 0 for s in signals), 3)
        for name in localize_module.SIGNALS
    }
    return out


def by_kind(rows: list[dict]) -> list[dict]:
    """One row per kind: its bugs' hit rates per ranking, and how often each signal
    reaches the target (a list: the docs' generic table leaves it out)."""
    rng = random.Random(SEED)
    out = []
    for kind in bugset.KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        entry: dict = {"kind": kind, "n": len(mine)}
        for system in SYSTEMS:
            for k in KS:
                values = [hit(r["ranks"][system], k) for r in mine]
                entry[f"{system}_top{k}"] = round(statistics.fmean(values), 3)
                entry[f"{system}_top{k}_ci95"] = bootstrap(values, rng)
        signals = [r.get("target_signals") or {} for r in mine]
        for name in localize_module.SIGNALS:
            entry[f"target_{name}"] = round(
                statistics.fmean(s.get(name, 0.0) > 0 for s in signals), 3
            )
        entry["in_templates"] = kind not in bugset.NOT_IN_TEMPLATES
        out.append(entry)
    return out


def timing(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2) if values else None,
        "p95": round(pct(values, 0.95), 2) if values else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", choices=sorted(bugset.PACKAGES))
    ap.add_argument(
        "--split",
        choices=["dev", "heldout"],
        help="the package's split (checked), or alone: every package of the split",
    )
    ap.add_argument("--sources", type=Path, default=bugset.SOURCES)
    ap.add_argument("--limit", type=int, help="the first N bugs of each package only")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.package is None and args.split is None:
        ap.error("name --package or --split")
    if args.package is not None:
        split = bugset.PACKAGES[args.package].split
        if args.split is not None and args.split != split:
            ap.error(f"{args.package} is in the {split} split, not {args.split}")
        packages = [args.package]
    else:
        packages = [n for n, p in bugset.PACKAGES.items() if p.split == args.split]
    t_start = time.perf_counter()
    rows: list[dict] = []
    counts: dict = {}
    for name in packages:
        found = bugset.load_bugs(name, args.sources)
        if args.limit is not None:
            found = found[: args.limit]
        counts[bugset.PACKAGES[name].spec] = len(found)
        for i, bug in enumerate(found, 1):
            row = evaluate(bug, args.sources)
            rows.append(row)
            ranks = " ".join(f"{s}={row['ranks'][s]['rank']}" for s in SYSTEMS)
            print(
                f"[{i}/{len(found)}] {bug['id']} {bug['kind']:<16} {ranks} "
                f"{row['localize_s']:.1f}s {row.get('error', '')}",
                file=sys.stderr,
                flush=True,
            )
    splits = sorted({bugset.PACKAGES[n].split for n in packages})
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": "none (localization only)",
        "device": "cpu",
        "weights": "none",
        "seed": SEED,
        "split": splits[0] if len(splits) == 1 else splits,
        "packages": counts,
        "localize": {
            "weights": localize_module.WEIGHTS,
            "only_failing": localize_module.ONLY_FAILING,
            "traceback_decay": localize_module.TRACEBACK_DECAY,
            "timeout_s": TIMEOUT_S,
        },
        "overall": summarise(rows),
        "localize_s": timing([r["localize_s"] for r in rows]),
        "materialize_s": timing([r["materialize_s"] for r in rows]),
        "seconds": round(time.perf_counter() - t_start, 1),
        "by_kind": by_kind(rows),
        "bugs": rows,
    }
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
