import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hone.server.options import Options, apply_settings, describe, markdown_table
from hone.server.options import main as options_main


def test_defaults_and_camel_case_settings_apply():
    opts, problems = apply_settings(Options(), {"maxNewTokensSingle": 16, "multiline": False})
    assert problems == []
    assert opts.max_new_tokens_single == 16 and opts.multiline is False
    assert Options().max_new_tokens_single == 32  # defaults untouched


def test_alias_and_hone_section():
    opts, problems = apply_settings(Options(), {"hone": {"maxNewTokens": 40}})
    assert problems == [] and opts.max_new_tokens_multi == 40


def test_bad_values_are_reported_and_defaults_kept():
    opts, problems = apply_settings(
        Options(),
        {
            "maxNewTokens": "many",
            "debounceMs": -1,
            "multiline": "yes",
            "contextTokens": 1.5,
            "bogus": 1,
        },
    )
    assert opts == Options()
    joined = "\n".join(problems)
    for key in ("maxNewTokens", "debounceMs", "multiline", "contextTokens", "bogus"):
        assert key in joined
    assert "keeping 96" in joined and "unknown setting 'bogus'" in joined


def test_lists_of_strings_are_checked():
    opts, problems = apply_settings(Options(), {"exclude": ["docs/**", "*.min.js"]})
    assert problems == [] and opts.exclude == ("docs/**", "*.min.js")
    assert apply_settings(Options(), {"exclude": {}}) == (Options(), [])  # Neovim's empty table
    for bad in ("docs/**", ["docs", 3], {"a": 1}, None):
        opts, problems = apply_settings(Options(), {"exclude": bad})
        assert opts.exclude == () and "expected a list of strings" in problems[0], bad
    opts, problems = apply_settings(Options(), {"retrieval": "no"})
    assert opts.retrieval is True and "expected true or false" in problems[0]


def test_non_object_settings_and_none():
    assert apply_settings(Options(), None) == (Options(), [])
    opts, problems = apply_settings(Options(), [1, 2])
    assert opts == Options() and "must be an object" in problems[0]


def test_every_option_is_documented():
    for name, _default, doc in describe():
        assert doc, name


# -- the one definition, checked against the README and the VS Code extension ----------

REPO = Path(__file__).resolve().parents[2]
VSCODE = REPO / "editor-clients" / "vscode"
# VS Code settings that are not server options: how to start the server, and LSP tracing.
# Client-only: how the extension starts or reaches the server (hone.tcp and the token and TLS
# settings attach it to a running `hone serve --tcp`), and the client library's trace.
CLIENT_ONLY = {
    "hone.command",
    "hone.args",
    "hone.model",
    "hone.trace.server",
    "hone.tcp",
    "hone.tokenFile",
    "hone.tls",
    "hone.tlsCaFile",
}
# Options the VS Code extension sets from workspace trust: not user settings there.
FROM_TRUST = {"runCode"}
JSON_TYPES = {
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "str": "string",
    "tuple[str, ...]": "array",
}


def as_json(value):
    """An option's value as JSON carries it (a tuple of strings is an array)."""
    return json.loads(json.dumps(value))


def options() -> dict[str, dataclasses.Field]:
    """camelCase LSP name -> field, straight from the dataclass."""
    return {
        re.sub(r"_(\w)", lambda m: m.group(1).upper(), f.name): f
        for f in dataclasses.fields(Options)
    }


def test_every_option_has_doc_and_a_range_where_numeric():
    for name, f in options().items():
        assert f.metadata.get("doc"), name
        if f.type in ("int", "float"):
            lo, hi = f.metadata["range"]
            assert lo <= f.default <= hi, name
        else:
            assert "range" not in f.metadata, name
    assert {"maxLines", "retrievalTokens", "retrieval", "exclude"} <= options().keys()


def readme_table() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_readme_configuration_table_is_generated_from_the_definition():
    assert readme_table() == markdown_table().splitlines()
    names = [re.match(r"\| `(\w+)`", row).group(1) for row in readme_table()[2:]]
    assert names == list(options())


def test_markdown_table_command_line(capsys):
    assert options_main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table()


def vscode_settings() -> dict[str, dict]:
    manifest = json.loads((VSCODE / "package.json").read_text())
    return manifest["contributes"]["configuration"]["properties"]


def test_vscode_settings_mirror_every_option():
    settings = vscode_settings()
    for name, f in options().items():
        key = f"hone.{name}"
        if name in FROM_TRUST:
            assert key not in settings, f"{key} is set from workspace trust, not a setting"
            continue
        assert key in settings, f"{key} missing from editor-clients/vscode/package.json"
        spec = settings[key]
        assert spec["type"] == JSON_TYPES[f.type], key
        default = as_json(f.default)
        assert spec["default"] == default and type(spec["default"]) is type(default), key
        if spec["type"] == "array":
            assert spec["items"] == {"type": "string"}, key
        lo, hi = f.metadata.get("range", (None, None))
        assert (spec.get("minimum"), spec.get("maximum")) == (lo, hi), key
        assert spec["description"].startswith(f.metadata["doc"]), key
    server_keys = {f"hone.{name}" for name in options() if name not in FROM_TRUST}
    assert set(settings) - server_keys == CLIENT_ONLY  # nothing else, nothing stale


def test_vscode_model_setting_names_only_specs_that_work():
    description = vscode_settings()["hone.model"]["description"]
    specs = ("folder", ".gguf", "hub id", "scripted:FILE.json", "openai:http://", "embedded:int8")
    for spec in specs:
        assert spec in description
    assert "vllm:" not in description  # reserved, not a backend
    from hone.models.openai_backend import OpenAIBackend
    from hone.models.registry import load_backend

    assert isinstance(load_backend("openai:http://127.0.0.1:8000/v1#m"), OpenAIBackend)
    assert load_backend("embedded:int8").dtype == "int8"
    readme = (VSCODE / "README.md").read_text()
    assert "openai:http://HOST:PORT/v1" in readme and "vllm:" not in readme


def _skip(reason: str) -> None:
    """Skip, except under `make test` (HONE_REQUIRE_VSCODE_BUILD=1), which builds it first."""
    if os.environ.get("HONE_REQUIRE_VSCODE_BUILD"):
        pytest.fail(reason)
    pytest.skip(reason)


def compiled_extension() -> Path:
    """out/extension.js, freshly compiled when the TypeScript compiler is installed."""
    node = shutil.which("node")
    if node is None:
        _skip("node is not installed (needed to run the VS Code extension)")
    tsc = VSCODE / "node_modules" / ".bin" / "tsc"
    if tsc.exists():
        subprocess.run([str(tsc), "-p", str(VSCODE)], check=True, timeout=120)
    out = VSCODE / "out" / "extension.js"
    if not out.exists():
        _skip("the VS Code extension is not built: run `make vscode`")
    return out


def test_vscode_extension_sends_every_option_to_the_server():
    compiled_extension()
    run = subprocess.run(
        ["node", str(VSCODE / "scripts" / "settings-sent.js")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sent = json.loads(run.stdout)
    defaults = {name: as_json(f.default) for name, f in options().items()}
    assert sent["initializationOptions"] == defaults
    assert sent["didChangeConfiguration"] == {"settings": {"hone": defaults}}
    # ... and the server takes all of it without a complaint.
    assert apply_settings(Options(), sent["initializationOptions"]) == (Options(), [])
