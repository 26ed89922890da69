"""What a request may carry when it leaves this machine.

A backend that sends requests to another machine (an HTTP server: ``remote = True`` on the
backend) gets every prompt with its secrets replaced (:func:`hone.retrieval.secrets.redact`):
the file around the cursor, the context snippets (the index is redacted already; open
buffers' windows and the uncommitted diff are not), chat messages. A backend on this
machine gets the text as it is: nothing leaves, and a completion inside a file with a key
in it still sees that file. Every place the agent hands a request to a backend goes
through :func:`for_backend`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hone.models.backend import GenerationRequest, Snippet
from hone.retrieval.secrets import redact

__all__ = ["for_backend", "redact_request"]


def for_backend(backend: Any, request: GenerationRequest) -> GenerationRequest:
    """``request`` as ``backend`` may receive it: redacted when the backend is remote."""
    return redact_request(request) if getattr(backend, "remote", False) else request


def _clean(text: str) -> str:
    return redact(text)[0] if text else text


def redact_request(request: GenerationRequest) -> GenerationRequest:
    """``request`` with the secrets in its prompt, infill (prefix, suffix, snippets) and
    messages replaced."""
    changes: dict[str, Any] = {}
    if request.prompt:
        changes["prompt"] = _clean(request.prompt)
    if request.infill is not None:
        infill = request.infill
        changes["infill"] = dataclasses.replace(
            infill,
            prefix=_clean(infill.prefix),
            suffix=_clean(infill.suffix),
            snippets=tuple(Snippet(s.path, _clean(s.text)) for s in infill.snippets),
        )
    if request.messages:
        changes["messages"] = [
            {**m, "content": _clean(m["content"])} if isinstance(m.get("content"), str) else m
            for m in request.messages
        ]
    return dataclasses.replace(request, **changes) if changes else request
