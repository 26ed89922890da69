"""Fault localization for a failing pytest test: which functions of the repository to
change, best first.

Three signals, each a score in [0, 1] per function:

- ``traceback``: the failing test's traceback frames inside the repository's source
  files (test files left out), mapped to their innermost enclosing function; the deepest
  frame scores 1, each frame further up ``TRACEBACK_DECAY`` times the one below it.
  Assertion-style tests often leave no frame inside the faulty function.
- ``spectrum``: per-test coverage of the tests of the failing test's file (one pytest run
  with coverage contexts, :mod:`.runner`). Per line, Ochiai's
  ``failed(l) / sqrt(total_failed * (failed(l) + passed(l)))`` over the file's failing
  tests (a fault usually fails several; each one that does not run the line lowers it);
  a function scores the best of its lines the test being fixed ran. Lines every passing
  test runs too score low; a line only failing tests run, all of them, scores 1.
- ``similarity``: how much of a function's vocabulary the failing test shares (its
  source and the error message): TF-IDF cosine over identifier-split tokens
  (:mod:`hone.retrieval.lexical`) among the functions the failing test ran, plus a bonus
  when the test names the function; scaled so the best scores 1.

Candidates are the functions and methods (innermost definition by tree-sitter, through
:func:`hone.retrieval.chunks.chunk_text`) of the non-test files in which the failing test
ran a line. The fused score is the weighted sum of the signals (``WEIGHTS``).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.agent.repair.edits import is_test_path as is_test_file
from hone.agent.repair.runner import (
    CollectionError,
    RunnerError,
    TestResult,
    TestRun,
    run_tests,
)
from hone.retrieval.chunks import Chunk, chunk_text
from hone.retrieval.lexical import tokens
from hone.retrieval.syntax import language_for_path

SIGNALS = ("traceback", "spectrum", "similarity")
# Tuned on the dev bug set only (`make eval-localize`: toolz, inflection, more-itertools;
# every candidate's signals dumped once, rankings recomputed offline): the spectrum decides,
# the traceback and then similarity break its ties. Fused top-1 over the 104 dev bugs went
# 0.76 (traceback 1, spectrum 1, similarity 0.3) -> 0.86, top-5 1.0 -> 0.98: similarity's
# bonus for the functions a test names put helpers and callers of the faulty function
# first, and a traceback weighing as much as the spectrum put the crash site first when
# the fault was upstream. Nearby weights (traceback 0.15-0.25, similarity 0.02-0.03, the
# only-failing share 0.05-0.15) rank the same.
WEIGHTS = {"traceback": 0.2, "spectrum": 1.0, "similarity": 0.02}
# Within the spectrum: how much the function's lines that only failing tests ran count,
# beside its best line's Ochiai score (relative to the candidate with the most of them).
ONLY_FAILING = 0.1
TRACEBACK_DECAY = 0.6
NAMED_BONUS = 0.5  # similarity bonus when the test's source names the function
FAILING = ("failed", "error")
PASSING = ("passed",)
MAX_FILE_BYTES = 2_000_000


class LocalizeError(Exception):
    """The test cannot be run or collected (carries pytest's output when there is one)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class TestPasses(LocalizeError):  # noqa: N818 - an outcome, not a failure of hone
    """The test passes: nothing to localize."""

    __test__ = False  # not a pytest test class


@dataclass
class Suspect:
    path: str  # relative to the repository, posix
    name: str  # qualified: "Class.method"
    start_line: int  # 1-based, inclusive
    end_line: int
    score: float
    signals: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "score": round(self.score, 4),
            "signals": {k: round(v, 4) for k, v in self.signals.items()},
        }


@dataclass
class Localization:
    test: str
    outcome: str
    message: str
    functions: list[Suspect]
    passing_tests: int  # the passing tests whose coverage made the spectrum
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    run: TestRun | None = field(default=None, repr=False)  # the run it came from

    def as_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "outcome": self.outcome,
            "message": self.message,
            "functions": [s.as_json() for s in self.functions],
            "passing_tests": self.passing_tests,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": self.notes,
        }


def localize(
    root: Path,
    test: str,
    *,
    python: str | None = None,
    timeout_s: float = 120,
    limit: int = 20,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Localization:
    """Rank the functions to change to make ``test`` (a pytest node id relative to ``root``)
    pass. Raises :class:`TestPasses` when it passes, :class:`LocalizeError` when it cannot
    be collected or run (and the runner's ``RunCancelled`` when ``cancel`` says so)."""
    root = root.resolve()
    t0 = time.perf_counter()
    test_file = test.split("::", 1)[0]
    say = progress or (lambda _message: None)
    say(f"running {test_file} with coverage")
    try:
        run = run_tests(
            root,
            [test_file],
            python=python,
            timeout_s=timeout_s,
            coverage=True,
            cancel=cancel,
            env=env,
        )
    except CollectionError as exc:
        raise LocalizeError(str(exc), getattr(exc, "output", "")) from exc
    except RunnerError as exc:
        if type(exc).__name__ == "RunCancelled":
            raise
        raise LocalizeError(str(exc), getattr(exc, "output", "")) from exc
    timings = {"test_run_s": time.perf_counter() - t0}
    result = _find(run, test)
    if result is None:
        if run.timed_out:
            raise LocalizeError(
                f"the tests of {test_file} did not finish within {timeout_s:.0f} s "
                f"(running: {run.running})",
                run.output,
            )
        raise LocalizeError(f"{test} was not run: no such test in {test_file}", run.output)
    if result.outcome not in FAILING:
        raise TestPasses(f"{result.nodeid} {result.outcome}")
    notes = list(getattr(run, "notes", []))
    if run.coverage is None:
        notes.append("no coverage: the spectrum signal is missing")
    say("ranking functions")
    t1 = time.perf_counter()
    suspects, passing = rank(root, run, result, limit=limit)
    timings["rank_s"] = time.perf_counter() - t1
    timings["total_s"] = time.perf_counter() - t0
    return Localization(
        result.nodeid, result.outcome, result.message, suspects, passing, timings, notes, run
    )


def _find(run: TestRun, test: str) -> TestResult | None:
    if test in run.results:
        return run.results[test]
    # a parametrized test named without its parameters: its first failing case
    cases = [r for n, r in run.results.items() if n.split("[", 1)[0] == test]
    return next((r for r in cases if r.outcome in FAILING), cases[0] if cases else None)


# -- ranking ---------------------------------------------------------------------------------


def rank(
    root: Path, run: TestRun, failing: TestResult, *, limit: int = 20
) -> tuple[list[Suspect], int]:
    """The fused ranking for ``failing`` from ``run`` (its file's tests, with coverage), and
    the number of passing tests the spectrum used."""
    coverage = run.coverage or {}
    failed_lines = {
        path: set(lines)
        for path, lines in coverage.get(failing.nodeid, {}).items()
        if not is_test_file(path)
    }
    passing = [
        coverage[nodeid]
        for nodeid, r in run.results.items()
        if r.outcome in PASSING and nodeid in coverage and nodeid != failing.nodeid
    ]
    # the file's other failing tests sharpen the spectrum (a fault usually fails several)
    failing_runs = [coverage.get(failing.nodeid, {})] + [
        coverage[nodeid]
        for nodeid, r in run.results.items()
        if r.outcome in FAILING and nodeid in coverage and nodeid != failing.nodeid
    ]
    frames = [f for f in failing.frames if f.in_repo and not is_test_file(f.path)]
    paths = set(failed_lines) | {f.path for f in frames}
    functions = _functions(root, paths)
    if not functions:
        return [], len(passing)

    signals: dict[tuple[str, str, int], dict[str, float]] = {}

    def slot(c: Chunk) -> dict[str, float]:
        return signals.setdefault((c.path, c.name, c.start_line), dict.fromkeys(SIGNALS, 0.0))

    # spectrum: per line, Ochiai over the file's failing tests (the lines the test being
    # fixed ran); a function takes its best line
    # (and, a little, how many of its lines only failing tests ran: ONLY_FAILING)
    total_failed = len(failing_runs)
    only_failing: Counter[tuple[str, str, int]] = Counter()
    for path, lines in failed_lines.items():
        ran_by = Counter(line for cov in passing for line in cov.get(path, ()))
        failed_by = Counter(line for cov in failing_runs for line in cov.get(path, ()))
        for line in lines:
            fn = _innermost(functions.get(path, ()), line)
            if fn is None:
                continue
            ef = failed_by[line]
            score = ef / math.sqrt(total_failed * (ef + ran_by[line]))
            s = slot(fn)
            s["spectrum"] = max(s["spectrum"], score)
            only_failing[_key(fn)] += not ran_by[line]
    most = max(only_failing.values(), default=0) or 1
    for key, s in signals.items():
        s["spectrum"] = (s["spectrum"] + ONLY_FAILING * only_failing[key] / most) / (
            1 + ONLY_FAILING
        )

    # traceback: the deepest frame in the repository's source first
    weight = 1.0
    for frame in reversed(frames):
        fn = _innermost(functions.get(frame.path, ()), frame.line)
        if fn is not None:
            s = slot(fn)
            s["traceback"] = max(s["traceback"], weight)
            weight *= TRACEBACK_DECAY

    # similarity: the test's source and message against each candidate's text
    test_text = _test_source(root, failing.nodeid) + "\n" + failing.message
    candidates = {_key(fn): fn for fns in functions.values() for fn in fns if _key(fn) in signals}
    for key, value in similarity(test_text, [candidates[k] for k in signals]).items():
        signals[key]["similarity"] = value

    suspects = []
    for key, sig in signals.items():
        fn = candidates[key]
        score = sum(WEIGHTS[name] * sig[name] for name in SIGNALS)
        suspects.append(Suspect(fn.path, fn.name, fn.start_line, fn.end_line, score, sig))
    suspects.sort(key=lambda s: (-s.score, s.path, s.start_line))
    return suspects[:limit], len(passing)


def similarity(test_text: str, functions: list[Chunk]) -> dict[tuple[str, str, int], float]:
    """TF-IDF cosine of each function's tokens with ``test_text``'s (IDF over these
    functions), plus NAMED_BONUS when the test names the function; the best scores 1."""
    if not functions:
        return {}
    docs = [Counter(tokens(fn.text)) for fn in functions]
    df = Counter(t for d in docs for t in d)
    n = len(docs)

    def idf(t: str) -> float:
        return math.log((n + 1) / (df.get(t, 0) + 1)) + 1

    query = Counter(tokens(test_text))
    qv = {t: c * idf(t) for t, c in query.items()}
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", test_text))
    raw = {}
    for fn, d in zip(functions, docs, strict=True):
        dv = {t: c * idf(t) for t, c in d.items()}
        dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
        cos = sum(qv[t] * dv[t] for t in qv.keys() & dv.keys()) / (qn * dn)
        short = fn.name.rsplit(".", 1)[-1]
        bonus = NAMED_BONUS if short in named and not short.startswith("__") else 0.0
        raw[_key(fn)] = cos + bonus
    top = max(raw.values()) or 1.0
    return {k: v / top for k, v in raw.items()}


def _key(fn: Chunk) -> tuple[str, str, int]:
    return (fn.path, fn.name, fn.start_line)


def _functions(root: Path, paths: set[str]) -> dict[str, list[Chunk]]:
    """The functions and methods of each file (whole, however long), by path."""
    out: dict[str, list[Chunk]] = {}
    for path in sorted(paths):
        file = root / path
        language = language_for_path(path)
        if language is None or is_test_file(path):
            continue
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        chunks = chunk_text(path, text, language, max_lines=1_000_000)
        out[path] = [c for c in chunks if c.kind in ("function", "method")]
    return out


def _innermost(functions: list[Chunk] | tuple, line: int) -> Chunk | None:
    best = None
    for fn in functions:
        if fn.start_line <= line <= fn.end_line and (
            best is None or fn.end_line - fn.start_line < best.end_line - best.start_line
        ):
            best = fn
    return best


def _test_source(root: Path, nodeid: str) -> str:
    """The test function's source (its class's too for a method), or "" when not found."""
    parts = nodeid.split("::")
    path, names = parts[0], [p.split("[", 1)[0] for p in parts[1:]]
    try:
        text = (root / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    chunks = chunk_text(path, text, "python", max_lines=1_000_000)
    wanted = ".".join(names)
    for chunk in chunks:
        if chunk.name == wanted:
            return chunk.text
    return ""


__all__ = [
    "LocalizeError",
    "Localization",
    "Suspect",
    "TestPasses",
    "is_test_file",
    "localize",
    "rank",
    "similarity",
]
