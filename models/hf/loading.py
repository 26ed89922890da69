"""Loading a causal LM with transformers: where the weights come from, and in what format.

A folder, a ``.gguf`` file in a folder or a hub id; the weight format is a torch dtype or
``int8`` (dynamic quantization of the Linear layers, CPU only), chosen by
:func:`pick_dtype` when the user says ``auto``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hone.models.backend import ModelError
from hone.models.hf.trust import check_folder, loader_kwargs

DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
    # Weights in int8, activations in fp32 (dynamic quantization of the Linear layers):
    # the CPU default, see pick_dtype.
    "int8": "int8",
}


def check_dtype(dtype: str) -> None:
    if dtype != "auto" and dtype.lower() not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; use auto, {', '.join(sorted(DTYPES))}")


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers' progress bars (they would clutter a server's stderr)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@dataclass
class Loaded:
    """A model ready to run, and the facts the rest of the backend needs about it."""

    torch: Any
    model: Any
    tokenizer: Any
    device: Any  # torch.device
    weights: str  # the weight format in use: a torch dtype name or "int8"
    parameters: int  # counted before quantizing
    eos: frozenset[int]
    cache_kw: str  # the forward() keyword for the KV cache
    keep_kw: bool  # forward() takes logits_to_keep


def load_model(
    path: str,
    *,
    gguf_file: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    trust_remote_code: bool = False,
) -> Loaded:
    """Load ``path`` (a folder, a folder with ``gguf_file``, or a hub id), held to
    :mod:`hone.models.hf.trust`'s rules: safetensors or GGUF weights, no model code unless
    ``trust_remote_code``."""
    check_folder(path, trust_remote_code=trust_remote_code, gguf=bool(gguf_file))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads or os.cpu_count() or 1)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    weights = pick_dtype(torch, dtype, device)
    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    kwargs["trust_remote_code"] = trust_remote_code
    weights_kw = loader_kwargs(trust_remote_code=trust_remote_code, gguf=bool(gguf_file))
    with quiet_progress():
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=getattr(torch, "float32" if weights == "int8" else weights),
            **{**kwargs, **weights_kw},
        )
    model.to(device)
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())  # before quantizing
    if weights == "int8":
        if device != "cpu":
            raise ModelError("dtype int8 (dynamic quantization) runs on the CPU only")
        model = quantize_int8(torch, model)
    params = inspect.signature(model.forward).parameters
    return Loaded(
        torch=torch,
        model=model,
        tokenizer=tokenizer,
        device=torch.device(device),
        weights=weights,
        parameters=parameters,
        eos=eos_ids(model, tokenizer),
        cache_kw="cache" if "cache" in params else "past_key_values",
        keep_kw="logits_to_keep" in params,
    )


def pick_dtype(torch: Any, dtype: str, device: str) -> str:
    """The weight format: a torch dtype name, or "int8"."""
    if dtype != "auto":
        return DTYPES[dtype.lower()]
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    # On CPU, int8 weights (dynamic quantization) decode faster than bf16
    # (benchmarks/results/decode.json) but lose more than 5% relative edit similarity,
    # single- and multi-line, on the same sites through the same engine
    # (benchmarks/results/eval-weights.json, paired 95% intervals exclude zero): bf16 is
    # the default, int8 an explicit choice (dtype="int8").
    return "bfloat16"


def quantize_int8(torch: Any, model: Any) -> Any:
    import warnings

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated, still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    # Base models end a document with <|endoftext|> even when the chat EOS differs.
    end = tokenizer.get_vocab().get("<|endoftext|>")
    if isinstance(end, int):
        ids.add(end)
    return frozenset(ids)
