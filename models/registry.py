"""Model spec string -> backend. Backends are imported only when chosen.

Specs:

- ``None``, ``""`` or ``"embedded"``: the embedded SmolLM2-135M-Instruct (converted
  on first ``load()``, not here, so a server can answer ``initialize`` at once);
  ``"embedded:int8"`` (or ``:bf16``, ``:fp32``...) picks its weight format;
- ``"scripted:/path/file.json"``: :class:`hone.models.scripted.ScriptedBackend`;
- ``"openai:http://HOST:PORT/v1[#MODEL]"``: an OpenAI-compatible server (vLLM, llama.cpp's,
  others): :class:`hone.models.openai_backend.OpenAIBackend`;
- ``"vllm:..."``: reserved (``hone model serve`` starts vLLM; point ``openai:`` at it);
- anything else: a local folder, a ``.gguf`` file, or a hub model id, loaded with
  transformers.

To add a backend, add its prefix to :data:`BACKENDS` as ``"module:factory"``; the
factory takes the whole spec string.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from hone.models.backend import ModelBackend, ModelError
from hone.models.prompts import template_for_backend

__all__ = ["BACKENDS", "EMBEDDED", "load_backend", "template_for_backend"]

EMBEDDED = "embedded"

# prefix -> "module:factory(spec) -> ModelBackend", or None while it is not written yet.
BACKENDS: dict[str, str | None] = {
    "scripted": "hone.models.scripted:ScriptedBackend.from_spec",
    "openai": "hone.models.openai_backend:OpenAIBackend.from_spec",
    "vllm": None,
}


def load_backend(spec: str | None, *, trust_remote_code: bool = False) -> ModelBackend:
    """The backend a spec string names (not loaded yet: call ``load()``).
    ``trust_remote_code``: a model folder's own code may run (hf/trust.py; off)."""
    spec = (spec or "").strip()
    if spec in ("", EMBEDDED):
        return embedded_backend()
    if spec.startswith(EMBEDDED + ":"):  # embedded:int8, embedded:bf16, ...
        from hone.models.hf.loading import check_dtype

        dtype = spec.partition(":")[2].strip().lower()
        check_dtype(dtype)
        return embedded_backend(dtype=dtype)
    prefix, sep, _ = spec.partition(":")
    if sep and prefix in BACKENDS:
        target = BACKENDS[prefix]
        if target is None:
            raise ModelError(
                f"the {prefix!r} model backend is not available yet; "
                "use 'embedded', a local model folder or a .gguf file"
            )
        return _factory(target)(spec)
    return transformers_backend(spec, trust_remote_code=trust_remote_code)


def embedded_backend(*, dtype: str = "auto", threads: int | None = None) -> ModelBackend:
    """The embedded model; the GGUF conversion (first use only) happens in load()."""
    from hone.models.embedded import MODEL_NAME, embedded_model_dir
    from hone.models.transformers_backend import TransformersBackend

    return TransformersBackend(
        EMBEDDED,
        name=f"{MODEL_NAME} (embedded)",
        resolve=embedded_model_dir,
        dtype=dtype,
        threads=threads,
    )


def transformers_backend(spec: str, *, trust_remote_code: bool = False) -> ModelBackend:
    from hone.models.transformers_backend import TransformersBackend

    path = Path(spec).expanduser()
    trust = {"trust_remote_code": trust_remote_code}
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return TransformersBackend(str(path.parent), gguf_file=path.name, name=spec, **trust)
    return TransformersBackend(str(path) if path.exists() else spec, name=spec, **trust)


def _factory(target: str) -> Callable[[str], ModelBackend]:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]
