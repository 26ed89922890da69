"""Prompt templates per model family: rendering, detection, explicit choice, user files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hone.models.backend import Infill, ModelError, Snippet
from hone.models.prompts import (
    load_templates,
    template_by_name,
    template_for,
    template_for_backend,
)

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n\nprint(add(1, 2))\n"
PATH = "src/calc.py"

GOLDEN = {
    "starcoder": "<filename>src/calc.py\n<fim_prefix>def add(a, b):\n    <fim_suffix>"
    "\n\nprint(add(1, 2))\n<fim_middle>",
    "starcoder2": "<file_sep>src/calc.py\n<fim_prefix>def add(a, b):\n    <fim_suffix>"
    "\n\nprint(add(1, 2))\n<fim_middle>",
    "santacoder": "# src/calc.py\n<fim-prefix>def add(a, b):\n    <fim-suffix>"
    "\n\nprint(add(1, 2))\n<fim-middle>",
    "codellama": "<PRE> # src/calc.py\ndef add(a, b):\n     <SUF>\n\nprint(add(1, 2))\n <MID>",
    "deepseek-coder": "<｜fim▁begin｜># src/calc.py\ndef add(a, b):\n    <｜fim▁hole｜>"
    "\n\nprint(add(1, 2))\n<｜fim▁end｜>",
    "qwen2.5-coder": "<|file_sep|>src/calc.py\n<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>"
    "\n\nprint(add(1, 2))\n<|fim_middle|>",
    "codegemma": "<|fim_prefix|># src/calc.py\ndef add(a, b):\n    <|fim_suffix|>"
    "\n\nprint(add(1, 2))\n<|fim_middle|>",
    "smollm": "<file_sep>src/calc.py\ndef add(a, b):\n    ",
    "plain": "# src/calc.py\ndef add(a, b):\n    ",
}


SNIPPETS = (
    Snippet("src/numbers.py", "def double(x):\n    return 2 * x"),
    Snippet("tests/test_calc.py", "from calc import add\n\nassert add(1, 2) == 3\n"),
)
# Rendered prompts with context snippets, one file per family (byte for byte).
# HONE_UPDATE_GOLDEN=1 rewrites them; review the diff before committing.
GOLDEN_DIR = Path(__file__).parent / "golden" / "prompts"


def test_every_shipped_family_has_a_golden_rendering():
    assert set(load_templates()) == set(GOLDEN)
    assert {p.stem for p in GOLDEN_DIR.glob("*.txt")} == set(GOLDEN)


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_render_with_snippets_golden(family: str):
    template = load_templates()[family]
    text = template.render_infill(Infill(PREFIX, SUFFIX, PATH, "python", SNIPPETS))
    golden = GOLDEN_DIR / f"{family}.txt"
    if os.environ.get("HONE_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text.encode("utf-8"))
    assert text == golden.read_bytes().decode("utf-8")


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_snippets_come_before_the_file_text(family: str):
    """Typing changes the file's text only: everything before it (snippets, header) stays
    the same, so the backend's KV cache of that part is reused."""
    template = load_templates()[family]
    with_snippets = template.render_infill(Infill(PREFIX, SUFFIX, PATH, "python", SNIPPETS))
    typed = template.render_infill(Infill(PREFIX + "ret", SUFFIX, PATH, "python", SNIPPETS))
    end = with_snippets.index(PREFIX) + len(PREFIX)
    assert typed.startswith(with_snippets[:end])
    for snippet in SNIPPETS:
        assert with_snippets.index(snippet.text.rstrip("\n")) < with_snippets.index(PREFIX)
    # Without snippets the rendering is the plain golden one.
    assert template.render_infill(Infill(PREFIX, SUFFIX, PATH)) == GOLDEN[family]


def test_a_snippet_of_a_file_type_without_a_comment_marker_is_left_out():
    plain = template_by_name("plain")
    assert plain.render_snippet(Snippet("data/x.unknownext", "stuff")) == ""
    assert plain.render_snippet(Snippet("lib/a.py", "x = 1")) == "# lib/a.py\nx = 1\n\n"
    assert template_by_name("smollm").render_snippet(Snippet("a.unknownext", "s")) == (
        "<file_sep>a.unknownext\ns\n"
    )


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_render_golden(family: str):
    template = load_templates()[family]
    assert template.render(PREFIX, SUFFIX, PATH) == GOLDEN[family]


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_render_without_path_has_no_header(family: str):
    template = load_templates()[family]
    text = template.render(PREFIX, SUFFIX, None)
    assert PATH not in text
    assert PREFIX in text
    assert (SUFFIX in text) == template.fim


def test_fim_families_stop_on_their_own_control_tokens():
    for template in load_templates().values():
        if template.fim:
            assert template.stop, template.family
            for token in template.tokens[:3]:  # the three FIM markers
                assert token.lstrip("▁") in template.stop, (template.family, token)
    assert "<|file_separator|>" in template_by_name("codegemma").stop


def test_prefix_only_ignores_the_suffix():
    smollm = template_by_name("smollm")
    assert not smollm.fim
    assert smollm.render("x = 1\n", "SUFFIX", "a.py") == "<file_sep>a.py\nx = 1\n"


def test_comment_header_follows_the_language_and_is_dropped_when_unknown():
    plain = template_by_name("plain")
    assert plain.render("x", "", "web/app.ts") == "// web/app.ts\nx"
    assert plain.render("x", "", "db/q.sql") == "-- db/q.sql\nx"
    assert plain.render("x", "", "Makefile") == "# Makefile\nx"
    assert plain.render("x", "", "notes.unknownext") == "x"


def test_prompt_text_with_braces_is_not_interpreted():
    text = template_by_name("qwen2.5-coder").render("d = {'a': 1}  # {x}", "}{", "{p}.py")
    assert "{'a': 1}  # {x}<|fim_suffix|>}{<|fim_middle|>" in text
    assert text.startswith("<|file_sep|>{p}.py\n")


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("bigcode/starcoderbase-1b", "starcoder"),
        ("bigcode/starcoder2-3b", "starcoder2"),
        ("bigcode/santacoder", "santacoder"),
        ("codellama/CodeLlama-7b-hf", "codellama"),
        ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek-coder"),
        ("Qwen/Qwen2.5-Coder-1.5B", "qwen2.5-coder"),
        ("/models/qwen2.5-coder-0.5b-q8/", "qwen2.5-coder"),
        ("google/codegemma-2b", "codegemma"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm"),
        ("/home/me/.cache/hone/models/smollm2-135m-instruct-bf16", "smollm"),
        ("gpt2", "plain"),
    ],
)
def test_detect_by_name(name: str, family: str):
    assert template_for(name).family == family


@pytest.mark.parametrize(
    ("tokens", "family"),
    [
        (["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<filename>"], "starcoder"),
        (["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"], "starcoder2"),
        (["<fim-prefix>", "<fim-suffix>", "<fim-middle>"], "santacoder"),
        (["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama"),
        (["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "deepseek-coder"),
        (["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"], "qwen2.5-coder"),
        (["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"], "codegemma"),
        (["<|endoftext|>", "<file_sep>", "<filename>"], "plain"),
    ],
)
def test_detect_by_special_tokens(tokens: list[str], family: str):
    assert template_for("/models/my-finetune", tokens).family == family


def test_a_name_match_without_its_tokens_falls_back():
    """A renamed or chat-only model that lacks the family's FIM tokens is not sent them."""
    assert template_for("qwen2.5-coder-custom", ["<|endoftext|>"]).family == "plain"
    assert template_for("qwen2.5-coder-custom").family == "qwen2.5-coder"


def test_explicit_family_by_name():
    assert template_for("CodeGemma").family == "codegemma"
    assert template_by_name(" StarCoder2 ").family == "starcoder2"
    with pytest.raises(ModelError, match="unknown prompt family 'nope'.*starcoder"):
        template_by_name("nope")


def test_template_for_backend_prefers_explicit_then_detection():
    class Named:
        name = "deepseek-coder-6.7b"

    class Detecting:
        name = "whatever"

        def detect_template(self):
            return template_by_name("codegemma")

    assert template_for_backend(Named()).family == "deepseek-coder"
    assert template_for_backend(Detecting()).family == "codegemma"
    assert template_for_backend(Detecting(), family="plain").family == "plain"


def test_user_templates_file_adds_and_overrides(tmp_path: Path):
    extra = tmp_path / "families.toml"
    extra.write_text(
        "[families.mine]\nfim = true\n"
        'template = "<A>{header}{prefix}<B>{suffix}<C>"\nheader = "{comment} {path}\\n"\n'
        'stop = ["<END>"]\nnames = ["my-model"]\n'
        "[families.plain]\nfim = false\ntemplate = '{prefix}'\nstop = ['\\n\\n\\n']\n"
    )
    templates = load_templates(extra)
    assert templates["mine"].render("a", "b", "x.rs") == "<A>// x.rs\na<B>b<C>"
    assert template_for("my-model-7b", templates=templates).family == "mine"
    assert templates["plain"].render("a", "b", "x.py") == "a"
    # A user's template without {context} gets the snippets at the start.
    assert templates["mine"].render("a", "b", "x.rs", [Snippet("y.rs", "z")]) == (
        "// y.rs\nz\n\n<A>// x.rs\na<B>b<C>"
    )
    assert "starcoder" in templates
    assert load_templates()["plain"].render("a", "b", "x.py") == "# x.py\na"  # unchanged


@pytest.mark.parametrize(
    "body",
    [
        'fim = true\ntemplate = "{prefix}"',  # FIM without {suffix}
        'fim = false\ntemplate = "{prefix}{suffix}"',  # suffix in a prefix-only template
        'fim = false\ntemplate = "{prefix}{cursor}"',  # unknown field
        'fim = false\ntemplate = "{header}"',  # no prefix
        'fim = false\ntemplate = "{prefix}{context}"',  # context after the file's text
        'fim = false\ntemplate = "{prefix}"\nsnippet = "{path}"',  # snippet without text
        "template = '{prefix}'",  # no fim key
    ],
)
def test_malformed_user_templates_are_reported(tmp_path: Path, body: str):
    extra = tmp_path / "bad.toml"
    extra.write_text(f"[families.bad]\n{body}\n")
    with pytest.raises(ModelError, match="bad"):
        load_templates(extra)
