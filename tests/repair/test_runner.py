"""The pytest runner, on real small repositories written into tmp_path and real pytest
subprocesses: outcomes, messages, frames, output, node ids, collection errors, the
interpreter it picks, timeouts and cancellation (the whole process group dies), nothing
written into the repository, per-test coverage (also with an interpreter that has no
coverage), hone's plugins and environment kept out, capped output."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hone.agent.repair import runner
from hone.agent.repair.runner import (
    CollectionError,
    RunCancelled,
    RunnerError,
    find_interpreter,
    run_environment,
    run_tests,
)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too): file hashes, link targets, folders."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                state[key] = "dir"
            else:
                state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for init to reap counts as dead)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


HELPERS = """\
    def inner(x):
        if x > 2:
            raise ValueError(f"bad value {x}")
        return x


    def double(x):
        return x * 2


    def triple(x):
        y = x * 3
        return y
    """

MOD = """\
    from pkg.helpers import inner


    def outer(x):
        y = x + 1
        return inner(y)
    """

BASIC_TESTS = """\
    import json
    import os
    import subprocess
    import sys

    import pytest

    from pkg.helpers import double
    from pkg.mod import outer


    def test_pass():
        print("hello out")
        print("hello err", file=sys.stderr)
        assert double(2) == 4


    def test_fail():
        assert double(1) == 3


    def test_deep():
        outer(5)


    def test_json():
        json.loads("{")


    @pytest.mark.skip(reason="not now")
    def test_skip():
        pass


    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert 0


    @pytest.mark.xfail(reason="maybe fixed")
    def test_xpass():
        pass


    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")


    def test_error(broken):
        pass


    @pytest.fixture
    def bad_teardown():
        yield
        raise RuntimeError("teardown broke")


    def test_teardown_error(bad_teardown):
        pass


    def test_fail_and_teardown_error(bad_teardown):
        assert 1 == 2


    @pytest.mark.parametrize("a,b", [(1, 2), (2, 5), ("x y", "x y")])
    def test_param(a, b):
        assert a * 2 == b or a == b


    class TestK:
        def test_m(self):
            assert [1, 2] == [1, 3]


    def test_leaves_a_child():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(os.environ["CHILD_PID_FILE"], "w") as handle:
            handle.write(str(child.pid))
    """


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    root = make_repo(
        tmp_path_factory.mktemp("basic"),
        {
            "pkg/__init__.py": "",
            "pkg/helpers.py": HELPERS,
            "pkg/mod.py": MOD,
            "tests/test_a.py": BASIC_TESTS,
        },
    )
    pid_file = tmp_path_factory.mktemp("out") / "child.pid"
    run = run_tests(root, ["tests"], env={"CHILD_PID_FILE": str(pid_file)})
    return root, run, pid_file


def test_outcomes_in_run_order(basic):
    _, run, _ = basic
    t = "tests/test_a.py::"
    assert {nodeid: r.outcome for nodeid, r in run.results.items()} == {
        t + "test_pass": "passed",
        t + "test_fail": "failed",
        t + "test_deep": "failed",
        t + "test_json": "failed",
        t + "test_skip": "skipped",
        t + "test_xfail": "xfailed",
        t + "test_xpass": "xpassed",
        t + "test_error": "error",
        t + "test_teardown_error": "error",  # a passing call, then a failing teardown
        t + "test_fail_and_teardown_error": "failed",  # the call's failure decides
        t + "test_param[1-2]": "passed",
        t + "test_param[2-5]": "failed",
        t + "test_param[x y-x y]": "passed",
        t + "TestK::test_m": "failed",
        t + "test_leaves_a_child": "passed",
    }
    assert list(run.results) == sorted(run.results, key=list(run.results).index)
    assert run.exit_code == 1 and not run.timed_out and run.running is None
    assert run.interpreter == sys.executable and run.interpreter_source == "hone"
    assert run.command[:3] == [sys.executable, "-I", "-S"]  # the network sandbox's launcher
    assert run.command[3].endswith("sandbox_hone.py")
    assert run.command[4:7] == [sys.executable, "-m", "pytest"]
    assert "6 failed" in run.output and run.coverage is None
    assert all(r.duration_s > 0 for r in run.results.values())


def test_messages_longrepr_and_captured_output(basic):
    _, run, _ = basic
    r = {nodeid.split("::", 1)[1]: result for nodeid, result in run.results.items()}
    assert r["test_fail"].message == "AssertionError: assert 2 == 3"
    assert "where 2 = double(1)" in r["test_fail"].longrepr
    assert r["test_deep"].message == "ValueError: bad value 6"
    assert r["test_error"].message == "RuntimeError: fixture broke"
    assert r["test_teardown_error"].message == "RuntimeError: teardown broke"
    assert r["test_fail_and_teardown_error"].message == "AssertionError: assert 1 == 2"
    assert "teardown broke" in r["test_fail_and_teardown_error"].longrepr
    assert r["TestK::test_m"].message.startswith("AssertionError: assert [1, 2] == [1, 3]")
    assert r["test_skip"].message == "Skipped: not now"
    assert r["test_xfail"].message == "known bug"
    assert r["test_pass"].message == "" and r["test_pass"].longrepr == ""
    assert r["test_pass"].stdout == "hello out\n" and r["test_pass"].stderr == "hello err\n"
    assert r["test_fail"].stdout == ""


def test_frames_inside_and_outside_the_repository(basic):
    root, run, _ = basic
    deep = run.results["tests/test_a.py::test_deep"].frames
    lines = (root / "tests/test_a.py").read_text().splitlines()
    test_line = lines.index("    outer(5)") + 1
    assert [(f.path, f.line, f.function, f.in_repo) for f in deep] == [
        ("tests/test_a.py", test_line, "test_deep", True),
        ("pkg/mod.py", 6, "outer", True),
        ("pkg/helpers.py", 3, "inner", True),  # the raise, two calls down
    ]
    frames = run.results["tests/test_a.py::test_json"].frames
    assert frames[0].path == "tests/test_a.py" and frames[0].in_repo
    outside = frames[1:]
    assert outside and all(not f.in_repo and os.path.isabs(f.path) for f in outside)
    assert outside[-1].path.endswith(os.path.join("json", "decoder.py"))
    fixture = run.results["tests/test_a.py::test_error"].frames
    assert [(f.path, f.function) for f in fixture] == [("tests/test_a.py", "broken")]


def test_children_left_by_a_test_are_killed_with_the_group(basic):
    _, _, pid_file = basic
    assert wait_dead(int(pid_file.read_text()))


def test_node_ids_select_single_tests(basic):
    root, _, _ = basic
    run = run_tests(
        root, ["tests/test_a.py::TestK::test_m", "tests/test_a.py::test_param[x y-x y]"]
    )
    assert {k: r.outcome for k, r in run.results.items()} == {
        "tests/test_a.py::TestK::test_m": "failed",
        "tests/test_a.py::test_param[x y-x y]": "passed",
    }


def test_collection_errors_and_missing_targets(tmp_path):
    root = make_repo(
        tmp_path,
        {
            "tests/test_ok.py": "def test_ok():\n    pass\n",
            "tests/test_bad.py": "def test_x(:\n    pass\n",
            "tests/test_none.py": "X = 1\n",
        },
    )
    with pytest.raises(CollectionError) as error:
        run_tests(root, ["tests/test_ok.py", "tests/test_bad.py"])
    assert "tests/test_bad.py" in str(error.value) and "SyntaxError" in str(error.value)
    assert list(error.value.errors) == ["tests/test_bad.py"]
    assert "SyntaxError" in error.value.output

    with pytest.raises(CollectionError, match=r"not found.*test_ok\.py::test_nope"):
        run_tests(root, ["tests/test_ok.py::test_nope"])
    with pytest.raises(CollectionError, match="not found.*tests/missing.py"):
        run_tests(root, ["tests/missing.py"])
    with pytest.raises(CollectionError, match="no tests collected"):
        run_tests(root, ["tests/test_none.py"])
    with pytest.raises(RunnerError, match="reads as an option"):
        run_tests(root, ["--collect-only"])
    (root / "tests" / "conftest.py").write_text("import not_installed_anywhere\n")
    with pytest.raises(CollectionError) as error:
        run_tests(root, ["tests/test_ok.py"])
    assert "while loading conftest" in str(error.value)
    assert "No module named 'not_installed_anywhere'" in str(error.value)


HANGS = """\
    import os
    import signal
    import subprocess
    import sys


    def test_first():
        pass


    def test_hangs():
        # A child that ignores SIGTERM, like the test itself: only the group's SIGKILL
        # ends both (killing pytest alone would leave the child running).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        with open(os.environ["PID_FILE"], "w") as handle:
            handle.write("%d %d" % (os.getpid(), child.pid))
        while True:
            pass


    def test_never_reached():
        pass
    """


def test_timeout_kills_the_process_group_and_names_the_hanging_test(tmp_path):
    root = make_repo(tmp_path / "repo", {"test_hang.py": HANGS})
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    run = run_tests(root, ["test_hang.py"], timeout_s=3, env={"PID_FILE": str(pid_file)})
    elapsed = time.monotonic() - started
    assert run.timed_out and run.exit_code is None
    assert run.running == "test_hang.py::test_hangs"
    assert {k: r.outcome for k, r in run.results.items()} == {"test_hang.py::test_first": "passed"}
    assert elapsed < 3 + runner.KILL_GRACE_S + 2
    pytest_pid, child_pid = map(int, pid_file.read_text().split())
    assert wait_dead(pytest_pid) and wait_dead(child_pid)


def test_cancel_kills_the_run_and_keeps_what_finished(tmp_path):
    root = make_repo(
        tmp_path / "repo",
        {
            "test_slow.py": """\
                import os
                import time


                def test_quick():
                    pass


                def test_slow():
                    with open(os.environ["MARK"], "w") as handle:
                        handle.write(str(os.getpid()))
                    time.sleep(60)
                """
        },
    )
    mark = tmp_path / "mark"
    started = time.monotonic()
    with pytest.raises(RunCancelled) as cancelled:
        run_tests(root, [], timeout_s=60, env={"MARK": str(mark)}, cancel=mark.exists)
    assert time.monotonic() - started < 10
    run = cancelled.value.run
    assert run.running == "test_slow.py::test_slow" and not run.timed_out
    assert list(run.results) == ["test_slow.py::test_quick"]
    assert wait_dead(int(mark.read_text()))


def test_nothing_is_written_into_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # not set for every user
    root = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "",
            "pkg/helpers.py": HELPERS,
            "pkg/mod.py": MOD,
            "conftest.py": "import pkg.mod\n",
            "tests/conftest.py": "import pytest\n",
            "tests/test_w.py": """\
                import subprocess
                import sys

                from hypothesis import given, strategies as st

                from pkg.helpers import double


                def test_fails():
                    assert double(2) == 5


                def test_subprocess_imports_the_package():
                    subprocess.run([sys.executable, "-c", "import pkg.mod"], check=True)


                def test_own_coverage_run():  # a data file where COVERAGE_FILE says
                    import coverage

                    cov = coverage.Coverage()
                    cov.start()
                    double(1)
                    cov.stop()
                    cov.save()


                def test_tmp_path(tmp_path):
                    (tmp_path / "f").write_text("x")


                @given(st.integers())
                def test_hypothesis(x):
                    assert double(x) != 7 or x < 0
                """,
        },
    )
    before = snapshot(root)
    run = run_tests(root, [])
    assert run.results["tests/test_w.py::test_fails"].outcome == "failed"
    assert run.results["tests/test_w.py::test_hypothesis"].outcome == "passed"
    run = run_tests(root, ["tests/test_w.py::test_fails"], coverage=True)
    assert run.coverage and "pkg/helpers.py" in run.coverage["tests/test_w.py::test_fails"]
    assert snapshot(root) == before  # no .pytest_cache, __pycache__, .coverage, .hypothesis


COVERED = """\
    from pkg.helpers import double, triple


    def test_double():
        assert double(2) == 4


    def test_triple():
        assert triple(2) == 6
    """


def helper_lines(name: str) -> set[int]:
    """The body lines of ``name`` in HELPERS."""
    lines = textwrap.dedent(HELPERS).splitlines()
    start = lines.index(f"def {name}(x):") + 1
    body = set()
    for number, line in enumerate(lines[start:], start + 1):
        if not line.startswith("    "):
            break
        body.add(number)
    return body


def test_coverage_per_test(tmp_path):
    root = make_repo(
        tmp_path,
        {"pkg/__init__.py": "", "pkg/helpers.py": HELPERS, "tests/test_c.py": COVERED},
    )
    run = run_tests(root, [], coverage=True)
    assert run.coverage_from == "interpreter"  # hone's Python has coverage: its own is used
    cov = run.coverage
    assert set(cov) == {"tests/test_c.py::test_double", "tests/test_c.py::test_triple"}
    assert cov["tests/test_c.py::test_double"]["pkg/helpers.py"] == helper_lines("double")
    assert cov["tests/test_c.py::test_triple"]["pkg/helpers.py"] == helper_lines("triple")
    assert cov["tests/test_c.py::test_double"]["tests/test_c.py"] == {5}
    files = {path for per_test in cov.values() for path in per_test}
    assert files == {"pkg/helpers.py", "tests/test_c.py"}  # repository files only


def _pytest_files() -> list[Path]:
    """What pytest needs to import, from hone's environment (pure Python on 3.11+)."""
    import importlib.util

    found = []
    for name in ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        found.append(origin.parent if origin.name == "__init__.py" else origin)
    return found


def _other_python() -> str | None:
    """A Python 3.11+ of another version than this one (hone's C tracer will not load)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for minor in (12, 13, 14, 11):
        if minor == sys.version_info[1]:
            continue
        candidates = [f"python3.{minor}", *map(str, pyenv.glob(f"versions/3.{minor}*/bin/python"))]
        for candidate in candidates:
            try:
                done = subprocess.run(
                    [candidate, "-c", "import sys; print(sys.version_info[1])"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0 and done.stdout.strip() == str(minor):
                return candidate
    return None


@pytest.mark.parametrize("which", ["this-version", "other-version"])
def test_coverage_with_an_interpreter_that_lacks_it(tmp_path, monkeypatch, which):
    """The repository's own venv has pytest (linked in) but no coverage: hone's coverage
    is injected for the run, and nothing is installed or written there."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    base = getattr(sys, "_base_executable", sys.executable) if which == "this-version" else None
    base = base or _other_python()
    if base is None:
        pytest.skip("no Python 3.11+ of another version on this machine")
    root = make_repo(
        tmp_path,
        {"pkg/__init__.py": "", "pkg/helpers.py": HELPERS, "tests/test_c.py": COVERED},
    )
    subprocess.run([base, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    python = str(root / ".venv" / "bin" / "python")
    probe = "import coverage"
    assert subprocess.run([python, "-c", probe], capture_output=True).returncode != 0

    with pytest.raises(CollectionError, match="pytest is not installed"):
        run_tests(root, [])

    version = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    site = Path(version.stdout.strip())
    for path in _pytest_files():
        (site / path.name).symlink_to(path)
    # Code inside a virtual environment under the root is not the repository's.
    (site / "vendored.py").write_text(
        "def twice(x):\n    return 2 * x\n\n\ndef boom():\n    raise KeyError('vendored')\n"
    )
    make_repo(
        root,
        {
            "tests/test_v.py": """\
                import os
                import sys

                from vendored import boom, twice


                def test_v():
                    venv = os.path.dirname(os.path.dirname(sys.executable))
                    assert os.environ["VIRTUAL_ENV"] == venv
                    assert twice(2) == 4


                def test_in_vendored_code():
                    boom()
                """
        },
    )
    before = snapshot(root)
    run = run_tests(root, [], coverage=True)
    assert snapshot(root) == before
    assert run.interpreter == python and run.interpreter_source == "repository"
    assert {k: r.outcome for k, r in run.results.items()} == {
        "tests/test_c.py::test_double": "passed",
        "tests/test_c.py::test_triple": "passed",
        "tests/test_v.py::test_v": "passed",
        "tests/test_v.py::test_in_vendored_code": "failed",
    }
    frames = run.results["tests/test_v.py::test_in_vendored_code"].frames
    assert [(f.function, f.in_repo) for f in frames] == [
        ("test_in_vendored_code", True),
        ("boom", False),  # under the root, but in its virtual environment
    ]
    assert frames[1].path == (site / "vendored.py").relative_to(root).as_posix()
    assert run.coverage_from == "hone" and not run.notes
    assert run.coverage["tests/test_c.py::test_double"]["pkg/helpers.py"] == helper_lines("double")
    assert run.coverage["tests/test_c.py::test_triple"]["pkg/helpers.py"] == helper_lines("triple")
    assert set(run.coverage["tests/test_v.py::test_v"]) == {"tests/test_v.py"}
    assert set(run.coverage["tests/test_v.py::test_in_vendored_code"]) == {"tests/test_v.py"}
    assert subprocess.run([python, "-c", probe], capture_output=True).returncode != 0


STRICT = """\
    [pytest]
    filterwarnings = error
    """


def test_hones_plugins_do_not_leak_into_the_run(tmp_path):
    """hone's venv carries pytest-asyncio, whose autoload breaks a repository that turns
    warnings into errors before any test runs; the runner's run does not load it."""
    pytest.importorskip("pytest_asyncio")  # the leak needs a plugin in hone's environment
    root = make_repo(
        tmp_path, {"pytest.ini": STRICT, "test_plain.py": "def test_plain():\n    pass\n"}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0
    assert "asyncio_default_fixture_loop_scope" in plain.stdout + plain.stderr
    run = run_tests(root, [])
    assert {k: r.outcome for k, r in run.results.items()} == {"test_plain.py::test_plain": "passed"}
    assert "asyncio" not in run.plugins and "pytest_hone" in run.plugins
    # the repair resolves the interpreter once, on the user's repository, and passes it to
    # every run in its copy: still hone's own, its plugins still left out
    interpreter = find_interpreter(root)
    assert interpreter == sys.executable and interpreter.source == "hone"
    again = run_tests(root, [], python=interpreter)
    assert again.interpreter_source == "hone" and "asyncio" not in again.plugins
    # as a plain path it reads as the user's explicit choice, whose plugins load: what the
    # repair loop did before (every candidate's run ~1 s slower, and this suite broken)
    with pytest.raises(RunnerError, match="asyncio_default_fixture_loop_scope"):
        run_tests(root, [], python=str(interpreter))


ASYNC_TEST = """\
    import asyncio


    async def test_async():
        await asyncio.sleep(0)
    """


@pytest.mark.parametrize(
    "ini",
    [
        "required_plugins = pytest-asyncio pytest-timeout\ntimeout = 30\n",
        "addopts = -p asyncio\n",
    ],
    ids=["required_plugins", "addopts"],
)
def test_plugins_the_repository_asks_for_still_load(tmp_path, ini):
    pytest.importorskip("pytest_asyncio")
    pytest.importorskip("pytest_timeout")
    config = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    root = make_repo(tmp_path, {"pytest.ini": config + ini, "test_async.py": ASYNC_TEST})
    run = run_tests(root, [])
    assert {k: r.outcome for k, r in run.results.items()} == {"test_async.py::test_async": "passed"}
    assert "asyncio" in run.plugins
    assert ("timeout" in run.plugins) == ("pytest-timeout" in ini)


def test_a_repository_venv_that_is_hones_keeps_its_plugins(tmp_path):
    """hone's own repository (or any whose .venv is hone's) runs as its venv would: with
    the plugins autoloaded, since that is the repository's environment, not a fallback."""
    pytest.importorskip("pytest_asyncio")
    if sys.prefix == sys.base_prefix:
        pytest.skip("hone does not run in a virtual environment here")
    config = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    root = make_repo(tmp_path, {"pytest.ini": config, "test_async.py": ASYNC_TEST})
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    run = run_tests(root, [])
    assert run.interpreter_source == "repository" and "asyncio" in run.plugins
    assert {k: r.outcome for k, r in run.results.items()} == {"test_async.py::test_async": "passed"}


def test_a_missing_required_plugin_is_a_clear_error(tmp_path):
    root = make_repo(
        tmp_path,
        {"pytest.ini": "[pytest]\nrequired_plugins = pytest-nonexistent\n", "test_a.py": ""},
    )
    with pytest.raises(CollectionError, match="Missing required plugins: pytest-nonexistent"):
        run_tests(root, [])


def test_hones_environment_stays_out(tmp_path, monkeypatch):
    hone_prefix = sys.prefix
    if sys.prefix == sys.base_prefix:
        pytest.skip("hone does not run in a virtual environment here")
    hone_bin = os.path.join(hone_prefix, "bin")
    site = next(p for p in sys.path if p.startswith(hone_prefix) and p.endswith("site-packages"))
    monkeypatch.setenv("HONE_TOKEN", "secret-token")
    monkeypatch.setenv("HONE_API_KEY", "secret-key")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("VIRTUAL_ENV", hone_prefix)
    monkeypatch.setenv("PATH", hone_bin + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONPATH", site + os.pathsep + "/somewhere/else")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--collect-only")
    root = make_repo(
        tmp_path,
        {
            "test_env.py": f"""\
                import os

                HONE = {hone_prefix!r}


                def test_env():
                    env = os.environ
                    assert not [k for k in env if k.startswith("HONE_") and "PYTEST" not in k]
                    assert "VIRTUAL_ENV" not in env and "HF_TOKEN" not in env
                    seen = repr(dict(env))
                    assert not [s for s in ("secret-token", "secret-key", "hf_secret") if s in seen]
                    path, pythonpath = env["PATH"].split(":"), env["PYTHONPATH"].split(":")
                    assert not [p for p in path if p.startswith(HONE)]
                    assert pythonpath[0] == "/somewhere/else"
                    assert not [p for p in pythonpath if p.startswith(HONE)]
                    assert env["EXTRA"] == "1"
                """
        },
    )
    run = run_tests(root, [], env={"EXTRA": "1"})
    result = run.results["test_env.py::test_env"]
    assert result.outcome == "passed", result.longrepr


def test_run_environment_activates_the_repository_venv(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").write_text("")
    base = {"PATH": "/usr/bin", "HONE_X": "1", "PYTEST_ADDOPTS": "-x", "KEEP": "yes"}
    env = run_environment(base, str(venv / "bin" / "python"), extra={"HONE_MINE": "2"})
    assert env["VIRTUAL_ENV"] == str(venv)
    assert env["PATH"] == str(venv / "bin") + os.pathsep + "/usr/bin"
    assert env["KEEP"] == "yes" and env["HONE_MINE"] == "2"  # the caller's extra wins
    assert "HONE_X" not in env and "PYTEST_ADDOPTS" not in env
    own = run_environment({"PATH": "/usr/bin", "VIRTUAL_ENV": "/x"}, sys.executable, hones_own=True)
    assert own["PATH"] == "/usr/bin" and "VIRTUAL_ENV" not in own


def test_output_is_capped(tmp_path):
    root = make_repo(
        tmp_path,
        {
            "test_big.py": """\
                def test_captured():
                    print("a" * 3_000_000)
                    print("tail")


                def test_to_the_terminal(capsys):
                    with capsys.disabled():
                        print("b" * 3_000_000)
                """
        },
    )
    run = run_tests(root, [], output_limit=200_000)
    stdout = run.results["test_big.py::test_captured"].stdout
    assert len(stdout) < 201_000 and stdout.endswith("tail\n") and "omitted by hone" in stdout
    assert len(run.output) < 201_000 and "omitted by hone" in run.output
    assert "2 passed" in run.output  # the tail (pytest's summary) is kept


def _fake_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = folder / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return python


def test_find_interpreter(tmp_path):
    assert find_interpreter(tmp_path) == sys.executable
    (tmp_path / "venv" / "bin").mkdir(parents=True)  # no pyvenv.cfg: not a venv
    (tmp_path / "venv" / "bin" / "python").write_text("")
    assert find_interpreter(tmp_path) == sys.executable
    env_python = _fake_venv(tmp_path / "env")
    assert find_interpreter(tmp_path) == str(env_python)
    dot_python = _fake_venv(tmp_path / ".venv")
    assert find_interpreter(tmp_path) == str(dot_python)  # .venv first
    assert find_interpreter(tmp_path, python=sys.executable) == sys.executable
    assert find_interpreter(tmp_path, python="env/bin/python") == str(env_python)
    assert Path(find_interpreter(tmp_path, python="sh")).name == "sh"  # a name on PATH
    with pytest.raises(RunnerError, match="not found"):
        find_interpreter(tmp_path, python=str(tmp_path / "nope" / "python"))


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit"), reason="Linux prlimit")
def test_operating_system_limits_hold_memory_files_and_core_dumps(tmp_path: Path):
    root = make_repo(
        tmp_path / "limits",
        {
            "test_limits.py": """
import resource


def test_big_allocation():
    data = bytearray(2 * 1024**3)  # 2 GiB: over the run's address-space limit
    assert len(data) == 0


def test_limits_are_set():
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] == 0
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == 512 * 1024**2
    # a run outliving a killed hone stops by itself: CPU time, twice the timeout + 60 s
    assert resource.getrlimit(resource.RLIMIT_CPU)[0] == 2 * 60 + 60
""",
        },
    )
    run = run_tests(root, ["test_limits.py"], memory_limit_mb=512, timeout_s=60)
    assert run.results["test_limits.py::test_big_allocation"].message.startswith("MemoryError")
    assert run.results["test_limits.py::test_limits_are_set"].outcome == "passed"


NETWORK_TESTS = """
import os
import socket
import threading


def test_only_a_loopback():
    assert [name for _index, name in socket.if_nameindex()] == ["lo"]
    assert "HONE_SANDBOX_NETWORK" not in os.environ


def test_the_loopback_works():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].sendall(b"hi"), daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        assert client.recv(2) == b"hi"


def test_same_user():
    outer = int(os.environ["OUTER_UID"]), int(os.environ["OUTER_GID"])
    assert (os.getuid(), os.getgid()) == outer
"""


def _can_isolate() -> bool:
    probe = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(Path(runner.__file__).with_name("sandbox_hone.py")),
            "true",
        ],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and not probe.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces")
def test_tests_run_without_network_but_with_their_loopback(tmp_path: Path, monkeypatch):
    """The machine has other interfaces; the run sees only its own loopback, which
    works, as the same user. Where user namespaces are not allowed, a note says so."""
    assert len(socket.if_nameindex()) > 1 or not _can_isolate()
    root = make_repo(tmp_path / "net", {"test_net.py": NETWORK_TESTS})
    env = {"OUTER_UID": str(os.getuid()), "OUTER_GID": str(os.getgid())}
    monkeypatch.delenv("HONE_TEST_NETWORK", raising=False)
    run = run_tests(root, ["test_net.py"], env=env, timeout_s=60)
    if not _can_isolate():
        assert any(n.startswith("the network is not isolated") for n in run.notes), run.notes
        pytest.skip("this system does not allow unprivileged user namespaces")
    assert {n: r.outcome for n, r in run.results.items()} == {
        "test_net.py::test_only_a_loopback": "passed",
        "test_net.py::test_the_loopback_works": "passed",
        "test_net.py::test_same_user": "passed",
    }, run.output
    assert not run.notes
    # asked for, the network stays
    allowed = run_tests(root, ["test_net.py::test_only_a_loopback"], env=env, network=True)
    assert allowed.results["test_net.py::test_only_a_loopback"].outcome == "failed"
    monkeypatch.setenv("HONE_TEST_NETWORK", "allow")
    allowed = run_tests(root, ["test_net.py::test_only_a_loopback"], env=env)
    assert allowed.results["test_net.py::test_only_a_loopback"].outcome == "failed"


def test_a_failing_unittest_subtest_fails_its_test(tmp_path: Path):
    root = make_repo(
        tmp_path / "subtests",
        {
            "test_sub.py": """
import unittest


class T(unittest.TestCase):
    def test_sub(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 1)

    def test_all_pass(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertLess(i, 5)
""",
        },
    )
    run = run_tests(root, ["test_sub.py"])
    failed = run.results["test_sub.py::T::test_sub"]
    assert failed.outcome == "failed" and failed.message.startswith("AssertionError")
    assert run.results["test_sub.py::T::test_all_pass"].outcome == "passed"
