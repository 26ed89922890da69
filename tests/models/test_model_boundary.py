"""The prompt boundary on real code, with the real embedded model.

After a block header and a bare newline, a small model tends to start a comment at column
0. The engine ends the prompt with the new line's indentation (inserted for the user too)
and the backend heals the last tokens (taking back the newline, it lets the model write the
line break and indentation itself); each should give code, and neither is the naive case.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest
from hone.agent.completion.engine import CompletionEngine, CompletionRequest
from hone.models.backend import GenerationRequest

pytestmark = pytest.mark.model

STDLIB = Path(sysconfig.get_paths()["stdlib"])
HEADER = re.compile(r"^(    )?def \w+\(.*\):\s*$")


def cases(n: int = 8) -> list[tuple[str, str]]:
    """(name, document prefix ending with a def header and a bare newline) from real files."""
    out = []
    for rel in ("textwrap.py", "shlex.py", "fractions.py", "calendar.py"):
        lines = (STDLIB / rel).read_text(encoding="utf-8").split("\n")
        found = [i for i, ln in enumerate(lines) if HEADER.match(ln) and i > 40]
        for i in found[:2]:
            out.append((f"{rel}:{i + 1}", "\n".join(lines[: i + 1]) + "\n"))
    return out[:n]


def starts_with_code(text: str) -> bool:
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    return bool(first) and first[0] == " " and not first.lstrip().startswith("#")


def test_indented_boundary_gives_code_where_a_bare_newline_does_not(embedded):
    engine = CompletionEngine(embedded)
    engine.options.max_new_tokens_multi = 24
    handled = healed = naive = 0
    for name, doc in cases():
        embedded.reset_cache()
        result = engine.complete(CompletionRequest(name, doc, len(doc), name, "python"))
        handled += bool(result.items) and starts_with_code(result.items[0])
        prompt = engine.prompt_for(
            engine.plan(CompletionRequest(name, doc, len(doc), name, "python"))
        )
        raw_prompt = prompt.text[
            : len(prompt.text) - len(prompt.text) + prompt.text.rfind("\n") + 1
        ]
        for heal in (True, False):
            embedded.reset_cache()
            req = GenerationRequest(prompt=raw_prompt, max_new_tokens=24, token_healing=heal)
            code = starts_with_code("".join(embedded.generate(req)))
            healed += heal and code
            naive += not heal and code
    print(f"\ncode first of 8: engine {handled}, bare newline healed {healed}, naive {naive}")
    assert handled >= 6
    assert healed >= 6  # token healing alone also recovers from a bare newline
    assert naive < handled  # without either, the model derails


def test_a_call_being_written_gets_its_arguments_on_the_line(embedded):
    """After ``auth = get_netrc_auth(`` in code that spreads calls over lines, the model's
    first choice is a line break; the single-line completion still shows the arguments."""
    from tests.models.test_model_embedded import SPREAD_CALLS

    engine = CompletionEngine(embedded)
    doc = SPREAD_CALLS + "\n\n    return resp\n"
    at = len(SPREAD_CALLS)
    embedded.reset_cache()
    result = engine.complete(CompletionRequest("s.py", doc, at, "s.py", "python"))
    assert result.mode == "single"
    assert result.items and result.items[0].strip(), result
    assert "\n" not in result.items[0] and not result.items[0][0].isspace(), result.items
