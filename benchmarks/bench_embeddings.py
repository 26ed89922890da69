"""Embeddings for the index, side by side in one run, on standard-library chunks:

1. **Throughput**: a bare ``SentenceTransformer.encode(texts, batch_size=16)`` against the
   index's embedding pass (``Index.embed``: read the chunks without a vector from SQLite,
   sort by length, encode batch by batch, write float16 BLOBs) on the same chunks and
   the same texts, interleaved in blocks of 64 chunks (raw then pass, pass then raw, ...) so
   that load from a neighbour on a shared machine falls on both; the ratio pass / raw per
   round (each round: every block once). Also raw throughput per batch size.
2. **Query embedding**: the 12 lines before random cursors (``QUERY_LINES``), p50/p95, on
   the embedder's ``query_threads`` (1) and on all of torch's threads, alternated (on a
   machine shared with another busy process, torch's waiting threads make the latter far
   slower).
3. **Vector search at repository scale** (``--scale`` vectors, 80,000 by default: a
   ~2,000-file repository): the real chunk vectors of part 1, extended by synthetic ones
   (normalized mixtures of two real vectors plus gaussian noise of 0.08 per dimension, so
   that a query's nearest vector is as similar as in the real set: reported; less noise
   makes near-ties that no graph index sorts out, more spreads them), queried with the real
   query vectors of part 2.
   Exact search (usearch's brute force over float16, what ``LocalVectors`` does), numpy's
   float32 matrix product for reference, and an HNSW graph (usearch, float16): time to
   build, query p50/p95, recall@10 against exact float32, memory. Plus the time to load
   that many vectors from an index's SQLite file into ``LocalVectors`` (a process's
   first query).

    python benchmarks/bench_embeddings.py [--chunks 600] [--rounds 2] [--scale 80000] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit, machine, p  # noqa: E402
from hone.retrieval.chunks import chunk_text  # noqa: E402
from hone.retrieval.context import QUERY_LINES  # noqa: E402
from hone.retrieval.embeddings import BATCH_SIZE, SentenceEmbedder  # noqa: E402
from hone.retrieval.index import Index  # noqa: E402
from hone.retrieval.store import content_hash  # noqa: E402
from hone.retrieval.vectors import EXPANSION_SEARCH, LocalVectors, VectorSearch  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def corpus(n_chunks: int) -> tuple[dict[str, str], dict[str, list]]:
    """Standard-library top-level modules, chunked, until ``n_chunks`` chunks (whole files,
    in a fixed shuffled order)."""
    files = sorted(f for f in STDLIB.glob("*.py") if f.stat().st_size < 300_000)
    random.Random(5).shuffle(files)
    texts, by_file, total = {}, {}, 0
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        chunks = chunk_text(f.name, text, "python")
        texts[f.name], by_file[f.name] = text, chunks
        total += len(chunks)
        if total >= n_chunks:
            break
    return texts, by_file


BLOCK = 64  # chunks per interleaved block of the throughput part


def throughput(embedder: SentenceEmbedder, n_chunks: int, rounds: int) -> tuple[dict, np.ndarray]:
    model = embedder.load()
    texts, by_file = corpus(n_chunks)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        index = Index(root, folder=Path(tmp) / "index", embedder=embedder)
        with index.store.writer() as w:
            for name, chunks in by_file.items():
                w.put_file(name, content_hash(texts[name]), len(texts[name]), 0, "python", chunks)
        rows = index.store.pending_embeddings(10**9)
        docs = [embedder.document(r.chunk) for r in rows]
        tokens = [len(ids) for ids in model.tokenizer(docs, truncation=True)["input_ids"]]
        index.embed()  # every chunk once (and a warm-up); each block is then redone

        # Interleaved in blocks of about BLOCK chunks (raw then pass, or pass then raw, in
        # turn), so that a neighbour's load on a shared machine falls on both alike.
        blocks = [rows[i : i + BLOCK] for i in range(0, len(rows), BLOCK)]

        def raw(block: list) -> float:
            texts = [embedder.document(r.chunk) for r in block]
            t = time.perf_counter()
            model.encode(texts, batch_size=BATCH_SIZE, show_progress_bar=False)
            return time.perf_counter() - t

        def index_pass(block: list) -> float:
            db = index.store._db()
            with db:
                db.executemany(
                    "UPDATE chunks SET embedding = NULL WHERE id = ?", [(r.id,) for r in block]
                )
            t = time.perf_counter()
            report = index.embed()
            took = time.perf_counter() - t
            assert report.embedded == len(block) and report.pending == 0
            return took

        runs: list[dict] = []
        for i in range(rounds):
            raw_s = pass_s = 0.0
            for b, block in enumerate(blocks):
                if (b + i) % 2 == 0:
                    raw_s += raw(block)
                    pass_s += index_pass(block)
                else:
                    pass_s += index_pass(block)
                    raw_s += raw(block)
            runs.append(
                {
                    "raw_s": round(raw_s, 2),
                    "pass_s": round(pass_s, 2),
                    "ratio": round(pass_s / raw_s, 3),
                }
            )
            print(f"round {i + 1}: {runs[-1]}", file=sys.stderr)
        t = time.perf_counter()
        index.embed()  # nothing left: the cost of finding that out
        nothing_ms = (time.perf_counter() - t) * 1000
        keys, matrix = index.store.vectors()
        # raw throughput per batch size: every other document (all lengths), alternated
        sample = sorted(docs, key=len)[::2]
        rates: dict[int, list[float]] = {8: [], 16: [], 32: [], 64: []}
        for i in range(2):
            for batch in (8, 16, 32, 64) if i % 2 == 0 else (64, 32, 16, 8):
                t = time.perf_counter()
                model.encode(sample, batch_size=batch, show_progress_bar=False)
                rates[batch].append(len(sample) / (time.perf_counter() - t))
        by_batch = {str(b): round(statistics.median(r), 1) for b, r in rates.items()}
        index.close()
    ratios = [r["ratio"] for r in runs]
    return {
        "chunks": len(docs),
        "files": len(by_file),
        "document_tokens": {
            "p50": int(statistics.median(tokens)),
            "truncated_share": round(
                sum(t >= model.max_seq_length for t in tokens) / len(tokens), 3
            ),
        },
        "batch_size": BATCH_SIZE,
        "interleaved_blocks_of": BLOCK,
        "runs": runs,
        "ratio_pass_over_raw": {"median": round(statistics.median(ratios), 3), "max": max(ratios)},
        "raw_chunks_per_s": round(len(docs) / statistics.median(r["raw_s"] for r in runs), 1),
        "nothing_to_embed_ms": round(nothing_ms, 2),
        "raw_chunks_per_s_by_batch_size": by_batch,
    }, matrix.astype(np.float32)


def queries(embedder: SentenceEmbedder, n: int) -> tuple[dict, np.ndarray]:
    files = sorted(f for f in STDLIB.glob("*.py") if f.stat().st_size < 300_000)
    rng = random.Random(11)
    texts: list[str] = []
    while len(texts) < n:
        lines = rng.choice(files).read_text(encoding="utf-8", errors="replace").split("\n")
        if len(lines) > 40:
            at = rng.randrange(QUERY_LINES, len(lines))
            texts.append("\n".join(lines[at - QUERY_LINES : at]))
    embedder.encode_query(texts[0])  # warm up
    configured = embedder.query_threads
    took: dict[int | None, list[float]] = {configured: [], None: []}
    vectors = []
    for text in texts:
        for n in (None, configured) if len(vectors) % 2 else (configured, None):
            embedder.query_threads = n
            t = time.perf_counter()
            vector = embedder.encode_query(text)
            took[n].append((time.perf_counter() - t) * 1000)
        vectors.append(vector)
    embedder.query_threads = configured
    return {
        "query_lines": QUERY_LINES,
        "query_threads": configured,
        "embed_ms": p(took[configured], 1),
        "embed_ms_all_torch_threads": p(took[None], 1),
    }, np.stack(vectors)


NOISE = 0.08  # per dimension, on the synthetic vectors (see the module docstring)


def extend(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` vectors: the real ones, then normalized mixtures of two of them plus noise."""
    extra = n - len(real)
    a, b = rng.integers(0, len(real), extra), rng.integers(0, len(real), extra)
    w = rng.uniform(0, 1, (extra, 1)).astype(np.float32)
    mixed = w * real[a] + (1 - w) * real[b]
    mixed += NOISE * rng.standard_normal(mixed.shape).astype(np.float32)
    out = np.concatenate([real, mixed])
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def timed(fn, qs: np.ndarray) -> tuple[list[list[int]], list[float]]:
    fn(qs[0])
    tops, ms = [], []
    for q in qs:
        t = time.perf_counter()
        tops.append(fn(q))
        ms.append((time.perf_counter() - t) * 1000)
    return tops, ms


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return round(statistics.fmean(shares), 4)


def scale(real: np.ndarray, qs: np.ndarray, n: int, k: int = 10) -> dict:
    rng = np.random.default_rng(3)
    x = extend(real, n, rng)
    ids = np.arange(1, n + 1)
    out: dict = {"vectors": n, "dim": int(x.shape[1]), "k": k, "queries": len(qs)}
    out["real_vectors"] = len(real)
    out["synthetic_noise"] = NOISE
    # how similar a query's nearest vector is: real vectors alone, and the extended set
    out["query_nearest_similarity"] = {
        "real": round(float(np.mean(np.max(qs @ real.T, axis=1))), 3),
        "extended": round(float(np.mean(np.max(qs @ x.T, axis=1))), 3),
    }

    # numpy, float32: the reference (and the ground truth)
    def numpy_top(q: np.ndarray) -> list[int]:
        s = x @ q
        top = np.argpartition(-s, k)[:k]
        return ids[top[np.argsort(-s[top])]].tolist()

    truth, ms = timed(numpy_top, qs)
    out["numpy_f32"] = {"query_ms": p(ms, 3), "memory_mb": round(x.nbytes / 1e6, 1)}

    # LocalVectors: exact (usearch brute force over float16)
    t = time.perf_counter()
    local = LocalVectors(ann_from=None)
    local.upsert(ids.tolist(), x)
    build = time.perf_counter() - t
    found, ms = timed(lambda q: local.search(q, k)[0], qs)
    out["exact_usearch_f16"] = {
        "build_s": round(build, 2),
        "query_ms": p(ms, 3),
        "recall_at_10": recall(found, truth),
        "memory_mb": round(local.memory_bytes / 1e6, 1),
    }

    # LocalVectors above ann_from: an HNSW graph (usearch, float16)
    graph = LocalVectors(ann_from=1)
    graph.upsert(ids.tolist(), x)
    t = time.perf_counter()
    graph.prepare()
    build = time.perf_counter() - t
    found, ms = timed(lambda q: graph.search(q, k)[0], qs)
    out["hnsw_usearch_f16"] = {
        "build_s": round(build, 2),
        "query_ms": p(ms, 3),
        "recall_at_10": recall(found, truth),
        "memory_mb": round(graph.memory_bytes / 1e6, 1),
        "connectivity": graph.connectivity,
        "expansion_search": EXPANSION_SEARCH,
    }
    return out


def load_from_index(real: np.ndarray, n: int) -> dict:
    """``n`` vectors stored in an index (float16 BLOBs beside real chunk texts): the time a
    process takes to fill LocalVectors from it, and then to catch up with one edit."""
    from hone.retrieval.chunks import Chunk

    x = extend(real, n, np.random.default_rng(4))
    texts, by_file = corpus(2000)
    chunks = [c for cs in by_file.values() for c in cs]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        index = Index(root, folder=Path(tmp) / "index", embedder=SentenceEmbedder())
        t = time.perf_counter()
        per_file = 40
        with index.store.writer() as w:
            for f in range(0, n, per_file):
                part = [
                    Chunk(
                        f"pkg{f // 4000}/m{f}.py",
                        i + 1,
                        i + 1,
                        c.kind,
                        c.name,
                        "python",
                        c.text,
                        "",
                    )
                    for i, c in enumerate(chunks[(f + j) % len(chunks)] for j in range(per_file))
                ][: n - f]
                w.put_file(part[0].path, str(f), 1, 0, "python", part)
        write_s = time.perf_counter() - t
        rows = index.store.pending_embeddings(n + 1)
        for start in range(0, len(rows), 4096):
            batch = rows[start : start + 4096]
            index.store.put_embeddings([r.id for r in batch], x[start : start + len(batch)])
        size = sum(f.stat().st_size for f in (Path(tmp) / "index").glob("index.sqlite*"))
        search = VectorSearch(index.store, LocalVectors())
        t = time.perf_counter()
        search.sync()
        load_s = time.perf_counter() - t
        assert search.count() == n
        one = index.store.chunks_of(rows[0].chunk.path)
        with index.store.writer() as w:
            w.put_file(one[0].chunk.path, "edited", 1, 0, "python", [one[0].chunk])
        t = time.perf_counter()
        search.sync()
        catch_up = time.perf_counter() - t
        index.close()
    return {
        "vectors": n,
        "write_chunks_s": round(write_s, 1),
        "index_mb": round(size / 1e6, 1),
        "load_s": round(load_s, 2),
        "catch_up_after_one_file_ms": round(catch_up * 1000, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=600, help="chunks of the throughput part")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved raw/pass rounds")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--scale", type=int, default=80_000, help="vectors of the search part")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    embedder = SentenceEmbedder()
    t = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - t
    out: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": embedder.name,
        "device": "cpu",
        "weights": "float32 (vectors stored as float16)",
        "torch_threads": torch.get_num_threads(),
        "model_load_s": round(load_s, 2),
    }
    out["throughput"], real = throughput(embedder, args.chunks, args.rounds)
    out["query"], qs = queries(embedder, args.queries)
    out["search"] = scale(real, qs, args.scale)
    out["load_from_index"] = load_from_index(real, args.scale)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
