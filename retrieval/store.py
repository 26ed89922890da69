"""The on-disk index of one workspace: SQLite (WAL) with an FTS5 table for BM25.

Where: ``<cache>/index/<key>/index.sqlite`` in the user's cache folder (``$HONE_CACHE_DIR``,
else ``$XDG_CACHE_HOME/hone``, else ``~/.cache/hone``), ``key`` a hash of the workspace's
real path: never inside the repository.

- **Schema version**: an index written by another version is removed and rebuilt, never
  misread. The embedding model's name is kept too: changing it drops the vectors.
- **Vectors**: each chunk's embedding is a float16 BLOB in its row (NULL until the
  embedding pass of :meth:`hone.retrieval.index.Index.embed` fills it). A file re-chunked
  with some definitions unchanged keeps their vectors. Chunk ids are never reused
  (``AUTOINCREMENT``), and triggers append every vector that appears or goes to
  ``vector_log``, so a vector search structure (:mod:`.vectors`: in memory, or a Qdrant
  collection) catches up with a cheap read of the log's tail, in this process or another.
- **One writer at a time**: :meth:`IndexStore.writer` holds an exclusive ``flock`` on
  ``writer.lock`` (across processes) for the whole update. WAL mode: readers are never
  blocked by the writer and see the last committed state.
- **Crash safety**: each file's chunks are replaced in one transaction, so a killed writer
  leaves a consistent index; ``state`` says ``building`` until an update finishes, so the
  next open knows it was interrupted (:attr:`IndexStore.interrupted`) and the next update
  completes it. A file that is not a readable SQLite database (a torn write, a disk
  error) is removed and rebuilt.

Why SQLite FTS5 for BM25 (and not bm25s or rank-bm25): it is part of Python's standard
library, updates one file's rows in place (the index is incremental by content hash), is
durable with readers never blocked, and answers a query in about a millisecond on tens of
thousands of chunks; the in-memory BM25 libraries rebuild their matrices on any change.
Measured in ``retrieval/README.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hone.retrieval.chunks import Chunk
from hone.retrieval.lexical import fts_query, tokens

SCHEMA_VERSION = 3  # 3: chunk ids never reused, vector log
VECTOR_DTYPE = np.dtype("<f2")  # how a chunk's embedding is stored (float16, little-endian)
LOG_KEEP = 200_000  # vector_log entries kept; a reader further behind reloads everything
QUERY_TERMS = 24  # distinct tokens a lexical query keeps (benchmarks/bench_lexical.py)
COMMON_SHARE = 0.02  # ... of those in at most this share of the chunks
COMMON_MIN = 50
DF_CACHE_S = 30.0  # how long a query remembers the document frequencies it looked up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    language TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 0  -- 1: indexed from an open buffer's text
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an id names one content for good
    path TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    short_name TEXT NOT NULL,  -- the qualified name's last part: `Class.method` -> `method`
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    signature TEXT NOT NULL,
    embedding BLOB  -- float16 vector (VECTOR_DTYPE) of the meta's embed_model; NULL: pending
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
-- which chunks wait for a vector, and which have one, without reading the rows
CREATE INDEX IF NOT EXISTS chunks_unembedded ON chunks(id) WHERE embedding IS NULL;
CREATE INDEX IF NOT EXISTS chunks_embedded ON chunks(id) WHERE embedding IS NOT NULL;
-- every vector that appears (present = 1) or goes (0), in order: vector stores catch up
CREATE TABLE IF NOT EXISTS vector_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL,
    present INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS vector_inserted AFTER INSERT ON chunks
WHEN new.embedding IS NOT NULL BEGIN
    INSERT INTO vector_log(id, present) VALUES (new.id, 1);
END;
CREATE TRIGGER IF NOT EXISTS vector_changed AFTER UPDATE OF embedding ON chunks
WHEN (old.embedding IS NULL) != (new.embedding IS NULL) BEGIN
    INSERT INTO vector_log(id, present) VALUES (new.id, new.embedding IS NOT NULL);
END;
CREATE TRIGGER IF NOT EXISTS vector_deleted AFTER DELETE ON chunks
WHEN old.embedding IS NOT NULL BEGIN
    INSERT INTO vector_log(id, present) VALUES (old.id, 0);
END;
CREATE INDEX IF NOT EXISTS chunks_name ON chunks(name);
CREATE INDEX IF NOT EXISTS chunks_short_name ON chunks(short_name);
-- the identifier-split tokens of each chunk (rowid = chunks.id); SQLite 3.40 in Python 3.11
-- cannot delete from a contentless table, so the tokens are stored
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(tokens, tokenize='unicode61');
-- each token's document frequency: queries keep their rarest tokens
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
"""


class IndexError_(Exception):  # noqa: N801, N818 - not the builtin IndexError
    """The index cannot be opened or written (a clear message for the user)."""


def index_home() -> Path:
    from hone.models.embedded import cache_dir  # one definition of the cache folder

    return cache_dir() / "index"


def workspace_key(root: Path) -> str:
    real = os.path.realpath(root)
    name = Path(real).name or "root"
    return f"{name}-{hashlib.sha256(real.encode()).hexdigest()[:16]}"


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class StoredChunk:
    id: int
    chunk: Chunk


@dataclass(frozen=True)
class FileRow:
    path: str
    hash: str
    size: int
    mtime_ns: int
    language: str
    live: bool


class IndexStore:
    """One workspace's index. Thread-safe: each thread gets its own connection."""

    def __init__(self, root: Path | str, folder: Path | None = None, embed_model: str = "") -> None:
        self.root = Path(os.path.realpath(root))
        self.folder = folder or index_home() / workspace_key(self.root)
        self.path = self.folder / "index.sqlite"
        self.embed_model = embed_model
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self.rebuilt_because: str | None = None  # why an existing index was discarded
        self.interrupted = False  # the last update did not finish (a killed writer)
        self._open()

    # -- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        reason = self._check_existing()
        if reason is not None:
            self.rebuilt_because = reason
            self._remove_files()
        db = self._db()
        with db:
            db.executescript(_SCHEMA)
        meta = self.meta()
        if "schema_version" not in meta:
            self._set_meta(
                schema_version=str(SCHEMA_VERSION),
                root=str(self.root),
                state="new",
                vectors_epoch=uuid.uuid4().hex,
            )
            meta = self.meta()
        self.interrupted = meta.get("state") == "building" and not self.writer_busy()
        if self.embed_model and meta.get("embed_model", self.embed_model) != self.embed_model:
            with db:  # another embedding model: its vectors mean nothing to this one
                db.execute("UPDATE chunks SET embedding = NULL")
                db.execute("DELETE FROM vector_log")  # readers start over (a new epoch)
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'vectors_epoch'", (uuid.uuid4().hex,)
                )
        if self.embed_model:
            self._set_meta(embed_model=self.embed_model)

    def _check_existing(self) -> str | None:
        """Why the index on disk cannot be used as it is (None: it can, or there is none)."""
        if not self.path.exists():
            return None
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            try:
                rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
                db.execute("SELECT count(*) FROM chunks").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            return f"unreadable index ({exc})"
        version = rows.get("schema_version")
        if version != str(SCHEMA_VERSION):
            return f"schema version {version} (this hone writes {SCHEMA_VERSION})"
        return None

    def _remove_files(self) -> None:
        self.close()
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise IndexError_(f"cannot open the index at {self.path}: {exc}") from exc
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def remove(self) -> None:
        """Delete this workspace's index folder."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- meta ------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._db().execute("SELECT key, value FROM meta").fetchall())

    def set_meta_value(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` in the index's meta (e.g. how far a persistent
        vector store has caught up with the vector log)."""
        self._set_meta(**{key: value})

    def _set_meta(self, **values: str) -> None:
        db = self._db()
        with db:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    # -- writing ---------------------------------------------------------------------------

    def writer_busy(self) -> bool:
        """Whether another process holds the writer lock now."""
        try:
            with open(self.folder / "writer.lock", "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True

    @contextlib.contextmanager
    def writer(self, wait: bool = True) -> Iterator[Writer]:
        """Exclusive write access (this process's threads and other processes).

        ``wait=False`` raises :class:`IndexBusy` when another writer holds it."""
        with self._write_lock:
            with open(self.folder / "writer.lock", "a+") as lock:
                flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
                try:
                    fcntl.flock(lock, flags)
                except BlockingIOError as exc:
                    raise IndexBusy(
                        f"another process is updating the index at {self.folder}"
                    ) from exc
                lock.seek(0)
                lock.truncate()
                lock.write(json.dumps({"pid": os.getpid(), "since": time.time()}))
                lock.flush()
                self._set_meta(state="building")
                writer = Writer(self)
                try:
                    yield writer
                    self._prune_log()
                    self._set_meta(state="complete", updated=str(time.time()))
                    self.interrupted = False
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        rows = (
            self._db()
            .execute("SELECT path, hash, size, mtime_ns, language, live FROM files")
            .fetchall()
        )
        return {r[0]: FileRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    def counts(self) -> dict[str, int]:
        return _counts(self._db())

    def chunks_of(self, path: str) -> list[StoredChunk]:
        return self._rows("WHERE path = ? ORDER BY start_line", (path,))

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {c.id: c for c in self._rows(f"WHERE id IN ({marks})", tuple(ids))}

    def chunks_named(self, names: Iterable[str], limit: int = 50) -> list[StoredChunk]:
        """Definitions whose qualified name is one of ``names`` or ends with ``.name``."""
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            return []
        marks = ",".join("?" * len(names))
        return self._rows(
            f"WHERE kind != 'module' AND (short_name IN ({marks}) OR name IN ({marks})) "
            f"LIMIT {int(limit)}",
            (*names, *names),
        )

    def search(
        self, text: str, limit: int = 20, terms: int = QUERY_TERMS
    ) -> list[tuple[StoredChunk, float]]:
        """BM25 over identifier-split tokens of ``text``: best first, score higher = better.

        The query keeps the ``terms`` rarest of its distinct tokens that the index holds
        (by document frequency): common ones add little to BM25 and cost the most time."""
        # Always by document frequency: a short query's common tokens cost as much as a
        # long one's (the p95 of the whole retrieval on a 1,800-file repository was the
        # lexical query of a few lines full of common tokens)
        words = self._rarest(list(dict.fromkeys(tokens(text))), terms)
        query = fts_query(words)
        if not query:
            return []
        rows = (
            self._db()
            .execute(
                "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY s LIMIT ?",
                (query, limit),
            )
            .fetchall()
        )
        found = self.chunks_by_id([r[0] for r in rows])
        return [(found[r[0]], -r[1]) for r in rows if r[0] in found]

    def _rarest(self, words: list[str], k: int) -> list[str]:
        df = self._document_frequencies(words)
        known = [w for w in words if df.get(w)]
        rarest = sorted(known, key=lambda w: df[w])[:k]
        # tokens in more than a few percent of the chunks weigh little in BM25 (low IDF) and
        # cost the most (long posting lists): kept only when nothing rarer is left
        common = max(COMMON_MIN, int(COMMON_SHARE * self._chunk_count()))
        kept = [w for w in rarest if df[w] <= common]
        return kept or rarest[:2]

    def _document_frequencies(self, words: list[str]) -> dict[str, int]:
        """Chunks holding each word (0: none). Remembered for DF_CACHE_S: while the user
        types, consecutive queries share most words, and a slightly stale count only moves
        a word across the rarest-tokens cut."""
        now = time.monotonic()
        cache = getattr(self._local, "df", None)
        if cache is None or now - cache[1] > DF_CACHE_S or len(cache[0]) > 50_000:
            cache = ({}, now)
            self._local.df = cache
        known = cache[0]
        missing = [w for w in words if w not in known]
        db = self._db()
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            marks = ",".join("?" * len(part))
            known.update({w: 0 for w in part})
            known.update(
                db.execute(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", part)
            )
        return {w: known[w] for w in words}

    def _chunk_count(self) -> int:
        """Chunks in the index (cached for a few seconds: it only scales a threshold)."""
        now = time.monotonic()
        cached = getattr(self._local, "chunk_count", None)
        if cached is None or now - cached[1] > 5:
            cached = (self._db().execute("SELECT count(*) FROM chunks").fetchone()[0], now)
            self._local.chunk_count = cached
        return cached[0]

    # -- vectors ---------------------------------------------------------------------------

    def pending_embeddings(self, limit: int, after: int = 0) -> list[StoredChunk]:
        """Chunks without a vector (ids above ``after``, in id order), at most ``limit``."""
        ids = [
            r[0]
            for r in self._db().execute(
                "SELECT id FROM chunks INDEXED BY chunks_unembedded "
                "WHERE embedding IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
        ]
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), 500):  # (within any SQLite's variable limit)
            found.update(self.chunks_by_id(ids[start : start + 500]))
        return [found[i] for i in ids if i in found]

    def put_embeddings(self, ids: Sequence[int], vectors: np.ndarray) -> int:
        """Store the vectors of these chunks (one transaction): only where a chunk still
        waits for one, and only while the index's model is this store's. Returns how many
        were written."""
        if not self.embed_model:
            raise ValueError("this IndexStore was opened without an embedding model")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        blobs = np.ascontiguousarray(vectors, dtype=VECTOR_DTYPE)
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            model = db.execute("SELECT value FROM meta WHERE key = 'embed_model'").fetchone()
            if model is None or model[0] != self.embed_model:
                return 0  # another process switched the model meanwhile
            cur = db.executemany(
                "UPDATE chunks SET embedding = ? WHERE id = ? AND embedding IS NULL",
                [(blobs[i].tobytes(), int(chunk_id)) for i, chunk_id in enumerate(ids)],
            )
            return cur.rowcount

    def pending_count(self) -> int:
        return (
            self._db()
            .execute(
                "SELECT count(*) FROM chunks INDEXED BY chunks_unembedded WHERE embedding IS NULL"
            )
            .fetchone()[0]
        )

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, float16 matrix) of the stored vectors: all, or those of ``ids``."""
        db = self._db()
        if ids is None:
            rows = db.execute(
                "SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL ORDER BY id"
            ).fetchall()
        else:
            rows = []
            ids = [int(i) for i in ids]
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows += db.execute(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({marks}) "
                    "AND embedding IS NOT NULL",
                    part,
                ).fetchall()
        keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return keys, np.zeros((0, 0), dtype=VECTOR_DTYPE)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=VECTOR_DTYPE)
        return keys, matrix.reshape(len(rows), -1)

    def vector_changes(self, epoch: str, after: int) -> tuple[str, int, dict[int, bool] | None]:
        """What happened to the vectors since log entry ``after`` of ``epoch``: (the current
        epoch, the last entry, chunk id -> has a vector now). The changes are None when
        the reader must reload everything: another epoch (the model changed, the index
        was rebuilt) or entries it missed were pruned. One read transaction."""
        db = self._db()
        with db:
            db.execute("BEGIN")
            row = db.execute("SELECT value FROM meta WHERE key = 'vectors_epoch'").fetchone()
            current = row[0] if row else ""
            first, last = db.execute("SELECT min(seq), max(seq) FROM vector_log").fetchone()
            last = last or 0
            if current != epoch or (first is not None and first > after + 1 and after < last):
                return current, last, None
            changes: dict[int, bool] = {}
            for chunk_id, present in db.execute(
                "SELECT id, present FROM vector_log WHERE seq > ? ORDER BY seq", (after,)
            ):
                changes[chunk_id] = bool(present)
        return current, max(last, after), changes

    def vector_head(self) -> tuple[str, int]:
        """(epoch, last log entry): cheap, to see whether anything changed."""
        db = self._db()
        row = db.execute("SELECT value FROM meta WHERE key = 'vectors_epoch'").fetchone()
        last = db.execute("SELECT max(seq) FROM vector_log").fetchone()[0] or 0
        return (row[0] if row else ""), last

    def _prune_log(self) -> None:
        db = self._db()
        with db:
            db.execute(
                "DELETE FROM vector_log WHERE seq <= (SELECT max(seq) FROM vector_log) - ?",
                (LOG_KEEP,),
            )

    def _rows(self, where: str, args: tuple) -> list[StoredChunk]:
        rows = (
            self._db()
            .execute(
                "SELECT id, path, start_line, end_line, kind, name, language, text, signature "
                f"FROM chunks {where}",
                args,
            )
            .fetchall()
        )
        return [StoredChunk(r[0], Chunk(*r[1:])) for r in rows]


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    return {
        "files": db.execute("SELECT count(*) FROM files").fetchone()[0],
        "chunks": db.execute("SELECT count(*) FROM chunks").fetchone()[0],
        "embedded": db.execute(
            "SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"
        ).fetchone()[0],  # (chunks_embedded: the partial index answers it)
    }


def peek(root: Path | str) -> tuple[Path, dict[str, int] | None]:
    """Where ``root``'s index is and what it holds, read-only (nothing is created; None
    when there is no index yet). ``sqlite3.Error`` when the file cannot be read."""
    path = index_home() / workspace_key(Path(root)) / "index.sqlite"
    if not path.exists():
        return path, None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    try:
        return path, _counts(db)
    finally:
        db.close()


class IndexBusy(IndexError_):  # noqa: N818
    """Another process is writing the index."""


class Writer:
    """Per-file replacement of chunks, one transaction each (see :meth:`IndexStore.writer`)."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store

    def put_file(
        self,
        path: str,
        digest: str,
        size: int,
        mtime_ns: int,
        language: str,
        chunks: Sequence[Chunk],
        *,
        live: bool = False,
    ) -> None:
        db = self.store._db()
        with db:
            # vectors of definitions whose text did not change (the rest wait for the
            # embedding pass): what is embedded is made of these fields and the path
            kept = {
                tuple(r[:4]): r[4]
                for r in db.execute(
                    "SELECT kind, name, signature, text, embedding FROM chunks "
                    "WHERE path = ? AND embedding IS NOT NULL",
                    (path,),
                )
            }
            self._delete_chunks(db, path)
            for c in chunks:
                cur = db.execute(
                    "INSERT INTO chunks(path, start_line, end_line, kind, name, short_name, "
                    "language, text, signature, embedding) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        c.path,
                        c.start_line,
                        c.end_line,
                        c.kind,
                        c.name,
                        c.name.rsplit(".", 1)[-1],
                        c.language,
                        c.text,
                        c.signature,
                        kept.get((c.kind, c.name, c.signature, c.text)),
                    ),
                )
                words = tokens(f"{c.path}\n{c.name}\n{c.text}")
                db.execute(
                    "INSERT INTO chunks_fts(rowid, tokens) VALUES(?, ?)",
                    (cur.lastrowid, " ".join(words)),
                )
            db.execute(
                "INSERT INTO files(path, hash, size, mtime_ns, language, live) "
                "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET hash = excluded.hash, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "language = excluded.language, live = excluded.live",
                (path, digest, size, mtime_ns, language, int(live)),
            )

    def touch(self, path: str, size: int, mtime_ns: int) -> None:
        """The file's content is unchanged (same hash) but its stat changed."""
        db = self.store._db()
        with db:
            db.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
            )

    def remove_file(self, path: str) -> None:
        db = self.store._db()
        with db:
            self._delete_chunks(db, path)
            db.execute("DELETE FROM files WHERE path = ?", (path,))

    @staticmethod
    def _delete_chunks(db: sqlite3.Connection, path: str) -> None:
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
        if ids:
            db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
            db.execute("DELETE FROM chunks WHERE path = ?", (path,))
