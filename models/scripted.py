"""A deterministic fake backend for plumbing tests and overhead benchmarks.

Spec string ``scripted:/path/file.json``; the file holds::

    {"responses": [{"match": "substring of the prompt, or null", "text": "..."},
                   {"match": "...", "texts": ["sample 1", "sample 2"]}],
     "default": "pass",        # text when no response matches (optional)
     "step_ms": 20,            # sleep per "token" (optional)
     "chunk_chars": 3,         # characters per "token" (optional)
     "raise": false,           # true or "generate": raise ModelError when generating;
                               # "load": raise ModelError from load()
     "hang": false,            # wait (yielding nothing) until cancelled
     "load_ms": 0,             # time load() takes (a slow model start)
     "family": "plain",        # prompt family detect_template() reports (optional)
     "tokenizer": true,        # false: count_tokens() returns None, like a remote server
     "remote": false,          # true: the backend says it sends requests to another machine
     "record": null}           # a file each rendered prompt is appended to (a JSON line)

Requests are rendered as a real backend renders them: an Infill with the family's
template (and its stop strings), a chat as "role: content" lines. The first response
whose ``match`` occurs in the rendered prompt (null matches anything) is played back
``chunk_chars`` characters per step, with ``step_ms`` of sleep per step spent in
``cancel.wait`` so cancellation is noticed within one step; sample ``k`` of a request
with several plays ``texts[k]`` (cycling), or ``text`` again. Stop strings,
``should_stop`` and cancellation go through :mod:`hone.models.streaming`, the same code
the real backend uses. The file is re-read when it changes, so a test can re-script a
running server.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hone.models.backend import (
    CancelToken,
    Generation,
    GenerationRequest,
    GenerationStats,
    ModelError,
)
from hone.models.prompts import PromptTemplate, template_by_name, template_for
from hone.models.streaming import check_cancel, stream

PREFIX = "scripted:"


@dataclass(frozen=True)
class Script:
    responses: tuple[tuple[str | None, tuple[str, ...]], ...] = ()
    default: str = "pass"
    step_ms: float = 20.0
    chunk_chars: int = 3
    raise_on: str = ""  # "", "generate" or "load"
    hang: bool = False
    load_ms: float = 0.0
    family: str | None = None  # prompt family to report (default: plain)
    tokenizer: bool = True
    remote: bool = False
    record: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> Script:
        responses = []
        for item in data.get("responses") or []:
            texts = item.get("texts", [item.get("text")]) if isinstance(item, dict) else None
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ModelError(f"scripted backend: bad response entry {item!r}")
            match = item.get("match")
            responses.append((None if match is None else str(match), tuple(texts)))
        raise_on = data.get("raise", False)
        raise_on = {True: "generate", False: "", None: ""}.get(raise_on, raise_on)
        if raise_on not in ("", "generate", "load"):
            raise ModelError("scripted backend: 'raise' must be a bool, 'generate' or 'load'")
        try:
            return cls(
                responses=tuple(responses),
                default=str(data.get("default", "pass")),
                step_ms=float(data.get("step_ms", 20)),
                chunk_chars=max(1, int(data.get("chunk_chars", 3))),
                raise_on=raise_on,
                hang=bool(data.get("hang", False)),
                load_ms=float(data.get("load_ms", 0)),
                family=str(data["family"]) if data.get("family") else None,
                tokenizer=bool(data.get("tokenizer", True)),
                remote=bool(data.get("remote", False)),
                record=str(data["record"]) if data.get("record") else None,
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"scripted backend: bad value: {exc}") from exc

    def text_for(self, prompt: str, sample: int = 0) -> str:
        for match, texts in self.responses:
            if match is None or match in prompt:
                return texts[sample % len(texts)]
        return self.default


class ScriptedBackend:
    """Plays back scripted text as if a model generated it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"{PREFIX}{self.path}"
        self._script: Script | None = None
        self._mtime: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: str) -> ScriptedBackend:
        return cls(spec.removeprefix(PREFIX))

    def load(self) -> None:
        script = self._read()
        time.sleep(script.load_ms / 1000)
        if script.raise_on == "load":
            raise ModelError(f"scripted backend {self.path} was told to fail loading")

    @property
    def remote(self) -> bool:
        """Whether requests leave this machine (the script's ``remote``): the agent then
        sends them redacted (hone.agent.outbound)."""
        return self._read().remote

    def count_tokens(self, text: str) -> int | None:
        return len(text) // 4 if self._read().tokenizer else None

    def detect_template(self) -> PromptTemplate:
        """The script's ``family`` (so tests can exercise FIM templates), else plain."""
        family = self._read().family
        return template_by_name(family) if family else template_for(self.name)

    def describe(self) -> dict[str, str]:
        return {"model": self.name, "path": str(self.path), "device": "none", "dtype": "none"}

    def render(self, request: GenerationRequest) -> str:
        """The prompt text ``match`` is looked up in."""
        if request.infill is not None:
            return self.detect_template().render_infill(request.infill)
        if request.messages:
            return "".join(f"{m['role']}: {m['content']}\n" for m in request.messages)
        return request.prompt

    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Generation:
        return Generation(lambda generation: self._run(generation, request, cancel))

    def _run(
        self, generation: Generation, request: GenerationRequest, cancel: CancelToken | None
    ) -> Iterator[str]:
        # One generation at a time, as with a real model; a cancelled waiter gives up.
        while not self._lock.acquire(timeout=0.01):
            check_cancel(cancel, generation.pending)
        try:
            script = self._read()
            if script.raise_on == "load":
                raise ModelError(f"scripted backend {self.path} was told to fail loading")
            prompt = self.render(request)
            if script.record:
                with open(script.record, "a", encoding="utf-8") as out:
                    out.write(json.dumps(prompt) + "\n")
            if request.infill is not None:
                stop = [*request.stop, *self.detect_template().stop]
                request = dataclasses.replace(request, stop=stop)
            for k in range(request.samples):
                stats = generation.start_sample()
                stats.prompt_tokens = len(prompt) // 4
                text = script.text_for(prompt, k)
                steps = self._steps(script, text, request, stats, cancel)
                yield from stream(steps, request, stats, cancel)
        finally:
            self._lock.release()

    def _steps(
        self,
        script: Script,
        text: str,
        request: GenerationRequest,
        stats: GenerationStats,
        cancel: CancelToken | None,
    ) -> Iterator[str]:
        step_s = script.step_ms / 1000.0
        wait = cancel.wait if cancel is not None else time.sleep
        started = time.perf_counter()
        try:
            if script.raise_on == "generate":
                raise ModelError(f"scripted backend {self.path} was told to fail")
            while script.hang:  # until cancelled (forever without a cancel token)
                wait(0.05)
                check_cancel(cancel, stats)
            size = script.chunk_chars
            pieces = [text[i : i + size] for i in range(0, len(text), size)]
            shown = ""
            for piece in pieces[: request.max_new_tokens]:
                if step_s > 0:
                    wait(step_s)
                check_cancel(cancel, stats)
                shown += piece
                stats.generated_tokens += 1
                yield shown
            if len(pieces) <= request.max_new_tokens:
                stats.stop_reason = "eos"
        finally:
            stats.decode_s = time.perf_counter() - started

    def _read(self) -> Script:
        try:
            mtime = self.path.stat().st_mtime_ns
            if self._script is None or mtime != self._mtime:
                data = json.loads(self.path.read_text())
                if not isinstance(data, dict):
                    raise ModelError(f"scripted backend: {self.path} must hold a JSON object")
                self._script = Script.from_json(data)
                self._mtime = mtime
        except (OSError, ValueError) as exc:
            raise ModelError(f"scripted backend: cannot read {self.path}: {exc}") from exc
        return self._script
