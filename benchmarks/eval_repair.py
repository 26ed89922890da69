"""The repair loop on the injected-fault bug set (``bugs.py``): how many bugs does
``hone.agent.repair.loop.repair`` fix, per fault kind, how long does it take, where did the
fixes come from, and is every fix it claims real?

Per bug: its repository (``bugs.materialize``, a git repository with the fault committed),
the tree hashed; ``repair(root, test, budget_s=...)`` for the bug's first failing test with
the templates and, unless ``--no-model``, the model's edits (the embedded model by default,
``--model SPEC`` for another); the tree hashed again (``workspace_changed`` must stay 0:
nothing is written unless applied). A claimed fix is checked independently, in a fresh
copy of the buggy repository with the fix written into it: the test must pass, and every
test of the fix's validation files (and of the bug's other failing tests' files) that
passed with the bug in must still pass. A claim that fails this check is a ``false_claim``
(target: zero). Also recorded: whether the fix restores the original code exactly
(``restores_original``; a fix that passes the tests without it is plausible, not
necessarily the original intent) and whether all of the bug's failing tests pass with it.

    python benchmarks/eval_repair.py --package toolz [--limit N] [--budget 120] [--no-model]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bugs as bugset  # noqa: E402
from bench_latency import emit, machine, pct  # noqa: E402
from eval_localize import rate  # noqa: E402
from hone.agent.repair.localize import LocalizeError  # noqa: E402
from hone.agent.repair.loop import FixReport, backend_proposer, repair  # noqa: E402
from hone.agent.repair.runner import run_tests  # noqa: E402

SEED = bugset.SEED
BUDGET_S = 120


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if ".git" in p.relative_to(root).parts or not p.is_file():
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def check_claim(bug: dict, report: FixReport, sources: Path) -> dict:
    """The fix, re-run from scratch: the failing test passes, nothing that passed breaks."""
    files = sorted(
        {*report.fixes[0].validated_with, *(t.split("::")[0] for t in bug["failing_tests"])}
    )
    with tempfile.TemporaryDirectory(prefix="hone-claim-") as tmp:
        root = Path(tmp) / bug["package"]
        bugset.materialize(bug, root, sources)
        before = run_tests(root, files, timeout_s=600)
        for path, text in report.files.items():
            (root / path).write_text(text, encoding="utf-8", newline="")
        after = run_tests(root, files, timeout_s=600)
        original = _original_text(bug, sources)
    test = report.test
    passed = after.results.get(test) is not None and after.results[test].outcome == "passed"
    broken = [
        n
        for n, r in before.results.items()
        if r.outcome == "passed"
        and (n not in after.results or after.results[n].outcome != "passed")
    ]
    all_failing = all(
        after.results.get(t) is not None and after.results[t].outcome == "passed"
        for t in bug["failing_tests"]
    )
    restores = report.files.get(bug["path"]) == original and len(report.files) == 1
    return {
        "test_passes": passed,
        "broken": broken[:5],
        "false_claim": not passed or bool(broken),
        "all_failing_pass": all_failing,
        "restores_original": restores,
    }


def _original_text(bug: dict, sources: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="hone-orig-") as tmp:
        root = Path(tmp) / bug["package"]
        bugset.unpack(bug["package"], sources, root)
        return (root / bug["path"]).read_text(encoding="utf-8")


def evaluate(bug: dict, sources: Path, budget: float, propose, samples: int) -> dict:
    row: dict = {"id": bug["id"], "kind": bug["kind"], "test": bug["failing_tests"][0]}
    with tempfile.TemporaryDirectory(prefix="hone-repair-") as tmp:
        root = Path(tmp) / bug["package"]
        bugset.materialize(bug, root, sources)
        before = tree_hash(root)
        t0 = time.perf_counter()
        try:
            report = repair(root, row["test"], budget_s=budget, propose=propose, samples=samples)
        except LocalizeError as exc:  # the test passes, or cannot be run
            row.update(seconds=round(time.perf_counter() - t0, 2), fixed=False)
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            row["workspace_changed"] = tree_hash(root) != before
            return row
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["workspace_changed"] = tree_hash(root) != before
    row["fixed"] = report.fixed
    row["source"] = report.fixes[0].source if report.fixed else ""
    row["candidates"] = len(report.candidates)
    row["by_source"] = {
        s: sum(a.source == s for a in report.candidates) for s in ("template", "model")
    }
    row["outcomes"] = dict(
        sorted(
            {o: sum(a.outcome == o for a in report.candidates) for o in _outcomes(report)}.items()
        )
    )
    row["timings"] = {k: round(v, 2) for k, v in report.timings.items()}
    checks = sorted(a.seconds for a in report.candidates if a.source == "template" and a.seconds)
    row["template_check_s"] = {
        "n": len(checks),
        "median": round(checks[len(checks) // 2], 2) if checks else None,
        "sum": round(sum(checks), 1),
    }
    row["suspect_rank"] = next(
        (
            i
            for i, s in enumerate(report.localization.functions, 1)
            if s.path == bug["path"] and s.name == bug["function"]
        ),
        None,
    )
    if report.fixed:
        row["fix"] = report.fixes[0].description
        row["diff"] = report.diff[:2000]
        row.update(check_claim(bug, report, sources))
    return row


def _outcomes(report: FixReport) -> set[str]:
    return {a.outcome for a in report.candidates}


def summarise(rows: list[dict], budget: float) -> dict:
    rng = random.Random(SEED)
    if not rows:
        return {"n": 0}
    seconds = [r["seconds"] for r in rows]
    fixed = [r for r in rows if r.get("fixed")]
    return {
        "n": len(rows),
        "errors": sum("error" in r for r in rows),
        "fixed": rate([float(bool(r.get("fixed"))) for r in rows], rng),
        "fixed_within_120s": round(
            statistics.fmean(bool(r.get("fixed")) and r["seconds"] <= 120 for r in rows), 3
        ),
        "restores_original": sum(bool(r.get("restores_original")) for r in fixed),
        "all_failing_pass": sum(bool(r.get("all_failing_pass")) for r in fixed),
        "false_claims": sum(bool(r.get("false_claim")) for r in fixed),
        "workspace_changed": sum(bool(r.get("workspace_changed")) for r in rows),
        "fixes_by_source": {
            s: sum(r.get("source") == s for r in fixed) for s in ("template", "model")
        },
        "seconds": {
            "median": round(statistics.median(seconds), 1),
            "p95": round(pct(seconds, 0.95), 1),
            "budget": budget,
        },
        "seconds_fixed_median": round(statistics.median([r["seconds"] for r in fixed]), 1)
        if fixed
        else None,
    }


def by_kind(rows: list[dict]) -> list[dict]:
    out = []
    for kind in bugset.KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        fixed = [r for r in mine if r.get("fixed")]
        out.append(
            {
                "kind": kind,
                "n": len(mine),
                "fixed": round(len(fixed) / len(mine), 3),
                "restores_original": sum(bool(r.get("restores_original")) for r in fixed),
                "from_model": sum(r.get("source") == "model" for r in fixed),
                "median_s": round(statistics.median(r["seconds"] for r in mine), 1),
                "in_templates": kind not in bugset.NOT_IN_TEMPLATES,
            }
        )
    return out


def code_version() -> str:
    """The repair code's commit (with ``+changes`` when the working tree differs from it),
    read when the run starts: a result belongs to the code that made it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agent", "models", "server"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", choices=sorted(bugset.PACKAGES), required=True)
    ap.add_argument("--sources", type=Path, default=bugset.SOURCES)
    ap.add_argument("--limit", type=int, help="the first N bugs only")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="seconds per bug")
    ap.add_argument("--no-model", action="store_true", help="the templates only")
    ap.add_argument("--model", default=None, help="model spec (default: the embedded model)")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    bugs = bugset.load_bugs(args.package, args.sources)[: args.limit]
    propose, describe = None, {"model": "none (templates only)", "device": "cpu", "dtype": "-"}
    if not args.no_model:
        from hone.models.registry import load_backend

        backend = load_backend(args.model)
        backend.load()
        propose = backend_proposer(backend)
        describe = backend.describe()
    t_start = time.perf_counter()
    code = code_version()
    rows = []
    for i, bug in enumerate(bugs, 1):
        row = evaluate(bug, args.sources, args.budget, propose, args.samples)
        rows.append(row)
        print(
            f"[{i}/{len(bugs)}] {bug['id']} {bug['kind']:<16} fixed={row.get('fixed')} "
            f"{row.get('source', '')} {row['seconds']:.1f}s rank={row.get('suspect_rank')} "
            f"false={row.get('false_claim')} orig={row.get('restores_original')} "
            f"{row.get('error', '')}",
            file=sys.stderr,
            flush=True,
        )
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "code": code,
        "model": describe.get("model", describe.get("name", "")),
        "device": describe.get("device", "cpu"),
        "weights": describe.get("dtype", ""),
        "seed": SEED,
        "split": bugset.PACKAGES[args.package].split,
        "packages": {bugset.PACKAGES[args.package].spec: len(bugs)},
        "repair": {"budget_s": args.budget, "samples": args.samples, "model": not args.no_model},
        "overall": summarise(rows, args.budget),
        "seconds": round(time.perf_counter() - t_start, 1),
        "by_kind": by_kind(rows),
        "bugs": rows,
    }
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
