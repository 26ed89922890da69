"""Weight formats side by side, in one run, on the embedded model: prefill of 768 tokens
(256-token chunks), one decode step with a 600-token cache, and a 9-token verification
pass (speculative drafts). Decides the CPU default dtype in TransformersBackend.

    python benchmarks/bench_decode.py [--reps 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit  # noqa: E402
from hone.models.transformers_backend import TransformersBackend  # noqa: E402


def measure(backend: TransformersBackend, reps: int) -> dict[str, float]:
    import torch
    from transformers import DynamicCache

    model = backend._model
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 20000, (1, 768), generator=gen)
    out: dict[str, list[float]] = {"prefill_768_ms": [], "decode_step_ms": [], "verify_9_ms": []}
    with torch.inference_mode():
        for _ in range(3):
            cache = DynamicCache(config=model.config)
            t = time.perf_counter()
            for s in range(0, 768, 256):
                model(input_ids=ids[:, s : s + 256], past_key_values=cache, logits_to_keep=1)
            out["prefill_768_ms"].append((time.perf_counter() - t) * 1000)
            cache.crop(-168)  # 600 tokens of context
            for i in range(reps):
                t = time.perf_counter()
                model(input_ids=torch.tensor([[500 + i]]), past_key_values=cache, logits_to_keep=1)
                out["decode_step_ms"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            model(input_ids=ids[:, :9], past_key_values=cache, logits_to_keep=9)
            out["verify_9_ms"].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from hone.models.embedded import embedded_model_dir

    folder = str(embedded_model_dir())
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        "date": time.strftime("%Y-%m-%d"),
        "model": "SmolLM2-135M-Instruct (embedded)",
    }
    for dtype in ("bfloat16", "float32", "int8"):
        backend = TransformersBackend(folder, dtype=dtype, threads=2)
        backend.load()
        results[dtype] = measure(backend, args.reps)
        print(dtype, results[dtype], flush=True)
    base = results["bfloat16"]
    results["int8_vs_bf16"] = {k: round(results["int8"][k] / base[k], 2) for k in base}
    emit(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
