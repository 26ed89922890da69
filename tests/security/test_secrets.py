"""Secrets in a repository play the attacker's part: a fake AWS key committed in one file and
another in the open buffer must never reach the index on disk, a prompt sent to a backend on
another machine, or the server's log; the user's files keep them (hone changes nothing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hone.agent.outbound import for_backend, redact_request
from hone.models.backend import GenerationRequest, Infill, Snippet
from hone.retrieval.index import Index
from hone.retrieval.secrets import GATE, PLACEHOLDER, _plugins, find_secrets, redact
from hone.retrieval.store import index_home, workspace_key

from tests.conftest import end_position, git, inline, lsp_session, open_doc, write_script
from tests.models.openai_fake import FakeOpenAI
from tests.server.test_context_server import wait_indexed

# One example of every format detect-secrets' detectors (those hone uses) know: the gate in
# front of them must let each through.
EXAMPLES = {
    "Artifactory Credentials": 'artifactory = "AKCp8jQ4RT5uQUSDfX"',
    "AWS Access Key": 'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"',
    "Azure Storage Account access key": "conn = 'AccountKey=lJzRc1YdHaAA2KCNJJ1tkYwF/+mKK6Ygw0"
    "NGe170Xu592euJv2wYUtBlV8z+qnlcNQSnIYVTkLWntUO1F8j8rQ=='",
    "Basic Auth Credentials": 'url = "https://user:hunter2secret@example.com/path"',
    "Cloudant Credentials": 'cloudant_password = "' + "0123456789abcdef" * 4 + '"',
    "Discord Bot Token": 'token = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"',
    "GitHub Token": 'gh = "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"',
    "GitLab Token": 'gl = "glpat-abcdefghij0123456789"',
    "IBM Cloud IAM Key": 'ibm_cloud_iam_key = "abcd1234abcd1234abcd1234abcd1234abcd1234abcd"',
    "IBM COS HMAC Credentials": 'ibm_cos_hmac_secret_access_key = "' + "abcd1234" * 6 + '"',
    "JSON Web Token": 'jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0'
    '.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"',
    "Secret Keyword": 'password = "correct-horse-battery"',
    "Mailchimp Access Key": 'mc = "343ea45721923ed956e2b38c31db76aa-us30"',
    "NPM tokens": "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "OpenAI Token": 'openai = "sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst"',
    "Private Key": "-----BEGIN RSA PRIVATE KEY-----",
    "PyPI Token": 'pypi = "pypi-AgEIcHlwaS5vcmcCJGE4YjA0NjM4LTAyNjYtNDEyZC04MmEwLWQ1MDE0M2Q5MDYx'
    'MAACJXsicGVybWlzc2lvbnMiOiAidXNlciIsICJ2ZXJzaW9uIjogMX0AAAYgJb1Oh0sPvbKWmGyHYu6nXRGMVrG8"',
    "SendGrid API Key": 'sg = "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbih'
    'YzrnopKc-1s5cr"',
    "Slack Token": 'slack = "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx"',
    "SoftLayer Credentials": 'softlayer_api_key = "' + "abcdef0123456789" * 4 + '"',
    "Square OAuth Secret": 'sq = "sq0csp-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"',
    "Stripe Access Key": 'stripe = "sk_live_abcdefghijklmnopqrstuvwx"',
    "Telegram Bot Token": 'tg = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"',
    "Twilio API Key": 'twilio = "SKabcdef0123456789abcdef0123456789"',
}
REPO = Path(__file__).resolve().parents[2]


def test_every_detector_has_an_example_that_passes_the_gate_and_is_redacted():
    assert {p.secret_type for p in _plugins()} == set(EXAMPLES)
    for kind, line in EXAMPLES.items():
        values = [v for p in _plugins() if p.secret_type == kind for v in p.analyze_string(line)]
        assert values, f"the {kind} example is not one"
        assert GATE.search(line), kind
        assert find_secrets(line), kind
        text, count = redact(f"x = 1\n{line}\ny = 2\n")
        assert count >= 1 and PLACEHOLDER in text, kind
        assert not [v for v in values if v in text], kind
        assert text.startswith("x = 1\n") and text.endswith("\ny = 2\n")  # lines stay lines


def test_code_without_secrets_is_left_alone():
    """No false alarm in hone's own source (tokens, keys and passwords are its subject)."""
    for folder in ("server", "agent", "models", "retrieval"):
        for path in sorted((REPO / folder).rglob("*.py")):
            assert find_secrets(path.read_text()) == [], path


KEY_COMMITTED = "AKIAI44QH8DHBEXAMPLE"
KEY_TYPED = "AKIAIOSFODNN7EXAMPLE"
SETTINGS = f'"""Settings."""\n\nAWS_ACCESS_KEY_ID = "{KEY_COMMITTED}"\nREGION = "eu-west-1"\n'
MAIN = (
    "from settings import AWS_ACCESS_KEY_ID, REGION\n\n"
    f'BACKUP_KEY = "{KEY_TYPED}"\n\n\n'
    "def add(a, b):\n    "
)


def test_the_index_holds_no_secret(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "settings.py").write_text(SETTINGS)
    index = Index(root, folder=tmp_path / "index")
    report = index.update()
    assert report.secrets == 1
    assert index.update_text("main.py", MAIN)
    texts = [
        c.chunk.text for path in ("settings.py", "main.py") for c in index.store.chunks_of(path)
    ]
    assert any(PLACEHOLDER in t for t in texts) and any("REGION" in t for t in texts)
    assert not [t for t in texts if KEY_COMMITTED in t or KEY_TYPED in t]
    assert not index.search(KEY_COMMITTED, 5) and not index.search(KEY_TYPED, 5)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "index").rglob("*") if p.is_file())
    assert KEY_COMMITTED.encode() not in stored and KEY_TYPED.encode() not in stored
    assert (root / "settings.py").read_text() == SETTINGS  # the user's file is as it was


def test_requests_to_a_remote_backend_are_redacted_local_ones_are_not():
    infill = Infill(prefix=MAIN, suffix="", snippets=(Snippet("settings.py", SETTINGS),))
    chat = [{"role": "user", "content": f"fix this: {SETTINGS}"}]

    class Remote:
        remote = True

    for request in (GenerationRequest(infill=infill), GenerationRequest(messages=chat)):
        sent = repr(for_backend(Remote(), request))
        assert KEY_COMMITTED not in sent and KEY_TYPED not in sent and PLACEHOLDER in sent
        assert for_backend(object(), request) is request  # stays on this machine: as it is
    assert redact_request(GenerationRequest(prompt=MAIN)).prompt.count(PLACEHOLDER) == 1


@pytest.fixture
def workspace(tmp_path):
    root = tmp_path / "keyws"
    root.mkdir()
    (root / "settings.py").write_text(SETTINGS)
    (root / "main.py").write_text(MAIN)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "with a key")
    yield root
    shutil.rmtree(index_home() / workspace_key(root), ignore_errors=True)


@pytest.mark.parametrize("remote", [True, False])
async def test_keys_never_reach_a_remote_prompt_the_index_or_the_log(tmp_path, workspace, remote):
    record = tmp_path / "prompts.jsonl"
    spec = write_script(tmp_path / "s.json", "return a + b\n", remote=remote, record=str(record))
    log = tmp_path / "hone.log"
    async with lsp_session(
        spec, extra_args=["-v", "--log-file", str(log)], folders=[workspace]
    ) as client:
        await wait_indexed(client)
        uri = (workspace / "main.py").as_uri()
        open_doc(client, uri, MAIN)
        assert await inline(client, uri, end_position(MAIN)) == ["return a + b"]
        state = await wait_indexed(client)
    prompts = [json.loads(line) for line in record.read_text().splitlines()]
    assert prompts and all("def add(a, b):" in p for p in prompts)
    if remote:
        assert not [p for p in prompts if KEY_TYPED in p or KEY_COMMITTED in p]
        assert all(PLACEHOLDER in p for p in prompts)
    else:  # a local model sees the buffer as it is (nothing leaves the machine)
        assert all(KEY_TYPED in p for p in prompts)
    folder = Path(state["folders"][0]["index"])
    stored = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert stored and KEY_COMMITTED.encode() not in stored and KEY_TYPED.encode() not in stored
    text = log.read_text()
    assert "inlineCompletion" in text and KEY_COMMITTED not in text and KEY_TYPED not in text
    assert (workspace / "settings.py").read_text() == SETTINGS
    assert (workspace / "main.py").read_text() == MAIN


async def test_keys_never_reach_an_openai_server_over_http(tmp_path, workspace, monkeypatch):
    """The same through the real HTTP backend: a server reached through a loopback port
    that forwards elsewhere (an SSH tunnel), declared remote with HONE_MODEL_REMOTE=1."""
    monkeypatch.setenv("HONE_MODEL_REMOTE", "1")
    with FakeOpenAI(text="return a + b\n") as server:
        async with lsp_session(f"openai:{server.url}", folders=[workspace]) as client:
            await wait_indexed(client)
            uri = (workspace / "main.py").as_uri()
            open_doc(client, uri, MAIN)
            assert await inline(client, uri, end_position(MAIN)) == ["return a + b"]
    prompts = [r["body"]["prompt"] for r in server.requests if r["path"] == "/v1/completions"]
    assert prompts and all("def add(a, b):" in p for p in prompts)
    assert not [p for p in prompts if KEY_TYPED in p or KEY_COMMITTED in p]
    assert all(PLACEHOLDER in p for p in prompts)
