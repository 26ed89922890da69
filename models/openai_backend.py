"""A model behind an OpenAI-compatible HTTP server (vLLM, llama.cpp's server, others).

Spec: ``openai:http://HOST:PORT/v1`` (or ``https://``), optionally ``#MODEL`` to pick
the served model (default: the server's first, from ``GET /models``). The same spec
works for ``hone serve``, ``hone complete`` and ``HONE_MODEL``.

- Requests go over httpx, asynchronously, on an event loop of the backend's own thread:
  every request streams (server-sent events), connections are reused (a pool of
  :attr:`OpenAIBackend.max_in_flight` plus two), and cancelling a generation cancels its
  task, which closes the stream, so the server stops generating.
- Retries: on connection errors only (refused, unreachable, connect timeout), before
  anything was sent, :data:`RETRIES` times with backoff. An HTTP error status, a stream
  that breaks off, garbage or silence for :data:`READ_TIMEOUT_S` is a
  :class:`~hone.models.backend.ModelError` with a one-line reason, at once; the next
  request starts afresh.
- The API key comes from ``HONE_API_KEY`` (a ``Bearer`` header). It is never logged,
  never in an error message nor in :meth:`describe`, and test runs never see it
  (:mod:`hone.agent.repair.runner` strips it). ``HONE_CA_FILE`` names a CA bundle for a
  server whose certificate a private CA signed; else the system's trust store.
- Fill-in-the-middle: ``fim`` ``"template"`` renders the model family's template
  (:mod:`hone.models.prompts`, detected from the served model's name) and sends it to the
  completions endpoint, which every server has (vLLM refuses ``suffix``; llama.cpp's
  server has no infill endpoint in llama-cpp-python); ``"native"`` sends the context and
  prefix as ``prompt`` and the suffix as ``suffix`` for a server that applies the model's
  FIM tokens itself. ``"auto"`` (the default) takes the template where the family has FIM
  tokens and otherwise the prefix alone, as the template says; a suffix is never pasted in
  as text the model would continue.
- Chat requests (the repair agent) go to ``/chat/completions``; ``n`` samples in one
  request, and more requests for any samples a server did not return (llama.cpp's
  server answers one).
- Stop strings: the first :data:`SERVER_STOPS` go to the server; all of them are also
  applied here (:mod:`hone.models.streaming`), and the stream is closed at the first.
- ``remote``: true unless the server is on this machine (a loopback address or
  ``localhost``): the agent then redacts secrets from every request
  (:mod:`hone.agent.outbound`). ``HONE_MODEL_REMOTE=1`` says a loopback address is remote
  (an SSH tunnel to another machine), ``0`` that a network address is not.
- No tokenizer here: token counts are learnt from the server, as the served tokenizer's
  bytes per token. Once the model is known, a sample of Python code (this module's own
  source: nothing of the user's) is sent to the server's tokenize route where it has one
  (vLLM's and llama.cpp's ``/tokenize``, llama-cpp-python's ``/extras/tokenize/count``).
  Streams ask for the usage report (``stream_options.include_usage``; a server that
  refuses the field is asked without it from then on), which gives each request's exact
  prompt and completion tokens and, from completions requests, refines the ratio. Once
  known, :meth:`count_tokens` counts with it (25% high), so prompts fill their token budget
  instead of the generic estimate's half of it; until then it returns None and the engine
  estimates (two bytes a token).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import ipaddress
import json
import logging
import math
import os
import queue
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hone.models.backend import (
    CancelToken,
    Generation,
    GenerationRequest,
    GenerationStats,
    ModelError,
    estimate_tokens,
)
from hone.models.prompts import PromptTemplate, template_for
from hone.models.streaming import check_cancel, stream

__all__ = ["PREFIX", "OpenAIBackend", "is_loopback", "parse_spec"]

log = logging.getLogger(__name__)

PREFIX = "openai:"
KEY_VARIABLE = "HONE_API_KEY"
CA_FILE_VARIABLE = "HONE_CA_FILE"
# "1": the server is remote whatever its address says (a loopback port that an SSH tunnel
# forwards to another machine); "0": it is not (a machine of one's own on the network)
REMOTE_VARIABLE = "HONE_MODEL_REMOTE"
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0  # silence between two chunks of a stream
RETRIES = 2  # after the first try, on connection errors only
BACKOFF_S = 0.25  # doubled at each retry
SERVER_STOPS = 4  # the OpenAI API takes four stop strings
POLL_S = 0.02  # how often a waiting generation checks its cancel token
ERROR_CHARS = 300  # of a server's error reply, in the message
_NO_FIM = "{context}{header}{prefix}"  # a family's layout without its FIM tokens
USAGE_MIN_TOKENS = 32  # a shorter prompt says too little about the tokenizer to learn from
# counts from the learnt bytes per token are taken this much higher: on 2,000-character
# chunks of standard-library code (SmolLM2's tokenizer, llama.cpp's server) that counts
# 1.35 times the exact tokens at the median and under them for about a tenth of the chunks
# (digit-heavy data); the generic two bytes a token counts 1.9 times at the median
COUNT_MARGIN = 1.25
LEARN_RATE = 0.3  # weight of the newest usage report in the bytes-per-token average
SAMPLE_BYTES = 6000  # of this module's source, tokenized by the server to learn the ratio
# A server's tokenize routes, from its root (the URL without /v1), each with its body:
# vLLM's and llama.cpp's server's (``prompt``, ``content``), llama-cpp-python's.
TOKENIZE_ROUTES = (
    ("/tokenize", lambda model, text: {"model": model, "prompt": text, "content": text}),
    ("/extras/tokenize/count", lambda model, text: {"model": model, "input": text}),
)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``openai:URL[#MODEL]`` -> (base URL without a trailing slash, model or None)."""
    rest = spec.removeprefix(PREFIX).strip()
    url, _, model = rest.partition("#")
    url = url.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(
            f"an OpenAI-compatible server is named like openai:http://HOST:PORT/v1, got {spec!r}"
        )
    if parts.username or parts.password:
        raise ModelError(
            "put the server's API key in HONE_API_KEY, not in the URL (it would be logged)"
        )
    return url, (model.strip() or None)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) is this machine's loopback."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _remote(setting: str | None, default: bool) -> bool:
    value = (setting or "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


class _Loop:
    """An asyncio event loop on a daemon thread, shared by a backend's requests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hone-http", daemon=True)
        self.thread.start()

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=2)
        if not self.thread.is_alive():
            self.loop.close()


class OpenAIBackend:
    """A model served over the OpenAI API (see the module docstring)."""

    max_in_flight = 4  # the scheduler's slots: requests this backend has in flight at once

    def __init__(
        self,
        url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        fim: str = "auto",
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retries: int = RETRIES,
    ) -> None:
        if fim not in ("auto", "template", "native"):
            raise ModelError(f"fim must be auto, template or native, got {fim!r}")
        self.url = url.rstrip("/")
        self.requested_model = model
        self.model: str | None = model
        self.name = f"{PREFIX}{self.url}" + (f"#{model}" if model else "")
        self.fim = fim
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.retries = retries
        self._api_key = api_key if api_key is not None else os.environ.get(KEY_VARIABLE)
        host = urllib.parse.urlsplit(self.url).hostname or ""
        self.remote = _remote(os.environ.get(REMOTE_VARIABLE), not is_loopback(host))
        self._loop: _Loop | None = None
        self._client: Any = None
        self._lock = threading.Lock()
        self._template: PromptTemplate | None = None
        self._template_for: str | None = None
        self._usage = True  # ask streams for their usage report (off once a server refuses)
        self._bytes_per_token: float | None = None  # learnt from usage reports
        self._ratio_for: str | None = None  # the served model it was learnt for

    @classmethod
    def from_spec(cls, spec: str) -> OpenAIBackend:
        url, model = parse_spec(spec)
        return cls(url, model)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

    # -- the protocol -----------------------------------------------------------------

    def load(self) -> None:
        """Start the client and ask the server which models it serves. A server that is
        down is not an error here (it may come up later: each request asks again until
        it answers); a server that answers without the model asked for is."""
        self._start()
        try:
            self._resolve_model()
        except _Unreachable as exc:
            log.warning("model server %s: %s; requests will try again", self.url, exc)

    def count_tokens(self, text: str) -> int | None:
        """Tokens from the bytes per token learnt from the server (25% high); None until
        it is known, or after the served model changed."""
        ratio = self._ratio()
        if ratio is None:
            return None
        return math.ceil(round(len(text.encode("utf-8")) * COUNT_MARGIN / ratio, 6))

    def _auth(self) -> dict[str, str]:
        """The request headers that carry the API key (none without a key)."""
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _ratio(self) -> float | None:
        """The served model's bytes per token, once learnt."""
        return self._bytes_per_token if self._ratio_for == self.model else None

    def _learn(self, body: dict[str, Any], prompt_tokens: int) -> None:
        """A completions request's usage report (or a tokenize route's count): the served
        tokenizer's bytes per token (chat requests are not used: their template adds tokens
        the text does not show)."""
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or prompt_tokens < USAGE_MIN_TOKENS:
            return
        ratio = min(8.0, max(1.0, len(prompt.encode("utf-8")) / prompt_tokens))
        known = self._ratio()
        self._bytes_per_token = ratio if known is None else known + LEARN_RATE * (ratio - known)
        self._ratio_for = self.model

    def detect_template(self) -> PromptTemplate:
        """The family of the served model's name (plain when unknown)."""
        if self._template is None or self._template_for != self.model:
            self._template = template_for(self.model or "")
            self._template_for = self.model
        return self._template

    def describe(self) -> dict[str, str]:
        return {
            "model": self.model or "(the server's first, once it answers)",
            "server": self.url,
            "path": self.url,
            "device": "remote" if self.remote else "this machine (another process)",
            "dtype": "the server's",
            "api_key": f"set ({KEY_VARIABLE})" if self._api_key else "none",
            "fim": self._fim_mode(),
            "tokens": (
                "estimated, two bytes a token (the server has not told)"
                if self._ratio() is None
                else f"{self._ratio():.2f} bytes a token (learnt from the server)"
            ),
        }

    def close(self) -> None:
        with self._lock:
            loop, client = self._loop, self._client
            self._loop = self._client = None
        if loop is not None:
            if client is not None:
                with contextlib.suppress(Exception):
                    loop.submit(client.aclose()).result(timeout=2)
            loop.close()

    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Generation:
        return Generation(lambda generation: self._run(generation, request, cancel))

    # -- requests ---------------------------------------------------------------------

    def _fim_mode(self) -> str:
        if self.fim != "auto":
            return self.fim
        return "template"  # the family's FIM tokens where it has them, else the prefix alone

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any], list[str]]:
        """(endpoint, JSON body without n/seed, every stop string to apply here)."""
        stops = list(request.stop)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if self._usage:
            body["stream_options"] = {"include_usage": True}
        if request.infill is not None:
            template = self.detect_template()
            stops += [s for s in template.stop if s not in stops]
            if self._fim_mode() == "native":  # the server puts the FIM tokens in
                layout = dataclasses.replace(template, fim=False, template=_NO_FIM)
                infill = dataclasses.replace(request.infill, suffix="")
                body["prompt"] = layout.render_infill(infill)
                body["suffix"] = request.infill.suffix
            else:
                body["prompt"] = template.render_infill(request.infill)
            endpoint = "/completions"
        elif request.messages:
            body["messages"] = [
                {"role": m["role"], "content": m["content"]} for m in request.messages
            ]
            endpoint = "/chat/completions"
        else:
            body["prompt"] = request.prompt
            endpoint = "/completions"
        if stops:
            body["stop"] = stops[:SERVER_STOPS]
        return endpoint, body, stops

    def _run(
        self, generation: Generation, request: GenerationRequest, cancel: CancelToken | None
    ) -> Iterator[str]:
        self._start()
        if self.model is None:
            try:
                self._resolve_model()
            except _Unreachable as exc:
                raise ModelError(
                    f"the model server at {self.url} cannot be reached: {exc}"
                ) from None
        endpoint, body, stops = self._body(request)
        request = _with_stops(request, stops)
        taken = ""
        if request.token_healing and "prompt" in body and "suffix" not in body:
            body["prompt"], taken = _take_back_blanks(body["prompt"])
        prompt_text = body.get("prompt") or "".join(m["content"] for m in body.get("messages", []))
        wanted = request.samples
        if wanted == 1:
            stats = generation.start_sample()
            stats.prompt_tokens = estimate_tokens(prompt_text)
            steps = self._steps(endpoint, {**body, **_seed(request, 0)}, stats, cancel)
            if taken:
                steps = _after_blanks(steps, taken)
            yield from stream(steps, request, stats, cancel)
            return
        # several samples: one request asks for all of them; a server that answers fewer
        # (llama.cpp's) is asked again for the rest, each with its own seed
        got: list[tuple[str, str]] = []
        started = time.perf_counter()
        asked = 0
        while len(got) < wanted:
            n = wanted - len(got)
            extra = {"n": n, **_seed(request, asked)}
            asked += 1
            texts = self._collect(endpoint, {**body, **extra}, n, cancel, generation)
            if not texts:
                break
            got.extend(texts)
        elapsed = time.perf_counter() - started
        if taken:
            got = [(_strip_taken(text, taken) or "", finish) for text, finish in got]
        for k, (text, finish) in enumerate(got[:wanted]):
            stats = generation.start_sample()
            stats.prompt_tokens = estimate_tokens(prompt_text)
            stats.decode_s = elapsed if k == 0 else 0.0

            def replay(t: str = text, f: str = finish, s: GenerationStats = stats) -> Iterator[str]:
                s.generated_tokens = max(1, estimate_tokens(t)) if t else 0
                yield t
                if f == "stop":
                    s.stop_reason = "eos"

            yield from stream(replay(), request, stats, cancel)

    def _collect(
        self,
        endpoint: str,
        body: dict[str, Any],
        n: int,
        cancel: CancelToken | None,
        generation: Generation,
    ) -> list[tuple[str, str]]:
        """Every choice of one streamed request, whole: [(text, finish_reason)]."""
        texts: dict[int, str] = {}
        finish: dict[int, str] = {}
        for event in self._events(endpoint, body, cancel, generation.pending):
            if event[0] == "text":
                _, index, piece = event
                texts[index] = texts.get(index, "") + piece
            elif event[0] == "finish":
                finish[event[1]] = event[2]
        return [(texts.get(i, ""), finish.get(i, "")) for i in sorted(set(texts) | set(finish))]

    def _steps(
        self,
        endpoint: str,
        body: dict[str, Any],
        stats: GenerationStats,
        cancel: CancelToken | None,
    ) -> Iterator[str]:
        """One sample's stream as cumulative text (the step generator of streaming.py)."""
        text = ""
        started = time.perf_counter()
        first: float | None = None
        try:
            for event in self._events(endpoint, body, cancel, stats):
                if event[0] == "text" and event[1] == 0 and event[2]:
                    if first is None:
                        first = time.perf_counter()
                        stats.prefill_s = first - started
                    text += event[2]
                    stats.generated_tokens += 1
                    yield text
                elif event[0] == "finish" and event[1] == 0 and event[2] == "stop":
                    stats.stop_reason = "eos"
                elif event[0] == "usage":
                    stats.prompt_tokens, stats.generated_tokens = event[1], event[2]
        finally:
            stats.decode_s = time.perf_counter() - (first or started)

    def _events(
        self,
        endpoint: str,
        body: dict[str, Any],
        cancel: CancelToken | None,
        stats: GenerationStats,
    ) -> Iterator[tuple]:
        """The stream's events, ("text", index, piece) and ("finish", index, reason), read
        here from the loop thread's queue; cancellation (or closing this generator) cancels
        the request's task, which closes the connection's stream."""
        events: queue.Queue[tuple] = queue.Queue()
        assert self._loop is not None
        future = self._loop.submit(self._request(endpoint, body, events))
        try:
            while True:
                try:
                    event = events.get(timeout=POLL_S)
                except queue.Empty:
                    check_cancel(cancel, stats)
                    continue
                if event[0] == "end":
                    return
                if event[0] == "error":
                    raise ModelError(event[1])
                if event[0] == "usage":  # _learn takes completions only
                    self._learn(body, event[1])
                yield event
                check_cancel(cancel, stats)
        finally:
            future.cancel()

    async def _request(self, endpoint: str, body: dict[str, Any], events: queue.Queue) -> None:
        import httpx

        url = self.url + endpoint
        headers = {"Accept": "text/event-stream", **self._auth()}
        delay = BACKOFF_S
        attempt = 0
        try:
            while True:
                try:
                    async with self._client.stream(
                        "POST", url, json=body, headers=headers
                    ) as response:
                        if response.status_code >= 400:
                            error = await _status_error(response)
                            if "stream_options" in body and "stream_options" in error:
                                # a server that refuses the field: ask without it from now
                                log.info("model server %s refuses stream_options", url)
                                self._usage = False
                                body = {k: v for k, v in body.items() if k != "stream_options"}
                                continue
                            events.put(("error", error))
                            return
                        await _read_stream(response, events)
                        return
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    if attempt == self.retries:
                        events.put(
                            ("error", f"the model server at {self.url} cannot be reached: "
                                      f"{_reason(exc)}")
                        )  # fmt: skip
                        return
                    attempt += 1
                    log.info("model server %s: %s; retrying in %.2f s", url, _reason(exc), delay)
                    await asyncio.sleep(delay)
                    delay *= 2
        except asyncio.CancelledError:
            raise  # the generation was cancelled: leaving the block closed the stream
        except httpx.ReadTimeout:
            events.put(("error", f"the model server sent nothing for {self.read_timeout_s:g} s"))
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            events.put(("error", f"the model server broke the stream off: {_reason(exc)}"))
        except httpx.HTTPError as exc:
            events.put(("error", f"request to the model server failed: {_reason(exc)}"))
        except _Garbage as exc:
            events.put(("error", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the waiting generation
            log.debug("model server request failed", exc_info=True)
            events.put(("error", f"request to the model server failed: {_reason(exc)}"))

    # -- the client -------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            import httpx

            _preload()
            self._loop = _Loop()
            ca = os.environ.get(CA_FILE_VARIABLE)
            verify: Any = True
            if ca:
                try:
                    verify = ssl.create_default_context(cafile=ca)
                except (OSError, ssl.SSLError) as exc:
                    raise ModelError(
                        f"{CA_FILE_VARIABLE}={ca}: not a readable CA bundle: {exc}"
                    ) from None
            timeout = httpx.Timeout(
                connect=self.connect_timeout_s,
                read=self.read_timeout_s,
                write=self.read_timeout_s,
                pool=None,
            )
            limits = httpx.Limits(
                max_connections=self.max_in_flight + 2,
                max_keepalive_connections=self.max_in_flight + 2,
            )

            async def make() -> Any:
                return httpx.AsyncClient(
                    timeout=timeout, limits=limits, verify=verify, trust_env=False
                )

            self._client = self._loop.submit(make()).result()

    def _resolve_model(self) -> None:
        """``GET /models``: the first model when none was asked for; the one asked for
        must be there."""
        future = self._loop.submit(self._models())  # type: ignore[union-attr]
        try:
            ids = future.result(timeout=self.connect_timeout_s + self.read_timeout_s)
        except TimeoutError as exc:
            future.cancel()
            raise _Unreachable("no answer to GET /models") from exc
        if not ids:
            raise ModelError(f"the model server at {self.url} serves no model (GET /models)")
        if self.requested_model is None:
            self.model = ids[0]
        elif self.requested_model not in ids:
            raise ModelError(
                f"the model server at {self.url} does not serve {self.requested_model!r}; "
                f"it serves {', '.join(ids[:5])}"
            )
        if self._ratio_for != self.model:
            self._probe_tokenizer()

    def _probe_tokenizer(self) -> None:
        """The served tokenizer's bytes per token from the server's tokenize route, where it
        has one (best effort: a server without any keeps the estimate)."""
        text = Path(__file__).read_text(encoding="utf-8")[:SAMPLE_BYTES]
        future = self._loop.submit(self._tokenize_count(text))  # type: ignore[union-attr]
        try:
            count = future.result(timeout=2 * self.connect_timeout_s * len(TOKENIZE_ROUTES))
        except Exception:  # noqa: BLE001 - no route, no answer: requests still work
            future.cancel()
            log.debug("model server %s: no token count", self.url, exc_info=True)
            return
        if count:
            self._learn({"prompt": text}, count)
            log.info("model server %s: %.2f bytes a token", self.url, self._ratio() or 0)

    async def _tokenize_count(self, text: str) -> int | None:
        headers = self._auth()
        root = self.url.removesuffix("/v1")
        for route, body in TOKENIZE_ROUTES:
            response = await self._client.post(
                root + route,
                json=body(self.model, text),
                headers=headers,
                timeout=self.connect_timeout_s,
            )
            if response.status_code >= 400:
                continue
            with contextlib.suppress(ValueError, AttributeError):
                data = response.json()
                count = data.get("count")
                if type(count) is not int and isinstance(data.get("tokens"), list):
                    count = len(data["tokens"])
                if type(count) is int and count > 0:
                    return count
        return None

    async def _models(self) -> list[str]:
        import httpx

        headers = self._auth()
        delay = BACKOFF_S
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.get(self.url + "/models", headers=headers)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise _Unreachable(_reason(exc)) from exc
                await asyncio.sleep(delay)
                delay *= 2
            except httpx.HTTPError as exc:
                raise _Unreachable(_reason(exc)) from exc
        if response.status_code >= 400:
            raise ModelError(await _status_error(response))
        try:
            data = response.json()
            return [str(m["id"]) for m in data["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"the server at {self.url} is not an OpenAI-compatible server: GET /models "
                f"answered {_clip(response.text)!r}"
            ) from exc


# What httpx imports on its first request (its transport and anyio's asyncio backend):
# imported by _preload in the caller's thread, not in the loop thread. Under pytest, whose
# assertion rewriting parses pytest plugins' modules (anyio is one) with ``ast``, two
# threads parsing at once trip CPython 3.11 ("AST constructor recursion depth mismatch").
_TRANSPORT = (
    "httpcore",
    "httpcore._backends.auto",
    "httpcore._backends.anyio",
    "anyio",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "h11",
    "certifi",
)


def _preload() -> None:
    for name in _TRANSPORT:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class _Unreachable(Exception):
    pass


class _Garbage(Exception):
    pass


def _take_back_blanks(prompt: str) -> tuple[str, str]:
    """A prompt that ends in blanks loses them: a line of indentation alone (the editor
    indented the new line), or the spaces after the text of the last line (``msg = ``).
    Tokenizers put a space or an indentation at the start of the next token (`` "``,
    ``    if``): a prompt that ends in one ends mid-token, which the model has rarely seen
    and answers badly (a line break, nothing, or text that ignores the line: with the
    embedded model through llama.cpp, single-line edit similarity 0.15 against 0.49 with
    hone's own token healing on the same sites). The text-level half of token healing, for
    servers whose tokenizer hone does not have; what the model writes for the blanks is
    taken off its reply. Returns (prompt, the blanks taken back)."""
    head, sep, last = prompt.rpartition("\n")
    if sep and last and not last.strip(" \t"):
        return head + sep, last
    kept = prompt.rstrip(" \t")
    if kept and kept != prompt and not kept.endswith("\n"):
        return kept, prompt[len(kept) :]
    return prompt, ""


def _strip_taken(text: str, taken: str) -> str | None:
    """``text`` without the blanks taken back from the prompt (already in the document);
    None while it could still be those blanks. Text that starts with other blanks keeps
    its text, less its leading spaces and tabs."""
    if text.startswith(taken):
        return text[len(taken) :]
    if taken.startswith(text):
        return None  # so far the text is part of the indentation
    return text.lstrip(" \t")


def _after_blanks(steps: Iterator[str], taken: str) -> Iterator[str]:
    """A step generator's cumulative text, with :func:`_strip_taken` applied."""
    try:
        for text in steps:
            visible = _strip_taken(text, taken)
            if visible is not None:
                yield visible
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            close()


def _with_stops(request: GenerationRequest, stops: list[str]) -> GenerationRequest:
    return dataclasses.replace(request, stop=stops) if stops != request.stop else request


def _seed(request: GenerationRequest, k: int) -> dict[str, int]:
    if request.seed is None:
        return {}
    return {"seed": request.seed + k}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return _clip(text.splitlines()[0] if text else text)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


async def _status_error(response: Any) -> str:
    try:
        raw = (await response.aread())[:4096].decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the status alone still says what happened
        raw = ""
    message = raw
    with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", raw) if isinstance(error, dict) else str(error)
    return f"the model server answered {response.status_code}: {_clip(message)}"


async def _read_stream(response: Any, events: queue.Queue) -> None:
    """Server-sent events of an OpenAI stream into ``events``; ("end",) at ``[DONE]`` or
    at the end of the body. Raises _Garbage for anything that is not such a stream."""
    kind = response.headers.get("content-type", "")
    if "text/event-stream" not in kind:
        body = (await response.aread())[:2048].decode("utf-8", "replace")
        # a server that ignores "stream" answers with one JSON object
        try:
            data = json.loads(body)
        except ValueError:
            raise _Garbage(
                f"the model server's reply is not an OpenAI stream: {_clip(body)!r}"
            ) from None
        _put_choices(data, events)
        events.put(("end",))
        return
    finished = False
    async for line in response.aiter_lines():
        line = line.strip()
        if not line or line.startswith(":"):
            continue
        if not line.startswith("data:"):
            if line.startswith(("event:", "id:", "retry:")):
                continue
            raise _Garbage(f"the model server's reply is not an OpenAI stream: {_clip(line)!r}")
        payload = line[5:].strip()
        if payload == "[DONE]":
            events.put(("end",))
            return
        try:
            data = json.loads(payload)
        except ValueError:
            raise _Garbage(
                f"the model server sent an event that is not JSON: {_clip(payload)!r}"
            ) from None
        if isinstance(data, dict) and "error" in data:
            error = data["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise _Garbage(f"the model server reported an error: {_clip(str(message))}")
        finished |= _put_choices(data, events)
    if not finished:  # the body ended (the connection closed) before [DONE] or a finish
        raise _Garbage("the model server broke the stream off before its end")
    events.put(("end",))


def _put_choices(data: Any, events: queue.Queue) -> bool:
    """The choices' text and finish reasons, and a usage report ("usage", prompt tokens,
    completion tokens), into ``events``; whether a choice finished."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _Garbage(f"the model server sent an event without choices: {_clip(str(data))!r}")
    usage = data.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if type(prompt) is int and type(completion) is int and prompt >= 0 <= completion:
            events.put(("usage", prompt, completion))
    finished = False
    for choice in data["choices"]:
        if not isinstance(choice, dict):
            raise _Garbage(f"the model server sent a malformed choice: {_clip(str(choice))!r}")
        index = choice.get("index", 0)
        if not isinstance(index, int):
            index = 0
        piece = choice.get("text")
        if piece is None:
            part = choice.get("delta") or choice.get("message") or {}
            piece = part.get("content") if isinstance(part, dict) else None
        if isinstance(piece, str) and piece:
            events.put(("text", index, piece))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            events.put(("finish", index, reason))
            finished = True
    return finished
