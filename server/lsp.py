"""The LSP surface: one server object and thin handlers that delegate to hone.agent.

Reads like a table of contents of what hone speaks:
initialize / initialized / workspace/didChangeConfiguration / textDocument/inlineCompletion /
hone/stats (a custom request with recent per-request timings, for benchmarks and tests).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from typing import Any

from hone.agent.completion.engine import (
    CompletionEngine,
    CompletionRefused,
    CompletionRequest,
    CompletionResult,
)
from hone.models.backend import Cancelled, CancelToken, ModelBackend, ModelError
from hone.retrieval.syntax import language_for_path
from hone.server.options import Options, apply_settings
from hone.server.protocol import HoneProtocol
from lsprotocol import types
from pygls.lsp.server import LanguageServer

log = logging.getLogger("hone.server")

VERSION = "0.1.0"
STATS_REQUEST = "hone/stats"


def plain(value: Any) -> Any:
    """A `hone/stats` answer as a pygls client decodes it (named tuples) -> dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class HoneServer(LanguageServer):
    """Holds the engine, options and the single model worker."""

    def __init__(self, backend: ModelBackend, engine: CompletionEngine) -> None:
        super().__init__("hone", VERSION, protocol_cls=HoneProtocol)
        self.backend = backend
        self.engine = engine
        self.options = Options()
        # One model worker: the model is the bottleneck, requests queue behind it and a
        # superseded one is dropped before it starts.
        self.model_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hone-model")
        self.inflight: dict[str, CancelToken] = {}
        self.last_request_at: dict[str, float] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)
        self.load_error: str | None = None
        self.loading: concurrent.futures.Future[None] | None = None

    # -- helpers ---------------------------------------------------------------------
    def notify_user(
        self, message: str, kind: types.MessageType = types.MessageType.Warning
    ) -> None:
        log.warning(message)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        except Exception:  # noqa: BLE001 - not connected yet; the log line stays
            log.debug("could not show message", exc_info=True)

    def update_options(self, settings: Any) -> None:
        self.options, problems = apply_settings(self.options, settings)
        self.engine.options = self.options  # Options extends CompletionOptions
        for problem in problems:
            self.notify_user(problem)

    def start_loading(self) -> None:
        """Load the model in the worker, with `$/progress` in the editor where it supports it
        (the first start converts the embedded model: ~15 s)."""
        loop = asyncio.get_event_loop()
        window = self.client_capabilities.window
        begun = None
        if window is not None and window.work_done_progress:
            token = f"hone-load-{id(self)}"
            begun = asyncio.ensure_future(self._begin_progress(token))

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

        self.loading = self.model_pool.submit(load)

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
        """Stop running generations and drop queued ones (shutdown)."""
        for token in list(self.inflight.values()):
            token.cancel()
        self.model_pool.shutdown(wait=False, cancel_futures=True)

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
        uri = params.text_document.uri
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            raise CompletionRefused(f"unknown document {uri} (not opened with didOpen)")
        lines = doc.lines  # one pass over the document; pygls builds it on every access
        pos = params.position
        if pos.line < 0 or pos.character < 0 or pos.line > len(lines):
            raise CompletionRefused(
                f"position {pos.line}:{pos.character} is past the end of {uri} ({len(lines)} lines)"
            )
        if pos.line == len(lines):
            if pos.character != 0:
                raise CompletionRefused(f"position {pos.line}:{pos.character} is past the end")
            offset = len(doc.source)
        else:
            line_text = lines[pos.line].rstrip("\r\n")
            units = len(line_text.encode("utf-16-le")) // 2
            if pos.character > units:
                raise CompletionRefused(
                    f"position {pos.line}:{pos.character} is past the end of its line "
                    f"({units} UTF-16 units)"
                )
            # pygls' offset_at_position would split the document into lines a second time.
            column = doc.position_codec.position_from_client_units(lines, pos).character
            offset = sum(map(len, lines[: pos.line])) + column
        path = doc.path if uri.startswith("file:") else uri
        language = language_for_path(path)
        if language == "plaintext" and doc.language_id:
            language = doc.language_id
        return CompletionRequest(uri, doc.source, offset, path, language)

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
        # Supersede: a newer request for this document stops the older one's generation.
        token = CancelToken()
        if (previous := self.inflight.get(uri)) is not None:
            previous.cancel()
        self.inflight[uri] = token
        now = time.perf_counter()
        in_burst = (now - self.last_request_at.get(uri, -1e9)) * 1000 < self.options.burst_window_ms
        self.last_request_at[uri] = now
        try:
            try:
                request = self.build_request(params)
                entry["offset"] = request.offset
                plan = self.engine.plan(request)
            except CompletionRefused as exc:
                log.warning("inlineCompletion: %s", exc)
                entry["outcome"] = f"refused: {exc}"
                return empty
            if not plan.needs_model:  # answered here, without waiting for the model worker
                return self._answer(self.engine.run(plan), entry)
            if self.loading is not None and not self.loading.done():
                # The first requests wait for the model load (not counted against the
                # request timeout: converting the embedded model takes ~15 s once).
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
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(self.model_pool, self.engine.run, plan, token)
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
                raise
            return self._answer(result, entry)
        except Cancelled as exc:
            entry["outcome"] = "superseded"
            st = getattr(exc, "stats", None)
            if st is not None and st.cancel_noticed_at and token.cancelled_at:
                entry["cancel_to_stop_ms"] = (st.cancel_noticed_at - token.cancelled_at) * 1000
            return empty
        except ModelError as exc:
            entry["outcome"] = f"model-error: {exc}"
            self.notify_user(f"hone: the model failed: {exc}", types.MessageType.Error)
            return empty
        finally:
            if self.inflight.get(uri) is token:
                del self.inflight[uri]

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


def create_server(backend: ModelBackend, engine: CompletionEngine) -> HoneServer:
    server = HoneServer(backend, engine)

    @server.feature(types.INITIALIZE)
    def initialize(ls: HoneServer, params: types.InitializeParams) -> None:
        ls.update_options(params.initialization_options)

    @server.feature(types.INITIALIZED)
    def initialized(ls: HoneServer, params: types.InitializedParams) -> None:
        ls.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: HoneServer, params: types.DidChangeConfigurationParams
    ) -> None:
        ls.update_options(params.settings)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: HoneServer, params: None) -> None:
        ls.stop_work()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: HoneServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.engine.cache.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: HoneServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        return await ls.inline_completion(params)

    @server.feature(STATS_REQUEST)
    def stats(ls: HoneServer, params: Any) -> dict[str, Any]:
        return {
            "generations_started": ls.engine.generations_started,
            "model": ls.backend.name,
            "load_error": ls.load_error,
            "recent": list(ls.recent),
        }

    return server
