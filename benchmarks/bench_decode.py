"""Decoding on the embedded model, side by side in one run.

Part ``formats``: weight formats (bf16, fp32, int8): prefill of 768 tokens (256-token
chunks), one decode step with a 600-token cache, and a 9-token verification pass
(speculative drafts). Decides the CPU default dtype in TransformersBackend.

Part ``loops``: hone's hand-written decode loop (``TransformersBackend``) against
transformers' own ``generate`` on the same weights (``--loop-dtype``, default the CPU
default, bf16) and the same prompts (real
standard-library code cut mid-function), greedy, up to a fixed number of new tokens
(fewer at end of sequence):

- ``hone`` (prompt-lookup drafts on, 256-token prefill chunks), ``hone_no_drafts`` and
  ``hone_whole_prefill`` (the prompt in one forward pass, as ``generate`` feeds it: int8
  dynamic quantization scales activations per call, so chunking changes the numerics);
- ``generate`` (dynamic cache), ``generate_prompt_lookup`` (``prompt_lookup_num_tokens``),
  ``generate_static`` (``cache_implementation="static"``); every ``generate`` call has a
  ``StoppingCriteria`` that checks the cancel token.

For each: latency (prompt in, all new tokens out, from an empty cache), tokens per decode
forward pass (new tokens ÷ forward calls after the prefill calls), and cancellation delay
(from ``cancel()`` to the call returning) when cancelled during decoding and during the
prefill. A variant that fails records its error instead.

    python benchmarks/bench_decode.py [--part formats|loops|all] [--reps 20] [--out FILE]

With ``--part`` other than ``all`` and an existing ``--out`` file, only that part's keys
are replaced in it (``loops`` carries its own machine and date under ``loops.settings``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import emit  # noqa: E402
from hone.models.backend import Cancelled, CancelToken, GenerationRequest  # noqa: E402
from hone.models.transformers_backend import TransformersBackend  # noqa: E402

FORMATS = ("bfloat16", "float32", "int8")


# -- part 1: weight formats ------------------------------------------------------------


def measure(backend: TransformersBackend, reps: int) -> dict[str, float]:
    import torch
    from transformers import DynamicCache

    assert backend.decoder is not None
    model, kw = backend.decoder.model, backend.decoder.cache_kw
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 20000, (1, 768), generator=gen)
    out: dict[str, list[float]] = {"prefill_768_ms": [], "decode_step_ms": [], "verify_9_ms": []}
    with torch.inference_mode():
        for _ in range(3):
            cache = DynamicCache(config=model.config)
            t = time.perf_counter()
            for s in range(0, 768, 256):
                model(input_ids=ids[:, s : s + 256], **{kw: cache}, logits_to_keep=1)
            out["prefill_768_ms"].append((time.perf_counter() - t) * 1000)
            cache.crop(-168)  # 600 tokens of context
            for i in range(reps):
                t = time.perf_counter()
                model(input_ids=torch.tensor([[500 + i]]), **{kw: cache}, logits_to_keep=1)
                out["decode_step_ms"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            model(input_ids=ids[:, :9], **{kw: cache}, logits_to_keep=9)
            out["verify_9_ms"].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in out.items()}


def formats(folder: str, reps: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    devices = set()
    for dtype in FORMATS:
        backend = TransformersBackend(folder, dtype=dtype, threads=2)
        backend.load()
        devices.add(backend.describe().get("device", ""))
        results[dtype] = measure(backend, reps)
        print(dtype, results[dtype], file=sys.stderr, flush=True)
    base = results["bfloat16"]
    results["int8_vs_bf16"] = {k: round(results["int8"][k] / base[k], 2) for k in base}
    # as the backend reported them: where it ran, and the formats compared (a row each)
    results["device"] = ", ".join(sorted(d for d in devices if d)) or "not recorded"
    results["weights"] = f"{', '.join(FORMATS)} (a row each)"
    return results


# -- part 2: hone's loop against generate -------------------------------------------------

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = ("textwrap.py", "shlex.py", "fractions.py", "calendar.py")


def prompts(backend: TransformersBackend, tokens: int = 600) -> list[tuple[str, str]]:
    """(name, prompt): about ``tokens`` tokens of real code ending inside a function body."""
    out = []
    for rel in SOURCES:
        lines = (STDLIB / rel).read_text(encoding="utf-8").split("\n")
        # The first line after line 120 that starts a statement inside a function body.
        cut = next(
            i
            for i in range(120, len(lines))
            if lines[i].startswith("        ") and lines[i].strip() and lines[i - 1].strip()
        )
        head = "\n".join(lines[:cut]) + "\n" + lines[cut][: len(lines[cut]) // 2]
        ids = backend.tokens.encode(head, special=False)  # type: ignore[union-attr]
        out.append((f"{rel}:{cut + 1}", backend.tokens.decode(ids[-tokens:])))  # type: ignore[union-attr]
    return out


class ForwardCounter:
    """Counts forward calls of the top-level model (prefill chunks and decode steps)."""

    def __init__(self, model: Any) -> None:
        self.calls = 0
        self._handle = model.register_forward_pre_hook(self._count)

    def _count(self, module: Any, args: Any) -> None:
        self.calls += 1


def hone_runner(
    backend: TransformersBackend, speculate: bool, prefill_chunk: int = 256
) -> Callable[..., dict]:
    assert backend.decoder is not None
    decoder = backend.decoder

    def run(prompt: str, new: int, cancel: CancelToken | None = None, on_step=None) -> dict:
        decoder.speculate, decoder.prefill_chunk = speculate, prefill_chunk
        backend.reset_cache()
        req = GenerationRequest(prompt=prompt, max_new_tokens=new, token_healing=False)
        generation = backend.generate(req, cancel)
        text = ""
        try:
            for i, chunk in enumerate(generation):
                text += chunk
                if on_step is not None:
                    on_step(i)
        except Cancelled:
            pass
        stats = generation.stats
        prefill_calls = -(-(stats.prompt_tokens - stats.reused_tokens) // prefill_chunk)
        return {"text": text, "new_tokens": stats.generated_tokens, "prefill_calls": prefill_calls}

    return run


def generate_runner(backend: TransformersBackend, **options: Any) -> Callable[..., dict]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    assert backend.decoder is not None and backend.tokens is not None
    model, tokens = backend.decoder.model, backend.tokens

    class CancelCriteria(StoppingCriteria):
        def __init__(self, cancel: CancelToken | None, on_step) -> None:
            self.cancel, self.on_step, self.steps = cancel, on_step, 0

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            if self.on_step is not None:
                self.on_step(self.steps)
            self.steps += 1
            stop = self.cancel is not None and self.cancel.cancelled
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool)

    def run(prompt: str, new: int, cancel: CancelToken | None = None, on_step=None) -> dict:
        ids = torch.tensor([tokens.encode(prompt, special=True)])
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                do_sample=False,
                pad_token_id=min(tokens.eos),
                stopping_criteria=StoppingCriteriaList([CancelCriteria(cancel, on_step)]),
                **options,
            )
        produced = out[0, ids.shape[1] :].tolist()
        return {"text": tokens.decode(produced), "new_tokens": len(produced), "prefill_calls": 1}

    return run


def cancel_delay(run: Callable[..., dict], prompt: str, when: str) -> float:
    """ms from cancel() to the call returning: during decoding (10 ms after the 5th step
    was seen) or during the prefill (30 ms after the call started)."""
    cancel = CancelToken()
    timers: list[threading.Timer] = []

    def on_step(i: int) -> None:
        if i == 5 and not timers:
            timers.append(threading.Timer(0.01, cancel.cancel))
            timers[0].start()

    if when == "prefill":
        timers.append(threading.Timer(0.03, cancel.cancel))
        timers[0].start()
    run(prompt, 200, cancel, on_step if when == "decode" else None)
    returned = time.perf_counter()
    for t in timers:
        t.join()
    if cancel.cancelled_at is None:
        return float("nan")
    return (returned - cancel.cancelled_at) * 1000


def p50_p95(values: list[float]) -> dict[str, float]:
    values = sorted(v for v in values if v == v)
    if not values:
        return {}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"n": len(values), "p50": round(statistics.median(values), 1), "p95": round(p95, 1)}


def loops(folder: str, new: int, reps: int, dtype: str = "bfloat16") -> dict[str, Any]:
    backend = TransformersBackend(folder, dtype=dtype, threads=2)
    backend.load()
    assert backend.decoder is not None
    counter = ForwardCounter(backend.decoder.model)
    cases = prompts(backend)
    variants: dict[str, Callable[..., dict]] = {
        "hone": hone_runner(backend, speculate=True),
        "hone_no_drafts": hone_runner(backend, speculate=False),
        "hone_whole_prefill": hone_runner(backend, speculate=True, prefill_chunk=4096),
        "generate": generate_runner(backend),
        "generate_prompt_lookup": generate_runner(
            backend, prompt_lookup_num_tokens=8, max_matching_ngram_size=3
        ),
        "generate_static": generate_runner(backend, cache_implementation="static"),
    }
    results: dict[str, Any] = {}
    for name, run in list(variants.items()):
        try:
            run(cases[0][1], 4)  # warm up (and find out whether it works at all)
            cancel_delay(run, cases[0][1], "decode")  # the first cancellation, discarded
            cancel_delay(run, cases[0][1], "prefill")
        except Exception as exc:  # noqa: BLE001 - a variant that fails is a result too
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(name, results[name], file=sys.stderr, flush=True)
            del variants[name]
    # Round robin (each prompt, each variant in turn), so that the load of other processes
    # on a shared machine falls on every variant alike.
    samples: dict[str, dict[str, list]] = {name: collections.defaultdict(list) for name in variants}
    texts: dict[tuple[str, str], str] = {}
    for _ in range(reps):
        for case, prompt in cases:
            for name, run in variants.items():
                got = samples[name]
                counter.calls = 0
                t = time.perf_counter()
                out = run(prompt, new)
                got["latency"].append((time.perf_counter() - t) * 1000)
                decode_calls = counter.calls - out["prefill_calls"]
                got["per_pass"].append(out["new_tokens"] / max(1, decode_calls))
                got["produced"].append(out["new_tokens"])
                texts[name, case] = out["text"]
                got["decode"].append(cancel_delay(run, prompt, "decode"))
                got["prefill"].append(cancel_delay(run, prompt, "prefill"))
    for name, got in samples.items():
        same = sum(texts[name, c] == texts.get(("hone", c)) for c, _ in cases)
        results[name] = {
            "latency_ms": p50_p95(got["latency"]),
            "new_tokens_mean": round(statistics.mean(got["produced"]), 1),
            "tokens_per_decode_pass": round(statistics.mean(got["per_pass"]), 2),
            "same_text_as_hone": f"{same}/{len(cases)}",
            "cancel_during_decode_ms": p50_p95(got["decode"]),
            "cancel_during_prefill_ms": p50_p95(got["prefill"]),
        }
        print(name, results[name], file=sys.stderr, flush=True)
    return {
        "settings": {
            "weights": dtype,
            "threads": 2,
            "prompts": [c for c, _ in cases],
            "prompt_tokens": 600,
            "new_tokens": new,
            "reps_per_prompt": reps,
            "greedy": True,
        },
        "definitions": {
            "latency_ms": "prompt in, up to new_tokens out (EOS ends early), empty KV cache",
            "tokens_per_decode_pass": "new tokens / forward calls after the prefill calls",
            "cancel_during_decode_ms": "cancel() 10 ms after the 5th step, to the call returning",
            "cancel_during_prefill_ms": "cancel() 30 ms after the call started, to it returning",
            "same_text_as_hone": (
                "prompts whose output equals the hone variant's (with int8 weights dynamic"
                " quantization scales activations per forward call: prefill chunks and draft"
                " verification change the numerics)"
            ),
        },
        "variants": results,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("formats", "loops", "all"), default="all")
    ap.add_argument("--reps", type=int, default=20, help="decode steps per format")
    ap.add_argument("--loop-reps", type=int, default=2, help="runs per prompt and loop")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--loop-dtype", default="bfloat16", help="weights for the loops part")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from hone.models.embedded import embedded_model_dir

    folder = str(embedded_model_dir())
    machine = f"{platform.machine()}, {os.cpu_count()} cores, no GPU"
    results: dict[str, Any] = {}
    if args.part != "all" and args.out and args.out.exists():
        results = json.loads(args.out.read_text())
    if args.part in ("formats", "all"):
        results.update(
            {
                "machine": machine,
                "date": time.strftime("%Y-%m-%d"),
                "model": "SmolLM2-135M-Instruct (embedded)",
            }
        )
        results.update(formats(folder, args.reps))
    if args.part in ("loops", "all"):
        before = [round(x, 2) for x in os.getloadavg()]
        results["loops"] = loops(folder, args.new_tokens, args.loop_reps, args.loop_dtype)
        results["loops"]["settings"].update(
            machine=machine,
            date=time.strftime("%Y-%m-%d"),
            # 1-, 5- and 15-minute load averages: other processes share the cores
            load_average_before=before,
            load_average_after=[round(x, 2) for x in os.getloadavg()],
        )
    emit(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
