"""The order of the repair loop's candidate steps: the model's steps rationed by time."""

from __future__ import annotations

from hone.agent.repair import loop
from hone.agent.repair.loop import MODEL_SHARE, _Steps


def _steps(order: str) -> list:
    """Steps named by letters: upper case a model step, lower case a template step."""
    out = []
    for name in order:

        def make(n: str = name) -> list:
            return [("model" if n.isupper() else "template", n, {})]

        if name.isupper():
            make.model = True  # type: ignore[attr-defined]
        out.append((name, make))
    return out


def _run(steps: _Steps, cost: dict[bool, float], *, follow_up_after: str = "") -> str:
    seen = ""
    while steps:
        name, make = steps.pop()
        if make is None:
            break
        seen += name
        if name == follow_up_after:
            steps.follow_up(_steps("F")[0])
        steps.spent(make, cost[name.isupper()])
    return seen


def test_a_fast_model_keeps_its_place_in_the_order():
    assert _run(_Steps(_steps("abAcBCde")), {True: 0.5, False: 1.0}) == "abAcBCde"


def test_a_slow_model_waits_while_templates_are_left():
    # the model takes 30 s a step, a template 1 s: after its first step the templates run
    # until the model's share is back under MODEL_SHARE, then the model's next step
    order = _steps("ab" + "A" + "c" + "BC" + "defghijklmnopqrstuvwxyz" * 3)
    seen = _run(_Steps(order), {True: 30.0, False: 1.0})
    assert seen.startswith("abAc")
    assert sorted(seen) == sorted(name for name, _ in order)  # nothing lost
    model, total = 0.0, 0.0
    for i, name in enumerate(seen):
        if name.isupper() and any(not n.isupper() for n in seen[i:]):
            # each model step while templates are left came when its share allowed
            assert model <= MODEL_SHARE * total, (seen, i)
        model += 30.0 if name.isupper() else 0.0
        total += 30.0 if name.isupper() else 1.0
    # the second model step waited until the templates had taken 45 s (30 / 0.4 - 30)
    assert sum(1 for name in seen[: seen.index("B")] if not name.isupper()) == 45


def test_once_templates_run_out_the_model_goes_on_alone_and_follow_ups_come_first():
    seen = _run(_Steps(_steps("aAbBC")), {True: 30.0, False: 1.0}, follow_up_after="A")
    assert seen == "aAbFBC"


def test_after_a_fix_the_model_is_left_out():
    steps = _Steps(_steps("aAbB"))
    assert steps.pop()[0] == "a"
    assert steps.pop(model=False)[0] == "b"
    assert steps.pop(model=False) == (None, None)


def test_templates_per_suspect_leave_the_limit_to_the_budget():
    # a fix ranked 49th in a suspect's templates was cut by a limit of 40 (dev: inflection)
    assert loop.TEMPLATES_PER_SUSPECT >= 80
