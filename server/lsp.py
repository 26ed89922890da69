"""The LSP surface: one server object and thin handlers that delegate to hone.agent.

Reads like a table of contents of what hone speaks:
initialize (options, position encoding, workspace folders) / initialized /
workspace/didChangeConfiguration / textDocument/didOpen, didChange, didClose (hone's own
document store, server/documents.py) / textDocument/didSave / workspace/didChangeWatchedFiles /
workspace/didChangeWorkspaceFolders / textDocument/inlineCompletion (with context snippets
from the workspace's index, server/context.py) / hone/stats (a custom request with recent
per-request timings, for benchmarks and tests) / hone/document, hone/workspace and
hone/context (debug requests: the server's copy of a document; encoding, folders, file
events and per-change timings; the indexes' state) / workspace/executeCommand
`hone.fixFailingTest`, `hone.applyFix`, `hone.localize` and textDocument/codeLens "Fix failing
test" (server/repair.py).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hone.agent.completion.engine import (
    CompletionEngine,
    CompletionRefused,
    CompletionRequest,
    CompletionResult,
    Plan,
)
from hone.models.backend import Cancelled, CancelToken, ModelBackend, ModelError
from hone.models.scheduler import Priority, Scheduler, Ticket
from hone.retrieval.syntax import language_for_path
from hone.server.context import Prepared, WorkspaceContext
from hone.server.documents import DocumentStore, PositionError
from hone.server.options import Options, apply_settings
from hone.server.protocol import HoneProtocol
from hone.server.repair import APPLY_COMMAND, FIX_COMMAND, LOCALIZE_COMMAND, RepairCommands
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

MODEL_ERROR_NOTICE_S = 60.0  # the same model error is shown to the user once in this time

log = logging.getLogger("hone.server")

VERSION = "0.1.0"
STATS_REQUEST = "hone/stats"
DOCUMENT_REQUEST = "hone/document"
WORKSPACE_REQUEST = "hone/workspace"
CONTEXT_REQUEST = "hone/context"
# Files the client watches for us (workspace/didChangeWatchedFiles), registered dynamically.
WATCHED_FILES = "**/*"
FILE_EVENT_KINDS = {
    types.FileChangeType.Created: "created",
    types.FileChangeType.Changed: "changed",
    types.FileChangeType.Deleted: "deleted",
}

# A listener for files saved or changed on disk: called with (uri, kind), kind one of
# "saved", "created", "changed", "deleted" (see HoneServer.file_listeners).
FileListener = Callable[[str, str], None]
T = TypeVar("T")


def plain(value: Any) -> Any:
    """A `hone/stats` answer as a pygls client decodes it (named tuples) -> dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class HoneServer(LanguageServer):
    """Holds the engine, options, the documents and the model scheduler."""

    def __init__(
        self, backend: ModelBackend, engine: CompletionEngine, context: bool = True
    ) -> None:
        super().__init__("hone", VERSION, protocol_cls=HoneProtocol)
        self.backend = backend
        self.engine = engine
        self.options = Options()
        # One scheduler owns the model: completions first; background work (index
        # embeddings, repair candidates: `submit_background`) yields to them between decode
        # steps. A superseded request waiting for the model is dropped before it starts.
        self.scheduler = Scheduler(slots=max(1, int(getattr(backend, "max_in_flight", 1))))
        self.inflight: dict[str, CancelToken] = {}
        self.last_request_at: dict[str, float] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)
        self.load_error: str | None = None
        self.loading: concurrent.futures.Future[None] | None = None
        # the last model error shown to the user, and when: a model server that is down
        # fails every request, and the user hears of it once a minute, not once a keystroke
        self._model_errors: dict[str, float] = {}
        # The workspace: its folders from `initialize` (rootUri, then rootPath, as a fallback)
        # and didChangeWorkspaceFolders.
        self.workspace_folders: list[types.WorkspaceFolder] = []
        # Called on the event loop with (uri, kind) for each textDocument/didSave ("saved")
        # and workspace/didChangeWatchedFiles event ("created", "changed", "deleted"); a
        # listener must be quick (hand real work to a thread). The recent events are kept in
        # `file_events` (the `hone/workspace` request shows them).
        self.file_listeners: list[FileListener] = []
        self.file_events: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)
        self.watching_files = False  # the client accepted our didChangeWatchedFiles registration
        # The workspace folders' indexes and the snippets of each completion (context=False:
        # `hone serve --no-context`, none whatever the options say).
        self.context = WorkspaceContext(self, enabled=context)
        self.file_listeners.append(self.context.file_event)
        # "Fix failing test" and "localize": the commands' running job and pending fixes.
        self.repair = RepairCommands(self)
        self.protocol.cancel_listeners.append(self.repair.request_cancelled)  # type: ignore[attr-defined]

    @property
    def documents(self) -> DocumentStore:
        """hone's copy of the open documents (pygls' workspace documents are not kept)."""
        return self.protocol.documents  # type: ignore[attr-defined]

    # -- workspace -------------------------------------------------------------------
    def set_workspace(self, params: types.InitializeParams) -> None:
        """Keep the workspace folders; without any, the root URI (or root path) as one."""
        folders = list(params.workspace_folders or [])
        root = params.root_uri
        if root is None and params.root_path:
            root = from_fs_path(params.root_path)
        if not folders and root:
            name = root.rstrip("/").rsplit("/", 1)[-1] or root
            folders = [types.WorkspaceFolder(uri=root, name=name)]
        self.workspace_folders = folders

    def change_workspace_folders(self, event: types.WorkspaceFoldersChangeEvent) -> None:
        removed = {f.uri for f in event.removed or []}
        kept = [f for f in self.workspace_folders if f.uri not in removed]
        known = {f.uri for f in kept}
        self.workspace_folders = kept + [f for f in event.added or [] if f.uri not in known]

    def file_event(self, uri: str, kind: str) -> None:
        """A file was saved or changed on disk: record it and tell the listeners."""
        self.file_events.append({"uri": uri, "kind": kind, "t": time.time()})
        for listener in list(self.file_listeners):
            try:
                listener(uri, kind)
            except Exception:  # noqa: BLE001 - one listener's bug must not stop the others
                log.exception("file listener %r failed on %s %s", listener, kind, uri)

    def watch_files(self) -> None:
        """Ask the client to watch the workspace's files for us, where it supports dynamic
        registration (otherwise the notifications, if the client sends them, are handled)."""
        caps = self.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        params = types.RegistrationParams(
            registrations=[
                types.Registration(
                    id=f"hone-watched-files-{id(self)}",
                    method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=types.DidChangeWatchedFilesRegistrationOptions(
                        watchers=[types.FileSystemWatcher(glob_pattern=WATCHED_FILES)]
                    ),
                )
            ]
        )

        def registered(future: asyncio.Future) -> None:
            if future.cancelled() or future.exception() is not None:
                log.warning("the client refused to watch files for hone: %s", future)
            else:
                self.watching_files = True

        asyncio.ensure_future(self.client_register_capability_async(params)).add_done_callback(
            registered
        )

    # -- helpers ---------------------------------------------------------------------
    def notify_user(
        self, message: str, kind: types.MessageType = types.MessageType.Warning
    ) -> None:
        log.warning(message)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        except Exception:  # noqa: BLE001 - not connected yet; the log line stays
            log.debug("could not show message", exc_info=True)

    def notify_model_error(self, message: str) -> None:
        """Log a model error; show it to the user unless the same one was shown within
        :data:`MODEL_ERROR_NOTICE_S` seconds."""
        now = time.monotonic()
        shown = self._model_errors.get(message)
        if shown is not None and now - shown < MODEL_ERROR_NOTICE_S:
            log.warning(message)
            return
        if len(self._model_errors) >= 32:
            self._model_errors = {
                m: t for m, t in self._model_errors.items() if now - t < MODEL_ERROR_NOTICE_S
            }
        self._model_errors[message] = now
        self.notify_user(message, types.MessageType.Error)

    def update_options(self, settings: Any) -> None:
        old = self.options
        self.options, problems = apply_settings(self.options, settings)
        self.engine.options = self.options  # Options extends CompletionOptions
        for problem in problems:
            self.notify_user(problem)
        self.context.options_changed(old, self.options)
        if old.run_code != self.options.run_code:
            self.refresh_code_lenses()

    def refresh_code_lenses(self) -> None:
        """Ask the client to ask for code lenses again (they depend on `runCode`)."""
        caps = self.client_capabilities.workspace
        lens = caps.code_lens if caps is not None else None
        if lens is None or not lens.refresh_support:
            return
        try:
            asyncio.ensure_future(self.workspace_code_lens_refresh_async(None)).add_done_callback(
                lambda f: f.cancelled() or f.exception()  # a refusal is not an error here
            )
        except RuntimeError:  # before initialize: no event loop yet, nothing to refresh
            pass

    def start_loading(self) -> None:
        """Load the model in the worker, with `$/progress` in the editor where it supports it
        (the first start converts the embedded model, once)."""
        loop = asyncio.get_event_loop()
        window = self.client_capabilities.window
        begun = None
        if window is not None and window.work_done_progress:
            token = f"hone-load-{id(self)}"
            begun = asyncio.ensure_future(self._begin_progress(token))

        if self.options.trust_remote_code and hasattr(self.backend, "trust_remote_code"):
            self.backend.trust_remote_code = True  # the user's choice, before anything loads

        def load() -> None:
            t0 = time.perf_counter()
            message = "model ready"
            try:
                self.backend.load()
                _ = self.engine.template  # detect the prompt family now, off the event loop
                message = f"model ready in {time.perf_counter() - t0:.1f} s"
                log.info("%s: %s", self.backend.name, message)
            except Exception as exc:  # noqa: BLE001 - reported to the user, server keeps serving
                self.load_error = f"{type(exc).__name__}: {exc}"
                message = "the model failed to load"
                loop.call_soon_threadsafe(
                    self.notify_user,
                    f"hone: the model {self.backend.name} failed to load: {self.load_error}. "
                    "Run `hone doctor` for what is missing.",
                    types.MessageType.Error,
                )
            if begun is not None:
                loop.call_soon_threadsafe(
                    lambda: asyncio.ensure_future(self._end_progress(begun, token, message))
                )

        self.loading = self.scheduler.submit(load)

    async def _begin_progress(self, token: str) -> None:
        await self.work_done_progress.create_async(token)
        self.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="hone", message=f"loading {self.backend.name}", cancellable=False
            ),
        )

    async def _end_progress(self, begun: asyncio.Future, token: str, message: str) -> None:
        try:
            await begun
        except Exception:  # noqa: BLE001 - the client refused progress; nothing to end
            log.debug("no progress for the model load", exc_info=True)
            return
        self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def stop_work(self) -> None:
        """Stop running generations and indexing, and drop queued work (shutdown)."""
        self.context.stop()
        if self.repair.job is not None:
            self.repair.job.stop()
        for token in list(self.inflight.values()):
            token.cancel()
        self.scheduler.shutdown()

    def submit_background(
        self, fn: Callable[..., T], *args: Any
    ) -> tuple[concurrent.futures.Future[T], Ticket]:
        """Run ``fn(*args, ticket)`` as background model work (it passes ``ticket`` on to the
        backend as its cancel token, so it yields to completions between decode steps)."""
        ticket = self.scheduler.ticket(Priority.BACKGROUND)
        return self.scheduler.submit(fn, *args, ticket, ticket=ticket), ticket

    def record(self, entry: dict[str, Any]) -> None:
        self.recent.append(entry)
        timings = entry.get("timings") or {}
        log.info(
            "inlineCompletion %s:%d -> %s in %.0f ms (model %.0f ms)",
            entry["uri"],
            entry["line"],
            entry.get("outcome", "?"),
            entry.get("server_ms", 0.0),
            timings.get("model_ms", 0.0),
        )

    # -- inline completion -------------------------------------------------------------
    def build_request(self, params: types.InlineCompletionParams) -> CompletionRequest:
        """The engine's request for an LSP one: the position becomes a string offset here, in
        the negotiated encoding (the store converts it within the cursor's line), and the
        engine gets a window of the text around it (a few hundred kB at most)."""
        uri = params.text_document.uri
        doc = self.documents.get(uri)
        if doc is None:
            raise CompletionRefused(f"unknown document {uri} (not opened with didOpen)")
        pos = params.position
        try:
            offset = doc.offset_at(pos.line, pos.character, strict=True)
        except PositionError as exc:
            raise CompletionRefused(f"position {pos.line}:{pos.character} {exc} in {uri}") from None
        path = (to_fs_path(uri) or uri) if uri.startswith("file:") else uri
        language = language_for_path(path)
        if language == "plaintext" and doc.language_id:
            language = doc.language_id
        # The model sees the path relative to the workspace folder holding it.
        root = next(
            (
                to_fs_path(f.uri)
                for f in sorted(self.workspace_folders, key=lambda f: -len(f.uri))
                if uri.startswith(f.uri.rstrip("/") + "/")
            ),
            None,
        )
        text, start = doc.window(offset)
        return CompletionRequest(
            uri, text, offset - start, path, language, root=root, start=start, length=len(doc)
        )

    async def inline_completion(
        self, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        t0 = time.perf_counter()
        uri = params.text_document.uri
        entry: dict[str, Any] = {"uri": uri, "line": params.position.line, "t": time.time()}
        try:
            return await self._inline_completion(params, entry)
        finally:
            entry["server_ms"] = (time.perf_counter() - t0) * 1000
            self.record(entry)

    async def _inline_completion(
        self, params: types.InlineCompletionParams, entry: dict[str, Any]
    ) -> types.InlineCompletionList:
        empty = types.InlineCompletionList(items=[])
        uri = params.text_document.uri
        if not self.options.enable:
            entry["outcome"] = "disabled"
            return empty
        # Supersede: a newer request for this document stops the older one's generation (a
        # request for another document does too, once it needs the model: below).
        token = self.scheduler.ticket(Priority.INTERACTIVE)
        if (previous := self.inflight.get(uri)) is not None:
            previous.cancel()
        self.inflight[uri] = token
        now = time.perf_counter()
        in_burst = (now - self.last_request_at.get(uri, -1e9)) * 1000 < self.options.burst_window_ms
        self.last_request_at[uri] = now
        try:
            t0 = time.perf_counter()
            try:
                request = self.build_request(params)
                entry["offset"] = request.start + request.offset
                # event-loop time for the document: the position's offset and the text
                entry["document_ms"] = (time.perf_counter() - t0) * 1000
                plan = self.engine.plan(request)
            except CompletionRefused as exc:
                log.warning("inlineCompletion: %s", exc)
                entry["outcome"] = f"refused: {exc}"
                return empty
            finally:
                # event-loop time to turn the request into a plan (the above, the typed-ahead
                # cache and the completion policy)
                entry["prepare_ms"] = (time.perf_counter() - t0) * 1000
            if not plan.needs_model:  # answered here, without waiting for the model worker
                return self._answer(self.engine.run(plan), entry)
            # The user types in one place at a time: a request that needs the model
            # supersedes the one in flight for any other document as well.
            for other, previous in self.inflight.items():
                if other != uri:
                    previous.cancel()
            if self.loading is not None and not self.loading.done():
                # The first requests wait for the model load (not counted against the
                # request timeout: the first start converts the embedded model, once).
                entry["waited_for_load"] = True
                await asyncio.shield(asyncio.wrap_future(self.loading))
            if self.load_error is not None:
                entry["outcome"] = "model-unavailable"
                log.warning("inlineCompletion: model unavailable (%s)", self.load_error)
                return empty
            if in_burst and self.options.debounce_ms:
                # While typing fast, wait; a newer request in the meantime replaces this one.
                await asyncio.sleep(self.options.debounce_ms / 1000)
            if token.cancelled:
                entry["outcome"] = "superseded"
                return empty
            # What retrieval needs of the event loop's state (open documents): now. The
            # retrieval itself runs in the model worker, just before the model.
            prepared = self.context.prepare(plan.request, params.position.line)
            fut = asyncio.wrap_future(
                self.scheduler.submit(self.run_plan, plan, token, prepared, ticket=token)
            )
            try:
                result = await asyncio.wait_for(
                    asyncio.shield(fut), self.options.request_timeout_ms / 1000
                )
            except TimeoutError:
                token.cancel()
                entry["outcome"] = "timeout"
                self.notify_user(
                    f"hone: the model gave no answer within {self.options.request_timeout_ms} ms; "
                    "the request was dropped"
                )
                return empty
            except asyncio.CancelledError:
                token.cancel()  # $/cancelRequest: stop the generation too
                entry["outcome"] = "cancelled"
                # when the worker has stopped, note how (the entry is already in `recent`)
                fut.add_done_callback(
                    lambda f: f.cancelled() or record_stop(entry, token, f.exception())
                )
                raise
            return self._answer(result, entry)
        except Cancelled as exc:
            entry["outcome"] = "superseded"
            record_stop(entry, token, exc)
            return empty
        except ModelError as exc:
            entry["outcome"] = f"model-error: {exc}"
            self.notify_model_error(f"hone: the model failed: {exc}")
            return empty
        finally:
            if self.inflight.get(uri) is token:
                del self.inflight[uri]

    def run_plan(
        self, plan: Plan, cancel: CancelToken, prepared: Prepared | None
    ) -> CompletionResult:
        """In the model worker: the request's context snippets, then the model. The
        snippets' count, paths and retrieval time go into the result's stats."""
        if cancel.cancelled:
            raise Cancelled("superseded before the model started")
        snippets, info = self.context.snippets_for(plan.request, prepared)
        if snippets:
            plan.request = dataclasses.replace(
                plan.request, snippets=(*plan.request.snippets, *snippets)
            )
        result = self.engine.run(plan, cancel)
        if info:
            result.timings["retrieval_ms"] = info["ms"]
            result.stats["context"] = info
        return result

    def _answer(
        self, result: CompletionResult, entry: dict[str, Any]
    ) -> types.InlineCompletionList:
        entry.update(
            outcome="cached" if result.cached else result.mode,
            reason=result.reason,
            items=result.items,
            timings=result.timings,
            stats={k: v for k, v in result.stats.items() if k != "raw"},
        )
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=text) for text in result.items]
        )


def _param(params: Any, name: str, default: Any = None) -> Any:
    """A field of a custom request's params (pygls gives them as named tuples)."""
    if isinstance(params, dict):
        return params.get(name, default)
    return getattr(params, name, default)


def record_stop(entry: dict[str, Any], token: CancelToken, exc: BaseException | None) -> None:
    """Into a stats entry: how far a stopped generation got and how soon it stopped."""
    st = getattr(exc, "stats", None) if isinstance(exc, Cancelled) else None
    if st is None:
        return  # it finished first, or never reached a backend
    if st.cancel_noticed_at and token.cancelled_at:
        entry["cancel_to_stop_ms"] = (st.cancel_noticed_at - token.cancelled_at) * 1000
    entry["stats"] = {
        "prompt_tokens": st.prompt_tokens,
        "generated_tokens": st.generated_tokens,
        "stop_reason": st.stop_reason,
    }


def create_server(
    backend: ModelBackend, engine: CompletionEngine, context: bool = True
) -> HoneServer:
    server = HoneServer(backend, engine, context)

    @server.feature(types.INITIALIZE)
    def initialize(ls: HoneServer, params: types.InitializeParams) -> None:
        # The position encoding is chosen by the protocol (server/documents.py).
        ls.set_workspace(params)
        ls.update_options(params.initialization_options)

    @server.feature(types.INITIALIZED)
    def initialized(ls: HoneServer, params: types.InitializedParams) -> None:
        ls.watch_files()
        ls.start_loading()
        ls.context.start()  # index the workspace folders in the background

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_workspace_folders(
        ls: HoneServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        ls.change_workspace_folders(params.event)
        ls.context.sync_folders()

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: HoneServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.file_event(params.text_document.uri, "saved")

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: HoneServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            ls.file_event(change.uri, FILE_EVENT_KINDS.get(change.type, "changed"))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: HoneServer, params: types.DidChangeConfigurationParams
    ) -> None:
        ls.update_options(params.settings)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: HoneServer, params: None) -> None:
        ls.stop_work()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: HoneServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.context.opened(params.text_document.uri, params.text_document.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: HoneServer, params: types.DidChangeTextDocumentParams) -> None:
        edit = params.content_changes[-1] if params.content_changes else None
        partial = isinstance(edit, types.TextDocumentContentChangePartial)
        ls.context.changed(params.text_document.uri, edit.range.start.line if partial else 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: HoneServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.engine.cache.forget(params.text_document.uri)
        ls.context.closed(params.text_document.uri)

    @server.feature(DOCUMENT_REQUEST)
    def document(ls: HoneServer, params: Any) -> dict[str, Any] | None:
        """The server's copy of one document: `{"uri": URI, "text": true}` -> uri, version,
        languageId, lines, length (characters), and the text unless `"text": false`; null
        when the document is not open."""
        uri = _param(params, "uri")
        doc = ls.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            return None
        answer: dict[str, Any] = {
            "uri": doc.uri,
            "version": doc.version,
            "languageId": doc.language_id,
            "lines": doc.line_count,
            "length": len(doc),
        }
        if _param(params, "text", True):
            answer["text"] = doc.text
        return answer

    @server.feature(WORKSPACE_REQUEST)
    def workspace(ls: HoneServer, params: Any) -> dict[str, Any]:
        """What the server knows of the workspace: the negotiated position encoding, folders,
        open documents, recent file events, recent per-change timings (server time per
        didChange)."""
        return {
            "positionEncoding": ls.documents.encoding,
            "workspaceFolders": [{"uri": f.uri, "name": f.name} for f in ls.workspace_folders],
            "watchingFiles": ls.watching_files,
            "documents": [
                {"uri": d.uri, "version": d.version, "lines": d.line_count, "length": len(d)}
                for d in ls.documents
            ],
            "fileEvents": list(ls.file_events),
            "changes": list(ls.documents.changes),
        }

    @server.feature(CONTEXT_REQUEST)
    def context(ls: HoneServer, params: Any) -> dict[str, Any]:
        """The workspace's indexes: whether retrieval is on (and what turned it off), the
        exclude globs, queued index work, the embeddings (on or off, the model, whether it
        is loaded, the vector store), and per folder its path, index folder, state (queued,
        building, complete, waiting, error, stopped), files done of total, files, chunks,
        the update generation, the embedding pass's progress, the last build's report and
        any error."""
        return ls.context.describe()

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: HoneServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        return await ls.inline_completion(params)

    @server.command(FIX_COMMAND)
    async def fix_failing_test(ls: HoneServer, *args: Any) -> dict[str, Any]:
        """Fix the failing test the argument names (server/README.md, "Commands")."""
        return await ls.repair.fix(args)

    @server.command(APPLY_COMMAND)
    async def apply_fix(ls: HoneServer, *args: Any) -> dict[str, Any]:
        return await ls.repair.apply(args)

    @server.command(LOCALIZE_COMMAND)
    async def localize(ls: HoneServer, *args: Any) -> dict[str, Any]:
        return await ls.repair.localize(args)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    def code_lens(ls: HoneServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        return ls.repair.lenses(params.text_document.uri)

    @server.feature(STATS_REQUEST)
    def stats(ls: HoneServer, params: Any) -> dict[str, Any]:
        return {
            "generations_started": ls.engine.generations_started,
            "model": ls.backend.name,
            # what the server actually runs on: model, device, weight format (dtype), ...
            "backend": ls.backend.describe(),
            "load_error": ls.load_error,
            "scheduler": ls.scheduler.snapshot(),
            "recent": list(ls.recent),
        }

    return server
