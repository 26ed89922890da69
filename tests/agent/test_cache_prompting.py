from hone.agent.completion.cache import TypedAheadCache
from hone.agent.completion.prompting import ANCHOR_LINES, build_prompt
from hone.models.prompts import load_templates


def test_typed_ahead_returns_the_rest_only_while_the_user_follows_the_suggestion():
    c = TypedAheadCache()
    c.remember("a", "x = ", "\n", "compute(1)")
    assert c.lookup("a", "x = comp", "\n") == "ute(1)"
    assert c.lookup("a", "x = ", "\n") == "compute(1)"
    assert c.lookup("a", "x = cz", "\n") is None  # diverged
    assert c.lookup("a", "x = comp", "\nother") is None  # suffix changed
    assert c.lookup("a", "x = compute(1)", "\n") is None  # fully typed: nothing left
    assert c.lookup("b", "x = comp", "\n") is None
    c.forget("a")
    assert c.lookup("a", "x = comp", "\n") is None


def _count(text: str) -> int:
    return len(text) // 4


def _prefix_only():
    return next(t for t in load_templates().values() if not t.fim)


def test_prompt_window_fits_budget_and_keeps_the_cursor_end():
    prefix = "".join(f"line_{i} = {i} * 2\n" for i in range(5000)) + "def f(x):\n    "
    p = build_prompt(_prefix_only(), prefix, "", "m.py", 300, _count)
    assert p.prefix_tokens <= 300
    assert prefix.endswith(p.prefix)
    assert p.prefix.endswith("def f(x):\n    ")


def test_prompt_window_start_is_stable_while_typing():
    """Consecutive keystrokes keep the same window start, so the KV cache is reusable."""
    base = "".join(f"value_{i} = compute({i})\n" for i in range(3000))
    starts = set()
    for typed in ("r", "re", "ret", "retu", "retur", "return", "return x"):
        prefix = base + "def f(x):\n    " + typed
        p = build_prompt(_prefix_only(), prefix, "", None, 512, _count)
        start = len(prefix) - len(p.prefix)
        starts.add(start)
        # the window starts on a line whose number is a multiple of ANCHOR_LINES
        assert prefix.count("\n", 0, start) % ANCHOR_LINES == 0
    assert len(starts) == 1


def test_fim_template_gets_suffix_within_its_share():
    fim = next(t for t in load_templates().values() if t.fim)
    suffix = "\n".join(f"other_{i}()" for i in range(2000))
    p = build_prompt(fim, "def f(x):\n    ", suffix, "m.py", 400, _count, suffix_share=0.25)
    assert 0 < p.suffix_tokens <= 100
    assert suffix.startswith(p.suffix)
    assert p.suffix in p.text and p.prefix in p.text


def test_one_huge_line_is_cut_to_its_tail():
    prefix = "x = [" + "1, " * 100_000
    p = build_prompt(_prefix_only(), prefix, "", None, 200, _count)
    assert p.prefix_tokens <= 200 and prefix.endswith(p.prefix) and p.prefix
