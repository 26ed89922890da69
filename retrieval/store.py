"""The on-disk index of one workspace: SQLite (WAL) with an FTS5 table for BM25.

Where: ``<cache>/index/<key>/index.sqlite`` in the user's cache folder (``$HONE_CACHE_DIR``,
else ``$XDG_CACHE_HOME/hone``, else ``~/.cache/hone``), ``key`` a hash of the workspace's
real path: never inside the repository.

- **Schema version**: an index written by another version is removed and rebuilt, never
  misread. The embedding model's name is kept too: changing it drops the vectors.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hone.retrieval.chunks import Chunk
from hone.retrieval.lexical import fts_query, tokens

SCHEMA_VERSION = 2
QUERY_TERMS = 24  # distinct tokens a lexical query keeps (benchmarks/bench_lexical.py)
COMMON_SHARE = 0.02  # ... of those in at most this share of the chunks
COMMON_MIN = 50

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
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    short_name TEXT NOT NULL,  -- the qualified name's last part: `Class.method` -> `method`
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    signature TEXT NOT NULL,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
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
            self._set_meta(schema_version=str(SCHEMA_VERSION), root=str(self.root), state="new")
            meta = self.meta()
        self.interrupted = meta.get("state") == "building" and not self.writer_busy()
        if self.embed_model and meta.get("embed_model", self.embed_model) != self.embed_model:
            with db:  # another embedding model: its vectors mean nothing to this one
                db.execute("UPDATE chunks SET embedding = NULL")
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
        words = list(dict.fromkeys(tokens(text)))
        if len(words) > terms:
            words = self._rarest(words, terms)
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
        df: dict[str, int] = {}
        db = self._db()
        for start in range(0, len(words), 500):
            part = words[start : start + 500]
            marks = ",".join("?" * len(part))
            df.update(
                db.execute(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", part)
            )
        known = [w for w in words if w in df]
        rarest = sorted(known, key=lambda w: df[w])[:k]
        # tokens in more than a few percent of the chunks weigh little in BM25 (low IDF) and
        # cost the most (long posting lists): kept only when nothing rarer is left
        common = max(COMMON_MIN, int(COMMON_SHARE * self._chunk_count()))
        kept = [w for w in rarest if df[w] <= common]
        return kept or rarest[:2]

    def _chunk_count(self) -> int:
        """Chunks in the index (cached for a few seconds: it only scales a threshold)."""
        now = time.monotonic()
        cached = getattr(self._local, "chunk_count", None)
        if cached is None or now - cached[1] > 5:
            cached = (self._db().execute("SELECT count(*) FROM chunks").fetchone()[0], now)
            self._local.chunk_count = cached
        return cached[0]

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
        ).fetchone()[0],
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
            self._delete_chunks(db, path)
            for c in chunks:
                cur = db.execute(
                    "INSERT INTO chunks(path, start_line, end_line, kind, name, short_name, "
                    "language, text, signature) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
