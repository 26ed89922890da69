"""Run the repository's tests with pytest in a subprocess and read back what happened.

:func:`run_tests` runs ``python -m pytest`` on node ids or paths, in the repository (its
own configuration: pytest finds it, no ``-c``), with the repository's interpreter
(:func:`find_interpreter`), and returns a :class:`TestRun`: per-test outcomes, failure
messages, traceback frames, captured output, durations and, on request, the lines each
test executed (for a coverage spectrum).

How, and what it guarantees:

- Results come from our pytest plugin (``pytest_hone.py``, copied into a temporary folder
  on the subprocess's ``PYTHONPATH`` and loaded with ``-p pytest_hone``), which writes one
  JSON line per test phase as it finishes. A run that times out or is cancelled keeps
  what finished, and ``running`` names the test that had started but not finished.
- The subprocess leads its own process group (``start_new_session``): a timeout or a
  cancellation kills the group, SIGTERM then SIGKILL after :data:`KILL_GRACE_S`, so the
  test's own children die too; so do children still alive when pytest exits by itself.
- Nothing is written into the repository: pytest's cache goes to a temporary folder
  (``-o cache_dir=``; rather than ``-p no:cacheprovider``, which would turn a configured
  ``--lf``/``--ff`` into a usage error), and so do ``basetemp``, coverage data (ours, and
  ``COVERAGE_FILE`` for any other) and Hypothesis' example database. No bytecode is
  written (``PYTHONDONTWRITEBYTECODE=1``; pytest's rewritten test modules too). Not
  ``PYTHONPYCACHEPREFIX`` as well: a prefix makes Python ignore every existing
  ``__pycache__`` (the standard library's, the venv's) and compile all it imports from
  source on each run, 0.2 s -> 0.8 s for a one-test run of a tiny repository.
- Output kept in memory is capped: pytest's terminal output at ``output_limit`` bytes,
  each test's captured stdout and stderr at ``output_limit`` characters (head and tail).
- hone's own environment stays out (:func:`run_environment`): ``HONE_*`` and ``PYTEST_*``
  variables, hone's virtual environment in ``PATH``, ``PYTHONPATH`` and ``VIRTUAL_ENV``.
  When the interpreter is hone's own (the fallback: the repository has no virtual
  environment and no ``python=`` was given), plugin autoloading is off
  (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``): hone's plugins (pytest-asyncio, pytest-lsp...)
  must not change the user's run. The repository's ``-p`` options still load, and so do
  the installed plugins its ``required_plugins`` names (the plugin loads their entry
  points). A repository that relies on an autoloaded plugin without naming it there needs
  its own virtual environment (or ``python=``).
- pytest-xdist is turned off (``-n 0``) so that one process runs and reports the tests.
- No network: pytest starts through ``sandbox_hone.py``, which gives it new user and
  network namespaces with only a loopback (Linux with unprivileged user namespaces; else
  the run goes on with the network and ``notes`` says why). ``network=True`` or
  ``HONE_TEST_NETWORK=allow`` in hone's environment keeps the network.

Limits: pytest 6 or newer is needed (``--no-header``, ``-rN``); coverage is lost when the
run is killed; a test that detaches into its own session escapes the group kill.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "KILL_GRACE_S",
    "OUTPUT_LIMIT",
    "SECRET_VARIABLES",
    "VENV_DIRS",
    "CollectionError",
    "Frame",
    "RunCancelled",
    "RunnerError",
    "TestResult",
    "TestRun",
    "Interpreter",
    "find_interpreter",
    "run_environment",
    "run_tests",
]

OUTPUT_LIMIT = 1_000_000  # bytes of terminal output, characters per captured stream
KILL_GRACE_S = 1.0  # between SIGTERM and SIGKILL
# Operating-system limits on the run (and every process it starts): address space, size of
# a file it writes; no core dumps (they would land in the repository).
MEMORY_LIMIT_MB = 8192
FILE_LIMIT_MB = 2048
CPU_MARGIN_S = 60  # CPU seconds beyond twice the timeout before the kernel stops a run
POLL_S = 0.05  # how often cancel() and the deadline are checked
# Secrets hone itself may hold besides HONE_* (its TCP token, its API key): the model hub's
# token that loading a model by id uses. A repository's tests never see them.
SECRET_VARIABLES = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"})
VENV_DIRS = (".venv", "venv", "env")  # the repository's own virtual environment, in order
PLUGIN = "pytest_hone"
SANDBOX = "sandbox_hone"  # the launcher that takes the network away (sandbox_hone.py)
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@dataclass
class Frame:
    """One traceback entry of a failure, innermost last."""

    path: str  # relative to the repo root, posix; absolute when outside it
    line: int  # 1-based
    function: str
    in_repo: bool  # under the root and not in a virtual environment there


@dataclass
class TestResult:
    """One test's outcome, over its setup, call and teardown."""

    __test__ = False  # not a test class, for pytest's collection

    nodeid: str
    outcome: str  # one of OUTCOMES (a plugin of the user's may add its own category)
    duration_s: float  # setup + call + teardown
    message: str  # the exception's first line (``AssertionError: assert 1 == 2``); "" if passed
    longrepr: str  # pytest's failure text (skip reason for skips)
    frames: list[Frame]  # the failing phase's traceback, pytest's own frames left out
    stdout: str  # captured, capped
    stderr: str


@dataclass
class TestRun:
    """One pytest run."""

    __test__ = False

    results: dict[str, TestResult]  # by nodeid, in run order
    exit_code: int | None  # pytest's; None when the run was killed
    timed_out: bool
    running: str | None  # started but not finished when the run ended (timeout, cancel, crash)
    interpreter: str
    command: list[str]
    output: str  # pytest's own terminal output, stdout and stderr merged (capped)
    coverage: dict[str, dict[str, set[int]]] | None  # nodeid -> relative path -> lines run
    duration_s: float
    interpreter_source: str = ""  # "explicit" (python=), "repository" (its venv) or "hone"
    plugins: list[str] = field(default_factory=list)  # the plugins pytest had registered
    collection_errors: dict[str, str] = field(default_factory=dict)  # nodeid -> longrepr
    coverage_from: str | None = None  # "interpreter" (its own coverage) or "hone" (injected)
    notes: list[str] = field(default_factory=list)  # e.g. why coverage is missing


class RunnerError(Exception):
    """The tests could not be run; ``output`` holds pytest's output, if any."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class CollectionError(RunnerError):
    """The targets cannot be collected: an error in a test file or conftest, a node id or
    path that does not exist, no tests, pytest missing. ``errors``: nodeid -> longrepr."""

    def __init__(self, message: str, output: str = "", errors: Mapping[str, str] = ()) -> None:
        super().__init__(message, output)
        self.errors = dict(errors)


class RunCancelled(RunnerError):  # noqa: N818 - control flow carrying the partial run
    """``cancel()`` returned True; ``run`` holds what finished before."""

    def __init__(self, message: str, run: TestRun) -> None:
        super().__init__(message, run.output)
        self.run = run


# -- the interpreter -------------------------------------------------------------------


def _venv_python(folder: Path) -> Path | None:
    if not (folder / "pyvenv.cfg").is_file():
        return None
    for name in ("bin/python", "Scripts/python.exe"):
        if (folder / name).is_file():
            return folder / name
    return None


class Interpreter(str):
    """An interpreter's path that remembers where it came from (``source``: "explicit",
    "repository" or "hone"): :func:`find_interpreter` resolves it once, on the user's
    repository, and the runs in the scratch copy (which has no ``.venv``) keep treating
    hone's own Python as hone's (its plugins not autoloaded), not as an explicit choice."""

    source: str

    def __new__(cls, path: str, source: str) -> Interpreter:
        obj = super().__new__(cls, path)
        obj.source = source
        return obj


def _locate(root: Path, python: str | None) -> tuple[str, str]:
    """(interpreter, where it came from: "explicit", "repository" or "hone")."""
    if isinstance(python, Interpreter):
        return str(python), python.source
    if python:
        found = shutil.which(python) if os.sep not in python else None
        path = Path(found) if found else Path(python).expanduser()
        if not path.is_absolute():
            path = root / path
        if not path.is_file() or not os.access(path, os.X_OK):
            raise RunnerError(f"the interpreter {python!r} was not found or is not executable")
        return str(path.absolute()), "explicit"
    for name in VENV_DIRS:
        candidate = _venv_python(root / name)
        if candidate is not None:
            return str(candidate.absolute()), "repository"
    return sys.executable, "hone"


def find_interpreter(root: Path, python: str | None = None) -> Interpreter:
    """The Python that runs ``root``'s tests.

    ``python`` when given (a path, absolute or relative to the root, or a command name
    found on ``PATH``; :class:`RunnerError` when it is not there); else the repository's
    virtual environment (the first of :data:`VENV_DIRS` with a ``pyvenv.cfg`` and a
    ``bin/python``; ``$VIRTUAL_ENV`` is not consulted: it is hone's or the user's shell's,
    not the repository's); else ``sys.executable``, the Python hone runs in. The result
    is an :class:`Interpreter`: passed back as ``python``, it keeps its source.
    """
    return Interpreter(*_locate(Path(root), python))


def _hone_prefix() -> Path | None:
    """hone's virtual environment, when hone runs in one."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


def _venv_of(interpreter: str) -> Path | None:
    folder = Path(interpreter).parent.parent
    return folder if (folder / "pyvenv.cfg").is_file() else None


def _inside(path: str, folder: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        return False


# -- the environment -------------------------------------------------------------------


def run_environment(
    base: Mapping[str, str],
    interpreter: str,
    *,
    hones_own: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a run with ``interpreter``, from ``base`` (hone's own).

    Drops ``HONE_*`` (tokens, keys, hone's settings), the other secrets hone may be given
    (:data:`SECRET_VARIABLES`: a model hub's token) and ``PYTEST_*`` variables, hone's
    virtual environment from ``PATH`` and ``PYTHONPATH``, and ``VIRTUAL_ENV``. When the
    interpreter lives in a virtual environment and is not ``hones_own`` (the fallback to
    the Python hone runs in), that environment is activated (``VIRTUAL_ENV``, its ``bin``
    first on ``PATH``), as for a repository whose own ``.venv`` is also hone's. ``extra``
    (the caller's) is applied last; the runner adds its own variables on top.
    """
    hone = _hone_prefix()
    env = {
        key: value
        for key, value in base.items()
        if not key.startswith(("HONE_", "PYTEST_"))
        and key != "VIRTUAL_ENV"
        and key not in SECRET_VARIABLES
    }
    for key in ("PATH", "PYTHONPATH"):
        if key in env and hone is not None:
            kept = [p for p in env[key].split(os.pathsep) if p and not _inside(p, hone)]
            if kept:
                env[key] = os.pathsep.join(kept)
            else:
                del env[key]
    venv = _venv_of(interpreter)
    if venv is not None and not hones_own:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join(
            p for p in (str(Path(interpreter).parent), env.get("PATH", "")) if p
        )
    env.update(extra or {})
    return env


# -- running ---------------------------------------------------------------------------


class _Capped:
    """Bytes from a stream: the first and the last ``limit // 2``, the rest counted."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes omitted by hone ...]\n" if self.dropped else ""
        return (bytes(self.head) + middle.encode() + bytes(self.tail)).decode("utf-8", "replace")


def _drain(stream, buffer: _Capped) -> None:
    with contextlib.suppress(OSError, ValueError):
        while chunk := stream.read1(65536):
            buffer.add(chunk)


def _kill_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds."""
    if os.name != "posix":
        process.kill()
        process.wait()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    # Children may ignore SIGTERM or outlive the leader: the group goes in any case.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _reap_group(process: subprocess.Popen) -> None:
    """Kill what the tests left running in the group after pytest exited by itself."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def _workspace(coverage: bool) -> Iterator[Path]:
    """A temporary folder: the plugin to inject, hone's coverage package, scratch space."""
    folder = Path(tempfile.mkdtemp(prefix="hone-pytest-"))
    try:
        (folder / "inject").mkdir()
        shutil.copyfile(
            Path(__file__).with_name(f"{PLUGIN}.py"), folder / "inject" / f"{PLUGIN}.py"
        )
        shutil.copyfile(Path(__file__).with_name(f"{SANDBOX}.py"), folder / f"{SANDBOX}.py")
        if coverage:
            spec = importlib.util.find_spec("coverage")
            if spec is not None and spec.submodule_search_locations:
                package = Path(next(iter(spec.submodule_search_locations)))
                (folder / "coverage-fallback").mkdir()
                link = folder / "coverage-fallback" / "coverage"
                try:
                    link.symlink_to(package, target_is_directory=True)
                except OSError:
                    shutil.copytree(package, link, ignore=shutil.ignore_patterns("__pycache__"))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _command(
    interpreter: str, targets: Sequence[str], extra_args: Sequence[str], scratch: Path
) -> list[str]:
    return [
        interpreter,
        "-I",  # the launcher: isolated and without site, quick to start
        "-S",
        str(scratch / f"{SANDBOX}.py"),
        interpreter,
        "-m",
        "pytest",
        "-p",
        PLUGIN,
        "-o",
        f"cache_dir={scratch / 'pytest-cache'}",
        f"--basetemp={scratch / 'basetemp'}",
        "-q",
        "-rN",
        "--no-header",
        "--color=no",
        "-o",
        "console_output_style=classic",
        *extra_args,
        *targets,
    ]


def run_tests(
    root: Path,
    targets: Sequence[str],
    *,
    python: str | None = None,
    timeout_s: float = 120,
    coverage: bool = False,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cancel: Callable[[], bool] | None = None,
    output_limit: int = OUTPUT_LIMIT,
    memory_limit_mb: int | None = MEMORY_LIMIT_MB,
    network: bool | None = None,
) -> TestRun:
    """Run pytest on ``targets`` (node ids or paths relative to ``root``; none: the
    configured test paths) in ``root``, and return what happened.

    ``python``: see :func:`find_interpreter`. ``coverage``: record the lines each test
    executes (``TestRun.coverage``; works whether or not the interpreter has coverage,
    installing nothing there). ``extra_args`` go to pytest before the targets; ``env``
    holds extra variables for the run. ``cancel`` is polled every :data:`POLL_S` seconds.
    ``network``: let the tests reach the network (by default they get none but their own
    loopback, where the system allows it: ``sandbox_hone.py``); None reads hone's
    environment, ``HONE_TEST_NETWORK=allow``.

    Raises :class:`CollectionError` when nothing could be run because of a collection
    error, a missing node id or path, no tests, or no pytest; :class:`RunCancelled` when
    cancelled; :class:`RunnerError` when pytest failed otherwise or could not start.
    A timeout is not an error: ``timed_out`` is set and the results so far are kept.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise RunnerError(f"{root} is not a directory")
    for target in targets:
        if target.startswith("-"):
            raise RunnerError(f"{target!r} is not a node id or path (it reads as an option)")
    interpreter, source = _locate(root, python)
    started = time.monotonic()
    with _workspace(coverage) as scratch:
        report = scratch / "report.jsonl"
        coverage_file = scratch / "coverage.json"
        run_env = run_environment(os.environ, interpreter, hones_own=source == "hone", extra=env)
        run_env.update(
            {
                "PYTHONPATH": os.pathsep.join(
                    p for p in (run_env.get("PYTHONPATH", ""), str(scratch / "inject")) if p
                ),
                "PYTHONDONTWRITEBYTECODE": "1",
                "COVERAGE_FILE": str(scratch / "coverage-other"),
                "HYPOTHESIS_STORAGE_DIRECTORY": str(scratch / "hypothesis"),
                "HONE_PYTEST_REPORT": str(report),
                "HONE_PYTEST_ROOT": str(root),
                "HONE_PYTEST_LIMIT": str(output_limit),
            }
        )
        if network is None:
            network = os.environ.get("HONE_TEST_NETWORK", "") == "allow"
        if network:
            run_env["HONE_SANDBOX_NETWORK"] = "allow"  # the launcher takes it out again
        if source == "hone":  # not a repository venv that happens to be hone's
            run_env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            run_env["HONE_PYTEST_REQUIRED_PLUGINS"] = "1"
        if coverage:
            run_env["HONE_PYTEST_COVERAGE"] = str(coverage_file)
            run_env["HONE_PYTEST_COVERAGE_DATA"] = str(scratch / "coverage-data")
            run_env["HONE_PYTEST_COVERAGE_FALLBACK"] = str(scratch / "coverage-fallback")
        command = _command(interpreter, targets, extra_args, scratch)
        exit_code, timed_out, cancelled, output = _execute(
            command, root, run_env, timeout_s, cancel, output_limit, memory_limit_mb
        )
        events = _read_events(report)
        covered = _read_coverage(coverage_file) if coverage and exit_code is not None else None
    run = _assemble(events, root)
    run.exit_code = exit_code
    run.timed_out = timed_out
    run.interpreter = interpreter
    run.interpreter_source = source
    run.command = command
    run.output = output
    run.coverage = covered
    run.duration_s = time.monotonic() - started
    if coverage and covered is None and not (timed_out or cancelled):
        run.notes.append("no coverage was recorded")
    for line in output.splitlines()[:5]:
        if line.startswith("hone-sandbox:"):
            run.notes.append(line.removeprefix("hone-sandbox: "))
    if cancelled:
        raise RunCancelled("the test run was cancelled", run)
    if not timed_out:
        _check(run, events)
    return run


def _limit(pid: int, memory_limit_mb: int | None, timeout_s: float | None = None) -> None:
    """Set the run's resource limits (inherited by the processes it starts). Linux's
    ``prlimit`` on the new process, right after it starts (``preexec_fn`` is not safe in
    a process with threads, as the server is); elsewhere the run goes without them.

    The CPU-time limit (twice the timeout, and a minute) is for a run whose watcher died:
    the timeout kills the process group, but if hone itself is killed meanwhile, a test
    looping forever would spin on; the kernel stops it at that limit instead."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    prlimit = getattr(resource, "prlimit", None)
    if prlimit is None:
        return
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, FILE_LIMIT_MB << 20)]
    if memory_limit_mb:
        limits.append((resource.RLIMIT_AS, memory_limit_mb << 20))
    if timeout_s is not None and math.isfinite(timeout_s):
        limits.append((resource.RLIMIT_CPU, int(2 * timeout_s) + CPU_MARGIN_S))
    for kind, value in limits:
        try:
            _soft, hard = prlimit(pid, kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            prlimit(pid, kind, (value, hard))
        except (OSError, ValueError):
            continue  # the process is gone already, or the limit cannot be set


def _execute(
    command: list[str],
    root: Path,
    env: dict[str, str],
    timeout_s: float,
    cancel: Callable[[], bool] | None,
    limit: int,
    memory_limit_mb: int | None = MEMORY_LIMIT_MB,
) -> tuple[int | None, bool, bool, str]:
    """Run ``command``: (exit code or None when killed, timed out, cancelled, output)."""
    buffer = _Capped(limit)
    try:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise RunnerError(f"cannot start {command[0]}: {exc}") from exc
    _limit(process.pid, memory_limit_mb, timeout_s)
    reader = threading.Thread(target=_drain, args=(process.stdout, buffer), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    timed_out = cancelled = False
    try:
        while True:
            try:
                process.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel():
                cancelled = True
            elif time.monotonic() >= deadline:
                timed_out = True
            if cancelled or timed_out:
                _kill_group(process, KILL_GRACE_S)
                break
    except BaseException:
        _kill_group(process, 0)
        raise
    finally:
        _reap_group(process)
        # A grandchild that left the group may hold the pipe open: do not wait for it,
        # and leave the pipe to the reader then (closing it under a blocked read1 would
        # wait on the reader's lock).
        reader.join(5)
        if not reader.is_alive():
            process.stdout.close()
    exit_code = None if (timed_out or cancelled) else process.returncode
    return exit_code, timed_out, cancelled, buffer.text()


# -- reading the results ---------------------------------------------------------------


def _read_events(path: Path) -> list[dict]:
    events = []
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return events
    with handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:  # the last line of a killed run may be cut short
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def _read_coverage(path: Path) -> dict[str, dict[str, set[int]]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {
        nodeid: {rel: set(lines) for rel, lines in files.items()} for nodeid, files in data.items()
    }


def _frame(raw: Sequence, root: Path) -> Frame:
    path, line, function = str(raw[0]), int(raw[1]), str(raw[2])
    if path.startswith("<"):
        return Frame(path, line, function, False)
    try:
        relative = Path(os.path.realpath(path)).relative_to(root)
    except ValueError:
        return Frame(path, line, function, False)
    in_venv = bool(relative.parts) and _venv_python(root / relative.parts[0]) is not None
    return Frame(relative.as_posix(), line, function, not in_venv)


def _merge(result: TestResult, event: dict, root: Path) -> None:
    """Fold one phase's report into the test's result."""
    result.duration_s += float(event.get("duration") or 0.0)
    result.stdout = event.get("stdout", result.stdout)  # pytest accumulates the phases'
    result.stderr = event.get("stderr", result.stderr)
    category = event.get("category") or ""
    if category.startswith("subtests "):
        # a subtest's own report (pytest 9, unittest's subTest): a failing one fails the
        # test; passing or skipped ones say nothing about it (the test's report follows)
        category = category.split(" ", 1)[1]
        if category not in ("failed", "error"):
            return
    if not category:  # a passing setup or teardown
        return
    if event.get("longrepr") and category not in ("passed", "xpassed"):
        result.longrepr = "\n".join(t for t in (result.longrepr, event["longrepr"]) if t)
    # The first phase that did not pass decides (a failing call and then a failing
    # teardown stays "failed"; a passing call and then a failing teardown is an "error").
    if result.outcome in ("", "passed"):
        result.outcome = category
        result.message = event.get("message", "") if category != "passed" else ""
        result.frames = [_frame(raw, root) for raw in event.get("frames") or ()]


def _assemble(events: list[dict], root: Path) -> TestRun:
    run = TestRun({}, None, False, None, "", [], "", None, 0.0)
    unfinished: dict[str, None] = {}
    for event in events:
        kind = event.get("e")
        nodeid = event.get("nodeid", "")
        if kind == "configure":
            run.plugins = list(event.get("plugins") or [])
        elif kind == "start":
            unfinished[nodeid] = None
        elif kind == "finish":
            unfinished.pop(nodeid, None)
        elif kind == "report":
            result = run.results.get(nodeid)
            if result is None:
                result = TestResult(nodeid, "", 0.0, "", "", [], "", "")
            _merge(result, event, root)
            if result.outcome:
                run.results[nodeid] = result
        elif kind == "collect_error":
            run.collection_errors[nodeid] = event.get("longrepr", "")
        elif kind == "coverage":
            run.coverage_from = event.get("from")
        elif kind == "coverage_error":
            run.notes.append(f"coverage: {event.get('message', '')}")
    run.running = next(reversed(unfinished), None)
    return run


_ERROR_STARTS = ("ERROR", "error:", "E   ", "(no match", "ImportError while loading conftest")


def _error_lines(output: str) -> str:
    """pytest's error lines in ``output`` (else its last lines), joined into one."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    picked = [line.removeprefix("E   ") for line in lines if line.startswith(_ERROR_STARTS)]
    return "; ".join(picked[:5]) or "; ".join(lines[-3:]) or "no output"


def _check(run: TestRun, events: list[dict]) -> None:
    """Raise when nothing could be run."""
    code, output = run.exit_code, run.output
    configured = any(event.get("e") == "configure" for event in events)
    if not configured:
        if "No module named pytest" in output:
            raise CollectionError(f"pytest is not installed for {run.interpreter}", output)
        if f'Error importing plugin "{PLUGIN}"' in output:
            raise RunnerError(f"hone's pytest plugin did not load: {_error_lines(output)}", output)
        if code == 4:
            raise CollectionError(f"pytest could not start: {_error_lines(output)}", output)
        if code != 0:
            raise RunnerError(f"pytest did not start (exit {code}): {_error_lines(output)}", output)
    if run.collection_errors and not run.results:
        messages = {
            e["nodeid"]: e.get("message", "") for e in events if e.get("e") == "collect_error"
        }
        text = "; ".join(f"{nodeid or '.'}: {msg}" for nodeid, msg in messages.items())
        raise CollectionError(f"could not collect {text}", output, run.collection_errors)
    if code == 5:
        raise CollectionError("no tests collected (no test matched the targets)", output)
    if code == 4:
        raise CollectionError(f"pytest refused the targets: {_error_lines(output)}", output)
    if code == 3:
        raise RunnerError(f"pytest failed with an internal error: {_error_lines(output)}", output)
