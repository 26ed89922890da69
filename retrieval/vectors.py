"""Vector search over the chunks' embeddings, behind one small protocol.

The index's SQLite file holds every chunk's vector (the source of truth, durable:
:mod:`.store`). A :class:`VectorStore` answers nearest-neighbour queries over a copy of them,
kept up to date by :class:`VectorSearch`, which reads the store's vector log (what
appeared and what went since it last looked) in this process or another:

- :class:`LocalVectors` (the default): in memory, exact search with usearch's SIMD
  brute force over a float16 matrix; from :data:`ANN_FROM` vectors an HNSW graph
  (``usearch.Index``) answers instead, once :meth:`LocalVectors.prepare` built it in the
  background. Measured in ``retrieval/README.md`` (``benchmarks/bench_embeddings.py``).
- :class:`QdrantVectors`: a Qdrant collection per workspace and model, on a Qdrant server
  (``vectorStore: "http://host:6333"``) for a monorepo that outgrows a laptop; the same
  client runs in-process (``":memory:"`` or a folder) for tests. What it last caught up to
  is kept in the index's meta, so a restart sends only what changed since.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from hone.retrieval.store import IndexStore, StoredChunk, workspace_key

log = logging.getLogger("hone.retrieval.vectors")

ANN_FROM = 200_000  # vectors from which LocalVectors builds an HNSW graph (retrieval/README.md)
CONNECTIVITY = 16  # HNSW edges per node (usearch's default)
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128  # candidates an HNSW query visits (recall against time)
PAGE = 1024  # vectors per read and per upsert when a store is filled


class VectorStore(Protocol):
    """Nearest neighbours by inner product (the vectors are L2-normalized: cosine)."""

    # None: in memory, filled again in each process; else the name under which the index
    # keeps how far this store has caught up (it outlives the process)
    state_key: str | None

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def delete(self, ids: Sequence[int]) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        """The ``k`` nearest ids, best first, and their scores (higher = closer)."""
        ...

    def count(self) -> int: ...

    def clear(self) -> None: ...


# -- in memory -------------------------------------------------------------------------------


class LocalVectors:
    """Exact search over a float16 matrix in memory (usearch's brute force), and from
    ``ann_from`` vectors an HNSW graph (usearch) once :meth:`prepare` built it. Not
    thread-safe on its own (:class:`VectorSearch` holds a lock)."""

    state_key = None

    def __init__(
        self,
        ann_from: int | None = ANN_FROM,
        *,
        connectivity: int = CONNECTIVITY,
        expansion_search: int = EXPANSION_SEARCH,
    ) -> None:
        self.ann_from = ann_from
        self.connectivity = connectivity
        self.expansion_search = expansion_search
        self.clear()

    @property
    def ann(self) -> bool:
        """Whether searches go to the HNSW graph."""
        return self._ann is not None

    def count(self) -> int:
        return self._n

    def clear(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float16)
        self._n = 0
        self._row: dict[int, int] = {}
        self._ann: Any = None  # usearch.index.Index once built

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        keys = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float16).reshape(len(keys), -1)
        _, first = np.unique(keys, return_index=True)
        if len(first) < len(keys):  # a key twice: the first one
            keys, vectors = keys[np.sort(first)], vectors[np.sort(first)]
        if self._matrix.shape[1] != vectors.shape[1]:
            if self._n:
                raise ValueError(f"vectors of {vectors.shape[1]} dims in a store of {self.dim}")
            self._matrix = np.zeros((0, vectors.shape[1]), dtype=np.float16)
        fresh = np.ones(len(keys), dtype=bool)
        for i, key in enumerate(keys.tolist()):
            row = self._row.get(key)
            if row is not None:
                self._matrix[row] = vectors[i]
                fresh[i] = False
        if self._ann is not None and not fresh.all():
            self._ann.remove(keys[~fresh])
        add_keys, add_vectors = keys[fresh], vectors[fresh]
        self._grow(self._n + len(add_keys))
        stop = self._n + len(add_keys)
        self._keys[self._n : stop] = add_keys
        self._matrix[self._n : stop] = add_vectors
        self._row.update(zip(add_keys.tolist(), range(self._n, stop), strict=True))
        self._n = stop
        if self._ann is not None:
            self._ann.add(keys, vectors)

    def delete(self, ids: Sequence[int]) -> None:
        gone = []
        for key in (int(i) for i in ids):
            row = self._row.pop(key, None)
            if row is None:
                continue
            gone.append(key)
            last = self._n - 1
            if row != last:  # the last row moves into the hole
                moved = int(self._keys[last])
                self._keys[row] = moved
                self._matrix[row] = self._matrix[last]
                self._row[moved] = row
            self._n = last
        if self._ann is not None and gone:
            self._ann.remove(np.asarray(gone, dtype=np.int64))

    def search(
        self, vector: np.ndarray, k: int, *, exact: bool = False
    ) -> tuple[list[int], list[float]]:
        k = min(k, self._n)
        if k <= 0:
            return [], []
        query = np.asarray(vector, dtype=np.float16).reshape(-1)
        if self._ann is not None and not exact:
            found = self._ann.search(query, k)
            keys = found.keys.tolist()
        else:
            from usearch.index import MetricKind, search

            found = search(self._matrix[: self._n], query, k, MetricKind.IP, exact=True)
            keys = self._keys[found.keys].tolist()
        # usearch's inner-product distance is 1 - dot
        return keys, [round(1.0 - float(d), 6) for d in found.distances]

    def prepare(self) -> None:
        """Build the HNSW graph if there are ``ann_from`` vectors or more (slow: in the
        background; searches stay exact until it is built)."""
        if self._ann is not None or self.ann_from is None or self._n < self.ann_from:
            return
        from usearch.index import Index

        graph = Index(
            ndim=self.dim,
            metric="ip",
            dtype="f16",
            connectivity=self.connectivity,
            expansion_add=EXPANSION_ADD,
            expansion_search=self.expansion_search,
        )
        graph.add(self._keys[: self._n], self._matrix[: self._n])
        self._ann = graph

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    @property
    def memory_bytes(self) -> int:
        graph = int(self._ann.memory_usage) if self._ann is not None else 0
        return int(self._matrix.nbytes + self._keys.nbytes) + graph

    def _grow(self, need: int) -> None:
        if need <= len(self._keys):
            return
        size = max(need, 2 * len(self._keys), 1024)
        keys = np.zeros(size, dtype=np.int64)
        keys[: self._n] = self._keys[: self._n]
        matrix = np.zeros((size, self._matrix.shape[1]), dtype=np.float16)
        matrix[: self._n] = self._matrix[: self._n]
        self._keys, self._matrix = keys, matrix


# -- Qdrant ----------------------------------------------------------------------------------


class QdrantVectors:
    """A Qdrant collection (cosine distance), created on the first upsert. ``url``: a
    Qdrant server (``QDRANT_API_KEY`` from the environment if set); ``location=":memory:"``
    or ``path``: the same client in-process (tests, a single machine)."""

    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        location: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                from qdrant_client import QdrantClient
            except ImportError as exc:
                raise ImportError(
                    f"a Qdrant vector store needs qdrant-client ({exc}): pip install 'hone[qdrant]'"
                ) from exc

            if url is not None:
                client = QdrantClient(
                    url=url, api_key=api_key or os.environ.get("QDRANT_API_KEY") or None
                )
            elif path is not None:
                client = QdrantClient(path=path)
            else:
                client = QdrantClient(location or ":memory:")
        self.client = client
        self.collection = collection
        where = url or path or location or ":memory:"
        # an in-process ":memory:" client forgets everything with the process
        self.state_key = None if where == ":memory:" else f"qdrant {where} {collection}"
        self._exists: bool | None = None

    def _ready(self, dim: int | None = None) -> bool:
        """Whether the collection exists (created when ``dim`` is given)."""
        if not self._exists:
            self._exists = self.client.collection_exists(self.collection)
        if not self._exists and dim is not None:
            from qdrant_client import models

            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            )
            self._exists = True
        return bool(self._exists)

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        from qdrant_client import models

        vectors = np.asarray(vectors, dtype=np.float32)
        self._ready(vectors.shape[1])
        for start in range(0, len(ids), PAGE):
            self.client.upsert(
                self.collection,
                points=models.Batch(
                    ids=[int(i) for i in ids[start : start + PAGE]],
                    vectors=vectors[start : start + PAGE].tolist(),
                ),
                wait=True,
            )

    def delete(self, ids: Sequence[int]) -> None:
        if len(ids) == 0 or not self._ready():
            return
        from qdrant_client import models

        self.client.delete(
            self.collection,
            points_selector=models.PointIdsList(points=[int(i) for i in ids]),
            wait=True,
        )

    def search(self, vector: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        if k <= 0 or not self._ready():
            return [], []
        found = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).reshape(-1).tolist(),
            limit=k,
            with_payload=False,
        ).points
        return [int(p.id) for p in found], [float(p.score) for p in found]

    def count(self) -> int:
        if not self._ready():
            return 0
        return int(self.client.count(self.collection, exact=True).count)

    def clear(self) -> None:
        if self._ready():
            self.client.delete_collection(self.collection)
        self._exists = False

    def close(self) -> None:
        self.client.close()


def collection_name(root: str | os.PathLike[str], model_key: str) -> str:
    """A Qdrant collection per workspace and embedding model."""
    model = hashlib.sha256(model_key.encode()).hexdigest()[:12]
    return f"hone-{workspace_key(root)}-{model}"


def open_vector_store(spec: str, root: str | os.PathLike[str], model_key: str) -> VectorStore:
    """The ``vectorStore`` option: ``""`` in memory (:class:`LocalVectors`), an ``http(s)://``
    URL a Qdrant server (a collection per workspace and model). ValueError otherwise."""
    if not spec:
        return LocalVectors()
    if spec.startswith(("http://", "https://")):
        return QdrantVectors(collection_name(root, model_key), url=spec)
    raise ValueError(
        f'vectorStore {spec!r}: expected "" (in memory) or a Qdrant URL (http://host:6333)'
    )


# -- kept up to date with the index ---------------------------------------------------------------


class VectorSearch:
    """A :class:`VectorStore` kept up to date with an index's vectors (thread-safe).

    :meth:`sync` applies what the store's vector log says changed since it last looked
    (everything, the first time, or after the model changed). ``inline_sync``: at most this
    many changes are applied inside :meth:`search` (a completion's retrieval), more are
    left to a background :meth:`sync`; None applies everything there."""

    def __init__(
        self,
        store: IndexStore,
        backend: VectorStore | None = None,
        *,
        inline_sync: int | None = None,
    ) -> None:
        self.store = store
        self.backend: VectorStore = backend if backend is not None else LocalVectors()
        self.inline_sync = inline_sync
        self._lock = threading.Lock()
        self._epoch, self._seq = "", 0
        self._checked = False  # a persistent store's size was compared with the index's
        key = self.backend.state_key
        if key is not None:
            saved = store.meta().get(f"vector_sync {key}", "")
            epoch, _, seq = saved.partition(":")
            if seq.isdigit():
                self._epoch, self._seq = epoch, int(seq)

    def sync(self, limit: int | None = None) -> bool:
        """Catch up with the index: True when up to date, False when more than ``limit``
        changes (or a full reload) were left for later."""
        with self._lock:
            return self._sync(limit)

    def _sync(self, limit: int | None) -> bool:
        store = self.store
        if store.vector_head() == (self._epoch, self._seq) and self._checked:
            return True
        epoch, last, changes = store.vector_changes(self._epoch, self._seq)
        if changes is None:
            if limit is not None:
                return False
            self._reload()
        else:
            if limit is not None and len(changes) > limit:
                return False
            gone = [i for i, present in changes.items() if not present]
            if gone:
                self.backend.delete(gone)
            added = [i for i, present in changes.items() if present]
            for start in range(0, len(added), PAGE):
                keys, matrix = store.vectors(added[start : start + PAGE])
                self.backend.upsert(keys.tolist(), matrix)
        self._epoch, self._seq = epoch, last
        if not self._checked:
            self._checked = True
            if self.backend.count() != store.counts()["embedded"]:
                if limit is not None:
                    self._checked = False
                    return False
                log.info("vector store out of step with the index: filled again")
                self._epoch, self._seq = "", 0
                return self._sync(None)
        self._save_state()
        return True

    def _reload(self) -> None:
        self.backend.clear()
        keys, matrix = self.store.vectors()
        for start in range(0, len(keys), PAGE * 16):
            stop = start + PAGE * 16
            self.backend.upsert(keys[start:stop].tolist(), matrix[start:stop])

    def _save_state(self) -> None:
        key = self.backend.state_key
        if key is not None:
            self.store.set_meta_value(f"vector_sync {key}", f"{self._epoch}:{self._seq}")

    def prepare(self) -> None:
        """In the background: catch up entirely and build what the store builds slowly
        (LocalVectors' HNSW graph above ANN_FROM)."""
        with self._lock:
            self._sync(None)
            prepare = getattr(self.backend, "prepare", None)
            if prepare is not None:
                prepare()

    def count(self) -> int:
        with self._lock:
            return self.backend.count()

    def available(self) -> bool:
        """Whether a search can find anything (catching up as :meth:`search` does)."""
        with self._lock:
            self._sync(self.inline_sync)
            return self._checked and self.backend.count() > 0

    def search(self, vector: np.ndarray, k: int) -> list[tuple[StoredChunk, float]]:
        """The ``k`` chunks nearest ``vector``, best first, with their scores."""
        with self._lock:
            self._sync(self.inline_sync)
            if not self._checked:  # never filled yet: nothing to search
                return []
            ids, scores = self.backend.search(vector, k)
        found = self.store.chunks_by_id(ids)
        return [(found[i], s) for i, s in zip(ids, scores, strict=True) if i in found]


__all__ = [
    "ANN_FROM",
    "LocalVectors",
    "QdrantVectors",
    "VectorSearch",
    "VectorStore",
    "collection_name",
    "open_vector_store",
]
