"""The backend protocol on the real embedded model: chats, several samples, KV sessions per
document, and the engine's token budget with context snippets counted by the real tokenizer."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hone.agent.completion.engine import CompletionEngine, CompletionRequest
from hone.agent.completion.options import CompletionOptions
from hone.models.backend import GenerationRequest, Snippet
from hone.models.hf.kv import KVSessions
from hone.models.transformers_backend import TransformersBackend

from tests.models.test_model_embedded import SNIPPET

pytestmark = pytest.mark.model

DOC_A = SNIPPET + "    with open(path, "  # a real stdlib-style module, cut mid-call
DOC_B = textwrap.dedent(
    '''\
    class Stack:
        """A last-in, first-out collection."""

        def __init__(self):
            self.items = []

        def push(self, item):
            self.items.append(item)

        def pop(self):
            '''
)
GOLDEN = Path(__file__).parent / "golden" / "engine"


def gen(backend: TransformersBackend, prompt: str, **kw: object):
    kw.setdefault("max_new_tokens", 4)
    generation = backend.generate(GenerationRequest(prompt=prompt, **kw))  # type: ignore[arg-type]
    generation.texts()
    return generation


def alternate(backend: TransformersBackend) -> list[int]:
    """Warm two documents' sessions, then alternate one typed character in each; the
    reused share of each prompt."""
    backend.reset_cache()
    gen(backend, DOC_A, session="file:///a.py")
    gen(backend, DOC_B, session="file:///b.py")
    shares = []
    for typed in ('"', "r"):
        for key, doc in (("file:///a.py", DOC_A), ("file:///b.py", DOC_B)):
            stats = gen(backend, doc + typed, session=key).stats
            shares.append(stats.reused_tokens / stats.prompt_tokens)
        gen(backend, "# a background job\n", session="background")
    return shares


def test_alternating_two_documents_reuses_each_ones_prefix(
    embedded: TransformersBackend, monkeypatch: pytest.MonkeyPatch
):
    shares = alternate(embedded)
    print(f"\nreused share per request, sessions kept: {[round(s, 2) for s in shares]}")
    assert all(share > 0.8 for share in shares), shares
    assert {"file:///a.py", "file:///b.py", "background"} <= set(embedded.sessions.keys())
    # With a single kept cache, as before sessions, each switch evicts the other file.
    monkeypatch.setattr(embedded, "sessions", KVSessions(1))
    single = alternate(embedded)
    print(f"one cache for all: {[round(s, 2) for s in single]}")
    assert all(share < 0.2 for share in single), single


def test_least_recently_used_session_is_dropped_first():
    sessions = KVSessions(2)
    a = sessions.get("a")
    sessions.get("b")
    assert sessions.get("a") is a  # now the most recent
    sessions.get("c")
    assert sessions.keys() == ["a", "c"]
    assert sessions.peek("b") is None and sessions.get(None).key == "default"


def test_a_chat_request_gets_an_answer(embedded: TransformersBackend):
    request = GenerationRequest(
        messages=[{"role": "user", "content": "Name a programming language."}],
        max_new_tokens=24,
    )
    rendered = embedded.render(request)
    assert rendered.startswith("<|im_start|>") and rendered.endswith("<|im_start|>assistant\n")
    generation = embedded.generate(request)
    answer = "".join(generation)
    print(f"\n{answer!r} {generation.stats}")
    assert answer.strip()
    assert "<|im_start|>" not in answer
    assert generation.stats.generated_tokens > 0


def test_several_samples_with_temperature_and_a_seed(embedded: TransformersBackend):
    prompt = DOC_A
    request = GenerationRequest(
        prompt=prompt, max_new_tokens=12, temperature=0.8, n=3, seed=1234, session="samples"
    )
    embedded.reset_cache()
    generation = embedded.generate(request)
    texts = generation.texts()
    print(f"\n{texts}")
    assert len(texts) == 3 and all(texts)
    assert len(set(texts)) > 1  # sampled, not one answer three times
    # Each sample after the first reuses the prompt's KV cache.
    assert [s.stats.reused_tokens for s in generation.samples][1:] == [
        generation.samples[0].stats.prompt_tokens - 1
    ] * 2
    assert generation.stats.generated_tokens == sum(
        s.stats.generated_tokens for s in generation.samples
    )
    embedded.reset_cache()
    assert embedded.generate(request).texts() == texts  # the seed makes it reproducible
    greedy = GenerationRequest(prompt=prompt, max_new_tokens=12, temperature=0.0, n=3)
    assert len(embedded.generate(greedy).texts()) == 1  # one distinct answer


def engine_prompt(engine: CompletionEngine, request: CompletionRequest):
    return engine.prompt_for(engine.plan(request))


def test_engine_budget_with_snippets_and_the_real_tokenizer(embedded: TransformersBackend):
    """contextTokens bounds the whole rendered prompt (template tokens included), snippets
    take at most retrievalTokens, the path is relative, and the backend renders exactly
    what the engine counted."""
    options = CompletionOptions(context_tokens=256, retrieval_tokens=96)
    engine = CompletionEngine(embedded, options)
    doc = "".join(f"VALUE_{i} = {i} * 2\n" for i in range(60)) + DOC_A
    snippets = (
        Snippet("app/paths.py", "def settings_path(root):\n    return root / 'settings.json'\n"),
        Snippet("app/schema.py", "".join(f"FIELD_{i} = 'field_{i}'\n" for i in range(40))),
        Snippet("app/never.py", "NEVER = 'this one has no room left'\n"),
    )
    request = CompletionRequest(
        "file:///work/app/main.py",
        doc,
        len(doc),
        "/work/app/main.py",
        "python",
        snippets=snippets,
        root="/work",
    )
    prompt = engine_prompt(engine, request)
    assert prompt.total_tokens == embedded.count_tokens(prompt.text) <= 256
    assert 0 < prompt.snippet_tokens <= 96
    assert [s.path for s in prompt.snippets] == ["app/paths.py", "app/schema.py"]
    assert snippets[1].text.startswith(prompt.snippets[1].text)  # cut to its first lines
    assert "<file_sep>app/main.py\n" in prompt.text and "/work" not in prompt.text
    assert prompt.text == embedded.render(GenerationRequest(infill=prompt.infill))
    golden = GOLDEN / "smollm-budget-256.txt"
    if os.environ.get("HONE_UPDATE_GOLDEN"):
        golden.write_bytes(prompt.text.encode("utf-8"))
    assert prompt.text == golden.read_bytes().decode("utf-8")

    # Typing keeps the part before the cursor line, snippets included: the KV cache is reused.
    typed = CompletionRequest(
        request.key,
        doc + "'",  # not what the first suggestion starts with: the model runs again
        len(doc) + 1,
        request.path,
        "python",
        snippets=snippets,
        root="/work",
    )
    assert engine_prompt(engine, typed).text.startswith(prompt.text)
    embedded.reset_cache()
    first = engine.run(engine.plan(request))
    second = engine.run(engine.plan(typed))
    print(f"\n{first.stats}\n{second.stats}")
    assert first.stats["prompt_tokens"] <= 256 and first.stats["snippets"] == 2
    assert embedded.sessions.keys() == [request.key]  # the document's own KV session
    assert second.stats["reused_tokens"] > 0.9 * second.stats["prompt_tokens"]
