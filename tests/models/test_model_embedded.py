"""The real embedded model (SmolLM2-135M; bf16 weights on CPU) through TransformersBackend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hone.models import embedded as embedded_mod
from hone.models.backend import (
    Cancelled,
    CancelToken,
    Generation,
    GenerationRequest,
    ModelBackend,
    ModelError,
)
from hone.models.transformers_backend import TransformersBackend

pytestmark = pytest.mark.model

# A real snippet in the style of the standard library (textwrap / json).
SNIPPET = textwrap.dedent(
    '''\
    import json
    import os


    def load_settings(path):
        """Read a JSON settings file, returning {} when it does not exist."""
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)


    def save_settings(path, settings):
        """Write settings to path as indented JSON."""
    '''
)


def request(prompt: str, **kw: object) -> GenerationRequest:
    kw.setdefault("max_new_tokens", 24)
    return GenerationRequest(prompt=prompt, **kw)  # type: ignore[arg-type]


def fresh(backend: TransformersBackend, req: GenerationRequest) -> str:
    return fresh_run(backend, req).samples[0].text


def fresh_run(backend: TransformersBackend, req: GenerationRequest) -> Generation:
    """Generate from an empty KV cache; the generation (its text and stats) is spent."""
    backend.reset_cache()
    generation = backend.generate(req)
    generation.texts()
    return generation


def test_conversion_is_cached_and_reused(embedded: TransformersBackend):
    folder = Path(embedded.path)
    assert embedded_mod.is_converted()
    assert (folder / "model.safetensors").stat().st_size > 200e6  # bf16, ~257 MB
    info = embedded_mod.conversion_info(folder)
    weights = folder / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    again = embedded_mod.embedded_model_dir()
    assert again == folder
    # no reconversion: the same conversion record, the weights file untouched
    assert embedded_mod.conversion_info(folder) == info
    assert weights.stat().st_mtime_ns == mtime
    second = TransformersBackend(str(folder), threads=2)
    second.load()  # (its time: bench_latency's first_request_incl_load_s)
    assert second.count_tokens("def f():\n    return 1") == 7


def test_two_processes_converting_at_once_share_one_conversion(tmp_path: Path):
    """Fresh cache, a stale half-written folder, two racing processes: one conversion."""
    stale = tmp_path / embedded_mod.SUBDIR
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{half written")
    code = (
        "import json, time; from hone.models import embedded as e; t = time.perf_counter(); "
        "p = e.embedded_model_dir(); "
        "print(json.dumps([str(p), time.perf_counter() - t, e.conversion_info(p)]))"
    )
    env = {**os.environ, "HONE_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    (path_a, _, info_a), (path_b, _, info_b) = results
    assert path_a == path_b == str(stale)
    assert info_a == info_b  # the second process found the first one's folder
    assert json.loads((stale / "config.json").read_text())["model_type"] == "llama"
    assert sorted(p.name for p in tmp_path.joinpath("models").iterdir() if "tmp" in p.name) == []
    print(f"\nconversion: {info_a['convert_s']} s; waits: {[round(r[1], 1) for r in results]}")


def test_describe_and_template(embedded: TransformersBackend):
    assert isinstance(embedded, ModelBackend)
    facts = embedded.describe()
    assert facts["dtype"] == "bfloat16"  # the CPU default (eval-weights.json: int8 loses quality)
    assert facts["device"] == "cpu"
    assert facts["parameters"] == "134.5M"
    assert {"torch", "transformers", "path"} <= set(facts)
    assert embedded.detect_template().family == "smollm"


def test_count_tokens(embedded: TransformersBackend):
    assert embedded.count_tokens("def f():\n    return 1") == 7
    one = embedded.count_tokens(SNIPPET)
    assert embedded.count_tokens(SNIPPET * 20) >= 20 * one - 20  # no cap, no truncation


def test_greedy_completion_of_real_code(embedded: TransformersBackend):
    generation = fresh_run(embedded, request(SNIPPET + "    with open(path, ", max_new_tokens=32))
    out, stats = generation.samples[0].text, generation.stats
    print(f"\n{out!r}\n{stats}")
    assert '"w"' in out or "'w'" in out
    assert stats.generated_tokens > 0
    assert stats.prompt_tokens > 50


def test_kv_reuse_after_typing_one_character(embedded: TransformersBackend):
    prompt = SNIPPET + "    with open(path, "
    first = fresh_run(embedded, request(prompt)).stats
    generation = embedded.generate(request(prompt + '"'))
    out = "".join(generation)
    second = generation.stats
    print(f"\nfirst: {first}\nafter one character: {second}")
    assert second.reused_tokens >= 0.9 * second.prompt_tokens
    assert second.prefill_s < first.prefill_s
    assert out


def test_kv_reuse_gives_the_same_output_as_a_fresh_run(embedded_fp32: TransformersBackend):
    """Cropping correctness, in fp32 where cached and fresh runs agree bit for bit
    (in bf16 a different prefill chunking can flip a near-tie)."""
    backend = embedded_fp32
    base = SNIPPET + "    with open(path, "
    # Append, replace the last character, delete back into the previous line, reuse.
    for prompt in (base + '"', base + "'", SNIPPET + "    with op", SNIPPET + "    with open"):
        fresh(backend, request(base, max_new_tokens=12))  # cache: base and its continuation
        generation = backend.generate(request(prompt, max_new_tokens=12))
        cached = "".join(generation)
        stats = generation.stats
        assert stats.reused_tokens > 0.8 * stats.prompt_tokens, stats
        again = fresh_run(backend, request(prompt, max_new_tokens=12))
        assert cached == again.samples[0].text, prompt
        assert again.stats.reused_tokens == 0


def test_token_healing_after_indentation(embedded: TransformersBackend):
    prompt = SNIPPET + "\n\ndef f():\n    "
    healed = fresh(embedded, request(prompt))
    unhealed = fresh(embedded, request(prompt, token_healing=False))
    print(f"\nhealed: {healed!r}\nunhealed: {unhealed!r}")
    assert healed.strip()
    assert not healed.startswith((" ", "\n", "#"))  # code, at the indentation typed
    assert not healed.lstrip().startswith("#")


def test_token_healing_mid_word_never_repeats_the_prompt_end(embedded: TransformersBackend):
    prompt = SNIPPET + '    with open(path, "w", encoding="utf-8") as f:\n        json.du'
    out = fresh(embedded, request(prompt, max_new_tokens=12))
    print(f"\n{out!r}")
    assert out.startswith("mp(")
    assert not out.startswith("du")


def test_cancellation_stops_within_one_decode_step(embedded: TransformersBackend):
    cancel = CancelToken()
    chunks: list[str] = []
    embedded.reset_cache()
    with pytest.raises(Cancelled) as raised:
        for chunk in embedded.generate(request(SNIPPET, max_new_tokens=200), cancel):
            chunks.append(chunk)
            if len(chunks) == 3:
                threading.Timer(0.01, cancel.cancel).start()
    stats = raised.value.stats
    latency = stats.cancel_noticed_at - cancel.cancelled_at
    per_token = stats.decode_s / max(1, stats.generated_tokens)
    print(f"\ncancel noticed after {latency * 1000:.1f} ms; decode {per_token * 1000:.1f} ms/token")
    assert stats.stop_reason == "cancelled"
    assert stats.generated_tokens < 20  # stopped, not run to its 200-token cap
    assert latency >= 0  # noticed after it was asked (the delay: bench_latency)


def test_cancelled_before_start_raises_at_once(embedded: TransformersBackend):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(iter(embedded.generate(request(SNIPPET), cancel)))


def test_stop_sequences_split_across_tokens(embedded: TransformersBackend):
    prompt = SNIPPET + "    with open(path, "
    free = fresh(embedded, request(prompt, max_new_tokens=32))
    # A stop string that starts in the middle of the output and spans several tokens.
    start = len(free) // 3
    stop = free[start : start + 5]
    assert len(stop) == 5
    generation = fresh_run(embedded, request(prompt, max_new_tokens=32, stop=[stop]))
    assert generation.samples[0].text == free[: free.index(stop)]
    assert generation.stats.stop_reason == "stop"


def test_should_stop_ends_early(embedded: TransformersBackend):
    seen: list[str] = []

    def one_line(text: str) -> bool:
        seen.append(text)
        return "\n" in text

    prompt = SNIPPET + "    with open(path, "
    generation = fresh_run(embedded, request(prompt, should_stop=one_line))
    out = generation.samples[0].text
    assert generation.stats.stop_reason == "early"
    assert out == seen[-1]
    assert out.count("\n") == 1


def test_sampling_with_temperature(embedded: TransformersBackend):
    generation = fresh_run(embedded, request(SNIPPET + "    with open(path, ", temperature=0.8))
    assert generation.stats.generated_tokens > 0
    assert isinstance(generation.samples[0].text, str)


def test_generation_from_a_worker_thread(embedded: TransformersBackend):
    """The server generates in worker threads: same output, one generation at a time."""
    prompt = SNIPPET + "    with open(path, "
    expected = fresh(embedded, request(prompt, max_new_tokens=8))
    results: list[str] = []

    def work() -> None:
        embedded.reset_cache()
        results.append("".join(embedded.generate(request(prompt, max_new_tokens=8))))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected, expected]


def test_healing_candidates_from_the_real_vocabulary(embedded: TransformersBackend):
    vocab = embedded.healer
    allowed = {vocab.text[i] for i in vocab.allowed("\n    ")}
    assert {"\n", "\n ", "\n   ", "\n    "} <= allowed
    assert all(t.startswith("\n    ") or "\n    ".startswith(t) for t in allowed)
    # typed indentation is not deepened by the healed token
    assert not any(t.startswith("\n     ") for t in allowed), sorted(allowed)
    assert not any(t.startswith("\n    \t") for t in allowed)
    assert "" not in allowed and "<|endoftext|>" not in allowed
    ids = embedded.tokens.encode("def f():\n    ", special=True)
    kept, removed, n = vocab.heal(ids)
    # The last token is whitespace only, so the one before it is taken back too.
    assert (removed, n) == ("():\n    ", 2)
    assert kept == ids[:-2]
    assert vocab.heal(embedded.tokens.encode("x = foo.bar", special=True))[1:] == ("bar", 1)


def test_a_failing_forward_is_a_model_error_and_resets_the_cache(
    embedded_fp32: TransformersBackend, monkeypatch: pytest.MonkeyPatch
):
    backend = embedded_fp32
    fresh(backend, request(SNIPPET, max_new_tokens=2))
    real = backend.decoder.model

    class Broken:
        config = real.config

        def __call__(self, **kwargs: object) -> None:
            raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(backend.decoder, "model", Broken())
    with pytest.raises(ModelError, match="forward pass failed: out of memory"):
        list(backend.generate(request(SNIPPET + "x")))
    session = backend.session(None)
    assert session is not None and session.cache is None and session.ids == []
    monkeypatch.setattr(backend.decoder, "model", real)
    assert "".join(backend.generate(request(SNIPPET, max_new_tokens=4)))


def test_zero_new_tokens_only_prefills(embedded: TransformersBackend):
    warm = fresh_run(embedded, request(SNIPPET, max_new_tokens=0))
    assert warm.texts() == [""]
    assert warm.stats.generated_tokens == 0
    generation = embedded.generate(request(SNIPPET + "    ", max_new_tokens=2))
    "".join(generation)
    assert generation.stats.reused_tokens > 0.9 * generation.stats.prompt_tokens


def test_cancel_mid_prefill_stops_inside_the_chunk_and_keeps_the_cache_consistent(
    embedded_fp32: TransformersBackend,
):
    """The per-layer hook stops a long prefill inside a chunk; the half-updated layers are
    rolled back so the next request on the same prompt matches a fresh run."""
    backend = embedded_fp32
    long_prompt = (SNIPPET + "\n") * 6 + "    with open(path, "
    backend.reset_cache()
    cancel = CancelToken()
    chunk = backend.decoder.prefill_chunk

    def cancel_in_the_second_chunk() -> None:
        """Cancel once the first prefill chunk is in the cache (whatever the machine's speed)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            session = backend.session(None)
            if session is not None and len(session.ids) >= chunk:
                break
            time.sleep(0.002)
        cancel.cancel()

    watcher = threading.Thread(target=cancel_in_the_second_chunk)
    watcher.start()
    with pytest.raises(Cancelled) as raised:
        "".join(backend.generate(request(long_prompt, max_new_tokens=8), cancel))
    watcher.join()
    stats = raised.value.stats
    latency = stats.cancel_noticed_at - cancel.cancelled_at
    assert stats.generated_tokens == 0  # it was still prefilling
    assert latency >= 0  # (the delay inside a chunk: bench_decode's cancel delay, prefill)
    generation = backend.generate(request(long_prompt, max_new_tokens=8))
    resumed = "".join(generation)
    assert generation.stats.reused_tokens > 0
    assert resumed == fresh(backend, request(long_prompt, max_new_tokens=8))


def test_prompt_lookup_drafts_are_accepted_on_repetitive_code(embedded: TransformersBackend):
    lines = "".join(f"    register('name_{i}', handler_{i}, priority={i})\n" for i in range(12))
    prompt = "def setup(register):\n" + lines + "    register('name_12', "
    generation = fresh_run(embedded, request(prompt, max_new_tokens=24))
    out, stats = generation.samples[0].text, generation.stats
    print(f"\n{out!r} accepted {stats.accepted_tokens}/{stats.draft_tokens}")
    assert out.startswith("handler_12")
    assert stats.accepted_tokens >= 5  # several tokens per forward pass


# Code whose calls spread their arguments over lines: after ``get_netrc_auth(`` the model's
# first choice is a line break (a single-line suggestion would show nothing).
SPREAD_CALLS = textwrap.dedent(
    """\
    def send(self, request, stream=False):
        resp = self.adapter.send(
            request,
            stream=stream,
            timeout=self.timeout,
        )
        history = build_history(
            resp,
            request,
        )
        auth = get_netrc_auth("""
)


def test_continue_line_keeps_the_arguments_on_the_cursors_line(embedded: TransformersBackend):
    free = fresh(embedded, request(SPREAD_CALLS, max_new_tokens=12))
    kept = fresh(embedded, request(SPREAD_CALLS, max_new_tokens=12, continue_line=True))
    print(f"\nfree: {free!r}\ncontinue_line: {kept!r}")
    assert free.startswith("\n")  # what the constraint is for
    first = kept.split("\n")[0]
    assert first.strip() and not first[0].isspace(), kept
    # without token healing too (the first token is then constrained directly)
    raw = fresh(
        embedded,
        request(SPREAD_CALLS, max_new_tokens=12, continue_line=True, token_healing=False),
    )
    assert raw.split("\n")[0].strip(), raw


def test_continue_line_holds_the_line_after_an_opening_parenthesis(embedded: TransformersBackend):
    """Typing the name: the model writes ``auth(`` and would break the line there (a
    single-line suggestion showing half a call); held, the arguments follow on the line."""
    prompt = SPREAD_CALLS[: SPREAD_CALLS.rindex("get_netrc_auth(")] + "get_"
    free = fresh(embedded, request(prompt, max_new_tokens=12))
    kept = fresh(embedded, request(prompt, max_new_tokens=12, continue_line=True))
    print(f"\nfree: {free!r}\ncontinue_line: {kept!r}")
    assert free.split("\n")[0].endswith("(")  # what the constraint is for
    first = kept.split("\n")[0]
    assert "(" in first and first.rstrip()[-1] != "(", kept
