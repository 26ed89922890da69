"""The measured figures in the docs are the ones in the results files (benchmarks/report.py)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

DOCS = [REPO / "README.md", REPO / "benchmarks" / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_match_the_results_files(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert report.BLOCK.search(text), f"{doc} has no <!-- results:... --> block"
    stale = report.stale([doc])
    assert not stale, "docs differ from benchmarks/results: run `make report`\n" + stale.get(
        doc, ""
    )


def test_an_edited_figure_turns_the_check_red(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    original = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    block = report.BLOCK.search(original)
    inside = block.group(3)
    digit = next(i for i, c in enumerate(inside) if c.isdigit())
    edited_inside = inside[:digit] + str((int(inside[digit]) + 1) % 10) + inside[digit + 1 :]
    doc.write_text(original.replace(inside, edited_inside), encoding="utf-8")
    stale = report.stale([doc])
    assert doc in stale
    # ... and rendering puts the results file's figure back.
    results = report.load_results()
    fixed = report.render_doc(doc.read_text(encoding="utf-8"), results)
    assert fixed == report.render_doc(original, results) != doc.read_text(encoding="utf-8")


def test_every_section_names_machine_device_weights_and_model() -> None:
    results = report.load_results()
    assert "latency" in results
    for name, data in results.items():
        head = report.section(name, data).split("\n\n")[1]
        for fact in ("machine: ", "model: ", "device: ", "weights: "):
            assert fact in head, (name, head)
        assert f"`results/{name}.json`" in head


def test_missing_results_files_are_skipped_and_unknown_ones_rendered(tmp_path: Path) -> None:
    shutil.copy(report.RESULTS / "latency.json", tmp_path / "latency.json")
    (tmp_path / "documents.json").write_text(
        json.dumps({"date": "2026-11-26", "machine": "x", "didChange": {"p95_ms": 1.25}})
    )
    results = report.load_results(tmp_path)
    assert list(results) == ["latency", "documents"]
    rendered = report.render_block("all", results)
    assert "### Latency" in rendered and "### Documents" in rendered
    assert "Weight formats" not in rendered and "Completion quality" not in rendered
    assert "| `didChange.p95_ms` | 1.25 |" in rendered
    summary = report.render_block("summary", results)
    assert "make bench-decode" not in summary and "make eval-completion" not in summary


def test_latency_headline_is_the_next_character_ratio_over_model_time() -> None:
    """A file from today's bench_latency.py: device and weights come from hone/stats, the
    headline is the real next character's ratio, the adversarial one is secondary."""
    data = {
        "date": "2026-11-26",
        "machine": {"arch": "x86_64", "cpus": 16, "gpu": "NVIDIA H200", "platform": "Linux"},
        "backend": {"model": "SmolLM2", "device": "cuda:0", "dtype": "bfloat16"},
        "model": "SmolLM2",
        "device": "cuda:0",
        "dtype": "bfloat16",
        "one_char_edit_ratio": {
            "n": 16,
            "p50": 0.21,
            "p95": 0.4,
            "mean": 0.25,
            "definition": "the new request's round trip ÷ the first request's model time",
            "prefill_ratio": {"n": 16, "p50": 0.04, "p95": 0.1},
            "prompt_reuse": {"n": 16, "p50": 1.0, "p95": 1.0},
        },
        "one_char_edit_ratio_adversarial": {"n": 24, "p50": 0.33, "p95": 0.7, "mean": 0.35},
    }
    text = report.section("latency", data)
    assert "machine: x86_64, 16 cores, GPU NVIDIA H200" in text
    assert "device: cuda:0; weights: bfloat16" in text
    headline = next(line for line in text.splitlines() if "headline" in line)
    assert "**0.21** / 0.25 / 0.40" in headline and "first request's model time" in headline
    adversarial = next(line for line in text.splitlines() if "adversarial" in line)
    assert "0.33 / 0.35 / 0.70" in adversarial
    summary = report.render_summary({"latency": data})
    assert "model time), p50 (mean) | 0.21 (0.25) |" in summary
    assert "(adversarial), p50 (mean) | 0.33 (0.35) |" in summary


def test_older_latency_files_keep_their_own_definition() -> None:
    """Before the headline key changed, `next_char_ratio` was the headline, divided by the
    first request's round trip; the docs say so rather than relabel it."""
    data = {
        "machine": "x86_64, 2 cores, no GPU",
        "date": "2026-11-25",
        "model": "embedded SmolLM2-135M-Instruct (int8 weights, CPU)",
        "one_char_edit_ratio": {"n": 24, "p50": 0.3, "p95": 0.7, "mean": 0.319},
        "next_char_ratio": {"n": 16, "p50": 0.23, "p95": 0.45, "mean": 0.271},
        "one_char_edit_prefill_ratio": {"n": 24, "p50": 0.05, "p95": 0.16},
    }
    text = report.section("latency", data)
    lines = text.splitlines()
    headline = next(line for line in lines if "headline" in line)
    assert "**0.23** / 0.27 / 0.45" in headline and "first request's round trip" in headline
    adversarial = lines.index(next(line for line in lines if "adversarial" in line))
    assert "0.30 / 0.32 / 0.70" in lines[adversarial]
    # the prefill ratio was measured on the adversarial cases: it follows that row only
    assert "prefill" in lines[adversarial + 1] and "0.05 / 0.16" in lines[adversarial + 1]
    assert "not what the server reported" in text
    assert "device: not recorded; weights: not recorded" in text


def _eval_kind(n: int, es: float, base_es: float | None, loops: bool = False) -> dict:
    engine = {"exact": 0.2, "exact_ci95": [0.05, 0.4], "es": es, "es_ci95": [0.327, 0.634]}
    engine |= {"empty": 0.05, "mean_lines": 1.0} | ({"loops": 0.1} if loops else {})
    block: dict = {"n": n, "engine": engine, "by_source": {}}
    if base_es is not None:
        block["baseline"] = {
            "exact": 0.05,
            "exact_ci95": [0.0, 0.15],
            "es": base_es,
            "es_ci95": [0.043, 0.286],
            "empty": 0.0,
            "mean_lines": 1.0,
        } | ({"loops": 0.25} if loops else {})
        block |= {
            "exact_diff": 0.15,
            "exact_diff_ci95": [0.0, 0.3],
            "es_diff": round(es - base_es, 3),
            "es_diff_ci95": [-0.034, 0.088],
            "engine_better_sites": 14,
            "baseline_better_sites": 1,
        }
        if loops:
            block["original_loops"] = 0.05
    return block


EVAL_HEAD = {
    "date": "2026-11-26",
    "machine": {"arch": "x86_64", "cpus": 2, "gpu": None},
    "device": "cpu",
    "weights": "bfloat16",
    "model": "SmolLM2",
    "sources": {"dev": ["difflib.py"], "heldout": ["ipaddress.py", "boltons==24.1.0"]},
}


def test_completion_quality_shows_both_splits_held_out_first() -> None:
    data = EVAL_HEAD | {
        "dev": {"single": _eval_kind(20, 0.452, 0.063), "multi": _eval_kind(60, 0.297, 0.294)},
        "heldout": {"single": _eval_kind(20, 0.473, 0.145), "multi": _eval_kind(60, 0.331, 0.3)},
    }
    text = report.section("eval-completion", data)
    assert "device: cpu; weights: bfloat16" in text
    assert "Levenshtein" in text and "greedy" in text
    held, dev = text.index("held-out (only ever reported)"), text.index("dev (tuned on)")
    assert held < dev
    assert "2 sources: ipaddress, boltons==24.1.0" in text
    lines = text[held:dev].splitlines()
    row = next(line for line in lines if line.startswith("| edit similarity, engine |"))
    assert "0.473 [0.327, 0.634]" in row and "0.331" in row
    diff = next(line for line in lines if "engine − baseline" in line)
    assert "+0.328 [-0.034, +0.088]" in diff
    assert any("| 14 / 1 |" in line for line in lines)
    assert not any("repetition loop" in line for line in lines)  # older files: no loops
    summary = report.render_summary({"eval-completion": data})
    assert "held-out code (1 standard-library module, 1 PyPI sdist)" in summary
    assert "0.473 vs 0.145" in summary
    assert "paired difference +0.328, 95% CI -0.034 to +0.088" in summary
    assert "exact match 20% vs 5%" in summary and "From `results/eval-completion.json`" in summary


def test_completion_quality_without_baseline_or_dev_and_with_loops() -> None:
    data = EVAL_HEAD | {"heldout": {"single": _eval_kind(20, 0.473, None)}}
    text = report.section("eval-completion", data)
    assert "0.473 [0.327, 0.634]" in text and "dev (tuned on)" not in text
    assert "baseline |" not in text and "engine − baseline** (paired) |" not in text
    assert "edit similarity 0.473" in report.render_summary({"eval-completion": data})
    looped = EVAL_HEAD | {"heldout": {"multi": _eval_kind(60, 0.331, 0.3, loops=True)}}
    text = report.section("eval-completion", looped)
    assert "repetition loop: engine / baseline / original code | 10% / 25% / 5% |" in text
    assert "repetition loops 10% vs 25% (original code 5%)" in report.render_summary(
        {"eval-completion": looped}
    )
    # files from before the splits keep their table
    old = {"single": {"n": 3, "exact": 0.5, "prefix": 0.6, "similarity": 0.7, "empty": 0.0}}
    assert "| single-line (rest of the line) | 3 | 0.50 | 0.60 | 0.70 | 0.00 |" in (
        report.section("eval-completion", old)
    )


def test_weight_formats_quality_shows_the_paired_relative_difference() -> None:
    run = {"machine": "x86_64, 16 cores", "device": "cpu", "model": "SmolLM2", "shards": 8}
    metric = {
        "int8": 0.3969,
        "int8_ci95": [0.358, 0.439],
        "bfloat16": 0.4633,
        "bfloat16_ci95": [0.421, 0.504],
        "diff": 0.0664,
        "diff_ci95": [0.029, 0.103],
        "relative_diff": 0.1673,
    }
    data = {
        "date": "2026-11-26",
        "machine": "x86_64, 16 cores",
        "model": "SmolLM2",
        "a": run | {"weights": "int8", "seconds": 1077.5},
        "b": run | {"weights": "bfloat16", "seconds": 1075.8},
        "single": {"n": 300, "es": metric, "identical_suggestions": 70},
    }
    text = report.section("eval-weights", data)
    assert text.startswith("### Weight formats, quality\n")
    assert "device: cpu; weights: int8 and bf16" in text
    row = next(line for line in text.splitlines() if "single-line, edit similarity" in line)
    assert "| 300 | 0.397 [0.358, 0.439] | 0.463 [0.421, 0.504] |" in row
    assert "+0.066 [+0.029, +0.103] (+17% relative to int8)" in row
    summary = report.render_summary({"eval-weights": data})
    assert "+17% single-line (0.463 vs 0.397" in summary and "both on cpu" in summary


def test_latency_summary_shows_the_context_snippets_ratio() -> None:
    data = {
        "one_char_edit_ratio_context": {
            "none": {"n": 16, "p50": 0.19, "p95": 0.3},
            "snippets": {"n": 16, "p50": 0.21, "p95": 0.35},
        }
    }
    summary = report.render_summary({"latency": data})
    assert "with context snippets in the prompt (in-process engine)" in summary
    assert "| 0.21 (0.19 without) |" in summary
    assert "context snippets" not in report.render_summary({"latency": {}})


def test_retrieval_summary_shows_recall_against_bm25():
    block = {
        "packages": {"httpx==0.28.1": {}, "rich==15.0.0": {}},
        "sites": 100,
        "after_fused_recall@5": {"mean": 0.987, "ci95": [0.97, 1.0]},
        "after_bm25_recall@5": {"mean": 0.201},
        "before_fused_recall@5": {"mean": 0.472},
        "before_bm25_recall@5": {"mean": 0.132},
        "retrieve_ms": {"p50": 4.3, "p95": 8.7},
    }
    text = report.retrieval_summary({"heldout": block, "date": "2026-11-26"})
    assert "held-out" in text and "httpx, rich" in text and "100 sites" in text
    assert "after the name is typed 0.99 [0.97, 1.00] (BM25 alone 0.20)" in text
    assert "before it 0.47 (BM25 alone 0.13)" in text
    assert report.retrieval_summary({}) == ""
