"""The inline-completion pipeline: policy -> prompt -> model (streaming, early stop) ->
post-processing, with typed-ahead reuse in front.

Synchronous and thread-safe enough to be driven from one model worker thread; the LSP
layer owns threads, supersession and timeouts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from hone.agent.completion.cache import TypedAheadCache
from hone.agent.completion.options import CompletionOptions
from hone.agent.completion.policy import Decision, Mode, decide, line_is_open
from hone.agent.completion.postprocess import is_complete, postprocess
from hone.agent.completion.prompting import Prompt, build_prompt, workspace_path
from hone.agent.outbound import for_backend
from hone.models.backend import (
    Cancelled,
    CancelToken,
    GenerationRequest,
    ModelBackend,
    Snippet,
    token_counter,
)
from hone.models.prompts import PromptTemplate, template_for_backend

log = logging.getLogger(__name__)


class CompletionRefused(Exception):  # noqa: N818 - control flow carrying a reason
    """The request cannot be served (binary text, too large, bad position)."""


@dataclass
class CompletionRequest:
    key: str  # document identity (URI or path); a newer request for it supersedes older ones
    text: str  # the document, or a window of it around the cursor (see ``start``)
    offset: int  # index into ``text`` (Python str)
    path: str | None = None
    language: str = "plaintext"
    # Context from other files, best first (the engine keeps what fits retrievalTokens).
    snippets: tuple[Snippet, ...] = ()
    # The workspace folder: the model sees ``path`` relative to it, never absolute.
    root: str | None = None
    # Where ``text`` starts in the document, and the document's length (None: ``text``
    # runs to its end). A window keeps per-request work independent of the document's size;
    # it must hold what the policy and the prompt read (the server passes >= 256 kB before
    # the cursor). The typed-ahead cache compares windows: a suggestion stays valid while
    # the text it was made from is unchanged.
    start: int = 0
    length: int | None = None


@dataclass
class Plan:
    """Everything decided before the model runs (cheap; safe on the event loop)."""

    request: CompletionRequest
    decision: Decision
    prefix: str  # document prefix, plus any indentation the boundary needs
    suffix: str
    lead: str  # text inserted before the model's output (indentation we added)
    cached: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def needs_model(self) -> bool:
        """False when the answer is already known (typed-ahead hit, or no completion here)."""
        return self.cached is None and self.decision.mode is not Mode.NONE


@dataclass
class CompletionResult:
    items: list[str]
    mode: str
    reason: str
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, object] = field(default_factory=dict)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


class CompletionEngine:
    def __init__(self, backend: ModelBackend, options: CompletionOptions | None = None) -> None:
        self.backend = backend
        self._template: PromptTemplate | None = None
        self.options = options or CompletionOptions()
        self.cache = TypedAheadCache()
        self.generations_started = 0

    @property
    def template(self) -> PromptTemplate:
        """The backend's prompt family, for budgeting: the backend renders with it (and
        adds its stop strings); the engine counts its overhead. Detecting it may load the
        model, so it is resolved on first use (in the model worker), not at construction."""
        if self._template is None:
            self._template = template_for_backend(self.backend)
        return self._template

    # -- phase 1: cheap, deterministic -------------------------------------------------
    def plan(self, req: CompletionRequest) -> Plan:
        t0 = time.perf_counter()
        text = req.text
        length = req.start + len(text) if req.length is None else req.length
        if length > self.options.max_document_chars:
            raise CompletionRefused(
                f"document has {length:,} characters, over maxDocumentChars "
                f"({self.options.max_document_chars:,})"
            )
        if not 0 <= req.offset <= len(text):
            raise CompletionRefused(f"offset {req.offset} is outside the document (0..{len(text)})")
        if "\x00" in text[max(0, req.offset - 4096) : req.offset + 4096]:
            raise CompletionRefused("document looks binary (NUL characters near the cursor)")
        prefix, suffix = text[: req.offset], text[req.offset :]
        timings: dict[str, float] = {}

        cached = self.cache.lookup(req.key, prefix, suffix)
        if cached is not None:
            timings["cache_ms"] = _ms(t0)
            return Plan(
                req, Decision(Mode.SINGLE, "typed-ahead"), prefix, suffix, "", cached, timings
            )

        t1 = time.perf_counter()
        decision = decide(text, req.offset, req.language)
        if decision.mode is Mode.MULTI and not self.options.multiline:
            decision = Decision(Mode.SINGLE, decision.reason + "+multiline-off", decision.indent)
        timings["policy_ms"] = _ms(t1)

        # Prompt boundary: a prompt that ends on a bare newline (or on less indentation
        # than the new line needs) derails small models; end it with the indentation and
        # insert that indentation ourselves.
        lead = ""
        line_start = prefix.rfind("\n") + 1
        current = prefix[line_start:]
        if decision.indent and current.strip() == "" and len(decision.indent) > len(current):
            if decision.indent.startswith(current):
                lead = decision.indent[len(current) :]
        return Plan(req, decision, prefix + lead, suffix, lead, None, timings)

    # -- phase 2: the model ---------------------------------------------------------------
    def run(self, plan: Plan, cancel: CancelToken | None = None) -> CompletionResult:
        """Generate for ``plan``. Raises hone.models.backend.Cancelled when cancelled."""
        req, decision = plan.request, plan.decision
        timings = dict(plan.timings)
        if plan.cached is not None:
            return CompletionResult([plan.cached], "cached", "typed-ahead", True, timings)
        if decision.mode is Mode.NONE:
            return CompletionResult([], decision.mode.value, decision.reason, False, timings)

        t0 = time.perf_counter()
        prompt = self.prompt_for(plan)
        timings["prompt_ms"] = _ms(t0)

        mode, language = decision.mode, req.language
        prefix, suffix = plan.prefix, plan.suffix

        max_lines = self.options.max_lines

        def should_stop(generated: str) -> bool:
            return is_complete(
                generated,
                prefix=prefix,
                suffix=suffix,
                mode=mode,
                language=language,
                max_lines=max_lines,
            )

        max_new = (
            self.options.max_new_tokens_multi
            if mode is Mode.MULTI
            else self.options.max_new_tokens_single
        )
        gen = GenerationRequest(
            infill=prompt.infill,
            max_new_tokens=max_new,
            should_stop=should_stop,
            session=req.key,  # each document keeps its own KV cache in the backend
            # a single line after an unfinished expression goes on on the cursor's line
            continue_line=mode is Mode.SINGLE and line_is_open(prefix),
        )
        if cancel is not None and cancel.cancelled:
            raise Cancelled("superseded before the model started")
        self.generations_started += 1
        t1 = time.perf_counter()
        generation = self.backend.generate(for_backend(self.backend, gen), cancel)
        raw = "".join(generation)  # a Cancelled raised here carries the generation's stats
        timings["model_ms"] = _ms(t1)
        stats = generation.stats

        t2 = time.perf_counter()
        body = postprocess(
            raw,
            prefix=prefix,
            suffix=suffix,
            mode=mode,
            language=language,
            max_lines=max_lines,
            truncated=stats.stop_reason == "length",
        )
        timings["post_ms"] = _ms(t2)
        items: list[str] = []
        if body.strip():
            insert = plan.lead + body
            items.append(insert)
            self.cache.remember(req.key, req.text[: req.offset], plan.suffix, insert)
        return CompletionResult(
            items,
            mode.value,
            decision.reason,
            False,
            timings,
            {
                "prompt_tokens": stats.prompt_tokens,
                "snippets": len(prompt.snippets),
                "snippet_tokens": prompt.snippet_tokens,
                "reused_tokens": stats.reused_tokens,
                "generated_tokens": stats.generated_tokens,
                "draft_tokens": stats.draft_tokens,
                "accepted_tokens": stats.accepted_tokens,
                "prefill_ms": stats.prefill_s * 1000,
                "decode_ms": stats.decode_s * 1000,
                "stop_reason": stats.stop_reason,
                "raw": raw,
            },
        )

    def prompt_for(self, plan: Plan) -> Prompt:
        """Prefix, suffix and snippets trimmed to ``contextTokens`` (snippets to
        ``retrievalTokens`` of it), counted with the backend's tokenizer or estimated."""
        req = plan.request
        return build_prompt(
            self.template,
            plan.prefix,
            plan.suffix,
            workspace_path(req.path, req.root),
            self.options.context_tokens,
            token_counter(self.backend),
            self.options.suffix_share,
            language=req.language,
            snippets=req.snippets,
            snippet_budget=self.options.retrieval_tokens,
        )

    def complete(
        self, req: CompletionRequest, cancel: CancelToken | None = None
    ) -> CompletionResult:
        """plan + run in one call (CLI, benchmarks)."""
        t0 = time.perf_counter()
        result = self.run(self.plan(req), cancel)
        result.timings["total_ms"] = _ms(t0)
        return result
