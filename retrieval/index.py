"""Build and update a workspace's index: which files (:mod:`.files`), their chunks
(:mod:`.chunks`), stored with their lexical tokens (:mod:`.store`).

Incremental by content hash: a file whose size and modification time match the index is
not read; one whose text hashes the same is not re-chunked. A second update of an unchanged
workspace does no work. Open buffers are indexed from their live text
(:meth:`Index.update_text`), and a saved or changed file is re-read
(:meth:`Index.update_paths`).

Embeddings: an index given an embedder (:mod:`.embeddings`) keeps its name in the index and
:meth:`Index.embed` gives a vector to every chunk that has none yet (new and changed
chunks only; a file's unchanged definitions keep theirs), in batches sorted by length as
``SentenceTransformer.encode`` sorts them, written per batch, so a stop loses at most one
batch. :attr:`Index.vectors` searches them (:mod:`.vectors`).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hone.retrieval.chunks import chunk_text
from hone.retrieval.files import SourceFile, list_workspace, read_source
from hone.retrieval.secrets import redact
from hone.retrieval.store import IndexStore, StoredChunk, content_hash
from hone.retrieval.syntax import language_for_path, language_object

if TYPE_CHECKING:
    from hone.retrieval.embeddings import Embedder
    from hone.retrieval.vectors import VectorSearch, VectorStore

# Called with (done, total, message) while an update runs.
Progress = Callable[[int, int, str], None]
MAX_BYTES = 1_000_000
EMBED_WINDOW = 4096  # pending chunks read and sorted by length at a time


@dataclass
class IndexReport:
    root: str
    folder: str
    files: int = 0  # source files in the workspace (after skipping)
    indexed: int = 0  # read and chunked now (new or changed)
    unchanged: int = 0
    removed: int = 0  # gone from the workspace, dropped from the index
    chunks: int = 0  # in the index after the update
    secrets: int = 0  # secrets replaced in the files read now (retrieval/secrets.py)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    interrupted_before: bool = False  # the previous update was killed: this one completed it
    rebuilt_because: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class EmbedReport:
    model: str
    embedded: int = 0  # vectors written now
    pending: int = 0  # chunks still without a vector afterwards
    vectors: int = 0  # chunks with a vector afterwards
    batches: int = 0
    stopped: bool = False  # should_stop said so, or max_batches was reached
    seconds: dict[str, float] = field(default_factory=dict)  # read, encode, write, total

    def as_json(self) -> dict:
        return dict(self.__dict__)


class Index:
    """One workspace's index: update it, query it."""

    def __init__(
        self,
        root: Path | str,
        *,
        exclude: Sequence[str] = (),
        folder: Path | None = None,
        max_bytes: int = MAX_BYTES,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
    ) -> None:
        """``embedder``: the model :meth:`embed` uses (its key is kept in the index: another
        one drops the stored vectors); ``vector_store``: what :attr:`vectors` searches
        with (default: in memory, :class:`~hone.retrieval.vectors.LocalVectors`)."""
        self.root = Path(os.path.realpath(root))
        self.exclude = tuple(exclude)
        self.max_bytes = max_bytes
        self.embedder = embedder
        self.store = IndexStore(self.root, folder, embed_model=embedder.key if embedder else "")
        self._vector_store = vector_store
        self._vectors: VectorSearch | None = None

    # -- updates ---------------------------------------------------------------------------

    def update(
        self,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        between: Callable[[], None] | None = None,
    ) -> IndexReport:
        """Bring the index up to date with the workspace on disk.

        ``should_stop`` is asked before each file (True: stop, what is written stays);
        ``between`` is called between files (the server's scheduler pauses background work
        there while a completion runs)."""
        store = self.store
        report = IndexReport(
            str(self.root),
            str(store.folder),
            interrupted_before=store.interrupted,
            rebuilt_because=store.rebuilt_because,
        )
        t0 = time.perf_counter()
        listing = list_workspace(self.root, self.exclude, self.max_bytes)
        report.seconds["list"] = round(time.perf_counter() - t0, 3)
        report.files = len(listing.files)
        report.skipped = dict(listing.skipped)
        report.skipped_examples = {k: list(v) for k, v in listing.examples.items()}
        known = store.files()
        present = {f.path for f in listing.files}
        timing: Counter[str] = Counter()
        with store.writer() as writer:
            for path in sorted(set(known) - present):
                if not known[path].live:
                    writer.remove_file(path)
                    report.removed += 1
            total = len(listing.files)
            for done, source in enumerate(listing.files, 1):
                if between is not None:
                    between()
                if should_stop is not None and should_stop():
                    break
                row = known.get(source.path)
                if (
                    row is not None
                    and not row.live
                    and row.size == source.size
                    and row.mtime_ns == source.mtime_ns
                ):
                    report.unchanged += 1
                else:
                    changed = self._index_file(writer, source, row, timing)
                    report.indexed += changed
                    report.unchanged += not changed
                if progress is not None and (done % 50 == 0 or done == total):
                    progress(done, total, source.path)
        report.chunks = store.counts()["chunks"]
        report.secrets = int(timing.pop("secrets", 0))
        report.seconds.update({k: round(v, 3) for k, v in timing.items()})
        report.seconds["total"] = round(time.perf_counter() - t0, 3)
        return report

    def _index_file(self, writer, source: SourceFile, row, timing: Counter[str]) -> bool:
        """Read, hash and (if the text changed) chunk one file. True if re-chunked."""
        t = time.perf_counter()
        text = read_source(source, self.max_bytes)
        timing["read"] += time.perf_counter() - t
        if text is None:  # turned binary or huge since it was listed
            writer.remove_file(source.path)
            return False
        digest = content_hash(text)
        if row is not None and row.hash == digest and not row.live:
            writer.touch(source.path, source.size, source.mtime_ns)
            return False
        t = time.perf_counter()
        # The index never holds a secret (the hash above is of the file as it is).
        text, found = redact(text)
        timing["secrets"] += found
        timing["scan"] += time.perf_counter() - t
        t = time.perf_counter()
        chunks = chunk_text(source.path, text, source.language)
        timing["chunk"] += time.perf_counter() - t
        t = time.perf_counter()
        writer.put_file(source.path, digest, source.size, source.mtime_ns, source.language, chunks)
        timing["write"] += time.perf_counter() - t
        return True

    def update_paths(self, paths: Iterable[str]) -> int:
        """Re-read these workspace-relative paths (saved, created, changed or deleted on
        disk). Returns how many were re-chunked or removed."""
        changed = 0
        with self.store.writer() as writer:
            known = self.store.files()
            for path in paths:
                listing = list_workspace(self.root, self.exclude, self.max_bytes, only=[path])
                if not listing.files:
                    if path in known:
                        writer.remove_file(path)
                        changed += 1
                    continue
                changed += self._index_file(writer, listing.files[0], known.get(path), Counter())
        return changed

    def update_text(self, path: str, text: str) -> bool:
        """Index an open buffer from its live text (not yet saved). True if re-chunked."""
        language = language_for_path(path)
        if language_object(language) is None or len(text) > self.max_bytes:
            return False
        digest = content_hash(text)
        row = self.store.files().get(path)
        if row is not None and row.hash == digest:
            return False
        chunks = chunk_text(path, redact(text)[0], language)
        with self.store.writer() as writer:
            writer.put_file(path, digest, len(text), 0, language, chunks, live=True)
        return True

    # -- embeddings --------------------------------------------------------------------------

    def embed(
        self,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        between: Callable[[], None] | None = None,
        *,
        max_batches: int | None = None,
    ) -> EmbedReport:
        """Embed the chunks that have no vector yet, one batch at a time (``embedder.
        batch_size`` chunks, each batch written in one transaction). ``should_stop`` is asked
        and ``between`` called before each batch (as in :meth:`update`); ``max_batches``
        bounds the work of one call (the server interleaves it with other index work).
        Raises :class:`~hone.retrieval.embeddings.EmbeddingError` when the model fails."""
        embedder = self.embedder
        if embedder is None:
            raise ValueError("this Index has no embedder")
        store = self.store
        report = EmbedReport(embedder.key)
        timing: Counter[str] = Counter()
        t0 = time.perf_counter()
        total = store.pending_count() if progress is not None else 0
        after = 0
        while not report.stopped:
            t = time.perf_counter()
            rows = store.pending_embeddings(EMBED_WINDOW, after)
            if not rows:
                break
            after = rows[-1].id
            # longest first, as SentenceTransformer.encode orders a list: similar lengths
            # share a batch, so little of it is padding
            docs = sorted(
                ((embedder.document(r.chunk), r.id) for r in rows), key=lambda d: -len(d[0])
            )
            timing["read"] += time.perf_counter() - t
            for start in range(0, len(docs), embedder.batch_size):
                if between is not None:
                    between()
                if (should_stop is not None and should_stop()) or (
                    max_batches is not None and report.batches >= max_batches
                ):
                    report.stopped = True
                    break
                batch = docs[start : start + embedder.batch_size]
                t = time.perf_counter()
                vectors = embedder.encode([d for d, _ in batch])
                timing["encode"] += time.perf_counter() - t
                t = time.perf_counter()
                report.embedded += store.put_embeddings([i for _, i in batch], vectors)
                timing["write"] += time.perf_counter() - t
                report.batches += 1
                if progress is not None:
                    progress(report.embedded, total, "")
        counts = store.counts()
        report.vectors = counts["embedded"]
        report.pending = counts["chunks"] - counts["embedded"]
        report.seconds = {k: round(v, 3) for k, v in timing.items()}
        report.seconds["total"] = round(time.perf_counter() - t0, 3)
        return report

    @property
    def vectors(self) -> VectorSearch:
        """Vector search over this index's stored vectors (created on first use)."""
        if self._vectors is None:
            from hone.retrieval.vectors import VectorSearch

            self._vectors = VectorSearch(self.store, self._vector_store)
        return self._vectors

    # -- queries ---------------------------------------------------------------------------

    def search(self, text: str, limit: int = 20) -> list[tuple[StoredChunk, float]]:
        return self.store.search(text, limit)

    def close(self) -> None:
        if self._vectors is not None:
            close = getattr(self._vectors.backend, "close", None)
            if close is not None:
                close()
        self.store.close()
