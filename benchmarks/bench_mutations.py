"""The repair loop's mutation templates: time to generate one suspect's candidates.

`mutations()` parses the module, generates every template's mutations of one function and
checks each candidate parses; the repair loop calls it for each localized suspect. Measured
in-process (best of `--repeat` after a warm-up that loads the grammar and the query):

- a synthetic 200-line function of branches, arithmetic and calls (200 candidates, the
  repair loop's limit): the target is well under 100 ms;
- every function of 10 lines or more in a few standard-library modules (real code nobody
  here wrote): per-function time p50/p95/max, and the largest function's.

    python benchmarks/bench_mutations.py [--repeat 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import ast
import sys
import sysconfig
import time
from pathlib import Path

from hone.agent.repair.mutations import mutations

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ["argparse.py", "difflib.py", "textwrap.py", "json/decoder.py", "tarfile.py"]
TARGET_MS = 100.0


def big_function() -> str:
    """A 200-line function: 25 blocks of comparisons, arithmetic, a negation, calls."""
    body = []
    for i in range(25):
        body += [
            f"    if values[{i}] < limit and total >= {i}:",
            f"        total += values[{i}] * {i + 1}",
            f"    elif not values[{i} - 1]:",
            "        total -= len(values) // 2",
            "    else:",
            f"        count = max(count, total - {i})",
            f"    items.append(values[i:{i} + 1])",
            "    i = i + 1",
        ]
    source = "def big(values, limit):\n    total = count = i = 0\n    items = []\n"
    return source + "\n".join(body) + "\n    return total, count, items\n"


def best_ms(source: str, path: str, start: int, end: int, repeat: int) -> tuple[float, int]:
    best = float("inf")
    found = 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = len(mutations(source, path, start, end))
        best = min(best, time.perf_counter() - started)
    return best * 1000, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    # Imported here: tests load this file for big_function() without touching sys.path.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_latency import emit, machine, pct

    source = big_function()
    lines = len(source.splitlines())
    mutations(source, "big.py", 1, lines)  # warm: grammar and query loading
    big_ms, big_found = best_ms(source, "big.py", 1, lines, args.repeat)

    per_fn: list[tuple[float, int, str]] = []  # (ms, lines, where)
    for name in MODULES:
        text = (STDLIB / name).read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start, end = node.lineno, node.end_lineno or node.lineno
                if end - start + 1 >= 10:
                    ms, _ = best_ms(text, name, start, end, args.repeat)
                    per_fn.append((ms, end - start + 1, f"{name}:{node.name}"))
    times = [ms for ms, _, _ in per_fn]
    largest = max(per_fn, key=lambda item: item[1])
    slowest = max(per_fn)
    results = {
        "benchmark": "mutations",
        "machine": machine(),
        "python": sys.version.split()[0],
        "repeat": args.repeat,
        "synthetic_200_lines": {
            "lines": lines,
            "candidates": big_found,
            "ms": round(big_ms, 2),
            "target_ms": TARGET_MS,
            "within_target": big_ms < TARGET_MS,
        },
        "stdlib_functions": {
            "modules": MODULES,
            "functions": len(per_fn),
            "ms_p50": round(pct(times, 0.5), 2),
            "ms_p95": round(pct(times, 0.95), 2),
            "ms_max": round(slowest[0], 2),
            "slowest": slowest[2],
            "largest": {"where": largest[2], "lines": largest[1], "ms": round(largest[0], 2)},
        },
    }
    emit(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
