"""A model folder is untrusted input: what hone refuses to load from one.

Two things in a model folder can run code when it loads: pickled weights (``.bin``, ``.pt``,
``.pth``, ``.ckpt``, ``.pkl``: unpickling executes what the file says; transformers' own
``weights_only`` guard is a library default, not hone's decision) and the model's own Python
code (``auto_map`` in ``config.json`` or ``tokenizer_config.json``, loaded only with
``trust_remote_code``). hone loads weights from safetensors or GGUF only, and runs a model's
own code only when the user asked for it (the option ``trustRemoteCode`` /
``--trust-remote-code``). :func:`check_folder` says why a local folder is refused before
anything in it is read by a loader; :func:`loader_kwargs` is what every ``from_pretrained``
call passes, so a hub id (whose files are not here to inspect) is held to the same rules by
the library: ``use_safetensors=True`` refuses pickle-only repositories, and
``trust_remote_code=False`` refuses custom code. The same holds for sentence-transformers
models (``retrieval/embeddings.py``) and, when they come, LoRA adapters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hone.models.backend import ModelError

__all__ = ["PICKLE_SUFFIXES", "UntrustedModel", "check_folder", "loader_kwargs"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_SUFFIXES = (".safetensors", ".gguf")
MAX_DEPTH = 2
_CONFIGS = ("config.json", "tokenizer_config.json", "config_sentence_transformers.json")


class UntrustedModel(ModelError):
    """A model folder that needs pickles or its own code (the message says which and why)."""


def check_folder(
    folder: str | Path, *, trust_remote_code: bool = False, gguf: bool = False
) -> None:
    """Raise :class:`UntrustedModel` when ``folder`` (a local model folder; nothing happens
    for a hub id) holds its weights only as pickles, or needs its own code while
    ``trust_remote_code`` is off. ``gguf``: the weights come from a GGUF file there (which
    carries its own config and tokenizer: nothing else in its folder is read)."""
    path = Path(folder)
    if gguf or not path.is_dir():  # a GGUF file carries its own config and tokenizer
        return
    files = _files(path)
    safe = [p for p in files if p.suffix.lower() in SAFE_SUFFIXES]
    pickles = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if not safe and pickles:
        names = ", ".join(sorted(p.name for p in pickles)[:3])
        raise UntrustedModel(
            f"the model folder {path} has its weights only as pickle files ({names}): loading "
            "them can run code, so hone loads safetensors or GGUF weights only. Convert them "
            "(e.g. `transformers` save_pretrained(..., safe_serialization=True) on a machine "
            "where you trust the files) or use a safetensors or GGUF copy of the model."
        )
    if trust_remote_code:
        return
    for config in (p for p in files if p.name in _CONFIGS):
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # the loader reports a broken file itself
        if isinstance(data, dict) and data.get("auto_map"):
            raise UntrustedModel(
                f"the model folder {path} needs its own Python code ({config.name} has "
                "`auto_map`): hone runs none of a model's code unless you ask for it "
                "(`--trust-remote-code`, or the option trustRemoteCode: true) for a model "
                "whose source you trust."
            )


def _files(folder: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """The files of a model folder, ``depth`` levels down at most (sentence-transformers
    keeps modules one level down), ``.git`` left out."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink() and not entry.exists():
            continue
        if entry.is_file():
            found.append(entry)
        elif entry.is_dir() and depth > 0 and entry.name != ".git":
            found.extend(_files(entry, depth - 1))
    return found


def loader_kwargs(*, trust_remote_code: bool = False, gguf: bool = False) -> dict[str, Any]:
    """The keyword arguments of every ``from_pretrained`` hone makes (model and tokenizer)."""
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if not gguf:  # GGUF weights are not safetensors; the file itself is data only
        kwargs["use_safetensors"] = True
    return kwargs
