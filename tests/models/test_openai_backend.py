"""hone.models.openai_backend against a scripted OpenAI-compatible server over real HTTP
(tests/models/openai_fake.py): requests, streaming, cancellation, and every way a server
can fail. The real server (llama.cpp's) is in tests/e2e/test_openai_llama.py."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from hone.models.backend import Cancelled, CancelToken, GenerationRequest, Infill, ModelError
from hone.models.openai_backend import OpenAIBackend, parse_spec
from hone.models.registry import load_backend

from tests.models.openai_fake import FakeOpenAI, free_port

KEY = "sk-test-0123456789abcdef0123"


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


OPEN: list[OpenAIBackend] = []


@pytest.fixture(autouse=True)
def _close_backends():
    """Each test's backends closed after it (their event loop, connections)."""
    yield
    while OPEN:
        OPEN.pop().close()


def backend_for(server: FakeOpenAI | str, **kwargs) -> OpenAIBackend:
    b = OpenAIBackend(server if isinstance(server, str) else server.url, **kwargs)
    OPEN.append(b)
    if not isinstance(server, str):
        b.load()
    return b


def test_the_spec_names_the_server_and_optionally_the_model():
    assert parse_spec("openai:http://127.0.0.1:8000/v1") == ("http://127.0.0.1:8000/v1", None)
    assert parse_spec("openai:https://gpu.example:443/v1/#qwen") == (
        "https://gpu.example:443/v1",
        "qwen",
    )
    for bad in ("openai:", "openai:ftp://x/v1", "openai:localhost:8000"):
        with pytest.raises(ModelError, match="openai:http://HOST:PORT/v1"):
            parse_spec(bad)
    with pytest.raises(ModelError, match="HONE_API_KEY"):
        parse_spec("openai:http://user:secret@host/v1")
    backend = load_backend("openai:http://10.0.0.5:8000/v1#m")
    assert isinstance(backend, OpenAIBackend) and backend.model == "m"


def test_only_a_server_off_this_machine_is_remote():
    assert not OpenAIBackend("http://127.0.0.1:1/v1").remote
    assert not OpenAIBackend("http://localhost:1/v1").remote
    assert not OpenAIBackend("http://[::1]:1/v1").remote
    assert OpenAIBackend("http://10.1.2.3:1/v1").remote
    assert OpenAIBackend("https://models.example.com/v1").remote


def test_a_tunnel_is_declared_remote(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HONE_MODEL_REMOTE", "1")  # a loopback port forwarded elsewhere
    assert OpenAIBackend("http://127.0.0.1:1/v1").remote
    monkeypatch.setenv("HONE_MODEL_REMOTE", "0")  # a machine of one's own on the network
    assert not OpenAIBackend("http://10.1.2.3:1/v1").remote


def test_a_completion_streams_and_the_first_model_is_taken(fake: FakeOpenAI):
    backend = backend_for(fake)
    assert backend.model == "fake-coder"
    generation = backend.generate(
        GenerationRequest(prompt="def add(a, b):\n    ", seed=3, token_healing=False)
    )
    chunks = list(generation)
    assert "".join(chunks) == "return a + b\n" and len(chunks) > 1  # streamed
    assert generation.stats.stop_reason == "eos" and generation.stats.generated_tokens > 1
    post = fake.requests[-1]
    assert post["path"] == "/v1/completions"
    assert post["body"]["prompt"] == "def add(a, b):\n    "
    assert post["body"]["stream"] is True and post["body"]["model"] == "fake-coder"
    assert post["body"]["seed"] == 3


def test_stop_strings_end_the_stream_and_are_not_shown(fake: FakeOpenAI):
    fake.text = "x = 1\ny = 2\nz = 3\n"
    backend = backend_for(fake)
    stops = ["\ny", "a", "b", "c", "d"]
    text = "".join(backend.generate(GenerationRequest(prompt="p", stop=stops)))
    assert text == "x = 1"
    assert fake.requests[-1]["body"]["stop"] == stops[:4]  # the API takes four; all apply here


def test_an_infill_uses_the_familys_template_and_native_fim_sends_the_suffix(fake: FakeOpenAI):
    fake.model = "qwen2.5-coder-7b"
    infill = Infill(prefix="def f(x):\n    ", suffix="\n    return y\n", path="m.py")
    backend = backend_for(fake)
    "".join(backend.generate(GenerationRequest(infill=infill)))
    body = fake.requests[-1]["body"]
    assert (
        "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y\n<|fim_middle|>"
        in (body["prompt"])
    )
    assert "suffix" not in body
    assert "<|endoftext|>" in body["stop"]  # the family's stop strings go along
    native = backend_for(fake, fim="native")
    "".join(native.generate(GenerationRequest(infill=infill)))
    body = fake.requests[-1]["body"]
    assert body["suffix"] == "\n    return y\n"
    assert "<|fim_" not in body["prompt"] and body["prompt"].endswith("def f(x):\n    ")


def test_a_prompt_ending_in_indentation_gives_it_back_to_the_model(fake: FakeOpenAI):
    # the editor indented the new line; the model writes a line's indentation with its
    # first token, so the prompt ends at the line break and the text comes back without it
    fake.text = "    return a + b\n"
    backend = backend_for(fake)
    text = "".join(backend.generate(GenerationRequest(prompt="def add(a, b):\n    ")))
    assert fake.requests[-1]["body"]["prompt"] == "def add(a, b):\n"
    assert text == "return a + b\n"
    fake.text = "  x = 1\n"  # other indentation: its text, not its spaces
    assert "".join(backend.generate(GenerationRequest(prompt="def f():\n    "))) == "x = 1\n"
    # not without token healing
    "".join(backend.generate(GenerationRequest(prompt="def f():\n    ", token_healing=False)))
    assert fake.requests[-1]["body"]["prompt"] == "def f():\n    "


def test_the_spaces_after_a_lines_text_go_back_to_the_model(fake: FakeOpenAI):
    # `msg = ` ends mid-token (the model's next token is ` "...`): the prompt ends at `=`
    fake.text = ' "not permitted"\n'
    backend = backend_for(fake)
    text = "".join(backend.generate(GenerationRequest(prompt="def f():\n    msg = ")))
    assert fake.requests[-1]["body"]["prompt"] == "def f():\n    msg ="
    assert text == '"not permitted"\n'
    fake.text = "b)\n"  # a reply without the space: its text, after the user's space
    assert "".join(backend.generate(GenerationRequest(prompt="x = f(a, "))) == "b)\n"
    assert fake.requests[-1]["body"]["prompt"] == "x = f(a,"
    # a prompt of blanks alone, or ending in a line break, keeps them
    "".join(backend.generate(GenerationRequest(prompt="x = 1\n")))
    assert fake.requests[-1]["body"]["prompt"] == "x = 1\n"


def test_a_chat_with_several_samples_asks_again_for_what_a_server_did_not_return(
    fake: FakeOpenAI,
):
    backend = backend_for(fake)
    messages = [{"role": "user", "content": "fix it"}]
    texts = backend.generate(
        GenerationRequest(messages=messages, n=3, temperature=0.7, seed=1)
    ).texts()
    assert texts == [fake.text_for(0), fake.text_for(1), fake.text_for(2)]
    assert fake.requests[-1]["path"] == "/v1/chat/completions"
    assert fake.requests[-1]["body"]["n"] == 3
    fake.mode = "one-choice"  # llama.cpp's server answers one choice whatever n says
    before = len(fake.requests)
    texts = backend.generate(
        GenerationRequest(messages=messages, n=3, temperature=0.7, seed=1)
    ).texts()
    posts = [r["body"] for r in fake.requests[before:]]
    assert len(texts) == 3 and [p["n"] for p in posts] == [3, 2, 1]
    assert [p["seed"] for p in posts] == [1, 2, 3]  # each request its own seed


def test_the_api_key_is_sent_and_never_logged_or_described(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HONE_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    backend = backend_for(fake)
    "".join(backend.generate(GenerationRequest(prompt="p")))
    assert all(r["headers"].get("Authorization") == f"Bearer {KEY}" for r in fake.requests)
    fake.mode = "status"
    with pytest.raises(ModelError) as failed:
        "".join(backend.generate(GenerationRequest(prompt="p")))
    shown = caplog.text + str(failed.value) + repr(backend) + str(backend.describe())
    assert KEY not in shown
    assert backend.describe()["api_key"] == "set (HONE_API_KEY)"


def test_cancelling_closes_the_stream_so_the_server_stops(fake: FakeOpenAI):
    fake.mode = "hang"
    backend = backend_for(fake)
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    with pytest.raises(Cancelled):
        "".join(backend.generate(GenerationRequest(prompt="p"), cancel))
    deadline = time.monotonic() + 5
    while fake.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.closed == 1  # the server saw the client go away


def test_closing_a_generation_early_closes_its_stream(fake: FakeOpenAI):
    fake.text = "x" * 600
    fake.mode = "slow"
    fake.delay_s = 0.02
    backend = backend_for(fake)
    generation = backend.generate(GenerationRequest(prompt="p", max_new_tokens=500))
    next(generation)
    generation.close()
    deadline = time.monotonic() + 5
    while fake.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.closed == 1 and fake.served == 0


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("status", "answered 503: the model is overloaded"),
        ("garbage", "not an OpenAI stream"),
        ("bad-event", "not JSON"),
        ("drop", "broke the stream off"),
    ],
)
def test_a_failing_server_gives_a_clear_error_and_the_next_request_works(
    fake: FakeOpenAI, mode: str, message: str
):
    backend = backend_for(fake)
    fake.mode = mode
    with pytest.raises(ModelError, match=message):
        "".join(backend.generate(GenerationRequest(prompt="p")))
    fake.mode = "ok"
    assert "".join(backend.generate(GenerationRequest(prompt="p"))) == fake.text


def test_a_silent_server_times_out(fake: FakeOpenAI):
    fake.mode = "slow"
    fake.delay_s = 1.0
    backend = backend_for(fake, read_timeout_s=0.3)
    with pytest.raises(ModelError, match="sent nothing for 0.3 s"):
        "".join(backend.generate(GenerationRequest(prompt="p")))


def test_a_server_that_is_down_is_retried_then_reported_and_found_once_it_is_up(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    port = free_port()
    backend = backend_for(f"http://127.0.0.1:{port}/v1", retries=2)
    backend.load()  # not an error: the server may come up later
    assert "requests will try again" in caplog.text
    started = time.monotonic()
    with pytest.raises(ModelError, match="cannot be reached"):
        "".join(backend.generate(GenerationRequest(prompt="p")))
    assert time.monotonic() - started >= 0.25 + 0.5  # two retries, with backoff
    with FakeOpenAI() as server:  # the server comes up (on another port: a new backend)
        up = backend_for(server.url)
        assert "".join(up.generate(GenerationRequest(prompt="p"))) == server.text
        assert up.model == "fake-coder"  # resolved by the first request


def test_a_model_the_server_does_not_serve_is_refused(fake: FakeOpenAI):
    with pytest.raises(ModelError, match="does not serve 'other'; it serves fake-coder"):
        backend_for(fake.url, model="other").load()


def test_requests_run_side_by_side(fake: FakeOpenAI):
    fake.mode = "slow"
    fake.delay_s = 0.1
    fake.text = "abcdefghijkl"  # four events: ~0.4 s a request
    backend = backend_for(fake)
    results: list[str] = []

    def one() -> None:
        results.append("".join(backend.generate(GenerationRequest(prompt="p"))))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [fake.text] * 4
    assert fake.most_active > 1  # not one after another


def test_token_counts_are_learnt_from_the_servers_usage_reports(fake: FakeOpenAI):
    fake.bytes_per_token = 4
    backend = backend_for(fake)
    assert backend.count_tokens("x" * 400) is None  # nothing learnt yet: the engine estimates
    assert backend.describe()["tokens"].startswith("estimated")
    prompt = "def add(a, b):\n    " * 20  # 380 bytes: 95 tokens at four bytes a token
    generation = backend.generate(GenerationRequest(prompt=prompt, token_healing=False))
    assert "".join(generation) == "return a + b\n"
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    # the report's exact counts, not one token per event
    assert generation.stats.prompt_tokens == 95
    assert generation.stats.generated_tokens == 5  # five events of three characters
    assert backend.count_tokens("x" * 400) == 125  # 100 tokens, counted 25% high
    # a chat's template adds tokens its text does not show: not learnt from
    fake.bytes_per_token = 1
    chat = GenerationRequest(messages=[{"role": "user", "content": prompt}])
    assert "".join(backend.generate(chat))
    assert backend.count_tokens("x" * 400) == 125
    # another served model: its tokenizer is not known
    backend.model = "another"
    assert backend.count_tokens("x" * 400) is None


def test_a_short_prompt_teaches_nothing(fake: FakeOpenAI):
    fake.bytes_per_token = 4
    backend = backend_for(fake)
    "".join(backend.generate(GenerationRequest(prompt="def f():\n", token_healing=False)))
    assert backend.count_tokens("x" * 400) is None


def test_a_server_that_refuses_stream_options_is_asked_without_them(fake: FakeOpenAI):
    fake.mode = "strict"
    backend = backend_for(fake)
    text = "".join(backend.generate(GenerationRequest(prompt="p", token_healing=False)))
    assert text == "return a + b\n"
    assert "stream_options" in fake.requests[-2]["body"]  # refused with a 400
    assert "stream_options" not in fake.requests[-1]["body"]
    before = len(fake.requests)
    assert "".join(backend.generate(GenerationRequest(prompt="p", token_healing=False)))
    assert len(fake.requests) == before + 1  # not asked again
    assert backend.count_tokens("x" * 400) is None


@pytest.mark.parametrize("route", ["/tokenize", "/extras/tokenize/count"])
def test_the_servers_tokenize_route_gives_the_counts_before_any_request(
    fake: FakeOpenAI, route: str
):
    fake.bytes_per_token = 3
    fake.tokenize_route = route
    backend = backend_for(fake)  # load(): the model, then a sample of code tokenized
    probe = fake.requests[-1]
    assert probe["path"] == route and "def " in (probe["body"].get("prompt") or "") + (
        probe["body"].get("input") or ""
    )
    assert backend.count_tokens("x" * 300) == 125  # 100 tokens, counted 25% high
    assert backend.describe()["tokens"].startswith("3.00 bytes a token")
