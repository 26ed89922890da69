"""Lexical search for the index: SQLite FTS5 (what ``retrieval/store.py`` uses) against
bm25s (sparse-matrix BM25 in memory), side by side in one run, on the same chunks and the
same identifier-split tokens.

Corpus: the standard library's top-level modules, chunked by ``retrieval/chunks.py``.
Queries: the 12 lines before 200 random cursor positions in those modules (what a
completion request searches with). For each library: the time to index every chunk, to
answer a query (p50/p95), to replace one file's chunks (FTS5: delete and insert its rows;
bm25s has no update, so it re-indexes everything), and how far their top 10 agree. Then a
repository of 2,000 standard-library files: indexing throughput, and the whole retrieval
for a cursor (every source, fused) at 200 random places, p50/p95.

    python benchmarks/bench_lexical.py [--queries 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit, machine, p  # noqa: E402
from hone.retrieval.chunks import chunk_text  # noqa: E402
from hone.retrieval.context import QUERY_LINES  # noqa: E402
from hone.retrieval.lexical import tokens  # noqa: E402
from hone.retrieval.store import QUERY_TERMS, IndexStore, content_hash  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def overlap(a: list[list], b: list[list]) -> float:
    """Mean share of the top 10 two rankings have in common (queries either answered)."""
    shares = [len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True) if x or y]
    return round(sum(shares) / max(1, len(shares)), 3)


def repository(n_files: int, n_queries: int) -> dict:
    """A repository of ``n_files`` standard-library files (all folders, a git work tree):
    ``hone index``'s throughput from scratch, and the whole retrieval for a cursor
    (``Retriever.retrieve``: every source and the fusion) at random places in its files."""
    import shutil
    import subprocess

    from hone.retrieval.context import Query, Retriever
    from hone.retrieval.index import Index

    files = [
        p
        for p in sorted(STDLIB.rglob("*.py"))
        if "site-packages" not in p.parts and p.stat().st_size < 300_000
    ][:n_files]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        for source in files:
            target = root / source.relative_to(STDLIB)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        index = Index(root, folder=Path(tmp) / "index")
        report = index.update()
        retriever = Retriever(index.store)
        rng = random.Random(1)
        paths = sorted(index.store.files())
        took: list[float] = []
        for _ in range(n_queries):
            rel = rng.choice(paths)
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
            q = Query(rel, text, rng.randrange(len(text) + 1), "python")
            t = time.perf_counter()
            retriever.retrieve(q)
            took.append((time.perf_counter() - t) * 1000)
        index.close()
    return {
        "files": report.files,
        "chunks": report.chunks,
        "index_s": report.seconds["total"],
        "index_files_per_minute": round(60 * report.files / report.seconds["total"]),
        "retrieve_ms": p(took, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repo-files", type=int, default=2000, help="files of the repository part")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import bm25s

    files = sorted(f for f in STDLIB.glob("*.py") if f.stat().st_size < 500_000)
    texts = {f.name: f.read_text(encoding="utf-8", errors="replace") for f in files}
    t0 = time.perf_counter()
    by_file = {name: chunk_text(name, text, "python") for name, text in texts.items()}
    chunk_s = time.perf_counter() - t0
    chunks = [c for cs in by_file.values() for c in cs]
    docs = [tokens(f"{c.path}\n{c.name}\n{c.text}") for c in chunks]

    rng = random.Random(7)
    queries = []
    names = sorted(texts)
    while len(queries) < args.queries:
        lines = texts[rng.choice(names)].split("\n")
        if len(lines) > 20:
            at = rng.randrange(QUERY_LINES, len(lines))
            queries.append("\n".join(lines[at - QUERY_LINES : at]))
    edited = "textwrap.py"

    out: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": "none (lexical search only)",
        "device": "cpu",
        "weights": "none",
        "corpus": {"files": len(files), "chunks": len(chunks), "chunk_s": round(chunk_s, 2)},
    }

    # -- SQLite FTS5 through the index store ------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        store = IndexStore(Path(tmp) / "ws", Path(tmp) / "index")
        t0 = time.perf_counter()
        with store.writer() as w:
            for name, cs in by_file.items():
                text = texts[name]
                w.put_file(name, content_hash(text), len(text), 0, "python", cs)
        build = time.perf_counter() - t0
        by_terms: dict[int, tuple[list, list]] = {}
        for terms in (8, 16, 24, 32, 1000):
            tops, ms = [], []
            for q in queries:
                t = time.perf_counter()
                hits = store.search(q, 10, terms=terms)
                ms.append((time.perf_counter() - t) * 1000)
                tops.append([(h.chunk.path, h.chunk.start_line) for h, _ in hits])
            by_terms[terms] = (tops, ms)
        fts_top, fts_ms = by_terms[QUERY_TERMS]
        everything = by_terms[1000][0]
        update_ms = []
        for _ in range(5):
            t = time.perf_counter()
            with store.writer() as w:
                text = texts[edited]
                w.put_file(edited, content_hash(text), len(text), 0, "python", by_file[edited])
            update_ms.append((time.perf_counter() - t) * 1000)
        size = sum(f.stat().st_size for f in (Path(tmp) / "index").glob("index.sqlite*"))
        store.close()
    out["sqlite_fts5"] = {
        "index_all_s": round(build, 2),
        "query_ms": p(fts_ms, 3),
        "query_terms": QUERY_TERMS,
        # the rarest N distinct tokens of the query: time, and top-10 overlap with all tokens
        "by_query_terms": {
            str(n): {
                "query_ms": p(ms, 3),
                "top10_overlap_with_all_terms": overlap(tops, everything),
            }
            for n, (tops, ms) in by_terms.items()
        },
        "update_one_file_ms": p(update_ms, 1),
        "on_disk_mb": round(size / 1e6, 1),
        "persistent": True,
    }

    # -- bm25s -------------------------------------------------------------------------------
    t0 = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(docs, show_progress=False)
    build = time.perf_counter() - t0
    bm_top, bm_ms = [], []
    for q in queries:
        t = time.perf_counter()
        words = [w for w in tokens(q) if w in retriever.vocab_dict]
        if words:
            ids, _ = retriever.retrieve([words], k=10, show_progress=False)
            top = [(chunks[i].path, chunks[i].start_line) for i in ids[0]]
        else:
            top = []
        bm_ms.append((time.perf_counter() - t) * 1000)
        bm_top.append(top)
    rebuild = []
    for _ in range(2):
        t = time.perf_counter()
        bm25s.BM25().index(docs, show_progress=False)
        rebuild.append((time.perf_counter() - t) * 1000)
    out["bm25s"] = {
        "index_all_s": round(build, 2),
        "query_ms": p(bm_ms, 3),
        "update_one_file_ms": p(rebuild, 1),
        "persistent": False,
    }
    # bm25s on all the query's tokens against FTS5 on all of them
    out["top10_overlap_fts5_bm25s"] = overlap(everything, bm_top)
    out["repository"] = repository(args.repo_files, args.queries)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
