"""hone.retrieval.vectors: the local store (exact, and HNSW against exact), Qdrant in its
local mode (the real client, in-process), and VectorSearch keeping a store in step with
the index's vectors (the vector log) through updates, a model change and a restart.

The index's vectors here come from a small deterministic embedder (hashed tokens): these
tests are about plumbing; tests/retrieval/test_embeddings.py runs the real model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hone.retrieval import store as store_module
from hone.retrieval.chunks import Chunk
from hone.retrieval.embeddings import document
from hone.retrieval.index import Index
from hone.retrieval.lexical import tokens
from hone.retrieval.vectors import (
    LocalVectors,
    QdrantVectors,
    VectorSearch,
    collection_name,
    open_vector_store,
)

from tests.conftest import write


class HashEmbedder:
    """Deterministic: each identifier-split token adds a fixed random direction."""

    batch_size = 4

    def __init__(self, key: str = "hash-embedder v1", dim: int = 32) -> None:
        self.key, self.dim = key, dim
        self.encoded = 0

    def document(self, chunk: Chunk) -> str:
        return document(chunk)

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in tokens(text):
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
            v += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts):
        self.encoded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def encode_query(self, text: str) -> np.ndarray:
        return self._vector(text)


def unit(rng: np.random.Generator, n: int, dim: int = 48, clusters: int = 40) -> np.ndarray:
    """Clustered unit vectors (like embeddings: not uniform on the sphere)."""
    centers = rng.standard_normal((clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(found: list[int], ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> bool:
    """Whether ``found`` is a top ``k`` by exact inner product (near-ties, within float16's
    precision, may come in either order)."""
    scores = dict(zip(ids.tolist(), (x @ q).tolist(), strict=True))
    best = sorted(scores.values(), reverse=True)[:k]
    return len(found) == k and np.allclose([scores[i] for i in found], best, atol=2e-3)


# -- LocalVectors ------------------------------------------------------------------------------


def test_local_exact_search_upsert_and_delete():
    rng = np.random.default_rng(0)
    x = unit(rng, 500)
    ids = np.arange(1000, 1500)
    local = LocalVectors()
    local.upsert(ids[:300].tolist(), x[:300])
    local.upsert(ids[300:].tolist(), x[300:])
    assert local.count() == 500 and not local.ann
    q = x[7]
    found, scores = local.search(q, 10)
    assert found[0] == 1007 and scores[0] == pytest.approx(1.0, abs=2e-3)
    assert exact_top(found, ids, x, q, 10)
    assert scores == sorted(scores, reverse=True)

    # delete (the last row moves into the hole) and overwrite in place
    local.delete([1007, 1499, 424242])
    assert local.count() == 498
    keep = ~np.isin(ids, [1007, 1499])
    assert exact_top(local.search(q, 10)[0], ids[keep], x[keep], q, 10)
    local.upsert([1003], x[7:8])  # 1003 now holds 1007's vector
    assert local.search(q, 1)[0] == [1003]
    assert local.count() == 498
    assert local.search(q, 10_000)[0][:1] == [1003]  # k above the count: all of them
    local.clear()
    assert local.count() == 0 and local.search(q, 5) == ([], [])


def test_local_hnsw_agrees_with_exact():
    rng = np.random.default_rng(1)
    x = unit(rng, 4000)
    ids = np.arange(1, 4001)
    local = LocalVectors(ann_from=1000)
    local.upsert(ids.tolist(), x)
    assert not local.ann  # built only by prepare() (in the background)
    local.prepare()
    assert local.ann
    queries = unit(np.random.default_rng(2), 100)
    recall = []
    for q in queries:
        ann, _ = local.search(q, 10)
        exact, _ = local.search(q, 10, exact=True)
        assert exact_top(exact, ids, x, q, 10)
        recall.append(len(set(ann) & set(exact)) / 10)
    assert np.mean(recall) >= 0.95, np.mean(recall)

    # the graph follows deletions and updates
    gone = [int(i) for i in local.search(queries[0], 5)[0]]
    local.delete(gone)
    assert not set(gone) & set(local.search(queries[0], 20)[0])
    local.upsert([gone[0]], queries[0][None, :])
    assert local.search(queries[0], 1)[0] == [gone[0]]
    assert local.count() == 4000 - 4


# -- Qdrant (local mode: the real client, in-process) -------------------------------------------


def test_qdrant_local_mode_upsert_delete_search(tmp_path: Path):
    rng = np.random.default_rng(3)
    x = unit(rng, 300)
    ids = list(range(10, 310))
    qdrant = QdrantVectors("hone-test", location=":memory:")
    assert qdrant.state_key is None  # forgets everything with the process
    assert qdrant.count() == 0 and qdrant.search(x[0], 5) == ([], [])
    qdrant.delete([1, 2])  # no collection yet: nothing to do
    qdrant.upsert(ids, x)
    assert qdrant.count() == 300
    for i in (0, 55, 299):
        found, scores = qdrant.search(x[i], 10)
        assert found[0] == ids[i] and scores[0] == pytest.approx(1.0, abs=1e-3)
        assert exact_top(found, np.array(ids), x, x[i], 10)
    qdrant.delete([ids[0], ids[1]])
    assert qdrant.count() == 298 and ids[0] not in qdrant.search(x[0], 10)[0]
    qdrant.upsert([ids[2]], x[0:1])  # an update, not a second point
    assert qdrant.count() == 298 and qdrant.search(x[0], 1)[0] == [ids[2]]
    qdrant.clear()
    assert qdrant.count() == 0
    qdrant.close()

    on_disk = QdrantVectors("hone-test", path=str(tmp_path / "qdrant"))
    assert on_disk.state_key == f"qdrant {tmp_path / 'qdrant'} hone-test"
    on_disk.upsert(ids[:3], x[:3])
    on_disk.close()
    again = QdrantVectors("hone-test", path=str(tmp_path / "qdrant"))
    assert again.count() == 3
    again.close()


def test_vector_store_option():
    assert isinstance(open_vector_store("", "/tmp/ws", "m"), LocalVectors)
    with pytest.raises(ValueError, match="Qdrant URL"):
        open_vector_store("qdrant", "/tmp/ws", "m")
    a, b = collection_name("/tmp/ws", "model a"), collection_name("/tmp/ws", "model b")
    assert a != b and a.startswith("hone-ws-") and collection_name("/tmp/other", "model a") != a


# -- VectorSearch: in step with the index ----------------------------------------------------------

SOURCE = '''"""Geometry helpers."""


def circle_area(radius):
    return 3.14159 * radius * radius


def rectangle_area(width, height):
    return width * height


def triangle_area(base, height):
    return base * height / 2
'''


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root / "geometry.py", SOURCE)
    write(root / "text.py", "def shout(words):\n    return words.upper() + '!'\n")
    return root


def embedded_ids(index: Index) -> set[int]:
    return set(index.store.vectors()[0].tolist())


def backends(tmp_path: Path):
    return {
        "local": lambda: LocalVectors(),
        "qdrant": lambda: QdrantVectors("hone-ws", path=str(tmp_path / "qdrant")),
    }


@pytest.mark.parametrize("kind", ["local", "qdrant"])
def test_vector_search_follows_the_index(workspace: Path, tmp_path: Path, kind: str):
    embedder = HashEmbedder()
    index = Index(workspace, folder=tmp_path / "index", embedder=embedder)
    index.update()
    assert index.embed().embedded == index.store.counts()["chunks"] == 5
    search = VectorSearch(index.store, backends(tmp_path)[kind]())
    assert search.sync() and search.count() == 5
    hits = search.search(embedder.encode_query("rectangle area width height"), 2)
    assert hits[0][0].chunk.name == "rectangle_area"

    # an edit: the changed definition's vector goes, the new one comes; the others stay
    before = embedded_ids(index)
    write(workspace / "geometry.py", SOURCE.replace("width * height", "height * width"))
    assert index.update_paths(["geometry.py"]) == 1
    report = index.embed()
    assert report.embedded == 1 and embedder.encoded == 6
    after = embedded_ids(index)
    assert len(before - after) == 4 and len(after - before) == 4  # new rows, same vectors
    assert search.sync() and search.count() == 5
    assert {s.id for s, _ in search.search(embedder.encode_query("area"), 10)} == after

    # a deleted file: its vector leaves the store
    (workspace / "text.py").unlink()
    index.update()
    assert search.sync() and search.count() == 4
    index.close()


def test_a_persistent_store_resumes_and_a_model_change_refills(workspace: Path, tmp_path: Path):
    index = Index(workspace, folder=tmp_path / "index", embedder=HashEmbedder())
    index.update()
    index.embed()
    qdrant = QdrantVectors("hone-ws", path=str(tmp_path / "qdrant"))
    search = VectorSearch(index.store, qdrant)
    assert search.sync() and qdrant.count() == 5
    saved = index.store.meta()[f"vector_sync {qdrant.state_key}"]
    qdrant.close()
    index.close()

    # a restart: the sync state is read back; nothing to send, the collection is as it was
    write(workspace / "more.py", "def whisper(words):\n    return words.lower()\n")
    index = Index(workspace, folder=tmp_path / "index", embedder=HashEmbedder())
    index.update()
    index.embed()
    qdrant = QdrantVectors("hone-ws", path=str(tmp_path / "qdrant"))
    search = VectorSearch(index.store, qdrant)
    assert (search._epoch, search._seq) == (saved.split(":")[0], int(saved.split(":")[1]))
    assert search.sync(limit=1) and qdrant.count() == 6  # only the one new vector was sent
    qdrant.close()
    index.close()

    # another model: every vector is dropped and embedded again, and the store reloads
    other = HashEmbedder("hash-embedder v2", dim=16)
    index = Index(workspace, folder=tmp_path / "index", embedder=other)
    assert index.store.counts()["embedded"] == 0
    local = VectorSearch(index.store, LocalVectors())
    assert local.sync() and local.count() == 0
    index.update()
    assert index.embed().embedded == 6 and other.encoded == 6
    assert not local.sync(limit=0)  # six changes: more than an inline sync may apply
    assert local.sync() and local.count() == 6
    assert local.backend.dim == 16
    index.close()


def test_a_reader_behind_the_pruned_log_reloads(workspace: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_module, "LOG_KEEP", 2)
    index = Index(workspace, folder=tmp_path / "index", embedder=HashEmbedder())
    index.update()
    search = VectorSearch(index.store, LocalVectors())
    assert search.sync() and search.count() == 0
    index.embed()
    index.update()  # a writer session prunes the log to its last 2 entries
    epoch, last = index.store.vector_head()
    assert index.store.vector_changes(epoch, 0)[2] is None  # entries were missed
    assert not search.sync(limit=100)  # a reload is left to the background
    assert search.sync() and search.count() == 5
    index.close()
