"""The engine owns the token budget: overhead, snippets, suffix and prefix within
contextTokens, counted with the backend's tokenizer or estimated where it has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hone.agent.completion.engine import CompletionEngine, CompletionRequest
from hone.agent.completion.options import CompletionOptions
from hone.agent.completion.prompting import (
    ANCHOR_LINES,
    MIN_SNIPPET_TOKENS,
    build_prompt,
    workspace_path,
)
from hone.models.backend import Snippet, estimate_tokens
from hone.models.prompts import template_by_name
from hone.models.registry import load_backend

DOC = "".join(f"value_{i} = compute({i})\n" for i in range(400)) + "def f(x):\n    "
SNIPPETS = (
    Snippet("lib/compute.py", "def compute(i):\n    return i * 2\n"),
    Snippet("lib/big.py", "".join(f"CONSTANT_{i} = {i}\n" for i in range(200))),
    Snippet("lib/small.py", "SMALL = 1\n"),
)


def quarter(text: str) -> int:
    return len(text) // 4


@pytest.mark.parametrize("family", ["smollm", "plain", "starcoder2", "codellama"])
@pytest.mark.parametrize("count", [quarter, estimate_tokens])
def test_the_whole_rendered_prompt_fits_the_budget(family: str, count):
    template = template_by_name(family)
    suffix = "\n".join(f"other_{i}()" for i in range(300))
    p = build_prompt(
        template,
        DOC,
        suffix,
        "pkg/sub/module.py",
        400,
        count,
        language="python",
        snippets=SNIPPETS,
        snippet_budget=120,
    )
    assert p.total_tokens == count(p.text) <= 400
    assert p.overhead_tokens == count(template.render("", "", "pkg/sub/module.py")) > 0
    assert 0 < p.snippet_tokens <= 120
    assert DOC.endswith(p.prefix) and p.prefix.endswith("def f(x):\n    ")
    assert suffix.startswith(p.suffix) and bool(p.suffix) == template.fim
    assert p.text == template.render_infill(p.infill)


def test_snippets_best_first_and_a_long_one_cut_to_its_first_lines():
    template = template_by_name("smollm")
    p = build_prompt(template, DOC, "", "m.py", 600, quarter, snippets=SNIPPETS, snippet_budget=80)
    kept = {s.path: s.text for s in p.snippets}
    assert list(kept) == ["lib/compute.py", "lib/big.py"]  # no room left for lib/small.py
    assert kept["lib/compute.py"] == SNIPPETS[0].text
    assert SNIPPETS[1].text.startswith(kept["lib/big.py"]) and kept["lib/big.py"].endswith("\n")
    assert len(kept["lib/big.py"]) < len(SNIPPETS[1].text)
    assert p.snippet_tokens == sum(quarter(template.render_snippet(s)) for s in p.snippets)
    assert 80 - MIN_SNIPPET_TOKENS < p.snippet_tokens <= 80


def test_a_snippet_that_cannot_be_cut_to_fit_is_skipped_and_a_later_one_kept():
    template = template_by_name("plain")
    snippets = (
        Snippet("lib/long_line.py", "X = '" + "a" * 2000 + "'\n"),  # one line, too long
        Snippet("data/blob.unknownext", "no comment marker for this file type\n"),
        Snippet("lib/small.py", "SMALL = 1\n"),
    )
    p = build_prompt(template, DOC, "", "m.py", 600, quarter, snippets=snippets, snippet_budget=80)
    assert [s.path for s in p.snippets] == ["lib/small.py"]


def test_snippets_off_and_never_more_than_half_of_what_is_left():
    template = template_by_name("smollm")
    off = build_prompt(template, DOC, "", "m.py", 300, quarter, snippets=SNIPPETS)
    assert off.snippets == () and off.snippet_tokens == 0
    greedy = build_prompt(
        template, DOC, "", "m.py", 300, quarter, snippets=SNIPPETS, snippet_budget=10_000
    )
    assert greedy.snippet_tokens <= (300 - greedy.overhead_tokens) // 2
    assert greedy.prefix_tokens > 0


def test_the_window_start_is_stable_while_typing_with_snippets():
    template = template_by_name("smollm")
    texts = []
    for typed in ("r", "re", "ret", "retu", "return x"):
        prefix = DOC + typed
        p = build_prompt(
            template, prefix, "", "m.py", 512, quarter, snippets=SNIPPETS, snippet_budget=100
        )
        start = len(prefix) - len(p.prefix)
        assert prefix.count("\n", 0, start) % ANCHOR_LINES == 0
        texts.append(p.text)
    cursor_line = texts[0].rindex("\n") + 1
    assert all(t.startswith(texts[0][:cursor_line]) for t in texts)


def test_a_tiny_budget_never_overflows_because_of_the_template():
    template = template_by_name("codellama")
    long_path = "/".join(["deeply"] * 40) + "/m.py"
    p = build_prompt(template, DOC, "x\n", long_path, 64, quarter)
    assert p.total_tokens <= 64 or p.prefix == ""


def test_paths_are_relative_to_the_workspace_never_absolute():
    assert workspace_path("/w/src/m.py", "/w") == "src/m.py"
    assert workspace_path("/elsewhere/m.py", "/w") == "m.py"
    assert workspace_path("/w/src/m.py", None) == "m.py"
    assert workspace_path("src\\m.py", None) == "src/m.py"
    assert workspace_path("C:\\w\\src\\m.py", "C:\\w") == "src/m.py"
    assert workspace_path(None, "/w") is None


def scripted(tmp_path: Path, **spec: object):
    path = tmp_path / "script.json"
    spec.setdefault("step_ms", 0)
    path.write_text(json.dumps(spec))
    return load_backend(f"scripted:{path}")


@pytest.mark.parametrize("tokenizer", [True, False])
def test_engine_hands_the_backend_an_infill_it_renders(tmp_path: Path, tokenizer: bool):
    """With a tokenizer (len/4) or without one (the conservative estimate), the engine
    trims to contextTokens and the backend renders what the engine counted."""
    backend = scripted(
        tmp_path,
        family="smollm",
        tokenizer=tokenizer,
        responses=[{"match": "<file_sep>lib/compute.py\n", "text": "return compute(x)\n"}],
        default="",
    )
    options = CompletionOptions(context_tokens=256, retrieval_tokens=64)
    engine = CompletionEngine(backend, options)
    request = CompletionRequest(
        "file:///w/pkg/m.py",
        DOC,
        len(DOC),
        "/w/pkg/m.py",
        "python",
        snippets=SNIPPETS,
        root="/w",
    )
    prompt = engine.prompt_for(engine.plan(request))
    count = quarter if tokenizer else estimate_tokens
    assert prompt.total_tokens == count(prompt.text) <= 256
    assert prompt.infill.path == "pkg/m.py" and "/w/" not in prompt.text
    assert 0 < prompt.snippet_tokens <= 64
    result = engine.complete(request)
    assert result.items == ["return compute(x)"]  # the script matched the rendered snippet
    assert result.stats["snippets"] == len(prompt.snippets)


def test_the_rendered_whole_decides_when_pieces_counted_apart_undercount():
    """A tokenizer can spend more on the whole than on its pieces counted apart (tokens
    merge or split at the seams); the prefix is shrunk until the whole fits."""

    def seams(text: str) -> int:  # 10 more tokens at every seam between two files
        return len(text) // 4 + 10 * text.count("\n<file_sep>")

    template = template_by_name("smollm")
    prefix = "x\n" * 4000 + "def f():\n    "  # 32 lines are only 16 tokens: a tight window
    p = build_prompt(template, prefix, "", "m.py", 300, seams, snippets=SNIPPETS, snippet_budget=60)
    assert len(p.snippets) == 2
    assert p.overhead_tokens + p.snippet_tokens + p.prefix_tokens <= 300
    assert p.total_tokens == seams(p.text) <= 300
    assert prefix.endswith(p.prefix) and p.prefix.endswith("def f():\n    ")
