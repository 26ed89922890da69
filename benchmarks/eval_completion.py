"""Completion quality on real code nobody on the team wrote, against a plain baseline.

Sites come from standard-library modules (none of them in bench_latency.FILES) and from
PyPI sdists (downloaded with ``pip download --no-deps --no-binary :all:`` into
``--sources``, outside the repository), chosen with a fixed seed and split in two:

- ``dev``: what the engine may be tuned on;
- ``heldout``: only ever reported (other modules, other packages).

Two kinds of site, both the original code cut at a point and compared with what followed:

- single-line: a one-line statement inside a body, cut after its first ``= `` or ``(``;
  the reference is the rest of the line;
- multi-line: a block header (``def``, ``if``, ``for``, ``with``, ...) whose body of 1 to 12
  lines is removed; the user has typed the body's indentation on the blank line after
  the header (editors indent for them) and the cursor is at its end. The reference is
  the whole removed body.

Two systems on the same sites, the same model and the same prompt window:

- ``engine``: the completion engine as the server runs it (policy, indentation lead,
  token healing, early stop, post-processing, the line and token caps);
- ``baseline`` (``--baseline``): plain greedy generation on the plain prefix (no policy,
  no indentation lead, no token healing, no early stop, the same token cap), cut at the
  first line end (single-line) or at the first line that dedents to or under the block
  header's indentation (multi-line).

Scores per site: exact match and edit similarity (1 - Levenshtein distance / longer
length, after trimming trailing whitespace and trailing blank lines), with the means'
95% bootstrap confidence intervals and the paired per-site difference engine - baseline.

    python benchmarks/eval_completion.py [--split dev|heldout|all] [--baseline]
        [--dtype auto|int8|bf16|fp32] [--multi 60] [--single 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import FILES as LATENCY_FILES  # noqa: E402
from bench_latency import emit, machine  # noqa: E402
from hone.agent.completion.engine import CompletionEngine, CompletionRequest  # noqa: E402
from hone.models.backend import GenerationRequest, ModelBackend  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SEED = 2026
# where the PyPI sdists are downloaded: outside the repository
SOURCES = Path(os.environ.get("HONE_EVAL_SOURCES", "/tmp/hone-eval-src"))
BOOTSTRAP = 2000
MAX_BODY_LINES = 12  # the engine's default maxLines
MAX_BODY_TOKENS = 80  # under the multi-line token cap (96), with room to spare
SDIST_SHARE = 3  # an sdist's weight in the round-robin, in stdlib modules

# The splits: (kind, name) sources. Disjoint, and none of them in bench_latency.FILES.
SPLITS: dict[str, list[tuple[str, str]]] = {
    "dev": [
        ("stdlib", "difflib.py"),
        ("stdlib", "argparse.py"),
        ("stdlib", "enum.py"),
        ("stdlib", "traceback.py"),
        ("stdlib", "inspect.py"),
        ("stdlib", "functools.py"),
        ("stdlib", "logging/__init__.py"),
        ("stdlib", "subprocess.py"),
        ("stdlib", "email/message.py"),
        ("stdlib", "http/cookiejar.py"),
        ("pypi", "toolz==1.0.0"),
    ],
    "heldout": [
        ("stdlib", "ipaddress.py"),
        ("stdlib", "statistics.py"),
        ("stdlib", "pprint.py"),
        ("stdlib", "base64.py"),
        ("stdlib", "dataclasses.py"),
        ("stdlib", "tokenize.py"),
        ("stdlib", "configparser.py"),
        ("stdlib", "shutil.py"),
        ("stdlib", "operator.py"),
        ("stdlib", "locale.py"),
        ("stdlib", "urllib/parse.py"),
        ("stdlib", "mimetypes.py"),
        ("pypi", "more-itertools==10.5.0"),
        ("pypi", "boltons==24.1.0"),
    ],
}


@dataclass
class Site:
    name: str  # file:line
    source: str  # "stdlib" or the sdist's name==version
    kind: str  # "single" | "multi"
    text: str  # the document as the user has it
    offset: int  # the cursor
    want: str  # what the original code had there
    base: int  # multi: the block header's indentation width (the baseline's cut)


# --------------------------------------------------------------------------------------
# Sources


def sdist_archive(spec: str, folder: Path) -> Path:
    """The sdist of ``spec`` (``name==version``) in ``folder``, downloaded if missing."""
    name, _, version = spec.partition("==")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{version}".lower()

    def found() -> list[Path]:
        return [
            p
            for p in folder.glob("*.tar.gz")
            if p.name.lower().replace("_", "-") == f"{stem}.tar.gz"
        ]

    if not found():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
            + [spec, "-d", str(folder)],
            check=True,
        )
    return found()[0]


def extract_sdist(
    spec: str, folder: Path, dest: Path, keep: Callable[[list[str]], bool] = lambda parts: True
) -> None:
    """The sdist's files (its top folder stripped) whose path parts ``keep`` accepts,
    written under ``dest`` (executable bits kept; no absolute or ``..`` paths)."""
    with tarfile.open(sdist_archive(spec, folder)) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")[1:]
            if not member.isfile() or not parts or any(p in ("", ".", "..") for p in parts):
                continue
            if not keep(parts):
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            data = tar.extractfile(member)
            if data is not None:
                target.write_bytes(data.read())
                if member.mode & 0o111:
                    target.chmod(0o755)


def sdist_files(spec: str, folder: Path) -> Iterator[tuple[str, str]]:
    """(path, text) of the package's own .py files in the sdist (no tests, docs, setup)."""
    with tarfile.open(sdist_archive(spec, folder)) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")[1:]
            if not member.isfile() or not member.name.endswith(".py") or len(parts) < 2:
                continue
            if any(p in ("tests", "test", "docs", "doc", "examples", "misc") for p in parts):
                continue
            if parts[-1].startswith(("test_", "conftest")):
                continue
            data = tar.extractfile(member)
            if data is not None:
                yield "/".join(parts), data.read().decode("utf-8")


def source_files(kind: str, name: str, folder: Path) -> list[tuple[str, str]]:
    if kind == "stdlib":
        assert name not in LATENCY_FILES
        return [(name, (STDLIB / name).read_text(encoding="utf-8"))]
    return list(sdist_files(name, folder))


# --------------------------------------------------------------------------------------
# Sites


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def multi_sites(path: str, source: str, text: str) -> list[Site]:
    lines = text.split("\n")
    found = []
    compound = (
        ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.If | ast.For | ast.While
    ) | (ast.With | ast.Try)
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, compound):
            continue
        body = node.body
        first, last = body[0].lineno - 1, body[-1].end_lineno  # 0-based start, end exclusive
        header = first - 1
        if header < 0 or not lines[header].rstrip().endswith(":") or last is None:
            continue
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            continue  # a docstring
        if any(
            isinstance(n, ast.Constant) and isinstance(n.value, str) and "\n" in n.value
            for stmt in body
            for n in ast.walk(stmt)
        ):
            continue  # multi-line strings: the line structure is not code
        block = lines[first:last]
        if not 1 <= len(block) <= MAX_BODY_LINES or lines[first].lstrip().startswith("#"):
            continue
        body_indent = _indent(lines[first])
        if len(body_indent) <= node.col_offset:
            continue
        doc_lines = [*lines[:first], body_indent, *lines[last:]]
        offset = sum(len(x) + 1 for x in lines[:first]) + len(body_indent)
        want = "\n".join(block)[len(body_indent) :]
        found.append(
            Site(
                f"{path}:{first + 1}",
                source,
                "multi",
                "\n".join(doc_lines),
                offset,
                want,
                node.col_offset,
            )
        )
    return found


def single_sites(path: str, source: str, text: str) -> list[Site]:
    lines = text.split("\n")
    found = []
    kinds = ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Expr | ast.Return
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, kinds) or node.lineno != node.end_lineno or node.col_offset < 4:
            continue
        row = node.lineno - 1
        line = lines[row]
        code = line.rstrip()
        if code.lstrip().startswith(("#", '"', "'")) or len(code.strip()) < 16:
            continue
        cuts = [p + 2 for p in [code.find("= ")] if p >= 0] + [
            p + 1 for p in [code.find("(")] if p >= 0
        ]
        if not cuts:
            continue
        cut = min(cuts)
        rest = code[cut:]
        if len(rest.strip()) < 3 or "#" in rest:
            continue
        offset = sum(len(x) + 1 for x in lines[:row]) + cut
        doc = text[:offset] + text[offset + len(code) - cut :]
        found.append(Site(f"{path}:{row + 1}", source, "single", doc, offset, rest, 0))
    return found


def _interleave(sites: list[Site]) -> list[Site]:
    """Multi-line sites: two bodies of several lines for each one-line body."""
    longer = [s for s in sites if "\n" in s.want]
    short = [s for s in sites if "\n" not in s.want]
    out: list[Site] = []
    while longer or short:
        out += longer[:2] + short[:1]
        longer, short = longer[2:], short[1:]
    return out


def build_sites(split: str, n_multi: int, n_single: int, folder: Path, count_tokens) -> list[Site]:
    """The split's sites: round-robin over its sources (a stdlib module, an sdist), each
    source's candidates shuffled with the fixed seed."""
    groups: dict[str, list[list[Site]]] = {"multi": [], "single": []}
    for kind, name in SPLITS[split]:
        found: dict[str, list[Site]] = {"multi": [], "single": []}
        for path, text in source_files(kind, name, folder):
            label = path if kind == "stdlib" else f"{name.partition('==')[0]}/{path}"
            source = "stdlib" if kind == "stdlib" else name
            found["multi"] += [
                s
                for s in multi_sites(label, source, text)
                if count_tokens(s.want) <= MAX_BODY_TOKENS
            ]
            found["single"] += single_sites(label, source, text)
        for bucket, sites in found.items():
            random.Random(f"{SEED}:{name}:{bucket}").shuffle(sites)
            sites = _interleave(sites) if bucket == "multi" else sites
            share = 1 if kind == "stdlib" else SDIST_SHARE  # an sdist weighs as 3 modules
            groups[bucket] += [sites[k::share] for k in range(share)]
    chosen = []
    for bucket, want in (("single", n_single), ("multi", n_multi)):
        picked: list[Site] = []
        depth = 0
        while len(picked) < want and any(len(g) > depth for g in groups[bucket]):
            picked += [g[depth] for g in groups[bucket] if len(g) > depth][: want - len(picked)]
            depth += 1
        chosen += picked
    return chosen


# --------------------------------------------------------------------------------------
# The two systems


def engine_suggestion(engine: CompletionEngine, site: Site, raw: dict | None = None) -> str:
    engine.cache = type(engine.cache)()  # no typed-ahead hits from another site
    req = CompletionRequest(site.name, site.text, site.offset, site.name, "python")
    result = engine.complete(req)
    if raw is not None:
        raw.update(raw=result.stats.get("raw", ""), stop=result.stats.get("stop_reason", ""))
    text = result.items[0] if result.items else ""
    return text.split("\n")[0] if site.kind == "single" else text


def baseline_suggestion(engine: CompletionEngine, site: Site) -> str:
    """Plain greedy generation on the plain prefix, cut at the line end / the block end."""
    req = CompletionRequest(site.name, site.text, site.offset, site.name, "python")
    plan = engine.plan(req)
    # The engine's prompt window on the document's own prefix: no indentation lead.
    plain = dataclasses.replace(plan, prefix=site.text[: site.offset], lead="")
    options = engine.options
    cap = options.max_new_tokens_multi if site.kind == "multi" else options.max_new_tokens_single
    request = GenerationRequest(
        infill=engine.prompt_for(plain).infill,
        max_new_tokens=cap,
        token_healing=False,
        session=req.key,
    )
    raw = "".join(engine.backend.generate(request))
    lines = raw.split("\n")
    if site.kind == "single":
        return lines[0]
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and len(_indent(line).expandtabs(8)) <= site.base:
            break
        kept.append(line)
    return "\n".join(kept)


# --------------------------------------------------------------------------------------
# Scores


def normalise(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# A loop, judged apart from the engine's own detectors: a piece of 6 or more characters
# repeated 4 times in a row (whitespace collapsed), or a line 3 times in a row.
_PIECE_LOOP = re.compile(r"(.{6,}?)\1{3,}")


def loops(text: str) -> bool:
    lines = [line.strip() for line in text.split("\n")]
    if any(a and a == b == c for a, b, c in zip(lines, lines[1:], lines[2:], strict=False)):
        return True
    return bool(_PIECE_LOOP.search(" ".join(" ".join(lines).split())))


def score(suggestion: str, want: str) -> dict[str, float]:
    s, w = normalise(suggestion), normalise(want)
    longest = max(len(s), len(w))
    return {
        "exact": float(s == w),
        "es": 1.0 - levenshtein(s, w) / longest if longest else 1.0,
        "empty": float(not s.strip()),
        "lines": float(len(s.split("\n")) if s else 0),
        "loops": float(loops(s)),
    }


def bootstrap(values: list[float], rng: random.Random) -> list[float]:
    """The mean's 95% percentile bootstrap interval."""
    n = len(values)
    if not n:
        return [float("nan"), float("nan")]
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(BOOTSTRAP))
    return [round(means[int(0.025 * BOOTSTRAP)], 3), round(means[int(0.975 * BOOTSTRAP) - 1], 3)]


def summarise(rows: list[dict], systems: list[str]) -> dict:
    rng = random.Random(SEED)
    out: dict = {"n": len(rows)}
    if not rows:
        return out
    for system in systems:
        block = {}
        for metric in ("exact", "es"):
            values = [r[system][metric] for r in rows]
            block[metric] = round(sum(values) / len(values), 3)
            block[f"{metric}_ci95"] = bootstrap(values, rng)
        block["empty"] = round(sum(r[system]["empty"] for r in rows) / len(rows), 3)
        # suggestions holding a repetition loop (see loops()); the originals' rate below
        block["loops"] = round(sum(r[system].get("loops", 0.0) for r in rows) / len(rows), 3)
        block["mean_lines"] = round(sum(r[system]["lines"] for r in rows) / len(rows), 2)
        out[system] = block
    out["original_loops"] = round(sum(loops(normalise(r["want"])) for r in rows) / len(rows), 3)
    if len(systems) == 2:
        for metric in ("exact", "es"):
            diffs = [r["engine"][metric] - r["baseline"][metric] for r in rows]
            out[f"{metric}_diff"] = round(sum(diffs) / len(diffs), 3)
            out[f"{metric}_diff_ci95"] = bootstrap(diffs, rng)
        es = [(r["engine"]["es"], r["baseline"]["es"]) for r in rows]
        out["engine_better_sites"] = sum(e > b for e, b in es)
        out["baseline_better_sites"] = sum(b > e for e, b in es)
    return out


# --------------------------------------------------------------------------------------


def load(model: str | None, dtype: str, threads: int | None) -> ModelBackend:
    from hone.models.registry import EMBEDDED, embedded_backend, load_backend

    if (model or EMBEDDED) == EMBEDDED:
        backend = embedded_backend(dtype=dtype, threads=threads)
    else:
        backend = load_backend(model)
        if dtype != "auto" and hasattr(backend, "dtype"):
            backend.dtype = dtype  # read by TransformersBackend.load()
    backend.load()
    return backend


def evaluate(
    engine: CompletionEngine,
    sites: list[Site],
    systems: list[str],
    cache: dict[str, str] | None = None,
    log: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Score ``systems`` on ``sites``. Every generation starts from an empty KV cache
    (with int8 weights a different prefill chunking can flip a near-tie, so results do
    not depend on what ran before). ``cache`` maps site names to baseline suggestions
    already computed."""
    rows = []
    for i, site in enumerate(sites):
        row: dict = {"site": site.name, "source": site.source, "kind": site.kind}
        for system in sorted(systems):  # baseline, then engine
            engine.backend.reset_cache()  # type: ignore[attr-defined]
            if system == "baseline":
                text = cache.get(site.name) if cache is not None else None
                if text is None:
                    text = baseline_suggestion(engine, site)
                    if cache is not None:
                        cache[site.name] = text
            else:
                extra: dict = {}
                text = engine_suggestion(engine, site, extra)
                row["engine_raw"], row["engine_stop"] = extra.get("raw", ""), extra.get("stop", "")
            row[system] = score(text, site.want)
            row[f"{system}_text"] = text
        row["want"] = site.want
        rows.append(row)
        if log:
            log(i, row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("HONE_MODEL"))
    ap.add_argument("--dtype", default="auto", help="weight format: auto, int8, bf16, fp32, ...")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--split", choices=["dev", "heldout", "all"], default="all")
    ap.add_argument("--baseline", action="store_true", help="also run the plain baseline")
    ap.add_argument("--multi", type=int, default=60, help="multi-line sites per split")
    ap.add_argument("--single", type=int, default=20, help="single-line sites per split")
    ap.add_argument(
        "--sources",
        type=Path,
        default=SOURCES,
        help="where the PyPI sdists are downloaded (outside the repository)",
    )
    ap.add_argument(
        "--kinds", default="single,multi", help="site kinds to run (single, multi or both)"
    )
    ap.add_argument(
        "--baseline-cache",
        type=Path,
        help="JSON file of baseline suggestions by site, read and extended (dev iterations)",
    )
    ap.add_argument("--details", type=Path, help="write every site's suggestions here (JSON)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    backend = load(args.model, args.dtype, args.threads)
    engine = CompletionEngine(backend)
    systems = ["engine", "baseline"] if args.baseline else ["engine"]
    splits = ["dev", "heldout"] if args.split == "all" else [args.split]
    facts = backend.describe() if hasattr(backend, "describe") else {}
    summary: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "device": facts.get("device", ""),
        "weights": facts.get("dtype", args.dtype),
        "threads": facts.get("threads", ""),
        "model": facts.get("model", args.model or "embedded"),
        "options": {
            "context_tokens": engine.options.context_tokens,
            "max_new_tokens_single": engine.options.max_new_tokens_single,
            "max_new_tokens_multi": engine.options.max_new_tokens_multi,
            "max_lines": engine.options.max_lines,
        },
        "seed": SEED,
        "sources": {s: [name for _, name in SPLITS[s]] for s in splits},
    }
    details: dict = {}
    stored: dict[str, dict[str, str]] = {}
    cache: dict[str, str] | None = None
    if args.baseline_cache:  # by model and weight format, then by site
        if args.baseline_cache.exists():
            stored = json.loads(args.baseline_cache.read_text())
        cache = stored.setdefault(f"{summary['model']} {summary['weights']}", {})
    t0 = time.perf_counter()
    for split in splits:
        sites = build_sites(split, args.multi, args.single, args.sources, backend.count_tokens)
        sites = [s for s in sites if s.kind in args.kinds.split(",")]

        def log(i: int, row: dict, split: str = split, total: int = len(sites)) -> None:
            scores = " ".join(f"{s}={row[s]['es']:.2f}" for s in systems)
            print(
                f"[{split} {i + 1}/{total}] {row['kind']:6} {row['site']}: {scores}",
                file=sys.stderr,
            )
            if args.baseline_cache:  # kept as it grows: an interrupted run loses nothing
                args.baseline_cache.write_text(json.dumps(stored, indent=1) + "\n")

        rows = evaluate(engine, sites, systems, cache, log)
        if args.baseline_cache:
            args.baseline_cache.write_text(json.dumps(stored, indent=1) + "\n")
        details[split] = rows
        block = {}
        for kind in ("single", "multi"):
            kind_rows = [r for r in rows if r["kind"] == kind]
            block[kind] = summarise(kind_rows, systems)
            block[kind]["by_source"] = {
                source: summarise([r for r in kind_rows if r["source"] == source], systems)
                for source in sorted({r["source"] for r in kind_rows})
            }
            for stats in block[kind]["by_source"].values():
                for system in systems:  # keep the per-source block short
                    stats.get(system, {}).pop("exact_ci95", None)
        block["sites"] = [
            {"site": r["site"], "kind": r["kind"]}
            | {s: [round(r[s]["es"], 3), int(r[s]["exact"])] for s in systems}
            for r in rows
        ]
        summary[split] = block
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    if args.details:
        args.details.write_text(json.dumps(details, indent=1) + "\n")
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
