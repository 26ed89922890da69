"""The test-driven repair loop behind "fix this failing test".

In a scratch copy of the repository (:mod:`.workspace`; the user's files are never
touched): localize (:mod:`.localize`), then try candidates for the suspects, best first —
single-point mutations from syntax-aware templates (:mod:`.mutations`) and, given a
``propose`` function (a model), search-and-replace edits (:mod:`.edits`) — and validate each:

1. the failing test passes with it;
2. then the whole test files of the tests that exercise the changed function pass as they
   did before it (a test that passed without the change must pass with it), in two
   stages, the second only once the first passed: the failing test's file and every test
   file that names the function; then the test files that import its module (a private
   helper is reached through the module's public functions). The files' outcomes without
   the change are taken the first time a stage needs them.

Only a candidate that passes both is a fix; anything less is reported as what it is
(``fails``, ``regression``, ``invalid``, ``rejected``, ``timeout``). A model candidate that
changes how the test fails (not by breaking the code) gets a second round: the model is
asked again from that edit, with the new failure output (``FOLLOW_UPS`` per repair). The loop
stops at its time budget, on cancellation, or once it has enough fixes; the fixes
are ranked smallest change first. The model's steps are rationed by time
(:data:`MODEL_SHARE` of the time spent on candidates while templates are left): on two
CPU cores one step of the embedded model costs the time of ~60 template candidates.
"""

from __future__ import annotations

import collections
import difflib
import re
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, Protocol

from hone.agent.outbound import for_backend
from hone.agent.repair.edits import (
    EditError,
    apply_edits,
    function_edit,
    parse_edits,
    special_cases_inputs,
    unified_diff,
)
from hone.agent.repair.localize import (
    FAILING,
    Localization,
    LocalizeError,
    Suspect,
    TestPasses,
    _test_source,
    is_test_file,
    localize,
)
from hone.agent.repair.mutations import mutations
from hone.agent.repair.runner import RunnerError, TestRun, find_interpreter, run_tests
from hone.agent.repair.workspace import Scratch, digest

SUSPECTS = 5  # functions tried, best first
TEMPLATES_PER_SUSPECT = 100  # the budget stops the loop well before
MAX_FIXES = 2  # validated fixes collected before stopping
AFTER_FIX = 5  # candidates tried after the first fix, for a smaller one (smaller ones only)
FOLLOW_UPS = 2  # second model rounds (from an edit that changed the failure) per repair
# A new failure that starts with one of these is a broken edit, not a step closer.
BROKEN = ("NameError", "SyntaxError", "IndentationError", "ImportError", "ModuleNotFoundError")
FIRST_TEMPLATES = 12  # a suspect's most plausible templates, tried early
MODEL_SUSPECTS = 3  # the suspects the model is asked to edit
# The model's steps take at most this share of the time spent on candidates while
# templates are left (a 135M model on two CPU cores takes ~30 s a step and a template
# ~0.5 s; a GPU or a remote server answers in a second or two): see :class:`_Steps`.
MODEL_SHARE = 0.4
MAX_TEST_FILES = 12  # test files that name a changed function or import its module
FAILURE_CHARS = 3000  # of the failure text in a model's prompt


class Progress(Protocol):
    """Told each stage: a message (``running tests/test_x.py``, ``localizing``, ``candidate
    3 of 17: ...``, ``validating: ...``) and how far the repair is, 0-100 (None: unknown)."""

    def __call__(self, message: str, percent: int | None = None) -> None: ...


class Proposer(Protocol):
    """A model: ``n`` replies to a chat (``[{"role": ..., "content": ...}]``); ``stop`` is
    polled while it generates (true: stop, raising the backend's ``Cancelled``)."""

    def __call__(
        self, messages: list[dict[str, str]], n: int, stop: Callable[[], bool] | None = None
    ) -> list[str]: ...


@dataclass
class Attempt:
    source: str  # "template" | "model"
    description: str
    outcome: str  # fixed | fails | regression | invalid | rejected | timeout
    path: str = ""
    detail: str = ""  # the new failure, the regression, why it was rejected
    failure: str = field(default="", repr=False)  # the test's new failure output, in full
    seconds: float = 0.0  # validating it (the test runs)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "description": self.description,
            "outcome": self.outcome,
            "path": self.path,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Fix:
    source: str
    description: str
    files: dict[str, str]  # relative path -> new text
    diff: str
    changed_lines: int
    suspect: Suspect
    validated_with: list[str]  # the test files run to validate


@dataclass
class FixReport:
    test: str
    fixed: bool
    diff: str
    explanation: str
    source: str  # "template", "model", "both" (fixes from both), "" when none
    localization: Localization | None
    candidates: list[Attempt]
    timings: dict[str, float]
    fixes: list[Fix] = field(default_factory=list)
    # the content hash of each file a fix changes, as the copy was made: --apply and the
    # editor refuse to write over a file that changed since
    base: dict[str, str] = field(default_factory=dict)
    # each changed file's text as the copy was made (the editor's buffer where it was open):
    # what the editor's edit is computed against
    originals: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> dict[str, str]:
        return self.fixes[0].files if self.fixes else {}

    def as_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "fixed": self.fixed,
            "diff": self.diff,
            "explanation": self.explanation,
            "source": self.source,
            "localization": (
                [s.as_json() for s in self.localization.functions] if self.localization else []
            ),
            "candidates": [a.as_json() for a in self.candidates],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class Budget:
    def __init__(self, seconds: float, cancel: Callable[[], bool] | None) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.cancel = cancel or (lambda: False)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over(self) -> bool:
        return self.left() <= 0 or self.cancel()


def repair(
    root: Path,
    test: str,
    *,
    python: str | None = None,
    budget_s: float = 120,
    propose: Proposer | None = None,
    samples: int = 3,
    templates: bool = True,
    overlays: Mapping[str, str] | None = None,
    cancel: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> FixReport:
    """Look for a validated fix of ``test`` (a pytest node id relative to ``root``) within
    ``budget_s`` seconds; ``templates=False`` leaves the mutation templates out (the model's
    edits only). Raises :class:`~.localize.TestPasses` when the test passes and
    :class:`~.localize.LocalizeError` when it cannot be collected or run."""
    t0 = time.monotonic()
    say: Progress = progress or (lambda _message, _percent=None: None)
    root = root.resolve()
    interpreter = find_interpreter(root, python)
    budget = Budget(budget_s, cancel)
    attempts: list[Attempt] = []
    fixes: list[Fix] = []
    timings: dict[str, float] = {}
    say("copying the workspace", 0)
    with Scratch(root, overlays) as scratch:
        timings["copy_s"] = time.monotonic() - t0
        say(f"running {test.split('::')[0]}", 2)
        found = localize(
            scratch.root,
            test,
            python=interpreter,
            timeout_s=max(30.0, budget.left()),
            limit=SUSPECTS,
            cancel=budget.cancel,
            env=scratch.env(),
            progress=lambda msg: say("localizing" if msg.startswith("ranking") else msg),
        )
        timings["localize_s"] = time.monotonic() - t0 - timings["copy_s"]
        validator = Validator(scratch, interpreter, found, budget, say)
        candidates = _candidates(
            scratch, found, propose, samples, templates, validator.test_source, budget.over
        )
        total = _count(candidates, propose, samples)
        after_fix = follow_ups = 0
        queue = _Steps(candidates)
        while queue:
            suspect, make = queue.pop(model=not fixes)  # after a fix, the (slow) model is
            if make is None:  # not asked for more
                break
            if budget.over() or len(fixes) >= MAX_FIXES or after_fix >= AFTER_FIX:
                break
            started = time.monotonic()
            made = iter(make())
            if getattr(make, "model", False):  # the model's time, apart from the test runs
                made = iter(list(made))
                timings["model_s"] = timings.get("model_s", 0.0) + time.monotonic() - started
            for source, description, files in made:
                if files is None:  # the model was stopped: recorded, nothing to validate
                    attempts.append(Attempt(source, description, "timeout"))
                    continue
                if budget.over() or len(fixes) >= MAX_FIXES or after_fix >= AFTER_FIX:
                    break
                if fixes and (
                    not files or _changed_lines(scratch, files) >= fixes[0].changed_lines
                ):
                    continue  # cannot be a smaller fix than the one found
                after_fix += bool(fixes)
                k = len(attempts) + 1
                total = max(total, k)
                done = max(k / total, 1 - budget.left() / budget.seconds)
                say(f"candidate {k} of {total}: {description}", 5 + int(90 * min(1.0, done)))
                attempt = Attempt(source, description, "", ",".join(files))
                attempts.append(attempt)
                checked = time.monotonic()
                fix = validator.check(attempt, suspect, files)
                attempt.seconds = time.monotonic() - checked
                if fix is not None:
                    fixes.append(fix)
                elif (
                    propose is not None
                    and source == "model"
                    and follow_ups < FOLLOW_UPS
                    and _closer(found, attempt)
                ):
                    # the model's edit changed how the test fails: one more round, from
                    # that edit, with the new failure output
                    follow_ups += 1
                    total += samples

                    def again(s: Suspect = suspect, base: dict = files, a: Attempt = attempt):
                        return _model(
                            scratch, found, s, propose, samples, validator.test_source,
                            budget.over, base=base, failure=a.failure,
                        )  # fmt: skip

                    again.model = True  # type: ignore[attr-defined] - slow: skipped after a fix
                    queue.follow_up((suspect, again))
            queue.spent(make, time.monotonic() - started)
        changed = {p for f in fixes for p in f.files}
        # as the copy was made: --apply and the editor refuse files changed since
        base = {p: scratch.copied_digest(p) for p in changed}
        originals = {p: scratch.original_text(p) for p in changed}
    fixes.sort(key=lambda f: (f.changed_lines, f.source != "template"))
    timings["total_s"] = time.monotonic() - t0
    best = fixes[0] if fixes else None
    sources = {f.source for f in fixes}
    return FixReport(
        test=found.test,
        fixed=best is not None,
        diff=best.diff if best else "",
        explanation=explain(found, best, attempts, budget),
        source="both" if len(sources) > 1 else next(iter(sources), ""),
        localization=found,
        candidates=attempts,
        timings=timings,
        fixes=fixes,
        base=base,
        originals=originals,
    )


def backend_proposer(
    backend: Any,
    *,
    max_new_tokens: int = 256,
    seed: int = 0,
    submit: Callable[[Callable[[Any], list[str]], Callable[[], bool]], list[str]] | None = None,
) -> Proposer:
    """A :class:`Proposer` on a model backend (:mod:`hone.models.backend`): ``n`` samples
    of a chat request (greedy for one sample, temperature 0.7 for several). ``submit(call,
    stop)`` runs ``call(cancel_token)`` where the model may be used (the server's scheduler,
    as background work), cancelling it once ``stop()`` is true, and returns its result; by
    default it is called here."""
    from hone.models.backend import CancelToken, GenerationRequest

    class _Stop(CancelToken):
        def __init__(self, stop: Callable[[], bool]) -> None:
            super().__init__()
            self.stop = stop

        @property
        def cancelled(self) -> bool:
            if not self._event.is_set() and self.stop():
                self.cancel()
            return self._event.is_set()

    def propose(
        messages: list[dict[str, str]], n: int, stop: Callable[[], bool] | None = None
    ) -> list[str]:
        request = GenerationRequest(
            messages=messages,
            n=n,
            temperature=0.0 if n == 1 else 0.7,
            max_new_tokens=max_new_tokens,
            seed=seed,
            session="background",
        )

        def call(cancel: Any) -> list[str]:
            # a Generation runs as it is read: read it here, where the model may be used
            return backend.generate(for_backend(backend, request), cancel).texts()

        if submit is not None:
            return submit(call, stop or _never)
        return call(_Stop(stop or _never))

    return propose


def _never() -> bool:
    return False


def apply_fix(root: Path, report: FixReport) -> list[str]:
    """Write the best fix into the user's files; refuses (ValueError) when a file it
    changes is not as the copy was made (edited since). Returns the paths written."""
    if not report.fixed:
        raise ValueError("there is no fix to apply")
    now = digest(root, report.files)
    changed = [p for p in report.files if now.get(p) != report.base.get(p)]
    if changed:
        raise ValueError(f"not applied: {', '.join(changed)} changed since the fix was made")
    for path, text in report.files.items():
        (root / path).write_text(text, encoding="utf-8", newline="")
    return sorted(report.files)


# -- candidates ------------------------------------------------------------------------------

# (source, description, new texts by path; None: a model call stopped unfinished)
Made = tuple[str, str, dict[str, str] | None]


def _candidates(
    scratch: Scratch,
    found: Localization,
    propose: Proposer | None,
    samples: int,
    use_templates: bool = True,
    test_source: str = "",
    stop: Callable[[], bool] | None = None,
) -> list[tuple[Suspect, Callable[[], Sequence[Made]]]]:
    """Lazily made candidate lists, in the order they are tried: the most plausible
    templates of the first two suspects, the model's edits of the first, the templates of
    the third, the model's edits of the second and third, the first templates of the rest,
    then the remaining templates of each. (Templates are quick to try and fix most
    single-point faults; the model is slow on a CPU, so it comes once the likeliest
    templates have had their turn.)"""
    hot = _hot_lines(found)
    first: list[tuple[Suspect, Callable[[], Sequence[Made]]]] = []
    models: list[tuple[Suspect, Callable[[], Sequence[Made]]]] = []
    rest: list[tuple[Suspect, Callable[[], Sequence[Made]]]] = []
    for i, suspect in enumerate(found.functions[:SUSPECTS]):
        made: dict[str, list[Made]] = {}

        def templates(s: Suspect = suspect, cache: dict = made) -> list[Made]:
            if "all" not in cache:
                cache["all"] = _templates(scratch, s, hot.get(s.path, {})) if use_templates else []
            return cache["all"]

        first.append((suspect, lambda t=templates: t()[:FIRST_TEMPLATES]))
        if propose is not None and i < MODEL_SUSPECTS:

            def model(s: Suspect = suspect) -> list[Made]:
                return _model(scratch, found, s, propose, samples, test_source, stop)

            model.model = True  # type: ignore[attr-defined] - counted as samples by _count
            models.append((suspect, model))
        rest.append((suspect, lambda t=templates: t()[FIRST_TEMPLATES:]))
    return [*first[:2], *models[:1], *first[2:3], *models[1:], *first[3:], *rest]


Step = tuple[Suspect, Callable[[], Sequence[Made]]]


class _Steps:
    """The candidate steps in the order they are tried, with the model's steps rationed by
    time: a model step comes in its turn (see :func:`_candidates`) only while the model's
    steps so far took at most :data:`MODEL_SHARE` of the time spent on steps; else the
    templates' steps go on (the next in their order) until it is the model's turn again.
    Once no template step is left, the model's steps go on alone. On two CPU cores a step
    of the embedded model takes a minute's worth of template candidates; a fast model
    (a GPU, a remote server) keeps its place in the order."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.order = collections.deque(steps)
        self.model_s = 0.0
        self.total_s = 0.0
        self.models: collections.deque[Step] = collections.deque()  # follow-ups first

    def __bool__(self) -> bool:
        return bool(self.order or self.models)

    def follow_up(self, step: Step) -> None:
        self.models.appendleft(step)

    def spent(self, make: Callable[[], Sequence[Made]], seconds: float) -> None:
        self.total_s += seconds
        if getattr(make, "model", False):
            self.model_s += seconds

    def pop(self, *, model: bool = True) -> Step | tuple[None, None]:
        """The next step, or ``(None, None)``; ``model=False`` drops the model's steps."""
        if not model:
            self.models.clear()
            self.order = collections.deque(s for s in self.order if not _is_model(s))
        templates = [i for i, s in enumerate(self.order) if not _is_model(s)]
        may = self.model_s <= MODEL_SHARE * self.total_s or not templates
        if self.models and may:
            return self.models.popleft()
        if self.order and (may or not _is_model(self.order[0])):
            return self.order.popleft()
        if templates:  # the model's turn, but it has had its share
            step = self.order[templates[0]]
            del self.order[templates[0]]
            return step
        return self.models.popleft() if self.models else (None, None)


def _is_model(step: Step) -> bool:
    return bool(getattr(step[1], "model", False))


def best_lines(fixes: Sequence[Fix]) -> int:
    """The fewest lines a fix found so far changes."""
    return min(f.changed_lines for f in fixes)


def _count(
    steps: Sequence[tuple[Suspect, Callable[[], Sequence[Made]]]],
    propose: Proposer | None,
    samples: int,
) -> int:
    """How many candidates the steps hold (templates are made now, they are cheap; the
    model's edits are counted as its samples)."""
    n = 0
    for _suspect, make in steps:
        if getattr(make, "model", False):
            n += samples
        else:
            n += len(make())
    return max(n, 1)


def _hot_lines(found: Localization) -> dict[str, dict[int, float]]:
    """Lines to try first, per file: the failing test's traceback lines and the lines only
    it ran (from the localization's run)."""
    out: dict[str, dict[int, float]] = {}
    run: TestRun | None = found.run
    if run is None:
        return out
    result = run.results.get(found.test)
    if result is not None:
        weight = 1.0
        for frame in reversed(result.frames):
            if frame.in_repo:
                out.setdefault(frame.path, {})[frame.line] = max(
                    out.get(frame.path, {}).get(frame.line, 0.0), weight
                )
                weight *= 0.6
    coverage = run.coverage or {}
    failing = coverage.get(found.test, {})
    passing = [
        cov
        for nodeid, cov in coverage.items()
        if nodeid != found.test
        and run.results.get(nodeid)
        and run.results[nodeid].outcome == "passed"
    ]
    for path, lines in failing.items():
        for line in lines:
            ran = sum(1 for cov in passing if line in cov.get(path, ()))
            score = 0.5 / (1 + ran)
            lines_of = out.setdefault(path, {})
            lines_of[line] = max(lines_of.get(line, 0.0), score)
    return out


def _templates(scratch: Scratch, suspect: Suspect, hot: Mapping[int, float]) -> list[Made]:
    source = scratch.original_text(suspect.path)
    found = mutations(
        source,
        suspect.path,
        suspect.start_line,
        suspect.end_line,
        hot_lines=hot,
        limit=TEMPLATES_PER_SUSPECT,
    )
    return [
        ("template", f"{suspect.path}: {c.description}", {suspect.path: c.apply(source)})
        for c in found
    ]


def _prompt(**fields: str) -> str:
    template = resources.files("hone.agent.repair").joinpath("prompts/fix.txt").read_text("utf-8")
    return string.Template(template).safe_substitute(fields)


def _model(
    scratch: Scratch,
    found: Localization,
    suspect: Suspect,
    propose: Proposer,
    samples: int,
    test_source: str,
    stop: Callable[[], bool] | None = None,
    *,
    base: Mapping[str, str] | None = None,
    failure: str = "",
) -> list[Made]:
    """The model's edits of ``suspect`` (each reply parsed and applied, checked; replies
    that cannot be applied are kept as invalid candidates with the reason). ``base``: a
    second round, from an earlier edit's files (the function as that edit left it), with
    ``failure``, the test's output with that edit."""
    base = dict(base or {})
    source = base.get(suspect.path) or scratch.original_text(suspect.path)
    lines = source.split("\n")
    shift = len(lines) - len(scratch.original_text(suspect.path).split("\n"))
    end_line = max(suspect.start_line, suspect.end_line + shift)
    function = "\n".join(lines[suspect.start_line - 1 : end_line])
    result = found.run.results.get(found.test) if found.run else None
    text = failure or (result.longrepr if result else found.message)
    prompt = _prompt(
        test=found.test,
        failure=text[-FAILURE_CHARS:],
        test_source=test_source,
        name=suspect.name,
        path=suspect.path,
        start_line=str(suspect.start_line),
        end_line=str(end_line),
        function=function,
    )
    if base:
        prompt += _ROUND_TWO
    messages = [
        {"role": "system", "content": "You are a careful Python developer who fixes bugs."},
        {"role": "user", "content": prompt},
    ]
    try:
        replies = propose(messages, samples, stop)
    except Exception as exc:  # noqa: BLE001 - a failing model ends its step, not the loop
        if type(exc).__name__ == "Cancelled":  # the time budget ran out, or the user cancelled
            return [("model", f"model samples for {suspect.name}: stopped unfinished", None)]
        return [("model", f"model failed: {exc}", {})]
    out: list[Made] = []
    for k, reply in enumerate(replies, 1):
        label = f"model sample {k} for {suspect.name}" + (" (round 2)" if base else "")
        try:
            edits = parse_edits(reply, default_path=suspect.path)
            if not edits:  # the whole function rewritten, as small models tend to reply
                whole = function_edit(reply, suspect.name, suspect.path, function)
                edits = [whole] if whole is not None else []
            if not edits:
                raise EditError(
                    "neither a search-and-replace block nor the function rewritten in the reply",
                    code="no-edit",
                )
            originals = {
                e.path: base.get(e.path) or scratch.original_text(e.path)
                for e in edits
                if _readable(scratch, e.path)
            }
            # the model writes "\n": edit the text with "\n" line ends, then put the
            # file's own "\r\n" back
            files = {p: t.replace("\r\n", "\n") for p, t in originals.items()}
            new = apply_edits(files, edits)  # refuses test files itself
            new = {
                p: t.replace("\n", "\r\n") if "\r\n" in originals.get(p, "") else t
                for p, t in new.items()
            }
        except EditError as exc:
            out.append(("model", f"{label}: {exc.reason}", {}))
            continue
        # a second round's edit carries its first round's other files along
        out.append(("model", label, {**base, **new}))
    return out


_ROUND_TWO = (
    "\n\nThe function above already holds an earlier change; with it the test still "
    "fails, differently (the output above). Change the function as it is now.\n"
)


def _closer(found: Localization, attempt: Attempt) -> bool:
    """Whether a candidate that still fails changed the failure in a way worth a second
    round: the test now fails otherwise, and not because the edit broke the code."""
    if attempt.outcome != "fails" or not attempt.failure:
        return False
    message = attempt.detail.strip()
    return message != found.message[:300].strip() and not message.startswith(BROKEN)


def _readable(scratch: Scratch, path: str) -> bool:
    try:
        scratch.text(path)
        return True
    except (OSError, ValueError):
        return False


# -- validation ------------------------------------------------------------------------------


class Validator:
    """Tries candidates in the scratch copy; knows the outcomes before any change."""

    def __init__(
        self,
        scratch: Scratch,
        interpreter: str,
        found: Localization,
        budget: Budget,
        say: Progress | None = None,
    ) -> None:
        self.say: Progress = say or (lambda _message, _percent=None: None)
        self.scratch = scratch
        self.interpreter = interpreter
        self.found = found
        self.budget = budget
        run = found.run
        self.baseline: dict[str, str] = (
            {n: r.outcome for n, r in run.results.items()} if run is not None else {}
        )
        self.baselined_files = {found.test.split("::")[0]}
        failing = run.results.get(found.test) if run is not None else None
        self.test_s = failing.duration_s if failing is not None else 1.0
        self.file_s = run.duration_s if run is not None else 10.0
        self.test_source = _test_source(scratch.root, found.test)

    def check(self, attempt: Attempt, suspect: Suspect, files: dict[str, str]) -> Fix | None:
        if not files:
            attempt.outcome = "invalid"
            attempt.detail = attempt.description
            return None
        for path, text in files.items():
            if is_test_file(path):
                attempt.outcome, attempt.detail = "rejected", f"{path} is a test file"
                return None
            old = self.scratch.original_text(path)
            if attempt.source == "model" and special_cases_inputs(old, text, self.test_source):
                attempt.outcome = "rejected"
                attempt.detail = "it special-cases the test's inputs"
                return None
        try:
            for path, text in files.items():
                self.scratch.write(path, text)
            return self._validate(attempt, suspect, files)
        except RunnerError as exc:
            attempt.outcome, attempt.detail = "invalid", str(exc).split("\n")[0][:300]
            return None
        finally:
            self.scratch.restore()

    def _run(self, targets: list[str], timeout_s: float) -> TestRun:
        return run_tests(
            self.scratch.root,
            targets,
            python=self.interpreter,
            timeout_s=min(timeout_s, max(1.0, self.budget.left())),
            env=self.scratch.env(),
            cancel=self.budget.cancel,
        )

    def _validate(self, attempt: Attempt, suspect: Suspect, files: dict[str, str]) -> Fix | None:
        """With ``files`` written: the failing test, then the test files near the change
        (the failing test's, those that name the function), then the others that import
        its module; each stage only once the one before passed, so a candidate that breaks
        a neighbour is usually caught by the cheaper runs."""
        test = self.found.test
        # pytest's start-up is most of a one-test run: as long as the localization's run,
        # and the test's own time five times over
        run = self._run([test], timeout_s=max(20.0, 2 * self.file_s + 5 * self.test_s))
        result = run.results.get(test)
        if run.timed_out:
            attempt.outcome, attempt.detail = "timeout", f"{test} did not finish"
            return None
        if result is None or result.outcome in FAILING:
            attempt.outcome = "fails"
            attempt.detail = (result.message if result else "not run")[:300]
            attempt.failure = result.longrepr if result else ""
            return None
        if result.outcome != "passed":
            attempt.outcome, attempt.detail = "fails", f"{test} {result.outcome}"
            return None
        validated: list[str] = []
        tests_run = 0
        for stage in self._test_files(suspect):
            if not stage:
                continue
            self._baseline(stage, files)
            self.say(f"validating: {', '.join(stage)}")
            run = self._run(stage, timeout_s=max(30.0, 3 * self.file_s + 10))
            if run.timed_out:
                attempt.outcome, attempt.detail = "timeout", "the validation run did not finish"
                return None
            broken = [
                nodeid
                for nodeid, before in self.baseline.items()
                if before == "passed"
                and nodeid.split("::")[0] in stage
                and (nodeid not in run.results or run.results[nodeid].outcome != "passed")
            ]
            if test.split("::")[0] in stage:
                still = run.results.get(test)
                if still is None or still.outcome != "passed":
                    broken.insert(0, test)
            if broken:
                attempt.outcome = "regression"
                attempt.detail = f"{len(broken)} test(s) no longer pass: {', '.join(broken[:3])}"
                return None
            validated += stage
            tests_run += len(run.results)
        attempt.outcome = "fixed"
        attempt.detail = f"{tests_run} tests of {len(validated)} file(s) pass"
        diff = "".join(
            unified_diff(path, self.scratch.original_text(path), text)
            for path, text in sorted(files.items())
        )
        changed = _changed_lines(self.scratch, files)
        return Fix(
            attempt.source, attempt.description, dict(files), diff, changed, suspect,
            sorted(validated),
        )  # fmt: skip

    def _test_files(self, suspect: Suspect) -> tuple[list[str], list[str]]:
        """The test files that validate a change of ``suspect``, in two stages: the failing
        test's file and the test files that name the function; then those that import its
        module (they reach it through the module's public functions: a private helper is
        rarely named by a test). :data:`MAX_TEST_FILES` in all."""
        own = self.found.test.split("::")[0]
        short = suspect.name.rsplit(".", 1)[-1]
        word = re.compile(rf"\b{re.escape(short)}\b")
        module = PurePath(suspect.path)
        stem = module.parent.name if module.stem == "__init__" else module.stem
        imports = (
            re.compile(rf"^[ \t]*(?:from|import)[ \t][^\n]*\b{re.escape(stem)}\b", re.MULTILINE)
            if stem
            else None
        )
        naming: list[str] = []
        importing: list[str] = []
        for rel in sorted(self.scratch.files):
            if rel == own or not rel.endswith(".py") or not is_test_file(rel):
                continue
            if PurePath(rel).name == "conftest.py":
                continue
            try:
                text = self.scratch.text(rel)
            except OSError:
                continue
            if word.search(text):
                naming.append(rel)
            elif imports is not None and imports.search(text):
                importing.append(rel)
        near = [own, *naming][:MAX_TEST_FILES]
        far = importing[: MAX_TEST_FILES - len(near)]
        return near, far

    def _baseline(self, test_files: list[str], files: Mapping[str, str]) -> None:
        """The outcomes of test files not run yet, without the change (taken out for the
        run and written back after)."""
        missing = sorted(set(test_files) - self.baselined_files)
        if not missing:
            return
        self.scratch.restore()
        try:
            run = self._run(missing, timeout_s=max(30.0, 3 * self.file_s + 10))
        finally:
            for path, text in files.items():
                self.scratch.write(path, text)
        self.baseline.update({n: r.outcome for n, r in run.results.items()})
        self.baselined_files.update(missing)


def _changed_lines(scratch: Scratch, files: Mapping[str, str]) -> int:
    n = 0
    for path, text in files.items():
        old = scratch.original_text(path).splitlines()
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
            a=old, b=text.splitlines()
        ).get_opcodes():
            if tag != "equal":
                n += max(i2 - i1, j2 - j1)
    return n


# -- explanation -----------------------------------------------------------------------------


def explain(found: Localization, fix: Fix | None, attempts: list[Attempt], budget: Budget) -> str:
    """One paragraph: what localized the fault, what changed and why the tests now pass
    (or what was tried)."""
    top = found.functions[:3]
    where = ", ".join(
        f"`{s.name}` ({s.path}:{s.start_line}-{s.end_line}; "
        + ", ".join(f"{k} {v:.2f}" for k, v in s.signals.items() if v > 0)
        + ")"
        for s in top
    )
    lead = (
        f"`{found.test}` failed with {found.message or found.outcome}. Localization "
        f"ranked {where or 'no function of the repository'} (from the traceback, the "
        f"lines only the failing test ran against the {found.passing_tests} passing tests "
        "of its file, and the words the test shares with each function)."
    )
    if fix is not None:
        return (
            f"{lead} The fix changes `{fix.suspect.name}` in {fix.suspect.path} "
            f"({fix.source}: {fix.description.split(': ', 1)[-1]}): with it the failing test "
            f"passes, and so do all the tests of {', '.join(fix.validated_with)} that passed "
            f"before, run in a copy of the workspace. {len(attempts)} candidate(s) tried."
        )
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a.outcome] = counts.get(a.outcome, 0) + 1
    tried = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
    why = " The time budget ran out." if budget.left() <= 0 else ""
    return (
        f"{lead} No candidate made the test pass without breaking another: "
        f"{len(attempts)} tried ({tried}).{why}"
    )


__all__ = [
    "apply_fix",
    "backend_proposer",
    "Attempt",
    "Fix",
    "FixReport",
    "LocalizeError",
    "Proposer",
    "TestPasses",
    "repair",
]
