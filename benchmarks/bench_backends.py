"""The embedded model through the transformers backend and through llama.cpp's server,
side by side in one run on this machine.

- transformers: the embedded SmolLM2-135M-Instruct in hone's own decode loop, bf16 (the
  default) and int8;
- llama.cpp: llama-cpp-python's OpenAI-compatible server on the package's own GGUF file
  (Q4_1, llama.cpp's format), ``--n_threads`` as many as the cores, reached through the
  OpenAI backend (``openai:http://127.0.0.1:PORT/v1``).

Measured for each, one after the other on the same machine:

- latency through the real ``hone serve`` (bench_latency.py's harness, ``--cases`` per
  kind): single- and multi-line round trips, the one-character-edit ratio (the request
  after typing the original code's next character, over the first request's model time);
- quality on the held-out sites of eval_completion.py (the engine path, the same sites,
  the same prompt window: the llama.cpp side counts tokens with the same tokenizer), exact
  match and edit similarity with 95% bootstrap intervals, and the paired difference
  against the default (bf16) per site kind.

    python benchmarks/bench_backends.py [--cases 8] [--multi 60] [--single 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_latency  # noqa: E402
import eval_completion as ec  # noqa: E402
from hone.agent.completion.engine import CompletionEngine  # noqa: E402

from tests.e2e.llama_server import llama_server  # noqa: E402


def latency(model: str, cases: int) -> dict:
    """bench_latency's run through `hone serve --model MODEL` (no bursts: one each)."""
    args = argparse.Namespace(model=model, cases=cases, bursts=1, debounce_ms=60, quick=False)
    res = asyncio.run(bench_latency.run(args))
    full = bench_latency.summarise(res, args)
    keep = ("backend", "single_line_ms", "multi_line_ms", "one_char_edit_ratio",
            "first_request_incl_load_s", "decode_step_ms", "not_answered")  # fmt: skip
    return {k: full.get(k) for k in keep}


class _Counted:
    """A backend whose token counts come from another one's tokenizer (the same model's):
    the engine then budgets the same prompt window on both sides."""

    def __init__(self, backend, counter) -> None:
        self._backend = backend
        self._counter = counter

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def count_tokens(self, text: str) -> int | None:
        return self._counter.count_tokens(text)

    def reset_cache(self) -> None:
        pass


def quality(backend, sites: list[ec.Site]) -> list[dict]:
    engine = CompletionEngine(backend)
    return ec.evaluate(engine, sites, ["engine"], log=_log)


def _log(i: int, row: dict) -> None:
    es = row["engine"]["es"]
    print(f"  [{i + 1}] {row['kind']:6} {row['site']}: es={es:.2f}", file=sys.stderr)


def paired(a: list[dict], b: list[dict], metric: str) -> dict:
    """b - a per site (the same sites in the same order), mean and 95% bootstrap CI."""
    diffs = [rb["engine"][metric] - ra["engine"][metric] for ra, rb in zip(a, b, strict=True)]
    rng = random.Random(ec.SEED)
    return {"mean": round(sum(diffs) / len(diffs), 3), "ci95": ec.bootstrap(diffs, rng)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=8, help="latency cases per kind")
    ap.add_argument("--multi", type=int, default=60, help="held-out multi-line sites")
    ap.add_argument("--single", type=int, default=20, help="held-out single-line sites")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--sources", type=Path, default=ec.SOURCES)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from hone.models.openai_backend import OpenAIBackend
    from hone.models.registry import embedded_backend

    t0 = time.perf_counter()
    out: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": bench_latency.machine(),
        "model": "SmolLM2-135M-Instruct (embedded; llama.cpp: the package's GGUF)",
        "device": "cpu",
        "weights": "bf16 and int8 (transformers), Q4_1 (llama.cpp)",
        "systems": {
            "transformers-bf16": "hone's decode loop, bf16 weights (the default)",
            "transformers-int8": "hone's decode loop, int8 dynamic quantization (Linear layers)",
            "llama.cpp": f"llama-cpp-python 0.3.36 server, the GGUF's Q4_1 weights, "
            f"{args.threads} threads, through the OpenAI backend",
        },
        "install": {
            "transformers": "wheels (torch CPU build, transformers): nothing to compile",
            "llama.cpp": "llama-cpp-python has no wheel for this platform: its sdist compiles "
            "(cmake, a C++ compiler) in 3-5 minutes on two cores, once; then a cached wheel",
        },
    }
    with llama_server(threads=args.threads) as url:
        spec = f"openai:{url}"
        if not args.skip_latency:
            out["latency"] = {}
            for name, model in (
                ("transformers-bf16", "embedded"),
                ("transformers-int8", "embedded:int8"),
                ("llama.cpp", spec),
            ):
                print(f"latency: {name}", file=sys.stderr)
                out["latency"][name] = latency(model, args.cases)
        if not args.skip_quality:
            reference = embedded_backend(dtype="bf16")
            reference.load()
            sites = ec.build_sites(
                "heldout", args.multi, args.single, args.sources, reference.count_tokens
            )
            rows: dict[str, list[dict]] = {}
            print("quality: transformers-bf16", file=sys.stderr)
            rows["transformers-bf16"] = quality(reference, sites)
            int8 = embedded_backend(dtype="int8")
            int8.load()
            print("quality: transformers-int8", file=sys.stderr)
            rows["transformers-int8"] = quality(int8, sites)
            remote = OpenAIBackend(url)
            remote.load()
            print("quality: llama.cpp", file=sys.stderr)
            rows["llama.cpp"] = quality(_Counted(remote, reference), sites)
            remote.close()
            out["quality"] = {"split": "heldout", "sites": len(sites)}
            for kind in ("single", "multi"):
                block: dict = {}
                for name, r in rows.items():
                    kind_rows = [x for x in r if x["kind"] == kind]
                    block[name] = ec.summarise(kind_rows, ["engine"])["engine"]
                base = [x for x in rows["transformers-bf16"] if x["kind"] == kind]
                for name in ("transformers-int8", "llama.cpp"):
                    other = [x for x in rows[name] if x["kind"] == kind]
                    block[f"{name} - transformers-bf16"] = {
                        m: paired(base, other, m) for m in ("es", "exact")
                    }
                out["quality"][kind] = block
    out["seconds"] = round(time.perf_counter() - t0, 1)
    bench_latency.emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
