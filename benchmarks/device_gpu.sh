#!/usr/bin/env bash
# Issue 8's GPU timings in one call on the lent GPU machine: hone's decode with dynamic KV
# caches against static caches with CUDA-graph steps (bench_gpu.py: decode step, a 64-token
# suggestion after a ~700-token prompt, the one-character-edit ratio), then the real
# `hone serve` over stdio on the GPU (bench_latency.py), both on random bf16 weights of the
# embedded model's shapes (the same kernels, so the same speed; the text means nothing).
# `make device-stage` puts what travels in .hone-cache/gpu (cp312 wheels of what the device
# lacks, the model's config and tokenizer; about 10 MB); then, from the device tool:
#   run(command="bash benchmarks/device_gpu.sh", carry=[".hone-cache/gpu"], timeout_s=540)
# Results: $OUT/gpu.json and $OUT/latency-gpu.json (copy them to benchmarks/results/).
# Random weights write runaway text that hone's loop detection cuts short, so through
# `hone serve` suggestions are shorter than a real model's: the 64-token figure is
# bench_gpu.py's (it always decodes 64). For the real model through `hone serve`, carry
# the GGUF in two parts over two calls (FIELD-NOTES) and pass it to bench_latency.py.
# `--cpu` checks the script itself here (no timings): CPU=1 bash benchmarks/device_gpu.sh
set -euo pipefail
G=.hone-cache/gpu
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
S=$(mktemp -d)
mkdir -p "$S/pkg/hone" "$S/site"
python3 -m pip install -q --no-deps --no-index -t "$S/site" "$G"/wheels/*.whl
for d in server agent retrieval models; do ln -sfn "$PWD/$d" "$S/pkg/hone/$d"; done
export PYTHONPATH="$S/pkg:$S/site" HONE_CACHE_DIR="$S/cache" TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
CHECK=()
[ -n "${CPU:-}" ] && CHECK=(--cpu)
python3 -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path; from bench_gpu import random_model
random_model(Path('$G/model'), Path('$S/random'))"
timeout 300 python3 benchmarks/bench_gpu.py --model "$S/random" "${CHECK[@]}" \
  --out "$OUT/gpu.json" 2> "$OUT/gpu.log" || { tail -20 "$OUT/gpu.log"; exit 1; }
QUICK=()
[ -n "${CPU:-}" ] && QUICK=(--quick)
timeout 200 python3 benchmarks/bench_latency.py --model "$S/random" "${QUICK[@]}" \
  --out "$OUT/latency-gpu.json" > /dev/null 2> "$OUT/latency.log" || tail -20 "$OUT/latency.log"
ls -la "$OUT"
