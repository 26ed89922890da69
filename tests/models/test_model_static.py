"""The static-cache decode path (what a CUDA graph captures on a GPU) gives the same tokens
as the dynamic one, in fp32 on the CPU: fresh prompts, a prompt that shares a prefix with
the session's last one (the cache cropped in place and overwritten), an unrelated prompt
(the same buffers emptied and reused), token healing, sampling with a seed, and a
cancellation midway."""

from __future__ import annotations

import pytest
from hone.models.backend import Cancelled, CancelToken, GenerationRequest, Infill
from hone.models.transformers_backend import TransformersBackend

pytestmark = pytest.mark.model

SOURCE = (
    "import math\n\n\ndef area(radius):\n"
    '    """The area of a circle."""\n    return math.pi * radius'
)


@pytest.fixture(scope="module")
def pair(embedded_fp32: TransformersBackend):
    """(dynamic, static) backends on the same fp32 weights, without drafts on either."""
    dynamic = TransformersBackend(embedded_fp32.path, dtype="float32", threads=2, speculate=False)
    static = TransformersBackend(embedded_fp32.path, dtype="float32", threads=2, static=True)
    dynamic.load()
    static.load()
    assert static.decoder.static and not static.decoder.speculate
    assert not static.decoder.compile_steps  # no GPU here: the static step runs eagerly
    assert not dynamic.decoder.static
    assert static.describe()["decode"] == "static KV cache"
    return dynamic, static


def run(backend: TransformersBackend, request: GenerationRequest) -> tuple[list[str], dict]:
    generation = backend.generate(request)
    texts = generation.texts()
    stats = generation.samples[0].stats
    return texts, {"prompt": stats.prompt_tokens, "reused": stats.reused_tokens}


def test_the_same_tokens_as_the_dynamic_path(pair):
    dynamic, static = pair
    requests = [
        # a fresh prompt, then one more character typed (the cache is cropped and
        # overwritten), then an unrelated prompt in the same session (emptied in place)
        GenerationRequest(prompt=SOURCE, max_new_tokens=24, session="a"),
        GenerationRequest(prompt=SOURCE + " *", max_new_tokens=24, session="a"),
        GenerationRequest(
            infill=Infill(prefix="def add(a, b):\n    ", path="m.py"),
            max_new_tokens=16,
            session="a",
        ),
        # chat (no healing), and sampling with a seed
        GenerationRequest(
            messages=[{"role": "user", "content": "Name a prime number."}],
            max_new_tokens=12,
            session="b",
        ),
        GenerationRequest(prompt=SOURCE, max_new_tokens=12, temperature=0.8, seed=7, n=2),
    ]
    for request in requests:
        want, want_stats = run(dynamic, request)
        got, got_stats = run(static, request)
        assert got == want, (request, got, want)
        assert got_stats == want_stats
    # a request that shares the session's prefix reuses it (cropped in place)
    run(static, GenerationRequest(prompt=SOURCE, max_new_tokens=4, session="d"))
    _, reuse = run(static, GenerationRequest(prompt=SOURCE + " *", max_new_tokens=4, session="d"))
    assert reuse["reused"] > 0


def test_a_cancelled_static_generation_leaves_a_usable_cache(pair):
    dynamic, static = pair
    cancel = CancelToken()
    generation = static.generate(
        GenerationRequest(prompt=SOURCE, max_new_tokens=64, session="c"), cancel
    )
    next(generation)
    cancel.cancel()
    with pytest.raises(Cancelled):
        for _ in generation:
            pass
    request = GenerationRequest(prompt=SOURCE + "\n", max_new_tokens=16, session="c")
    assert run(static, request)[0] == run(dynamic, request)[0]
