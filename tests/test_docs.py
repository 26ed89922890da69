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
