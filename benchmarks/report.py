"""Render the measured figures in the docs from the results files, the one source of truth.

Between marker comments in a Markdown file::

    <!-- results:NAME -->
    ...generated, do not edit...
    <!-- /results -->

NAME is ``all`` (a section per results file in ``benchmarks/results/``: the known ones in a
fixed order, then any other ``*.json``; a missing file is skipped), ``summary`` (the table
under "Measured figures" in the top-level README) or one file's stem (``latency``,
``decode``, ``eval-completion``, ``eval-weights``, ``documents``). Every section names the
machine, device, weight format and model from its results file ("not recorded" where the file
lacks one).

    python benchmarks/report.py            # rewrite the docs (make report)
    python benchmarks/report.py --check    # exit 1 and print a diff where a doc is stale

Keys read (missing ones are skipped):
- every file: ``date``; ``machine`` (a string, or ``{arch, cpus, gpu, platform}``);
  ``model``, ``device``, ``dtype`` (or ``weights``), else the same keys under ``backend``
  (what ``hone/stats`` reported).
- latency.json: ``{server_overhead_ms, client_roundtrip_overhead_ms, single_line_ms,
  multi_line_ms, typed_ahead, superseded_stop_ms, cancel_request_stop_ms,
  declined_while_busy_ms, decode_step_ms, tokens_per_forward_pass}`` as ``{n, p50, p95}``;
  ``one_char_edit_ratio`` (headline) and ``one_char_edit_ratio_adversarial`` as
  ``{n, p50, p95, mean, definition, prefill_ratio, prompt_reuse}`` (files written before
  ``definition`` existed: ``next_char_ratio`` was the headline and ``one_char_edit_ratio``
  the adversarial variant, both divided by the first request's round trip);
  ``generations_per_burst {bursts, max, each}``; ``components_ms``; ``settings``;
  ``not_answered`` (a list of strings); ``one_char_edit_ratio_context`` as ``{none,
  snippets}`` (each ``{n, p50, p95, prompt_reuse}``) and ``snippet_tokens`` (newer files).
- decode.json: one ``{prefill_768_ms, decode_step_ms, verify_9_ms}`` per weight format,
  at the top level or under ``formats``; ``int8_vs_bf16``.
- eval-completion.json (eval_completion.py): ``heldout`` and ``dev`` (either may be missing),
  each with ``single`` and ``multi`` as ``{n, engine, baseline, exact_diff(_ci95),
  es_diff(_ci95), engine_better_sites, baseline_better_sites, original_loops}``, where
  ``engine`` and ``baseline`` are ``{exact(_ci95), es(_ci95), empty, loops, mean_lines}``
  (``baseline`` and the paired keys only with ``--baseline``, ``loops`` only in newer
  files); ``sources`` by split, ``options``, ``seed``, ``seconds``, ``note``. Files written
  before the splits: ``single`` and ``multi`` as ``{n, exact, prefix, similarity, empty}``
  at the top level, and ``files``.
- eval-weights.json (eval_weights.py merge): ``a`` and ``b`` (each run's ``{machine, device,
  weights, model, seconds, shards}``), ``unpaired_sites``; ``single`` and ``multi`` as
  ``{n, exact, es, identical_suggestions}``, a metric being ``{A, A_ci95, B, B_ci95, diff,
  diff_ci95, relative_diff}`` with A and B the two weight formats (b - a, relative to a).
- context.json (bench_context.py): ``repository {files, chunks, files_per_minute}``,
  ``embeddings``; ``with_context`` and ``without_context``, each with ``first_request_ms``,
  ``one_char_edit_ratio`` as ``{n, p50, p95}``, and (with context) ``retrieval_ms``.
- anything else: its numeric leaves, as a table.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DOCS = [REPO / "README.md", HERE / "README.md"]
# Known results files, in the order their sections appear.
KNOWN = ["latency", "decode", "eval-completion", "eval-weights", "documents"]
MAKE = {
    "latency": "make bench-latency",
    "decode": "make bench-decode",
    "eval-completion": "make eval-completion",
    "documents": "make bench-documents",
    "mutations": "make bench-mutations",
    "context": "make bench-context",
}
for _package in ("toolz", "more-itertools", "inflection", "boltons", "tabulate", "parse"):
    MAKE[f"localize-{_package}"] = f"make eval-localize PACKAGE={_package}"
    MAKE[f"repair-{_package}"] = f"make eval-repair PACKAGE={_package}"
BLOCK = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)
NOT_RECORDED = "not recorded"

Data = dict[str, Any]


# -- formatting ---------------------------------------------------------------------------


def num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and x != x:  # NaN in files written before JSON nulls
        return "–"
    return f"{x:.{digits}f}"


def ms(x: Any) -> str:
    """Milliseconds: whole numbers from 100 up, one decimal below, more below 0.1."""
    if not isinstance(x, int | float) or x != x:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 0.1:
        return f"{x:.1f}"
    return f"{x:.3f}" if x >= 0.001 else f"{x:.4f}"


def pct(x: Any) -> str:
    return "–" if not isinstance(x, int | float) or x != x else f"{x * 100:.0f}%"


def has(d: Any, *keys: str) -> bool:
    return isinstance(d, dict) and all(k in d and d[k] is not None for k in keys)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- what ran where -----------------------------------------------------------------------


def machine_text(data: Data) -> str:
    m = data.get("machine")
    if isinstance(m, dict):
        parts = [str(m.get("arch") or "?"), f"{m.get('cpus', '?')} cores"]
        parts.append(f"GPU {m['gpu']}" if m.get("gpu") else "no GPU")
        return ", ".join(parts)
    return str(m) if m else NOT_RECORDED


def backend_fact(data: Data, *keys: str) -> str:
    backend = data.get("backend") if isinstance(data.get("backend"), dict) else {}
    for key in keys:
        for source in (data, backend):
            value = source.get(key)
            if value not in (None, ""):
                return str(value)
    return NOT_RECORDED


def meta(name: str, data: Data, weights: str | None = None) -> str:
    """One line: the run's date, machine, model, device and weight format."""
    model = backend_fact(data, "model")
    if name == "latency" and "backend" not in data:
        model += " (the benchmark's fixed label, not what the server reported)"
    facts = [
        f"Run {data.get('date', NOT_RECORDED)}",
        f"machine: {machine_text(data)}",
        f"model: {model}",
        f"device: {backend_fact(data, 'device')}",
        f"weights: {weights or backend_fact(data, 'dtype', 'weights')}",
    ]
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    if "context_tokens" in settings:
        facts.append(f"prompt budget {settings['context_tokens']} tokens")
    if "debounce_ms" in settings:
        facts.append(f"debounce {settings['debounce_ms']} ms")
    if data.get("code"):
        facts.append(f"code at {data['code']}")
    return "; ".join(facts) + f". From `results/{name}.json`."


# -- latency ------------------------------------------------------------------------------


def edit_ratios(data: Data) -> tuple[Data, Data, str]:
    """(headline, adversarial, how the ratio is defined) for new and older files."""
    head = data.get("one_char_edit_ratio")
    if has(head, "definition"):
        return head, data.get("one_char_edit_ratio_adversarial") or {}, head["definition"]
    # Older files: the headline was `next_char_ratio`, the adversarial one
    # `one_char_edit_ratio`, both the new request's round trip / the first request's.
    legacy = "the new request's round trip ÷ the first request's round trip"
    old = dict(head or {})
    old.setdefault("prefill_ratio", data.get("one_char_edit_prefill_ratio"))
    old.setdefault("prompt_reuse", data.get("one_char_edit_prompt_reuse"))
    return data.get("next_char_ratio") or {}, old, legacy


def prefill_row(ratio: dict) -> list[list[str]]:
    """The row under a one-character-edit ratio: its prompt processing (prefill) share."""
    if not (has(ratio, "prefill_ratio") and has(ratio["prefill_ratio"], "p50")):
        return []
    pre = ratio["prefill_ratio"]
    return [
        [
            "same, its prompt processing (prefill) ÷ the first request's: p50 / p95",
            f"{num(pre['p50'])} / {num(pre.get('p95'))}",
            "",
        ]
    ]


def latency_rows(data: Data) -> list[list[str]]:
    rows: list[list[str]] = []

    def p50_p95(key: str, label: str, target: str = "", unit: str = " ms") -> None:
        d = data.get(key)
        if has(d, "p50", "p95"):
            rows.append([f"{label}, p50 / p95", f"{ms(d['p50'])} / {ms(d['p95'])}{unit}", target])

    p50_p95("server_overhead_ms", "server overhead excluding model time", "p95 ≤ 10 ms")
    p50_p95(
        "client_roundtrip_overhead_ms",
        "same, seen by the client (JSON-RPC round trip minus model time)",
    )
    p50_p95("single_line_ms", "single-line request end to end")
    p50_p95("multi_line_ms", "multi-line request end to end")

    head, adv, definition = edit_ratios(data)
    if has(head, "p50"):
        rows.append(
            [
                "**one-character edit (headline)**: the request after typing the original "
                f"code's next character ({definition}), {head.get('n', '?')} cases where the "
                "suggestion did not start with it: **p50** / mean / p95",
                f"**{num(head['p50'])}** / {num(head.get('mean'))} / {num(head.get('p95'))}",
                "p50 ≤ 0.30",
            ]
        )
    rows += prefill_row(head)
    if has(adv, "p50"):
        rows.append(
            [
                "one-character edit, adversarial: an arbitrary character that does not match "
                f"the suggestion, {adv.get('n', '?')} cases: p50 / mean / p95",
                f"{num(adv['p50'])} / {num(adv.get('mean'))} / {num(adv.get('p95'))}",
                "",
            ]
        )
    rows += prefill_row(adv)
    reuse = next(
        (v["prompt_reuse"] for v in (head, adv) if has(v, "prompt_reuse")),
        None,
    )
    if has(reuse, "p50"):
        rows.append(["prompt tokens reused after the edit, p50", pct(reuse["p50"]), ""])

    ctx = data.get("one_char_edit_ratio_context")
    if has(ctx, "none", "snippets") and has(ctx["snippets"], "p50"):
        tokens = ctx.get("snippet_tokens") or {}
        for variant, label in (("none", "without"), ("snippets", "with")):
            v = ctx[variant]
            reuse = v.get("prompt_reuse") or {}
            extra = (
                f", {num(tokens.get('p50'), 0)} snippet tokens (p50)"
                if variant == "snippets" and has(tokens, "p50")
                else ""
            )
            rows.append(
                [
                    f"one-character edit {label} context snippets in the prompt "
                    f"(in-process engine, {v.get('n', '?')} cases{extra}): p50 / p95; "
                    "prompt tokens reused p50",
                    f"{num(v['p50'])} / {num(v.get('p95'))}; {pct(reuse.get('p50'))}",
                    "p50 ≤ 0.30" if variant == "snippets" else "",
                ]
            )

    ta = data.get("typed_ahead")
    if has(ta, "hits", "tries"):
        rows.append(
            [
                "typed-ahead hits (user types the suggestion's first character)",
                f"{ta['hits']} of {ta['tries']}, p50 {ms(ta.get('p50'))} ms, "
                f"p95 {ms(ta.get('p95'))} ms",
                "p95 ≤ 5 ms",
            ]
        )
    bursts = data.get("generations_per_burst")
    if has(bursts, "max", "each") and bursts["each"]:
        rows.append(
            [
                "model generations started per burst of 10 keystrokes 40 ms apart",
                f"{min(bursts['each'])}–{bursts['max']} "
                f"(max {bursts['max']} over {bursts.get('bursts', len(bursts['each']))} bursts)",
                "≤ 2",
            ]
        )
    stop = data.get("superseded_stop_ms")
    steps = data.get("superseded_stop_decode_steps")
    if has(stop, "p50", "p95"):
        text = f"p50 {ms(stop['p50'])} ms, p95 {ms(stop['p95'])} ms"
        if has(steps, "p50", "p95"):
            text += f" = {num(steps['p50'])} / {num(steps['p95'])} decode steps"
        rows.append(["a superseded generation stops after", text, "≤ 1 step"])
    p50_p95(
        "cancel_request_stop_ms",
        "a generation stopped by `$/cancelRequest` stops after",
    )
    busy = data.get("declined_while_busy_ms")
    if has(busy, "p50", "p95"):
        first = ""
        if "answered_first" in busy:
            first = f", {busy['answered_first']} of {busy['n']} before it"
        rows.append(
            [
                "a request the policy declines, while another generation runs: round trip, "
                "p50 / p95",
                f"{ms(busy['p50'])} / {ms(busy['p95'])} ms{first}",
                "",
            ]
        )
    step = data.get("decode_step_ms")
    if has(step, "p50"):
        rows.append(["decode step (one forward pass), p50", f"{ms(step['p50'])} ms", ""])
    tpp = data.get("tokens_per_forward_pass")
    if has(tpp, "p50", "p95"):
        rows.append(
            [
                "tokens per forward pass with prompt-lookup drafts, p50 / p95",
                f"{num(tpp['p50'], 1)} / {num(tpp['p95'], 1)}",
                "",
            ]
        )
    if data.get("first_request_incl_load_s") is not None:
        rows.append(
            [
                "first request including model load (converted cache present)",
                f"{num(data['first_request_incl_load_s'], 1)} s",
                "",
            ]
        )
    missed = data.get("not_answered")
    if isinstance(missed, list) and missed:
        rows.append(
            ["cases whose first request got no model answer", "; ".join(map(str, missed)), ""]
        )
    labels = {
        "policy_decide_2000_lines": "completion policy on a 2,000-line file edited each time",
        "is_complete_multi_line": "post-processor completeness check, growing multi-line text",
        "prompt_render_2500_lines": "prompt template rendering, 2,500 lines",
        "policy_decide_5mb": "completion policy on 5 MB documents",
        "embedded_backend_construct": "constructing the embedded backend (no model read)",
    }
    for key, d in (data.get("components_ms") or {}).items():
        if has(d, "p50", "p95"):
            label = labels.get(key, key.replace("_", " "))
            figure = f"{ms(d['p50'])} / {ms(d['p95'])} ms"
            rows.append([f"in-process: {label}, p50 / p95", figure, ""])
    return rows


def render_latency(name: str, data: Data) -> str:
    rows = latency_rows(data)
    return meta(name, data) + "\n\n" + table(["figure", "result", "target"], rows)


# -- decode -------------------------------------------------------------------------------

DECODE_COLUMNS = [
    ("prefill_768_ms", "prefill 768 tokens"),
    ("decode_step_ms", "decode step"),
    ("verify_9_ms", "9-token verify pass"),
]
FORMAT_NAMES = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}


def decode_formats(data: Data) -> dict[str, Data]:
    source = data.get("formats") if isinstance(data.get("formats"), dict) else data
    return {
        k: v
        for k, v in source.items()
        if isinstance(v, dict) and "decode_step_ms" in v and not k.endswith("_vs_bf16")
    }


def render_decode(name: str, data: Data) -> str:
    formats = decode_formats(data)
    cols = [c for c in DECODE_COLUMNS if any(c[0] in v for v in formats.values())]
    rows = [
        [FORMAT_NAMES.get(k, k)] + [f"{ms(v.get(c))} ms" if c in v else "–" for c, _ in cols]
        for k, v in formats.items()
    ]
    ratio = data.get("int8_vs_bf16")
    if isinstance(ratio, dict):
        rows.append(["int8 ÷ bf16"] + [num(ratio.get(c)) for c, _ in cols])
    weights = ", ".join(FORMAT_NAMES.get(k, k) for k in formats) + " (one row each)"
    text = meta(name, data, weights if formats else None)
    return text + "\n\n" + table(["weights"] + [label for _, label in cols], rows)


# -- completion quality -------------------------------------------------------------------

# Files written before the dev/held-out splits: `single` and `multi` at the top level.
OLD_EVAL_KINDS = {
    "single": "single-line (rest of the line)",
    "multi": "multi-line (first line of the body)",
}
OLD_EVAL_COLUMNS = [
    ("exact", "exact match"),
    ("prefix", "suggestion is a prefix of the original"),
    ("similarity", "similarity (difflib ratio)"),
    ("empty", "empty"),
]
EVAL_SPLITS = {"heldout": "held-out (only ever reported)", "dev": "dev (tuned on)"}
EVAL_KINDS = {"single": "single-line", "multi": "multi-line"}
EVAL_SYSTEMS = (
    "Two systems on the same sites. Engine: the completion engine as the server runs it "
    "(policy, indentation lead, token healing, early stop, post-processing). Baseline: "
    "plain greedy generation of the same model on the same prompt window, cut at the first "
    "line end (single-line) or where the block dedents (multi-line). Edit similarity is "
    "1 − Levenshtein distance ÷ the longer text's length; [brackets] are 95% bootstrap "
    "intervals, and engine − baseline is the mean of the per-site differences."
)


def eval_splits(data: Data) -> dict[str, Data]:
    """The current format's splits present in ``data``, held-out first."""
    return {
        split: data[split]
        for split in EVAL_SPLITS
        if isinstance(data.get(split), dict)
        and any(isinstance(data[split].get(k), dict) for k in EVAL_KINDS)
    }


def interval(ci: Any, fmt: Callable[[Any], str]) -> str:
    if (
        isinstance(ci, list | tuple)
        and len(ci) == 2
        and all(isinstance(x, int | float) for x in ci)
    ):
        if all(x == x for x in ci):  # no NaN
            return f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return ""


def es(x: Any) -> str:
    """An edit similarity (or a mean of them): three decimals, as the files record it."""
    return num(x, 3)


def signed(x: Any) -> str:
    """A difference of edit similarities, with its sign."""
    return num(x) if not isinstance(x, int | float) or x != x else f"{x:+.3f}"


def signed_pct(x: Any) -> str:
    """A difference of shares, in percentage points."""
    return pct(x) if not isinstance(x, int | float) or x != x else f"{x * 100:+.0f} pp"


def share_ci(block: Any, key: str, fmt: Callable[[Any], str]) -> str | None:
    """``block[key]`` with its ``key_ci95`` interval where recorded; None where absent."""
    if not has(block, key):
        return None
    return fmt(block[key]) + interval(block.get(f"{key}_ci95"), fmt)


def eval_rows(kinds: dict[str, Data]) -> list[list[str]]:
    """The figures of one split, a column per kind; a figure no kind has is left out."""

    def system(name: str) -> Callable[[Data], Data]:
        return lambda b: b.get(name) if isinstance(b.get(name), dict) else {}

    engine, baseline = system("engine"), system("baseline")
    figures: list[tuple[str, list[tuple[str, Callable[[Data], str | None]]]]] = [
        ("sites", [("", lambda b: str(b["n"]) if has(b, "n") else None)]),
        ("exact match, engine", [("", lambda b: share_ci(engine(b), "exact", pct))]),
        ("exact match, baseline", [("", lambda b: share_ci(baseline(b), "exact", pct))]),
        ("edit similarity, engine", [("", lambda b: share_ci(engine(b), "es", es))]),
        ("edit similarity, baseline", [("", lambda b: share_ci(baseline(b), "es", es))]),
        (
            "**edit similarity, engine − baseline** (paired)",
            [("", lambda b: share_ci(b, "es_diff", signed))],
        ),
        (
            "sites where each scores higher (edit similarity)",
            [
                (
                    "engine",
                    lambda b: (
                        str(b["engine_better_sites"]) if has(b, "engine_better_sites") else None
                    ),
                ),
                (
                    "baseline",
                    lambda b: (
                        str(b["baseline_better_sites"]) if has(b, "baseline_better_sites") else None
                    ),
                ),
            ],
        ),
        (
            "suggestions with a repetition loop",
            [
                ("engine", lambda b: pct(engine(b)["loops"]) if has(engine(b), "loops") else None),
                (
                    "baseline",
                    lambda b: pct(baseline(b)["loops"]) if has(baseline(b), "loops") else None,
                ),
                (
                    "original code",
                    lambda b: pct(b["original_loops"]) if has(b, "original_loops") else None,
                ),
            ],
        ),
        (
            "empty suggestions",
            [
                ("engine", lambda b: pct(engine(b)["empty"]) if has(engine(b), "empty") else None),
                (
                    "baseline",
                    lambda b: pct(baseline(b)["empty"]) if has(baseline(b), "empty") else None,
                ),
            ],
        ),
    ]
    rows = []
    blocks = list(kinds.values())
    for label, parts in figures:
        cells = [[get(b) for _, get in parts] for b in blocks]
        present = [i for i in range(len(parts)) if any(c[i] is not None for c in cells)]
        if not present:
            continue
        names = [parts[i][0] for i in present]
        if any(names):
            label += ": " + " / ".join(names)
        rows.append([label] + [" / ".join(c[i] or "–" for i in present) for c in cells])
    return rows


def render_eval(name: str, data: Data) -> str:
    splits = eval_splits(data)
    if not splits and any(isinstance(data.get(k), dict) for k in OLD_EVAL_KINDS):
        return render_eval_old(name, data)
    parts = [meta(name, data), EVAL_SYSTEMS]
    run = []
    options = data.get("options") if isinstance(data.get("options"), dict) else {}
    if options:
        run.append("Engine options: " + ", ".join(f"`{k}` {v}" for k, v in options.items()))
    if data.get("seed") is not None:
        run.append(f"sites chosen with seed {data['seed']}")
    if isinstance(data.get("seconds"), int | float):
        run.append(f"{data['seconds']:,.0f} s in all")
    if run:
        parts[-1] += " " + "; ".join(run) + "."
    if data.get("note"):
        parts[-1] += f" Note: {str(data['note']).rstrip('.')}."
    sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
    for split, block in splits.items():
        kinds = {k: block[k] for k in EVAL_KINDS if isinstance(block.get(k), dict)}
        head = f"**{EVAL_SPLITS[split]}**"
        names = sources.get(split)
        if isinstance(names, list) and names:
            listed = ", ".join(str(s).removesuffix(".py") for s in names)
            head += f": sites from {len(names)} sources: {listed}."
        header = ["figure"] + [EVAL_KINDS[k] for k in kinds]
        parts += [head, table(header, eval_rows(kinds))]
    if not splits:
        parts.append("No split recorded.")
    return "\n\n".join(parts)


def render_eval_old(name: str, data: Data) -> str:
    rows = [
        [label, str(data[k].get("n", "?"))] + [num(data[k].get(c)) for c, _ in OLD_EVAL_COLUMNS]
        for k, label in OLD_EVAL_KINDS.items()
        if isinstance(data.get(k), dict)
    ]
    text = meta(name, data)
    files = data.get("files")
    if isinstance(files, list) and files:
        held_out = ", ".join(str(f).removesuffix(".py") for f in files)
        text += f" Held-out modules ({len(files)}): {held_out}."
    header = ["kind", "n"] + [label for _, label in OLD_EVAL_COLUMNS]
    return text + "\n\n" + table(header, rows)


# -- completion quality per weight format -------------------------------------------------


def weights_formats(data: Data) -> tuple[str, str] | None:
    """The two formats compared (a, b): the comparison is b − a, relative to a."""
    labels = [
        data[side].get("weights") if isinstance(data.get(side), dict) else None
        for side in ("a", "b")
    ]
    if all(isinstance(x, str) and x for x in labels):
        return labels[0], labels[1]
    return None


def weights_view(data: Data) -> Data:
    """``data`` with the device its two runs record (the merged file has none of its own)."""
    view = dict(data)
    runs = [data[s] for s in ("a", "b") if isinstance(data.get(s), dict)]
    devices = {r.get("device") for r in runs} - {None, ""}
    if len(devices) == 1:
        view.setdefault("device", devices.pop())
    elif devices:
        view.setdefault(
            "device",
            ", ".join(
                f"{FORMAT_NAMES.get(r.get('weights'), r.get('weights'))} on "
                f"{r.get('device') or NOT_RECORDED}"
                for r in runs
            ),
        )
    return view


def render_eval_weights(name: str, data: Data) -> str:
    formats = weights_formats(data)
    kinds = {k: data[k] for k in EVAL_KINDS if isinstance(data.get(k), dict)}
    if formats is None:  # not the format eval_weights.py merge writes
        return render_generic(name, data)
    a, b = formats
    short = {f: FORMAT_NAMES.get(f, f) for f in formats}
    view = weights_view(data)
    text = meta(name, view, f"{short[a]} and {short[b]} (a column each)")
    how = (
        "The same sites as `eval_completion.py` (both splits, dev and held-out, together) "
        "through the same engine path; only the weights differ. Edit similarity is "
        "1 − Levenshtein distance ÷ the longer text's length; [brackets] are 95% bootstrap "
        f"intervals; {short[b]} − {short[a]} is paired by site, and relative to {short[a]}."
    )
    shards = [data[s].get("shards") for s in ("a", "b")]
    seconds = [data[s].get("seconds") for s in ("a", "b")]
    if all(isinstance(x, int) for x in shards):
        how += (
            f" Written by `benchmarks/eval_weights.py merge` from {shards[0]} {short[a]} and "
            f"{shards[1]} {short[b]} shard runs (`eval_weights.py run`)"
        )
        if all(isinstance(x, int | float) for x in seconds):
            how += f", {seconds[0]:,.0f} s and {seconds[1]:,.0f} s of runs"
        how += "."
    if isinstance(data.get("unpaired_sites"), int) and data["unpaired_sites"]:
        how += f" {data['unpaired_sites']} sites ran in one format only and are left out."
    rows: list[list[str]] = []
    for kind, block in kinds.items():
        for metric, label, fmt in (("exact", "exact match", pct), ("es", "edit similarity", es)):
            m = block.get(metric)
            if not isinstance(m, dict):
                continue
            diff = share_ci(m, "diff", signed if metric == "es" else signed_pct) or "–"
            if has(m, "relative_diff"):
                diff += f" ({m['relative_diff'] * 100:+.0f}% relative to {short[a]})"
            rows.append(
                [
                    f"{EVAL_KINDS[kind]}, {label}",
                    str(block.get("n", "?")),
                    share_ci(m, a, fmt) or "–",
                    share_ci(m, b, fmt) or "–",
                    diff,
                ]
            )
        if has(block, "identical_suggestions", "n"):
            rows.append(
                [
                    f"{EVAL_KINDS[kind]}, identical suggestions",
                    str(block["n"]),
                    "",
                    "",
                    f"{block['identical_suggestions']} of {block['n']}",
                ]
            )
    header = ["figure", "sites", short[a], short[b], f"{short[b]} − {short[a]}"]
    return text + "\n\n" + how + "\n\n" + table(header, rows)


# -- anything else ------------------------------------------------------------------------

META_KEYS = {"date", "machine", "model", "device", "dtype", "weights", "backend", "settings"}


def leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [(path, value)]
    if isinstance(value, dict):
        return [
            leaf
            for k, v in value.items()
            if not (not path and k in META_KEYS)
            for leaf in leaves(v, f"{path}.{k}" if path else str(k))
        ]
    return []  # lists (examples, per-case rows) are not figures


def render_generic(name: str, data: Data) -> str:
    rows = [[f"`{k}`", f"{v:g}" if isinstance(v, float) else str(v)] for k, v in leaves(data)]
    return meta(name, data) + "\n\n" + table(["figure", "value"], rows)


def _rate(block: Any, key: str) -> str:
    """``block[key]`` as a share with its interval: ``0.78 [0.62, 0.90]``."""
    value = (block or {}).get(key)
    if isinstance(value, dict) and "mean" in value:
        return f"{num(value['mean'])} {interval(value.get('ci95'), num)}".strip()
    return num(value) if isinstance(value, int | float) else "—"


def render_backends(name: str, data: Data) -> str:
    """backends.json (bench_backends.py): the embedded model through transformers (bf16,
    int8) and llama.cpp's server, side by side: latency through `hone serve`, quality."""
    systems = list((data.get("systems") or {}).keys())
    latency = data.get("latency") or {}
    quality = data.get("quality") or {}
    rows = []
    for system in systems:
        lat = latency.get(system) or {}
        row = [
            system,
            ms((lat.get("single_line_ms") or {}).get("p50")),
            ms((lat.get("multi_line_ms") or {}).get("p50")),
            num((lat.get("one_char_edit_ratio") or {}).get("p50")),
        ]
        for kind in ("single", "multi"):
            block = (quality.get(kind) or {}).get(system) or {}
            row.append(es(block.get("es")) if block else "—")
        rows.append(row)
    head = table(
        ["backend", "single-line p50", "multi-line p50", "one-char-edit ratio p50",
         "edit similarity, single-line", "edit similarity, multi-line"],
        rows,
    )  # fmt: skip
    diffs = []
    for kind in ("single", "multi"):
        for other in systems[1:]:
            block = (quality.get(kind) or {}).get(f"{other} - {systems[0]}") or {}
            if "es" in block:
                d = block["es"]
                diffs.append(
                    f"{kind}-line, {other} − {systems[0]}: {signed(d.get('mean'))}"
                    f"{interval(d.get('ci95'), signed)}"
                )
    sites = quality.get("sites")
    text = meta(name, data) + "\n\n" + head
    if diffs:
        text += (
            f"\n\nPaired edit-similarity differences on the same {sites} held-out sites "
            "(95% CI): " + "; ".join(diffs) + "."
        )
    install = data.get("install") or {}
    if install:
        text += "\n\nInstall: " + "; ".join(f"{k}: {v}" for k, v in install.items()) + "."
    return text


def render_localize(name: str, data: Data) -> str:
    """localize-PACKAGE.json (eval_localize.py): top-1/top-5 per ranking, the margin."""
    overall = data.get("overall") or {}
    rows = []
    for system, label in (
        ("fused", "hone (fused)"),
        ("traceback", "deepest traceback frame (baseline)"),
        ("ochiai", "plain Ochiai (baseline)"),
        ("spectrum", "hone's spectrum signal alone (ablation)"),
    ):
        if system in overall:
            rows.append([label, _rate(overall[system], "top1"), _rate(overall[system], "top5")])
    for k in (1, 5):
        margin = overall.get(f"margin_top{k}")
        if isinstance(margin, dict):
            rows.append(
                [f"margin over the better baseline ({margin.get('over')}), top-{k}"]
                + ([_rate({"m": margin}, "m"), ""] if k == 1 else ["", _rate({"m": margin}, "m")])
            )
    n = overall.get("n")
    head = f"{n} bugs, split {data.get('split', NOT_RECORDED)}. " if n else ""
    return head + meta(name, data) + "\n\n" + table(["ranking", "top-1", "top-5"], rows)


# Injected kinds whose replacements come from the same pool as the ingredient templates'
# (the module's literals, callees, attributes): their fixed share flatters (bugs.py).
MODULE_KINDS = ("constant", "wrong-call", "wrong-attribute")


def _share_without(kinds: list, left_out: tuple[str, ...]) -> str:
    """The fixed share over the bugs of the other kinds, from the per-kind rows."""
    rows = [k for k in kinds if isinstance(k, dict) and k.get("kind") not in left_out]
    n = sum(k.get("n", 0) for k in rows)
    if not n:
        return "—"
    fixed = sum(round(k.get("n", 0) * k.get("fixed", 0)) for k in rows)
    return f"{fixed / n:.2f} ({fixed} of {n})"


def render_repair(name: str, data: Data) -> str:
    """repair-PACKAGE.json (eval_repair.py): bugs fixed, per kind, time, sources, claims."""
    o = data.get("overall") or {}
    sec = o.get("seconds") or {}
    src = o.get("fixes_by_source") or {}
    rows = [
        ["bugs fixed", _rate(o, "fixed")],
        ["fixed within 120 s", num(o.get("fixed_within_120s"))],
        [
            "fixed, kinds other than constant / wrong-call / wrong-attribute",
            _share_without(data.get("by_kind") or [], MODULE_KINDS),
        ],
        ["fixes that restore the original code", str(o.get("restores_original", "—"))],
        ["fixes from templates / the model", f"{src.get('template', 0)} / {src.get('model', 0)}"],
        ["false claims (a fix that fails the independent re-run)", str(o.get("false_claims"))],
        ["workspaces changed", str(o.get("workspace_changed"))],
        [
            "seconds per bug, median / p95 (budget)",
            f"{num(sec.get('median'), 1)} / {num(sec.get('p95'), 1)} ({num(sec.get('budget'), 0)})",
        ],
    ]
    kinds = [
        [
            k["kind"] + ("" if k.get("in_templates") else " (no operator template)"),
            str(k["n"]),
            num(k["fixed"]),
            str(k.get("from_model", 0)),
            num(k.get("median_s"), 1),
        ]
        for k in data.get("by_kind") or []
    ]
    repair = data.get("repair") or {}
    head = (
        f"{o.get('n')} bugs, split {data.get('split', NOT_RECORDED)}, "
        f"{'templates and the model' if repair.get('model') else 'templates only'}. "
    )
    out = head + meta(name, data) + "\n\n" + table(["figure", "value"], rows)
    if kinds:
        out += "\n\n" + table(["fault kind", "bugs", "fixed", "by the model", "median s"], kinds)
    return out


def renderer(name: str) -> Callable[[str, Data], str]:
    if name.startswith("localize-"):
        return render_localize
    if name.startswith("repair-"):
        return render_repair
    return RENDERERS.get(name, render_generic)


RENDERERS: dict[str, Callable[[str, Data], str]] = {
    "backends": render_backends,
    "latency": render_latency,
    "decode": render_decode,
    "eval-completion": render_eval,
    "eval-weights": render_eval_weights,
}
TITLES = {
    "backends": "Backends: transformers and llama.cpp",
    "latency": "Latency",
    "decode": "Weight formats, decode",
    "eval-completion": "Completion quality",
    "eval-weights": "Weight formats, quality",
    "documents": "Documents",
    "mutations": "Repair templates, speed",
}


def ci_text(block: Data, key: str, fmt: Callable[[Any], str]) -> str:
    """``95% CI lo to hi`` from ``block[key_ci95]``, or "" where not recorded."""
    ci = interval(block.get(f"{key}_ci95"), fmt)
    return f", 95% CI {ci[2:-1].replace(', ', ' to ')}" if ci else ""


def eval_summary(ev: Data) -> str:
    """One paragraph: the held-out split's engine and baseline figures, then the meta."""
    splits = eval_splits(ev)
    if not splits:  # files from before the splits
        sims = [
            f"{kind} similarity {num(ev[kind].get('similarity'))}"
            for kind in ("single", "multi")
            if isinstance(ev.get(kind), dict) and "similarity" in ev[kind]
        ]
        if not sims:
            return ""
        return (
            "`make eval-completion`: quality on held-out standard-library modules, "
            + ", ".join(sims)
            + ". "
            + meta("eval-completion", ev)
        )
    split = next(iter(splits))  # held-out where it ran
    block = splits[split]
    sources = ev.get("sources") if isinstance(ev.get("sources"), dict) else {}
    names = sources.get(split) if isinstance(sources.get(split), list) else []
    sdists = sum("==" in str(x) for x in names)
    stdlib = len(names) - sdists
    where = (
        f" ({stdlib} standard-library module{'s' * (stdlib != 1)}, "
        f"{sdists} PyPI sdist{'s' * (sdists != 1)})"
        if names
        else ""
    )
    label = "held-out code" if split == "heldout" else "the dev split (tuned on)"
    figures = []
    for kind, kind_label in EVAL_KINDS.items():
        b = block.get(kind)
        if not isinstance(b, dict):
            continue
        eng = b.get("engine") if isinstance(b.get("engine"), dict) else {}
        base = b.get("baseline") if isinstance(b.get("baseline"), dict) else {}
        if not has(eng, "es"):
            continue
        n = f" ({b['n']} sites)" if has(b, "n") else ""
        if has(base, "es"):
            text = f"{kind_label}{n}: edit similarity {es(eng['es'])} vs {es(base['es'])}"
            if has(b, "es_diff"):
                text += (
                    f" (paired difference {signed(b['es_diff'])}{ci_text(b, 'es_diff', signed)})"
                )
            if has(eng, "exact") and has(base, "exact"):
                text += f", exact match {pct(eng['exact'])} vs {pct(base['exact'])}"
            if has(eng, "loops") and has(base, "loops"):
                text += f", repetition loops {pct(eng['loops'])} vs {pct(base['loops'])}"
                if has(b, "original_loops"):
                    text += f" (original code {pct(b['original_loops'])})"
        else:
            text = f"{kind_label}{n}: edit similarity {es(eng['es'])}"
            if has(eng, "exact"):
                text += f", exact match {pct(eng['exact'])}"
            if has(eng, "loops"):
                text += f", repetition loops {pct(eng['loops'])}"
        figures.append(text)
    if not figures:
        return ""
    systems = (
        "the engine vs plain greedy generation of the same model on the same prompt window"
        if any(isinstance(block.get(k), dict) and "baseline" in block[k] for k in EVAL_KINDS)
        else "the engine (no baseline run)"
    )
    return (
        f"`make eval-completion`: completion quality on {label}{where}, {systems}; "
        + "; ".join(figures)
        + ". "
        + meta("eval-completion", ev)
    )


def eval_weights_summary(ew: Data) -> str:
    """One sentence: the second weight format's edit similarity relative to the first's."""
    formats = weights_formats(ew)
    if formats is None:
        return ""
    a, b = (FORMAT_NAMES.get(f, f) for f in formats)
    figures = []
    for kind, kind_label in EVAL_KINDS.items():
        m = ew.get(kind, {}).get("es") if isinstance(ew.get(kind), dict) else None
        if has(m, "relative_diff", formats[0], formats[1]):
            text = (
                f"{m['relative_diff'] * 100:+.0f}% {kind_label} "
                f"({es(m[formats[1]])} vs {es(m[formats[0]])}"
            )
            if has(m, "diff"):
                text += f", paired difference {signed(m['diff'])}{ci_text(m, 'diff', signed)}"
            figures.append(text + ")")
    if not figures:
        return ""
    device = weights_view(ew).get("device")
    on = f", both on {device}" if device and "," not in device else ""
    return (
        f"`benchmarks/eval_weights.py`: the engine's edit similarity, {b} − {a} weights "
        f"relative to {a} (the same sites{on}): "
        + " and ".join(figures)
        + ". "
        + meta("eval-weights", weights_view(ew), f"{a} and {b}")
    )


def retrieval_summary(rt: Data) -> str:
    """One sentence: recall@5 of the defining chunk on the held-out packages (else dev),
    the fused ranking against BM25 alone, with the cursor after and before the name."""
    split = next((s for s in ("heldout", "dev") if isinstance(rt.get(s), dict)), None)
    if split is None:
        return ""
    block = rt[split]
    figures = []
    for cursor, label in (("after", "after the name is typed"), ("before", "before it")):
        fused, bm25 = block.get(f"{cursor}_fused_recall@5"), block.get(f"{cursor}_bm25_recall@5")
        vec = block.get(f"{cursor}_fused_embeddings_recall@5")
        if has(fused, "mean") and has(bm25, "mean"):
            figures.append(
                f"{label} {num(fused['mean'])}{interval(fused.get('ci95'), num)} "
                f"(BM25 alone {num(bm25['mean'])}"
                + (f", with embeddings {num(vec['mean'])}" if has(vec, "mean") else "")
                + ")"
            )
    if not figures:
        return ""
    for cursor, label in (("", "after the name"), ("before_", "before it")):
        without = block.get(f"{cursor}completion_exact_without_context")
        with_ = block.get(f"{cursor}completion_exact_with_context")
        if not (has(without, "mean") and has(with_, "mean")):
            continue
        diff = block.get(f"{cursor}completion_exact_diff") or {}
        named = (
            block.get(f"{cursor}completion_name_with_context"),
            block.get(f"{cursor}completion_name_without_context"),
        )
        figures.append(
            f"completing the rest of the line (cursor {label}, "
            f"{block.get(cursor + 'completion_sites', '?')} sites, the embedded model): exact "
            f"match {pct(with_['mean'])} with context vs {pct(without['mean'])} without"
            + (
                f" (paired difference {signed_pct(diff['mean'])}"
                f"{interval(diff.get('ci95'), signed_pct)})"
                if has(diff, "mean")
                else ""
            )
            + (
                f", the callee named {pct(named[0]['mean'])} vs {pct(named[1]['mean'])}"
                if has(named[0], "mean") and has(named[1], "mean")
                else ""
            )
        )
    packages = ", ".join(p.split("==")[0] for p in (block.get("packages") or {}))
    where = EVAL_SPLITS.get(split, split)
    timing = block.get("retrieve_ms")
    took = (
        f"; retrieval {ms(timing['p50'])} / {ms(timing['p95'])} ms p50 / p95 in-process"
        if has(timing, "p50", "p95")
        else ""
    )
    slow = block.get("retrieve_embeddings_ms")
    if has(slow, "p50", "p95"):
        took += f" ({ms(slow['p50'])} / {ms(slow['p95'])} ms with embeddings)"
    if any(k.endswith("_fused_embeddings_recall@5") for k in block):
        embedded = (
            f" The fused ranking is the server's default, without the embeddings source; "
            f"'with embeddings' adds it ({rt.get('embeddings')})."
        )
    elif rt.get("embeddings"):  # files written before both rankings were measured
        embedded = (
            f" The fused ranking here includes the embeddings source ({rt['embeddings']}); "
            "the server leaves it off by default, as it lowered these recalls."
        )
    else:
        embedded = ""
    return (
        f"`make eval-retrieval`: recall@5 of the chunk defining the name a line calls from "
        f"another module, {where} packages ({packages}, {block.get('sites', '?')} sites): "
        + "; ".join(figures)
        + took
        + "."
        + embedded
        + " "
        + meta("retrieval", rt)
    )


def thousands(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "?"


def context_summary(cx: Data) -> str:
    """One paragraph: retrieval's time inside the running server on the benchmark's
    repository, and the one-character-edit ratio with and without context."""
    with_, without = cx.get("with_context"), cx.get("without_context")
    if not isinstance(with_, dict) or not has(with_.get("retrieval_ms"), "p50", "p95"):
        return ""
    repo = cx.get("repository") or {}
    took = with_["retrieval_ms"]
    text = (
        f"`make bench-context`: inside the running server (`hone serve` over stdio, "
        f"{thousands(repo.get('files'))}-file repository, {thousands(repo.get('chunks'))} chunks, "
        f"embeddings {'on' if cx.get('embeddings') else 'off'}), a completion request's "
        f"retrieval took {ms(took['p50'])} ms p50 / {ms(took['p95'])} ms p95 "
        f"over {took.get('n', '?')} requests"
    )
    if repo.get("files_per_minute"):
        text += (
            f"; `hone index` built the index at {thousands(repo['files_per_minute'])} files "
            "a minute"
        )
    a, b = with_.get("one_char_edit_ratio"), (without or {}).get("one_char_edit_ratio")
    if has(a, "p50") and has(b, "p50"):
        text += (
            f"; the request after typing the code's next character ÷ the first request's "
            f"model time, p50: {num(a['p50'])} with context, {num(b['p50'])} without "
            f"({a.get('n', '?')} and {b.get('n', '?')} requests)"
        )
    fa, fb = with_.get("first_request_ms"), (without or {}).get("first_request_ms")
    if has(fa, "p50") and has(fb, "p50"):
        text += (
            f"; a first request end to end {ms(fa['p50'])} ms p50 with context, "
            f"{ms(fb['p50'])} ms without"
        )
    return text + ". " + meta("context", cx)


# -- the summary in the top-level README --------------------------------------------------


def repair_summary(results: dict[str, Data]) -> str:
    """One table over the localize-*.json and repair-*.json files: per package, the fused
    top-1/top-5 against the better baseline, and the share of bugs fixed."""
    packages = sorted(
        {n.split("-", 1)[1] for n in results if n.startswith(("localize-", "repair-"))}
    )
    rows = []
    for package in packages:
        loc = (results.get(f"localize-{package}") or {}).get("overall") or {}
        rep = (results.get(f"repair-{package}") or {}).get("overall") or {}
        split = (results.get(f"localize-{package}") or results.get(f"repair-{package}") or {}).get(
            "split", ""
        )
        cells = []
        for k in (1, 5):
            got = [
                num(((loc.get(system) or {}).get(f"top{k}") or {}).get("mean"))
                for system in ("fused", "traceback", "ochiai")
            ]
            cells.append(" / ".join(got) if loc else "—")
        fixed = "—"
        if isinstance(rep.get("fixed"), dict):
            sec = rep.get("seconds") or {}
            fixed = (
                f"{num(rep['fixed']['mean'])} of {rep.get('n')}, "
                f"median {num(sec.get('median'), 0)} s, false claims {rep.get('false_claims')}"
            )
        rows.append([f"{package} ({split})", *cells, fixed])
    if not rows:
        return ""
    return (
        "`make eval-localize` / `make eval-repair`: single faults injected into PyPI packages' "
        "own code, kept where their tests catch them (machine and model per file in "
        "benchmarks/README.md).\n\n"
        + table(
            [
                "package (split)",
                "localization top-1: hone / traceback / Ochiai",
                "top-5: hone / traceback / Ochiai",
                "bugs fixed (repair)",
            ],
            rows,
        )
    )


def render_summary(results: dict[str, Data]) -> str:
    lat = results.get("latency")
    parts: list[str] = []
    if lat is not None:
        n = (lat.get("server_overhead_ms") or {}).get("n")
        cases = f", {n} cases cut from standard-library modules" if n else ""
        parts.append(
            "`make bench-latency`: the real server over stdio" + cases + ". " + meta("latency", lat)
        )
        rows: list[list[str]] = []
        over = lat.get("server_overhead_ms")
        if has(over, "p95"):
            rows.append(["server overhead excluding model time, p95", f"{ms(over['p95'])} ms"])
        single, multi = lat.get("single_line_ms"), lat.get("multi_line_ms")
        if has(single, "p50") and has(multi, "p50"):
            rows.append(
                [
                    "single-line / multi-line end to end, p50",
                    f"{ms(single['p50'])} ms / {ms(multi['p50'])} ms",
                ]
            )
        head, adv, definition = edit_ratios(lat)
        if has(head, "p50"):
            rows.append(
                [
                    "request after typing the code's next character ÷ first request "
                    f"({definition}), p50 (mean)",
                    f"{num(head['p50'])} ({num(head.get('mean'))})",
                ]
            )
        if has(head, "prefill_ratio") and has(head["prefill_ratio"], "p50"):
            rows.append(
                [
                    "same, its prompt processing (prefill) ÷ the first request's, p50",
                    num(head["prefill_ratio"]["p50"]),
                ]
            )
        if has(adv, "p50"):
            rows.append(
                [
                    "same after an arbitrary character (adversarial), p50 (mean)",
                    f"{num(adv['p50'])} ({num(adv.get('mean'))})",
                ]
            )
        ctx = lat.get("one_char_edit_ratio_context")
        if has(ctx, "none", "snippets") and has(ctx["snippets"], "p50"):
            rows.append(
                [
                    "request after the next character with context snippets in the prompt "
                    "(in-process engine) ÷ first request's model time, p50",
                    f"{num(ctx['snippets']['p50'])} ({num(ctx['none'].get('p50'))} without)",
                ]
            )
        ta = lat.get("typed_ahead")
        if has(ta, "p95", "hits", "tries"):
            rows.append(
                [
                    "typed-ahead hit, p95",
                    f"{ms(ta['p95'])} ms ({ta['hits']} of {ta['tries']} hits)",
                ]
            )
        bursts = lat.get("generations_per_burst")
        if has(bursts, "max"):
            rows.append(
                [
                    "generations started per burst of 10 keystrokes 40 ms apart",
                    f"at most {bursts['max']}",
                ]
            )
        stop, steps = lat.get("superseded_stop_ms"), lat.get("superseded_stop_decode_steps")
        if has(stop, "p95"):
            extra = f" ({num(steps['p95'])} decode steps)" if has(steps, "p95") else ""
            rows.append(["superseded generation stops after, p95", f"{ms(stop['p95'])} ms{extra}"])
        parts.append(table(["figure", "result"], rows))
    ev = results.get("eval-completion")
    if ev is not None:
        text = eval_summary(ev)
        if text:
            parts.append(text)
    dec = results.get("decode")
    if dec is not None:
        formats = decode_formats(dec)
        bf16, int8 = formats.get("bfloat16"), formats.get("int8")
        if has(bf16, "decode_step_ms") and has(int8, "decode_step_ms"):
            speed = bf16["decode_step_ms"] / int8["decode_step_ms"]
            text = (
                f"`make bench-decode`: int8 weights decode {speed:.1f}× as fast as bf16 "
                f"({ms(int8['decode_step_ms'])} vs {ms(bf16['decode_step_ms'])} ms a step)"
            )
            if has(bf16, "prefill_768_ms") and has(int8, "prefill_768_ms"):
                text += f", prefill {int8['prefill_768_ms'] / bf16['prefill_768_ms']:.2f}× the time"
            parts.append(text + ". " + meta("decode", dec))
    ew = results.get("eval-weights")
    if ew is not None:
        text = eval_weights_summary(ew)
        if text:
            parts.append(text)
    rt = results.get("retrieval")
    if rt is not None:
        text = retrieval_summary(rt)
        if text:
            parts.append(text)
    cx = results.get("context")
    if cx is not None:
        text = context_summary(cx)
        if text:
            parts.append(text)
    text = repair_summary(results)
    if text:
        parts.append(text)
    if not parts:
        return "No results files yet: run `make bench-latency`."
    return "\n\n".join(parts)


# -- files --------------------------------------------------------------------------------


def load_results(folder: Path = RESULTS) -> dict[str, Data]:
    """Every results file in ``folder``: the known ones first, in order, then the rest."""
    found = {p.stem: p for p in sorted(folder.glob("*.json"))}
    order = [k for k in KNOWN if k in found] + [k for k in found if k not in KNOWN]
    out: dict[str, Data] = {}
    for stem in order:
        data = json.loads(found[stem].read_text(encoding="utf-8"))
        if isinstance(data, dict):
            out[stem] = data
    return out


def section(name: str, data: Data) -> str:
    render = renderer(name)
    title = TITLES.get(name, name.replace("-", " ").capitalize())
    how = f" (`{MAKE[name]}`)" if name in MAKE else ""
    return f"### {title}{how}\n\n{render(name, data)}"


def render_block(name: str, results: dict[str, Data]) -> str:
    if name == "summary":
        return render_summary(results)
    if name == "all":
        return "\n\n".join(section(k, v) for k, v in results.items()) or "No results files yet."
    if name in results:
        return section(name, results[name])
    return f"No `results/{name}.json` yet."


def render_doc(text: str, results: dict[str, Data]) -> str:
    """``text`` with every results block re-rendered from ``results``."""

    def fill(m: re.Match[str]) -> str:
        return f"{m.group(1)}{render_block(m.group(2), results)}\n{m.group(4)}"

    return BLOCK.sub(fill, text)


def stale(docs: list[Path] = DOCS, folder: Path = RESULTS) -> dict[Path, str]:
    """Each doc whose results blocks differ from what the results files render -> its diff."""
    results = load_results(folder)
    out = {}
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        new = render_doc(text, results)
        if new != text:
            out[doc] = "".join(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    str(doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc),
                    "rendered from benchmarks/results",
                )
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report stale docs (exit 1)")
    args = ap.parse_args()
    diffs = stale()
    if args.check:
        for diff in diffs.values():
            print(diff)
        if diffs:
            print("docs are stale: run `make report`", file=sys.stderr)
        return 1 if diffs else 0
    results = load_results()
    for doc in diffs:
        doc.write_text(render_doc(doc.read_text(encoding="utf-8"), results), encoding="utf-8")
        print(f"rewrote {doc.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
