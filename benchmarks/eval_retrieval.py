"""Cross-file retrieval on real packages nobody on the team wrote: does the context ranking
find the definition the next line needs?

Sources: PyPI sdists (downloaded with ``pip download --no-deps --no-binary :all:`` into
``--sources``, outside the repository), each unpacked into a temporary git repository
(its package files only) and indexed with ``retrieval/index.py``. Two splits of packages:
``dev`` (what retrieval may be tuned on) and ``heldout`` (only ever reported).

Sites: a line of a module that calls a name the module imports from another module of the
same package (``from .models import Response`` ... ``Response(``), where that module defines
the name (a function or class). Two cursors per site, as a user writes the line:

- ``after``: the name and its ``(`` are typed; the cursor is after ``(``;
- ``before``: the line is typed up to the name (``resp = ``); the name is not there yet.

The document is the module's text up to the cursor, then the rest of the module (the
line's remainder removed). Scores: recall@1 and recall@5 of a chunk that defines the name
(in its defining file, by qualified name) in the fused ranking (``hone context``'s), and
in a lexical-only ranking (BM25 over the same index, the cursor's own region left out) as
the baseline; and the retrieval time per query. ``fused`` is the server's default ranking
(no embeddings); ``fused_embeddings`` the same with the embeddings source added (the
packaged all-MiniLM-L6-v2; every chunk embedded first), measured beside it unless
``--no-embeddings``. Completions use the default ranking.

With ``--complete N``: N sites per package are also completed by the embedded model (or
``--model``) through the completion engine, at both cursors, without and with the retrieved snippets
(packed into ``retrievalTokens``): exact match and edit similarity of the rest of the line,
and (cursor before the name) whether the suggestion names the definition it needs.

    python benchmarks/eval_retrieval.py [--split dev|heldout|all] [--sites 60]
        [--complete 20] [--model SPEC] [--out FILE]
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit, machine, pct  # noqa: E402
from eval_completion import SOURCES, bootstrap, extract_sdist  # noqa: E402
from hone.retrieval.context import QUERY_LINES, Query, Retriever, fuse  # noqa: E402
from hone.retrieval.index import Index  # noqa: E402

SEED = 2026
SPLITS = {
    "dev": ["requests==2.34.2", "jinja2==3.1.6", "werkzeug==3.1.9"],
    "heldout": ["httpx==0.28.1", "rich==15.0.0", "markdown==3.11.3"],
}


@dataclass
class Site:
    package: str
    path: str  # the module, relative to the repository
    line: int  # 1-based
    name: str  # the imported name the line calls
    defined_in: str  # the module that defines it
    text: str  # the module's text
    col_before: int  # 0-based column where the name starts
    col_after: int  # ... just after its "("


def unpack(spec: str, folder: Path, dest: Path) -> Path:
    """The sdist's package sources in a fresh git repository at ``dest``."""

    def keep(parts: list[str]) -> bool:
        return (
            parts[-1].endswith(".py")
            and parts[0] not in ("tests", "test", "docs", "doc", "examples", "benchmarks")
            and parts[-1] not in ("setup.py", "conftest.py", "noxfile.py")
        )

    extract_sdist(spec, folder, dest, keep)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return dest


def module_of(path: str) -> list[str]:
    parts = path.removesuffix(".py").split("/")
    if parts[0] == "src":
        parts = parts[1:]
    return parts[:-1] if parts[-1] == "__init__" else parts


def definitions(repo: Path) -> dict[str, set[str]]:
    """Module path -> the top-level functions and classes it defines."""
    out: dict[str, set[str]] = {}
    for file in repo.rglob("*.py"):
        rel = file.relative_to(repo).as_posix()
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        out[rel] = {
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
    return out


def find_sites(package: str, repo: Path) -> list[Site]:
    defs = definitions(repo)
    by_module = {".".join(module_of(p)): p for p in defs}
    sites: list[Site] = []
    for rel in sorted(defs):
        text = (repo / rel).read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        here = module_of(rel)
        package_parts = here if rel.endswith("__init__.py") else here[:-1]
        imported: dict[str, str] = {}
        for node in tree.body:
            if (
                isinstance(node, ast.ImportFrom)
                and node.module is not None
                or (isinstance(node, ast.ImportFrom) and node.level)
            ):
                base = package_parts[: len(package_parts) - (node.level - 1)] if node.level else []
                module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                target = by_module.get(module)
                if target is None or target == rel:
                    continue
                for alias in node.names:
                    if alias.asname is None and alias.name in defs.get(target, ()):
                        imported[alias.name] = target
        if not imported:
            continue
        lines = text.split("\n")
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            name = call.func.id
            if name not in imported or call.func.lineno != call.end_lineno:
                continue
            line = lines[call.func.lineno - 1]
            col = call.func.col_offset
            if line[col + len(name) : col + len(name) + 1] != "(" or not line[:col].strip():
                continue  # the name starts the line: nothing typed before it
            sites.append(
                Site(
                    package,
                    rel,
                    call.func.lineno,
                    name,
                    imported[name],
                    text,
                    col,
                    col + len(name) + 1,
                )
            )
    return sites


def document(site: Site, col: int) -> tuple[str, int]:
    lines = site.text.split("\n")
    head = "\n".join(lines[: site.line - 1] + [lines[site.line - 1][:col]])
    rest = "\n" + "\n".join(lines[site.line :])
    return head + rest, len(head)


def rank_of(hits: list, site: Site) -> int | None:
    for i, chunk in enumerate(hits, 1):
        if chunk.path == site.defined_in and chunk.name.split(".")[0] == site.name:
            return i
    return None


def completion_rows(
    engine, retriever: Retriever, site: Site, text: str, offset: int, col: int
) -> dict:
    """The engine's completion of the rest of the line from ``col`` (after the call's
    ``(``, or where its name starts), without and with the retrieved context (the same
    path the server uses), scored against the original line."""
    from eval_completion import score
    from hone.agent.completion.engine import CompletionRequest
    from hone.models.backend import Snippet

    want = site.text.split("\n")[site.line - 1][col:]
    hits = retriever.retrieve(Query(site.path, text, offset, "python"), 20).hits
    snippets = tuple(Snippet(h.chunk.path, h.chunk.text) for h in hits)
    out = {}
    for system, ctx in (("without", ()), ("with", snippets)):
        engine.backend.reset_cache()
        engine.cache = type(engine.cache)()
        req = CompletionRequest(site.path, text, offset, site.path, "python", snippets=ctx)
        result = engine.complete(req)
        got = result.items[0].split("\n")[0] if result.items else ""
        out[system] = score(got, want)
        if col == site.col_before:  # the callee's name is what the line needs
            out[system]["name"] = float(re.match(rf"\s*{re.escape(site.name)}\b", got) is not None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["dev", "heldout", "all"], default="all")
    ap.add_argument("--sites", type=int, default=60, help="sites per package")
    ap.add_argument("--sources", type=Path, default=SOURCES)
    ap.add_argument(
        "--complete",
        type=int,
        default=0,
        help="also complete this many sites per package (cursor after the name) with the "
        "embedded model, without and with context: exact match and edit similarity",
    )
    ap.add_argument(
        "--no-embeddings",
        action="store_true",
        help="do not also measure the ranking with the embeddings source (the packaged "
        "sentence-transformers model; off in the server by default)",
    )
    ap.add_argument(
        "--model",
        help="the model that completes (a folder, .gguf, hub id or OpenAI-compatible "
        "spec, as for `hone serve --model`; default: the embedded one)",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    embedder = None
    if not args.no_embeddings:
        from hone.retrieval.embeddings import SentenceEmbedder

        embedder = SentenceEmbedder()
    engine = None
    if args.complete:
        from hone.agent.completion.engine import CompletionEngine
        from hone.models.registry import embedded_backend, load_backend

        backend = load_backend(args.model) if args.model else embedded_backend()
        backend.load()
        engine = CompletionEngine(backend)
        out_model = backend.describe()
    splits = ["dev", "heldout"] if args.split == "all" else [args.split]
    out: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": "none (retrieval only)",
        "device": "cpu",
        "weights": "none",
        "seed": SEED,
        # the model of the `fused_embeddings` ranking (the `fused` one has no embeddings)
        "embeddings": embedder.name if embedder is not None else None,
        "sources": {s: SPLITS[s] for s in splits},
    }
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        for split in splits:
            rows: dict[str, list[float]] = {}
            completions: dict[str, list[dict]] = {"after": [], "before": []}
            timing: list[float] = []
            timing_embeddings: list[float] = []
            per_package = {}
            for spec in SPLITS[split]:
                repo = unpack(spec, args.sources, Path(tmp) / spec.split("==")[0])
                index = Index(repo, folder=Path(tmp) / f"index-{spec}", embedder=embedder)
                report = index.update()
                if embedder is not None:
                    index.embed()
                # the server's default (no embeddings) and, measured beside it, with them
                retriever = Retriever(index.store)
                with_vectors = (
                    Retriever(index.store, embed=embedder, vectors=index.vectors)
                    if embedder is not None
                    else None
                )
                found = find_sites(spec, repo)
                rng.shuffle(found)
                found = found[: args.sites]
                per_package[spec] = {
                    "files": report.files,
                    "chunks": report.chunks,
                    "sites": len(found),
                }
                for n, site in enumerate(found):
                    if engine is not None and n < args.complete:
                        for cursor, col in (("after", site.col_after), ("before", site.col_before)):
                            text, offset = document(site, col)
                            completions[cursor].append(
                                completion_rows(engine, retriever, site, text, offset, col)
                            )
                    for cursor, col in (("after", site.col_after), ("before", site.col_before)):
                        text, offset = document(site, col)
                        query = Query(site.path, text, offset, "python")
                        t = time.perf_counter()
                        got = retriever.retrieve(query, 20)
                        timing.append((time.perf_counter() - t) * 1000)
                        rankings = {"fused": [h.chunk for h in got.hits]}
                        if with_vectors is not None:
                            t = time.perf_counter()
                            got = with_vectors.retrieve(query, 20)
                            timing_embeddings.append((time.perf_counter() - t) * 1000)
                            rankings["fused_embeddings"] = [h.chunk for h in got.hits]
                        line = site.line
                        query_text = "\n".join(text[:offset].split("\n")[-QUERY_LINES:])
                        lexical = [s.chunk for s, _ in index.store.search(query_text, 40)]
                        lexical = [h.chunk for h in fuse({"lexical": lexical}, site.path, line)]
                        rankings["bm25"] = lexical
                        for system, ranking in rankings.items():
                            r = rank_of(ranking, site)
                            for k in (1, 5):
                                key = f"{cursor}_{system}_recall@{k}"
                                rows.setdefault(key, []).append(float(r is not None and r <= k))
                index.close()
            brng = random.Random(SEED)
            out[split] = {
                "packages": per_package,
                "sites": len(rows.get("after_fused_recall@1", [])),
                **{
                    k: {"mean": round(statistics.fmean(v), 3), "ci95": bootstrap(v, brng)}
                    for k, v in sorted(rows.items())
                },
                **completion_summary(completions["after"], brng),
                **completion_summary(completions["before"], brng, "before_"),
                "retrieve_ms": {
                    "n": len(timing),
                    "p50": round(pct(timing, 0.5), 2),
                    "p95": round(pct(timing, 0.95), 2),
                },
            }
            if timing_embeddings:
                out[split]["retrieve_embeddings_ms"] = {
                    "n": len(timing_embeddings),
                    "p50": round(pct(timing_embeddings, 0.5), 2),
                    "p95": round(pct(timing_embeddings, 0.95), 2),
                }
    if engine is not None:
        out["model"] = out_model.get("model", "embedded")
        out["weights"] = out_model.get("dtype", "")
        out["completion_options"] = {
            "context_tokens": engine.options.context_tokens,
            "retrieval_tokens": engine.options.retrieval_tokens,
        }
    emit(out, args.out)
    return 0


def completion_summary(rows: list[dict], rng: random.Random, cursor: str = "") -> dict:
    """Exact match and edit similarity (and, before the name, naming the callee) without
    and with context, and the relative lift; keys start with ``cursor`` ("" for after)."""
    if not rows:
        return {}
    out: dict = {"completion_sites": len(rows)}
    for metric in ("exact", "es", "name"):
        if metric not in rows[0]["without"]:
            continue
        for system in ("without", "with"):
            values = [r[system][metric] for r in rows]
            out[f"completion_{metric}_{system}_context"] = {
                "mean": round(statistics.fmean(values), 3),
                "ci95": bootstrap(values, rng),
            }
        diffs = [r["with"][metric] - r["without"][metric] for r in rows]
        out[f"completion_{metric}_diff"] = {
            "mean": round(statistics.fmean(diffs), 3),
            "ci95": bootstrap(diffs, rng),
        }
        base = statistics.fmean(r["without"][metric] for r in rows)
        if base:
            lift = statistics.fmean(r["with"][metric] for r in rows) / base - 1
            out[f"completion_{metric}_relative_lift"] = round(lift, 3)
    return {cursor + k: v for k, v in out.items()}


if __name__ == "__main__":
    sys.exit(main())
