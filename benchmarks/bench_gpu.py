"""The local GPU path, timed: hone's decode on a GPU with dynamic KV caches (eager) and
with static caches and CUDA-graph steps, side by side in one run.

For each of the two: the decode step (median over a 64-token suggestion), a 64-token
suggestion after a ~700-token prompt end to end (prefill included, a fresh session), and
the one-character-edit ratio (the same prompt with one more character, in the same
session, over the first request's time). The first static request compiles the step
(reported apart as ``compile_s``).

Runs on a model folder (``--model``; default: the converted embedded model), on a GGUF
file (``--gguf FILE``: the embedded model's, carried to the device machine in two parts,
dequantized to bf16 on load), or on random weights (``--random-init FOLDER``: a model
folder's config and tokenizer, without its weights: small enough to travel in one call;
the same shapes, so the same speed; the text it writes means nothing).

    python benchmarks/bench_gpu.py [--model FOLDER | --gguf FILE | --random-init FOLDER]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import FILES, STDLIB, emit, machine  # noqa: E402
from hone.models.backend import GenerationRequest  # noqa: E402
from hone.models.transformers_backend import TransformersBackend  # noqa: E402

NEW_TOKENS = 64


def prompt(backend: TransformersBackend, tokens: int = 700) -> str:
    """About ``tokens`` tokens of a standard-library file, cut at a line start."""
    text = (STDLIB / FILES[0]).read_text()
    lines, out = text.split("\n"), []
    for line in lines:
        out.append(line)
        if backend.count_tokens("\n".join(out)) >= tokens:
            break
    return "\n".join(out) + "\n"


def sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(backend: TransformersBackend, text: str, session: str) -> dict:
    torch = backend.torch
    sync(torch)
    started = time.perf_counter()
    generation = backend.generate(
        GenerationRequest(
            prompt=text, max_new_tokens=NEW_TOKENS, token_healing=False, session=session
        )
    )
    out = "".join(generation)
    sync(torch)
    total = time.perf_counter() - started
    st = generation.stats
    steps = max(1, st.generated_tokens - 1)
    return {
        "total_ms": round(total * 1000, 1),
        "prefill_ms": round(st.prefill_s * 1000, 1),
        "step_ms": round(st.decode_s * 1000 / steps, 2),
        "tokens": st.generated_tokens,
        "reused": st.reused_tokens,
        "text": out[:80],
    }


def measure(backend: TransformersBackend, text: str, repeats: int = 5) -> dict:
    first = timed(backend, text, "warm")  # compiles / captures on the static path
    runs, edits = [], []
    for k in range(repeats):
        session = f"s{k}"
        fresh = timed(backend, text, session)
        edited = timed(backend, text + "x", session)  # one more character, same session
        runs.append(fresh)
        edits.append(edited["total_ms"] / fresh["total_ms"])
    return {
        "compile_s": round(first["total_ms"] / 1000, 2),
        "step_ms_p50": statistics.median(r["step_ms"] for r in runs),
        "suggestion_ms_p50": statistics.median(r["total_ms"] for r in runs),
        "prefill_ms_p50": statistics.median(r["prefill_ms"] for r in runs),
        "one_char_edit_ratio_p50": round(statistics.median(edits), 3),
        "tokens": runs[0]["tokens"],
        "example": runs[0]["text"],
    }


def random_model(config_folder: Path, into: Path) -> Path:
    """A model folder in ``into`` with ``config_folder``'s config and tokenizer files and
    random bf16 weights (seeded): for timing only."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(config_folder)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(into)
    for path in config_folder.iterdir():
        if path.suffix in (".json", ".jinja", ".txt", ".model") and not (into / path.name).exists():
            shutil.copy(path, into / path.name)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a model folder (default: the converted embedded model)")
    ap.add_argument("--gguf", type=Path, help="a GGUF file (dequantized to bf16 on load)")
    ap.add_argument(
        "--random-init", type=Path, help="a folder with a config and tokenizer: random weights"
    )
    ap.add_argument("--cpu", action="store_true", help="check the script runs (no timings)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu:
        print("bench_gpu: no CUDA device here", file=sys.stderr)
        return 2
    path = args.model
    if args.random_init is not None:
        path = str(random_model(args.random_init, Path(tempfile.mkdtemp(prefix="hone-random-"))))
    elif path is None and args.gguf is None:
        from hone.models.embedded import embedded_model_dir

        path = str(embedded_model_dir())
    out: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "card": torch.cuda.get_device_name(0) if not args.cpu else "none: --cpu, a check only",
        "model": str(args.random_init or args.gguf or path),
        "weights": "bfloat16" + (", random (timing only)" if args.random_init else ""),
        "new_tokens": NEW_TOKENS,
    }
    for name, static in (("dynamic-eager", False), ("static-cuda-graphs", True)):
        if args.gguf is not None:
            backend = TransformersBackend(
                str(args.gguf.parent), gguf_file=args.gguf.name, static=static, speculate=False
            )
        else:
            backend = TransformersBackend(path, static=static, speculate=False)
        backend.load()
        text = prompt(backend)
        out[name] = measure(backend, text, repeats=1 if args.cpu else 5)
        out[name]["prompt_tokens"] = backend.count_tokens(text)
        print(name, out[name], file=sys.stderr)
        del backend
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    a, b = out["dynamic-eager"], out["static-cuda-graphs"]
    out["step_speedup"] = round(a["step_ms_p50"] / b["step_ms_p50"], 2)
    out["targets"] = {
        "step_ms_at_most": 4,
        "suggestion_ms_at_most": 300,
        "one_char_edit_ratio_at_most": 0.3,
    }
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
