"""Completions flowing editor -> hone -> HTTP -> llama.cpp: the OpenAI backend against a
real OpenAI-compatible server (llama-cpp-python's, serving the embedded model's GGUF file),
directly, through a real `hone serve`, and through headless Neovim.

`make setup` installs llama-cpp-python (a wheel built once outside the repository); under
`make test` (HONE_REQUIRE_LLAMA_CPP=1) a missing one fails instead of skipping."""

from __future__ import annotations

import json
import os
import sysconfig
import threading
from pathlib import Path

import httpx
import pytest
from hone.models.backend import Cancelled, CancelToken, GenerationRequest, estimate_tokens
from hone.models.openai_backend import OpenAIBackend

from tests.conftest import end_position, inline, open_doc, stats
from tests.e2e.llama_server import available, llama_server
from tests.e2e.test_neovim import assert_real_ghost_accepted, run_nvim

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

if not available():
    if os.environ.get("HONE_REQUIRE_LLAMA_CPP"):
        raise RuntimeError("llama-cpp-python is not installed: run `make setup`")
    pytest.skip("llama-cpp-python is not installed (make setup)", allow_module_level=True)

# the cursor mid-line, where any model goes on with the line (at a blank line the
# embedded model may rightly end the function: an empty suggestion)
SOURCE = (
    "import os\n\n\ndef python_files(folder):\n"
    "    return [name for name in os.listdir(folder) if name."
)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llama_server(log=log) as url:
        yield url


@pytest.fixture
def backend(llama: str):
    b = OpenAIBackend(llama)
    b.load()
    yield b
    b.close()


def test_completions_and_chats_come_back_streamed(backend: OpenAIBackend):
    assert backend.model and backend.model.endswith(".gguf")  # llama.cpp names it by its file
    assert not backend.remote
    generation = backend.generate(
        GenerationRequest(prompt=SOURCE, max_new_tokens=24, stop=["\ndef "])
    )
    chunks = list(generation)
    assert "".join(chunks).strip() and len(chunks) > 1
    assert 0 < generation.stats.generated_tokens <= 24
    reply = backend.generate(
        GenerationRequest(
            messages=[{"role": "user", "content": "Say hello in one word."}], max_new_tokens=8
        )
    ).texts()
    assert len(reply) == 1 and reply[0].strip()
    # several samples: llama.cpp answers one choice a request, the backend asks again
    samples = backend.generate(
        GenerationRequest(prompt=SOURCE, max_new_tokens=8, n=2, temperature=0.8, seed=1)
    ).texts()
    assert len(samples) == 2


def test_token_counts_come_from_llama_cpps_tokenizer(backend: OpenAIBackend):
    root = backend.url.removesuffix("/v1")
    code = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")
    for start in (0, 4000, 8000, 12000):
        chunk = code[start : start + 2000]
        counted = backend.count_tokens(chunk)  # learnt at load from the tokenize route
        assert counted is not None, "no token count from llama.cpp's server"
        exact = len(httpx.post(root + "/extras/tokenize", json={"input": chunk}).json()["tokens"])
        assert exact <= counted <= 1.8 * exact, (start, exact, counted)
        assert counted < 0.8 * estimate_tokens(chunk)  # the generic estimate: far more


def test_a_cancelled_stream_is_closed_and_the_server_goes_on_serving(backend: OpenAIBackend):
    cancel = CancelToken()
    generation = backend.generate(GenerationRequest(prompt=SOURCE, max_new_tokens=400), cancel)
    first = next(generation)
    assert first
    threading.Timer(0.0, cancel.cancel).start()
    with pytest.raises(Cancelled):
        for _ in generation:
            pass
    again = backend.generate(GenerationRequest(prompt=SOURCE, max_new_tokens=8)).texts()
    assert again[0].strip()


@pytest.mark.asyncio(loop_scope="function")
async def test_hone_serve_answers_from_llama_cpp(session, llama: str):
    async with session(f"openai:{llama}", {"debounceMs": 0, "maxNewTokens": 24}) as client:
        open_doc(client, "file:///w/fib.py", SOURCE)
        items = await inline(client, "file:///w/fib.py", end_position(SOURCE))
        info = await stats(client)
        assert items and items[0].strip(), json.dumps(info["recent"][-1])
        assert info["backend"]["server"] == llama
        assert info["recent"][-1]["outcome"] not in ("timeout",) and not str(
            info["recent"][-1]["outcome"]
        ).startswith("model-error")


@pytest.mark.editor
def test_neovim_shows_ghost_text_from_llama_cpp(nvim: str, tmp_path: Path, llama: str):
    source = SOURCE + "\n"
    run = run_nvim(
        nvim,
        tmp_path,
        source=source,
        line=5,
        server_args=["--model", f"openai:{llama}"],
        init_options={"maxNewTokens": 32},
        attach_timeout_ms=30_000,
        ghost_timeout_ms=60_000,
        max_retriggers=8,
    )
    assert_real_ghost_accepted(run, 5)
