"""Repository context for completions: one index per workspace folder, kept fresh in the
background, and the snippets each completion request gets from it.

:class:`WorkspaceContext` belongs to the server (``HoneServer.context``):

- **Indexes.** At ``initialized``, and whenever the folders or the ``retrieval`` / ``exclude``
  options change, each ``file://`` workspace folder gets an :class:`~hone.retrieval.index.Index`
  (on disk in the user's cache folder, never in the repository). Index work runs as *one*
  background job of the model scheduler at a time (a queue drained by
  ``HoneServer.submit_background``): between files it pauses while a completion waits for
  the model (``ticket.checkpoint()``), and it stops at the next file when the server shuts
  down, the folder goes away or retrieval is turned off. A build reports ``$/progress``
  where the client supports it. Completions use whatever the index holds meanwhile.
- **Freshness.** Saved, created, changed and deleted files (``HoneServer.file_listeners``)
  are collected for :data:`DEBOUNCE_S` and re-read in one batch (a large batch, a
  ``git checkout`` say, becomes one incremental update of the whole folder). An opened
  document whose text differs from what the index holds is indexed from its live text; the
  disk's version comes back when it is saved or closed. Keystrokes re-index nothing.
- **Embeddings** (option ``embeddings``): once a folder's index is built or updated, and
  :data:`EMBED_DELAY_S` later, when completions pause (no request in flight or begun in the
  last :data:`EMBED_IDLE_S`, the completion model loaded), its chunks without a vector are
  embedded by the same queue, :data:`EMBED_JOB_BATCHES` batches per job (then the job goes
  to the back of the queue, behind file updates), pausing between batches while a
  completion waits. The model (``embeddingModel``) loads once per process, lazily, in a
  thread of its own (not in the model's slot: completions go on meanwhile); a model that
  cannot load is logged once and the other sources go on. Vectors are searched in memory
  or on a Qdrant server (``vectorStore``); completions use whatever vectors exist, and
  embed their query in the model worker (``timings_ms["embeddings"]``).
- **Failures** (a folder that cannot be read, an index another ``hone index`` is writing, a
  broken index) are logged once per folder and leave that folder without context; the
  server keeps serving.
- **Snippets.** :meth:`WorkspaceContext.prepare` (on the event loop: cheap) captures what
  retrieval needs that only the loop may read (other open documents' text, the cached git
  diff); :meth:`WorkspaceContext.snippets_for` (in the model worker, just before the
  engine runs) queries the index and returns the hits as snippets, best first. While the
  cursor stays on one line of one document, and nothing was re-indexed, it returns the
  previous snippets unchanged, so the prompt's start (snippets come first) stays in the
  model's KV cache.

The CLI shares :func:`retrieve` and :func:`retrieve_for_file` (``hone complete``,
``hone context``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hone.models.backend import Snippet
from hone.retrieval.context import Query, Retrieval, Retriever
from hone.retrieval.embeddings import Embedder, EmbeddingError, SentenceEmbedder
from hone.retrieval.files import VENDORED
from hone.retrieval.git import GitError, top_level, uncommitted_diff
from hone.retrieval.index import Index
from hone.retrieval.store import content_hash
from hone.retrieval.syntax import language_for_path, language_object
from hone.retrieval.vectors import VectorSearch, open_vector_store
from lsprotocol import types
from pygls.uris import to_fs_path

if TYPE_CHECKING:
    from hone.agent.completion.engine import CompletionRequest
    from hone.models.scheduler import Ticket
    from hone.server.documents import Document
    from hone.server.lsp import HoneServer

log = logging.getLogger("hone.server.context")

SNIPPETS = 10  # hits passed to the engine, best first (it packs what fits retrievalTokens)
OPEN_BUFFERS = 5  # other open documents of the workspace the `recent` source reads
BUFFER_LINES = 2000  # lines of each (around its last edit)
DEBOUNCE_S = 0.5  # file events are collected this long, then re-read in one batch
FULL_UPDATE_OVER = 50  # more changed paths than this: one incremental update of the folder
BUSY_RETRY_S = 2.0  # another process writes the index: try again after this long
PROGRESS_EVERY_S = 0.3  # at most one $/progress report per this long
EMBED_DELAY_S = 2.0  # after a build or update, embedding starts this much later
EMBED_IDLE_S = 3.0  # ... and only this long after the last completion request began
EMBED_JOB_BATCHES = 8  # batches per embedding job (then it queues again, behind updates)
INLINE_SYNC = 2048  # vector changes a completion's retrieval applies itself (more: background)

Job = Callable[["Ticket"], None]
_progress_tokens = itertools.count(1)


# -- shared with the CLI --------------------------------------------------------------------


def retrieve(
    index: Index,
    path: str,
    text: str,
    offset: int,
    language: str,
    *,
    open_buffers: dict[str, str] | None = None,
    diff: str = "",
    limit: int = SNIPPETS,
    embed: Embedder | None = None,
    vectors: VectorSearch | None = None,
) -> Retrieval:
    """The ranked context for a cursor at ``offset`` of ``text`` (the file ``path``, relative
    to the index's root); ``embed`` adds the embeddings source (over ``vectors``, default
    the index's own)."""
    query = Query(path, text, offset, language, open_buffers=open_buffers or {}, diff=diff)
    if embed is not None and vectors is None:
        vectors = index.vectors
    return Retriever(index.store, embed=embed, vectors=vectors).retrieve(query, limit)


def snippets_of(found: Retrieval) -> tuple[Snippet, ...]:
    """The hits as the engine's snippets, best first."""
    return tuple(Snippet(h.chunk.path, h.chunk.text) for h in found.hits if h.chunk.text.strip())


def workspace_root(path: Path, repo: Path | None = None) -> Path | None:
    """The workspace of a file for the CLI: ``repo`` if given, else the git top level of the
    file, else the current folder if it holds the file; None otherwise."""
    if repo is not None:
        return repo.resolve()
    found = top_level(path.resolve().parent)
    if found is not None:
        return found.resolve()
    cwd = Path.cwd().resolve()
    return cwd if path.resolve().is_relative_to(cwd) else None


def retrieve_for_file(
    root: Path,
    path: Path,
    text: str,
    offset: int,
    *,
    exclude: Sequence[str] = (),
    limit: int,
    embedder: Embedder | None = None,
) -> tuple[str, Retrieval, dict[str, float]]:
    """Bring ``root``'s index up to date (incremental), index ``text`` as the file's current
    text, and retrieve for the cursor: (the file's path relative to ``root``, the ranking,
    timings in ms). With an ``embedder``, and vectors of its model in the index (``hone
    index`` made them), new and changed chunks are embedded (at most
    :data:`CLI_EMBED_BATCHES` batches) and the embeddings source joins. Raises ValueError
    when ``path`` is not inside ``root``, and the index's errors
    (:class:`~hone.retrieval.store.IndexError_`, OSError,
    :class:`~hone.retrieval.embeddings.EmbeddingError`)."""
    rel = path.resolve().relative_to(root).as_posix()
    t0 = time.perf_counter()
    if embedder is not None and not has_vectors(root, embedder):
        embedder = None
    index = Index(root, exclude=exclude, embedder=embedder)
    try:
        index.update()
        index.update_text(rel, text)  # the file as it is now, saved or not
        timings: dict[str, float] = {}
        if embedder is not None:
            t = time.perf_counter()
            index.embed(max_batches=CLI_EMBED_BATCHES)
            timings["embed_ms"] = _ms(t)
        t1 = time.perf_counter()
        try:
            diff = uncommitted_diff(root, rel)
        except GitError:
            diff = ""
        found = retrieve(
            index, rel, text, offset, language_for_path(rel), diff=diff, limit=limit, embed=embedder
        )
    finally:
        index.close()
    timings = {"index_ms": _ms(t0, t1), **timings, "retrieval_ms": _ms(t1)}
    return rel, found, timings


CLI_EMBED_BATCHES = 8  # `hone context` embeds at most this many batches of changed chunks


def has_vectors(root: Path, embedder: Embedder) -> bool:
    """Whether ``root``'s index holds vectors of ``embedder``'s model (read-only)."""
    import sqlite3

    from hone.retrieval.store import index_home, workspace_key

    db_path = index_home() / workspace_key(root) / "index.sqlite"
    if not db_path.exists():
        return False
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            model = db.execute("SELECT value FROM meta WHERE key = 'embed_model'").fetchone()
            if model is None or model[0] != embedder.key:
                return False
            row = db.execute("SELECT 1 FROM chunks WHERE embedding IS NOT NULL LIMIT 1")
            return row.fetchone() is not None
        finally:
            db.close()
    except sqlite3.Error:
        return False


# -- the server's side -------------------------------------------------------------------------


@dataclass
class FolderIndex:
    """One workspace folder's index and what the server knows of its state."""

    uri: str
    name: str
    root: Path
    index: Index | None = None
    # queued | building | complete | waiting (another process writes it) | error | stopped
    state: str = "queued"
    done: int = 0
    total: int = 0
    files: int = 0
    chunks: int = 0
    generation: int = 0  # bumped after every update written (the snippets' stickiness key)
    report: dict[str, Any] | None = None
    # embeddings: off | queued | loading (the model) | embedding | complete | error
    embed_state: str = "off"
    embedded: int = 0  # chunks with a vector
    pending_vectors: int = 0  # chunks without one
    embed_generation: int = 0  # bumped when an embedding pass completes (stickiness key too)
    embed_queued: bool = False
    embed_error: str | None = None  # the last embedding job's failure (retried after updates)
    vectors: VectorSearch | None = None
    error: str | None = None
    closed: bool = False  # removed, or retrieval turned off: its work stops
    live: set[str] = field(default_factory=set)  # indexed from an open buffer's text
    logged: set[str] = field(default_factory=set)  # problems already logged

    def as_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "path": str(self.root),
            "index": str(self.index.store.folder) if self.index is not None else None,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "files": self.files,
            "chunks": self.chunks,
            "generation": self.generation,
            "embeddings": {
                "state": self.embed_state,
                "embedded": self.embedded,
                "pending": self.pending_vectors,
                "generation": self.embed_generation,
                "error": self.embed_error,
            },
            "live": sorted(self.live),
            "error": self.error,
            "report": self.report,
        }


@dataclass
class Prepared:
    """What :meth:`WorkspaceContext.snippets_for` needs, captured on the event loop."""

    folder: FolderIndex
    path: str  # relative to the folder
    # (line, index generation, diff epoch, embeddings generation): same key, same snippets
    key: tuple[int, int, int, int]
    sticky: tuple[Snippet, ...] | None = None  # the previous snippets, still valid
    open_buffers: dict[str, str] = field(default_factory=dict)
    diff: str = ""
    line: int = 0


class WorkspaceContext:
    """The workspace's indexes and the context snippets of completion requests."""

    def __init__(self, server: HoneServer, enabled: bool = True) -> None:
        self.server = server
        self.allowed = enabled  # False: `--no-context`, whatever the options say
        self.folders: dict[str, FolderIndex] = {}
        self.exclude: tuple[str, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False
        self._lock = threading.Lock()
        self._jobs: collections.deque[tuple[FolderIndex, Job]] = collections.deque()
        self._worker: concurrent.futures.Future | None = None
        self._ticket: Ticket | None = None
        self._pending: dict[str, set[str]] = {}  # folder uri -> paths changed on disk
        self._flush: asyncio.TimerHandle | None = None
        # uri -> (key, snippets): the last snippets of each document
        self._sticky: dict[str, tuple[tuple[int, int, int, int], tuple[Snippet, ...]]] = {}
        self._diffs: dict[str, str] = {}  # uri -> its uncommitted diff (git), when known
        self._diff_epoch: dict[str, int] = {}
        self._diffing: set[str] = set()
        self._git: concurrent.futures.ThreadPoolExecutor | None = None
        self._touched: dict[str, tuple[float, int]] = {}  # uri -> (opened/changed at, line)
        self._embedder: SentenceEmbedder | None = None  # one per process (and model option)
        self._last_request = 0.0  # when the last completion that needs the model began
        self._loading: dict[SentenceEmbedder, list[FolderIndex]] = {}  # model loads running

    # -- state ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.allowed and self.server.options.retrieval and not self._stopping

    def describe(self) -> dict[str, Any]:
        """The `hone/context` answer."""
        off = None
        if not self.allowed:
            off = "--no-context"
        elif not self.server.options.retrieval:
            off = "retrieval option"
        elif self._stopping:
            off = "shut down"
        with self._lock:
            pending = len(self._jobs) + (self._worker is not None)
        return {
            "enabled": self.enabled,
            "disabledBy": off,
            "exclude": list(self.exclude),
            "pendingJobs": pending,
            "pendingPaths": sum(len(p) for p in self._pending.values()),
            "embeddings": self._describe_embeddings(),
            "folders": [f.as_json() for f in self.folders.values()],
        }

    def _describe_embeddings(self) -> dict[str, Any]:
        options = self.server.options
        embedder = self._embedder
        return {
            "enabled": self.embeddings_on,
            "model": embedder.key if embedder is not None else None,
            "loaded": embedder is not None and embedder.loaded,
            "loadSeconds": embedder.load_s if embedder is not None else None,
            "error": embedder.error if embedder is not None else None,
            "vectorStore": options.vector_store or "memory",
            # whether this process imported sentence-transformers at all
            "imported": "sentence_transformers" in sys.modules,
        }

    @property
    def embeddings_on(self) -> bool:
        return self.enabled and self.server.options.embeddings

    # -- lifecycle (event loop) ---------------------------------------------------------------

    def start(self) -> None:
        """After `initialized`: index the workspace folders (if retrieval is on)."""
        self._loop = asyncio.get_running_loop()
        self._started = True
        self.exclude = tuple(self.server.options.exclude)
        self.sync_folders()

    def stop(self) -> None:
        """Shutdown: stop indexing at the next file; no new work."""
        self._stopping = True
        for folder in self.folders.values():
            folder.closed = True
        with self._lock:
            self._jobs.clear()
            if self._ticket is not None:
                self._ticket.cancel()
        if self._git is not None:
            self._git.shutdown(wait=False, cancel_futures=True)

    def options_changed(self, old: Any, new: Any) -> None:
        """`retrieval` on/off starts or stops indexing; new `exclude` globs re-index."""
        if not self._started:
            return
        if tuple(new.exclude) != self.exclude:
            self.exclude = tuple(new.exclude)
            self._drop(list(self.folders))  # re-created below with the new globs
        embedding = ("embeddings", "embedding_model", "vector_store")
        if any(getattr(old, k) != getattr(new, k) for k in embedding):
            self._drop(list(self.folders))  # re-opened with (or without) the new model
        if old.retrieval != new.retrieval or not self.folders:
            self.sync_folders()

    def sync_folders(self) -> None:
        """Make the indexes match the workspace folders (and the options)."""
        if not self._started:
            return
        wanted: dict[str, types.WorkspaceFolder] = {}
        if self.enabled:
            for f in self.server.workspace_folders:
                if f.uri.startswith("file:") and f.uri not in wanted:
                    wanted[f.uri] = f
        self._drop([uri for uri in self.folders if uri not in wanted])
        for uri, f in wanted.items():
            if uri in self.folders:
                continue
            root = to_fs_path(uri)
            if not root:
                continue
            folder = FolderIndex(uri, f.name or Path(root).name, Path(root))
            self.folders[uri] = folder
            self._enqueue(folder, lambda ticket, folder=folder: self._build(folder, ticket))

    def _drop(self, uris: list[str]) -> None:
        for uri in uris:
            folder = self.folders.pop(uri, None)
            if folder is not None:
                folder.closed = True
                folder.state = "stopped"
            self._pending.pop(uri, None)
        self._sticky.clear()

    # -- documents and files (event loop) ----------------------------------------------------

    def opened(self, uri: str, text: str) -> None:
        """didOpen: remember it for the `recent` source; index its live text in the
        background if it differs from what the index holds (it usually does not)."""
        self._touched[uri] = (time.monotonic(), 0)
        folder, rel = self._locate(uri)
        if folder is None or rel is None:
            return
        self._refresh_diff(uri, folder, rel)
        self._enqueue(folder, lambda ticket: self._index_text(folder, rel, text))

    def changed(self, uri: str, line: int) -> None:
        """didChange: only the time and place of the edit (nothing is re-indexed)."""
        self._touched[uri] = (time.monotonic(), line)

    def closed(self, uri: str) -> None:
        """didClose: forget it; an index entry made from its unsaved text goes back to the
        file on disk."""
        self._touched.pop(uri, None)
        self._sticky.pop(uri, None)
        self._diffs.pop(uri, None)
        folder, rel = self._locate(uri)
        if folder is not None and rel is not None and rel in folder.live:
            self._changed_on_disk(folder, rel)

    def file_event(self, uri: str, kind: str) -> None:
        """A file listener (HoneServer.file_listeners): saved / created / changed / deleted."""
        folder, rel = self._locate(uri)
        if folder is None or rel is None:
            return
        if kind in ("saved", "changed") and uri in self._touched:
            self._refresh_diff(uri, folder, rel)
        self._changed_on_disk(folder, rel, kind)

    def _changed_on_disk(self, folder: FolderIndex, rel: str, kind: str = "changed") -> None:
        parts = rel.split("/")
        if any(p in VENDORED for p in parts[:-1]) or parts[-1] in VENDORED:
            return
        if language_object(language_for_path(rel)) is None:
            if kind != "deleted":
                return
            rel = "*"  # perhaps a folder with files in it: update the whole index
        self._pending.setdefault(folder.uri, set()).add(rel)
        if self._flush is None and self._loop is not None:
            self._flush = self._loop.call_later(DEBOUNCE_S, self._flush_pending)

    def _flush_pending(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, {}
        for uri, paths in pending.items():
            folder = self.folders.get(uri)
            if folder is not None:
                chosen = sorted(paths)
                self._enqueue(folder, lambda ticket, f=folder, p=chosen: self._update(f, p, ticket))

    # -- snippets -------------------------------------------------------------------------------

    def prepare(self, request: CompletionRequest, line: int) -> Prepared | None:
        """On the event loop, for a request that needs the model: None when it gets no
        context (retrieval off, a file outside the workspace folders, no index yet)."""
        self._last_request = time.monotonic()
        if not self.enabled:
            return None
        folder, rel = self._locate(request.key)
        if folder is None or rel is None or folder.index is None:
            return None
        uri = request.key
        key = (line, folder.generation, self._diff_epoch.get(uri, 0), folder.embed_generation)
        previous = self._sticky.get(uri)
        if previous is not None and previous[0] == key:
            return Prepared(folder, rel, key, sticky=previous[1], line=line)
        diff = self._diffs.get(uri)
        if diff is None:
            self._refresh_diff(uri, folder, rel)
        return Prepared(
            folder,
            rel,
            key,
            open_buffers=self._open_buffers(folder, uri),
            diff=diff or "",
            line=line,
        )

    def snippets_for(
        self, request: CompletionRequest, prepared: Prepared | None
    ) -> tuple[tuple[Snippet, ...], dict[str, Any]]:
        """In the model worker: the request's context snippets, best first, and what to
        record of them (count, paths, time, whether they were reused)."""
        t0 = time.perf_counter()
        if prepared is None:
            return (), {}
        folder, index = prepared.folder, prepared.folder.index
        snippets: tuple[Snippet, ...] = ()
        info: dict[str, Any] = {"folder": folder.name, "sticky": prepared.sticky is not None}
        if prepared.sticky is not None:
            snippets = prepared.sticky
        elif index is not None and not folder.closed:
            text, offset = request.text, request.offset
            if request.start:  # a window: keep its line numbers those of the document
                pad = prepared.line - text.count("\n", 0, offset)
                if pad > 0:
                    text, offset = "\n" * pad + text, offset + pad
            embedder, vectors = index.embedder, folder.vectors
            if embedder is None or not embedder.loaded or vectors is None:
                embedder = vectors = None  # not yet: the background loads and embeds first
            try:
                found = retrieve(
                    index,
                    prepared.path,
                    text,
                    offset,
                    request.language,
                    open_buffers=prepared.open_buffers,
                    diff=prepared.diff,
                    embed=embedder,
                    vectors=vectors,
                )
                snippets = snippets_of(found)
                info["sources"] = found.timings_ms
                # the sources of each snippet (as `paths`): which found it
                info["hits"] = [",".join(h.sources) for h in found.hits if h.chunk.text.strip()]
            except Exception as exc:  # noqa: BLE001 - no context, the completion goes on
                _log_once(folder, f"retrieve: {type(exc).__name__}", f"retrieval failed: {exc}")
                return (), info
            self._sticky[request.key] = (prepared.key, snippets)
        info.update(
            snippets=len(snippets),
            paths=[s.path for s in snippets],
            digest=hashlib.blake2b(
                "\0".join(f"{s.path}\0{s.text}" for s in snippets).encode(), digest_size=8
            ).hexdigest(),
            ms=_ms(t0),
        )
        return snippets, info

    def _open_buffers(self, folder: FolderIndex, uri: str) -> dict[str, str]:
        """Other open documents of the folder, most recently opened or changed first: their
        text, or BUFFER_LINES lines of it around the last edit."""
        docs: list[tuple[float, str, Document]] = []
        for doc in self.server.documents:
            if doc.uri == uri or doc.uri not in self._touched:
                continue
            other, rel = self._locate(doc.uri)
            if other is folder and rel is not None:
                docs.append((self._touched[doc.uri][0], rel, doc))
        docs.sort(key=lambda d: -d[0])
        return {
            rel: _text_around(doc, self._touched[doc.uri][1]) for _, rel, doc in docs[:OPEN_BUFFERS]
        }

    # -- where a document is ------------------------------------------------------------------

    def _locate(self, uri: str) -> tuple[FolderIndex | None, str | None]:
        """The folder holding ``uri`` (the innermost) and its path relative to it."""
        if not uri.startswith("file:") or not self.folders:
            return None, None
        path = to_fs_path(uri)
        if not path:
            return None, None
        best: tuple[FolderIndex | None, str | None] = (None, None)
        for folder in self.folders.values():
            rel = os.path.relpath(path, folder.root) if path.startswith(str(folder.root)) else ""
            if not rel or rel == "." or rel.startswith(".."):
                continue
            if best[1] is None or len(rel) < len(best[1]):
                best = (folder, Path(rel).as_posix())
        return best

    # -- git diffs (a thread of their own: git is slow) ----------------------------------------

    def _refresh_diff(self, uri: str, folder: FolderIndex, rel: str) -> None:
        if uri in self._diffing or self._stopping or self._loop is None:
            return
        if self._git is None:
            self._git = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hone-git")
        self._diffing.add(uri)
        loop = self._loop

        def compute() -> None:
            try:
                diff = uncommitted_diff(folder.root, rel)
            except (GitError, OSError) as exc:
                log.debug("no diff for %s: %s", rel, exc)
                diff = ""
            _call_soon(loop, done, diff)

        def done(diff: str) -> None:
            self._diffing.discard(uri)
            if uri not in self._touched:
                return  # closed meanwhile
            if diff != self._diffs.get(uri, ""):
                self._diff_epoch[uri] = self._diff_epoch.get(uri, 0) + 1
            self._diffs[uri] = diff

        try:
            self._git.submit(compute)
        except RuntimeError:  # shut down
            self._diffing.discard(uri)

    # -- background work (one scheduler job at a time drains the queue) ------------------------

    def _enqueue(self, folder: FolderIndex, job: Job) -> None:
        if self._stopping:
            return
        with self._lock:
            self._jobs.append((folder, job))
            if self._worker is not None:
                return
            try:
                worker, self._ticket = self.server.submit_background(self._drain)
            except RuntimeError:  # the scheduler is shut down
                self._jobs.clear()
                return
            self._worker = worker
        worker.add_done_callback(self._drained)

    def _drain(self, ticket: Ticket) -> None:
        while True:
            with self._lock:
                if self._stopping or not self._jobs or ticket.cancelled:
                    self._worker = None
                    self._ticket = None
                    return
                folder, job = self._jobs.popleft()
            if folder.closed:
                continue
            try:
                job(ticket)
            except Exception as exc:  # noqa: BLE001 - one folder's failure stops nothing else
                folder.error = f"{type(exc).__name__}: {exc}"
                _log_once(folder, f"job: {type(exc).__name__}", f"index update failed: {exc}")

    def _drained(self, future: concurrent.futures.Future) -> None:
        """The drain job ended: if it never ran (cancelled while it waited for the model),
        let the next enqueue start a new one."""
        if future.cancelled() or future.exception() is not None:
            with self._lock:
                if self._worker is future:
                    self._worker = None
                    self._ticket = None
            if not future.cancelled() and not self._stopping:
                log.debug("index worker ended: %s", future.exception())

    def _later(self, delay: float, folder: FolderIndex, job: Job) -> None:
        if self._loop is not None:
            _call_soon(self._loop, self._loop.call_later, delay, self._enqueue, folder, job)

    def _busy(self, folder: FolderIndex, job: Job) -> bool:
        """Another process (`hone index`) writes the index: wait for it off the model's
        slot, and try again later."""
        assert folder.index is not None
        if not folder.index.store.writer_busy():
            return False
        if folder.state != "complete":
            folder.state = "waiting"
        _log_once(
            folder,
            "busy",
            f"another process is updating the index at {folder.index.store.folder}; "
            f"trying again every {BUSY_RETRY_S:.0f} s",
        )
        self._later(BUSY_RETRY_S, folder, job)
        return True

    def _build(self, folder: FolderIndex, ticket: Ticket) -> None:
        """Create or bring the folder's index up to date, with $/progress."""
        progress = _Progress(self.server, self._loop, f"indexing {folder.name}")
        t0 = time.perf_counter()
        try:
            if not folder.root.is_dir():  # before an index is made for it
                raise NotADirectoryError(f"not a folder: {folder.root}")
            if folder.index is None:
                folder.index = Index(
                    folder.root, exclude=self.exclude, embedder=self._embedder_for_index()
                )
            if self._busy(folder, lambda t: self._build(folder, t)):
                return
            folder.state = "building"
            progress.begin()

            def report(done: int, total: int, path: str) -> None:
                folder.done, folder.total = done, total
                progress.report(done, total)

            result = folder.index.update(report, *self._hooks(folder, ticket))
        except Exception as exc:  # noqa: BLE001 - unreadable folder, broken index, git
            folder.state, folder.error = "error", f"{type(exc).__name__}: {exc}"
            _log_once(folder, "build", f"cannot index {folder.root}: {exc}")
            progress.end(f"indexing failed: {exc}")
            return
        if folder.closed or self._stopping or ticket.cancelled:
            folder.state = "stopped"
            progress.end("stopped")
            return
        folder.report = result.as_json()
        folder.files, folder.chunks = result.files, result.chunks
        folder.done = folder.total = result.files
        folder.error = None
        folder.state = "complete"
        folder.generation += 1
        seconds = time.perf_counter() - t0
        message = f"{result.files} files, {result.chunks} chunks in {seconds:.1f} s"
        log.info("index of %s: %s (%s)", folder.root, message, folder.index.store.folder)
        progress.end(message)
        self._schedule_embed(folder)

    def _update(self, folder: FolderIndex, paths: list[str], ticket: Ticket) -> None:
        """Re-read files changed on disk (a big batch: the whole folder, incrementally)."""
        if folder.index is None:
            return  # the build failed (logged); the next one reads everything
        if folder.state == "waiting":  # the build waits for another writer: after it
            self._later(BUSY_RETRY_S, folder, lambda t: self._update(folder, paths, t))
            return
        if self._busy(folder, lambda t: self._update(folder, paths, t)):
            return
        if "*" in paths or len(paths) > FULL_UPDATE_OVER:
            result = folder.index.update(None, *self._hooks(folder, ticket))
            folder.files, folder.chunks = result.files, result.chunks
            folder.live.clear()
        else:
            for path in paths:
                if folder.closed or ticket.cancelled:
                    return
                if ticket.yield_requested():
                    ticket.checkpoint()
                folder.index.update_paths([path])
                folder.live.discard(path)
            folder.chunks = folder.index.store.counts()["chunks"]
        folder.generation += 1
        self._schedule_embed(folder)

    def _index_text(self, folder: FolderIndex, rel: str, text: str) -> None:
        """An opened document: index its text if it differs from the indexed file's."""
        if folder.index is None or folder.state != "complete":
            return  # the build reads the file from disk
        row = folder.index.store.files().get(rel)
        if row is None or row.hash == content_hash(text):
            return  # not a file the index takes, or the same text
        if self._busy(folder, lambda t: self._index_text(folder, rel, text)):
            return
        if folder.index.update_text(rel, text):
            folder.live.add(rel)
            folder.generation += 1
            self._schedule_embed(folder)

    # -- embeddings (background) --------------------------------------------------------------

    def _embedder_for_index(self) -> SentenceEmbedder | None:
        """The embedder new indexes are opened with (not loaded: that comes later), or None
        when embeddings are off."""
        if not self.server.options.embeddings:
            return None
        spec = self.server.options.embedding_model
        if self._embedder is None or self._embedder.spec != spec:
            self._embedder = SentenceEmbedder(spec)
        return self._embedder

    def _schedule_embed(self, folder: FolderIndex, delay: float = EMBED_DELAY_S) -> None:
        """Queue an embedding job for the folder (after ``delay``), unless one waits."""
        if folder.index is None or folder.index.embedder is None or not self.embeddings_on:
            return
        if folder.embed_queued or folder.closed:
            return
        folder.embed_queued = True
        if folder.embed_state in ("off", "complete"):
            folder.embed_state = "queued"
        job = lambda ticket: self._embed(folder, ticket)  # noqa: E731
        if delay > 0:
            self._later(delay, folder, job)
        else:
            self._enqueue(folder, job)

    def _embed(self, folder: FolderIndex, ticket: Ticket) -> None:
        """One embedding job: up to EMBED_JOB_BATCHES batches, then queued again if more
        chunks wait (file updates queued meanwhile run first)."""
        folder.embed_queued = False
        index = folder.index
        if index is None or index.embedder is None or folder.closed or not self.embeddings_on:
            return
        if self._completions_active():  # the user is typing: later (the model load too)
            folder.embed_queued = True
            self._later(EMBED_IDLE_S, folder, lambda t: self._embed(folder, t))
            return
        embedder = index.embedder
        if not embedder.loaded:
            if embedder.error is not None:
                folder.embed_state, folder.embed_error = "error", embedder.error
                return
            folder.embed_state = "loading"
            self._load_embedder(embedder, folder)
            return
        folder.embed_state = "embedding"
        should_stop, between = self._hooks(folder, ticket)
        try:
            if folder.vectors is None:
                store = open_vector_store(
                    self.server.options.vector_store, folder.root, embedder.key
                )
                folder.vectors = VectorSearch(index.store, store, inline_sync=INLINE_SYNC)
            report = index.embed(
                None,
                lambda: should_stop() or not self.embeddings_on,
                between,
                max_batches=EMBED_JOB_BATCHES,
            )
            folder.vectors.prepare()  # catch up (the first time: everything stored)
        except Exception as exc:  # noqa: BLE001 - the model fails, a vector store is unreachable
            folder.embed_state, folder.embed_error = "error", f"{type(exc).__name__}: {exc}"
            _log_once(folder, f"embed: {type(exc).__name__}", f"embeddings failed: {exc}")
            return
        folder.embed_error = None
        folder.embedded, folder.pending_vectors = report.vectors, report.pending
        if folder.closed or self._stopping or ticket.cancelled or not self.embeddings_on:
            folder.embed_state = "stopped"
            return
        if report.pending and report.stopped:
            self._schedule_embed(folder, 0)  # the rest, behind what queued meanwhile
            return
        folder.embed_state = "complete"
        if report.embedded or folder.embed_generation == 0:  # new vectors, or the first
            folder.embed_generation += 1
            log.info(
                "embeddings of %s: %d chunks (%d new) with %s",
                folder.root,
                report.vectors,
                report.embedded,
                embedder.name,
            )

    def _completions_active(self) -> bool:
        """Whether completions are going on: the completion model loads, a request is in
        flight, or one began less than EMBED_IDLE_S ago (embedding work waits for a pause;
        once it runs, each batch yields to a completion that arrives)."""
        loading = getattr(self.server, "loading", None)
        if loading is not None and not loading.done():
            return True
        if getattr(self.server, "inflight", None):
            return True
        return time.monotonic() - self._last_request < EMBED_IDLE_S

    def _load_embedder(self, embedder: SentenceEmbedder, folder: FolderIndex) -> None:
        """Load the model in a thread of its own (not the model's slot: completions go on),
        then queue the folders that wait for it."""
        with self._lock:
            waiting = self._loading.get(embedder)
            if waiting is not None:
                waiting.append(folder)
                return
            self._loading[embedder] = [folder]

        def load() -> None:
            try:
                embedder.load()
            except EmbeddingError as exc:
                log.warning("embeddings off: %s", exc)
            with self._lock:
                folders = self._loading.pop(embedder, [])
            for f in folders:
                _call_soon(self._loop, self._schedule_embed, f, 0)

        threading.Thread(target=load, name="hone-embedder-load", daemon=True).start()

    def _hooks(
        self, folder: FolderIndex, ticket: Ticket
    ) -> tuple[Callable[[], bool], Callable[[], None]]:
        """(should_stop, between) for Index.update: stop when the folder is dropped or the
        server stops; pause between files while a completion waits for the model."""

        def should_stop() -> bool:
            return folder.closed or self._stopping or ticket.cancelled

        def between() -> None:
            if ticket.yield_requested():
                ticket.checkpoint()

        return should_stop, between


class _Progress:
    """`$/progress` for one index build, sent from any thread (nothing where the client did
    not announce work-done progress). Reports come at most every PROGRESS_EVERY_S."""

    def __init__(
        self, server: HoneServer, loop: asyncio.AbstractEventLoop | None, message: str
    ) -> None:
        window = server.client_capabilities.window if server.client_capabilities else None
        self.enabled = loop is not None and bool(window and window.work_done_progress)
        self.server, self.loop, self.message = server, loop, message
        self.token = f"hone-index-{next(_progress_tokens)}"
        self._begun: asyncio.Future | None = None
        self._last = 0.0

    def begin(self) -> None:
        if self.enabled:
            _call_soon(self.loop, self._begin)

    def report(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            _call_soon(self.loop, self._report, done, total)

    def end(self, message: str) -> None:
        if self.enabled:
            _call_soon(self.loop, lambda: asyncio.ensure_future(self._end(message)))

    # on the event loop
    def _begin(self) -> None:
        async def begin() -> None:
            progress = self.server.work_done_progress
            await progress.create_async(self.token)
            progress.begin(
                self.token,
                types.WorkDoneProgressBegin(
                    title="hone", message=self.message, cancellable=False, percentage=0
                ),
            )

        self._begun = asyncio.ensure_future(begin())

    def _ready(self) -> bool:
        begun = self._begun
        if begun is None or not begun.done() or begun.cancelled():
            return False
        return begun.exception() is None

    def _report(self, done: int, total: int) -> None:
        if self._ready():
            self.server.work_done_progress.report(
                self.token,
                types.WorkDoneProgressReport(
                    message=f"{done}/{total} files",
                    percentage=int(100 * done / total) if total else 0,
                ),
            )

    async def _end(self, message: str) -> None:
        if self._begun is None:
            return
        try:
            await self._begun
        except Exception:  # noqa: BLE001 - the client refused progress: nothing to end
            log.debug("no progress for indexing", exc_info=True)
            return
        self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


def _text_around(doc: Document, line: int) -> str:
    """The document's text, or BUFFER_LINES of its lines around ``line``."""
    if doc.line_count <= BUFFER_LINES:
        return doc.text
    first = max(0, min(line - BUFFER_LINES // 2, doc.line_count - BUFFER_LINES))
    start = doc.line_offset(first)
    stop = first + BUFFER_LINES
    end = doc.line_offset(stop) if stop < doc.line_count else len(doc)
    return doc.text[start:end]


def _call_soon(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., Any], *args: Any) -> None:
    """``fn(*args)`` on the event loop, from any thread (nothing once the loop is closed)."""
    if loop is None:
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: the server is exiting
        pass


def _log_once(folder: FolderIndex, key: str, message: str) -> None:
    if key in folder.logged:
        log.debug("%s: %s", folder.name, message)
    else:
        folder.logged.add(key)
        log.warning("%s: %s", folder.name, message)


def _ms(t0: float, t1: float | None = None) -> float:
    return round(((t1 if t1 is not None else time.perf_counter()) - t0) * 1000, 3)
