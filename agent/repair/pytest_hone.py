"""hone's pytest plugin, loaded into the user's pytest by the runner (``-p pytest_hone``).

It is not imported by hone: :mod:`hone.agent.repair.runner` copies this file into a
temporary folder on the user interpreter's ``PYTHONPATH``. That interpreter may be older
than hone's, so this module keeps to Python 3.8 and imports only the standard library,
pytest and, when coverage is asked for, ``coverage`` (the user's own, else hone's).

What it does, steered by environment variables (all set by the runner):

- ``HONE_PYTEST_REPORT``: a file that receives one JSON object per line, flushed as each
  happens, so a run that is killed still leaves what finished (``"e"`` names the event):
  ``configure`` (pytest and Python versions, the loaded plugins), ``start``/``finish`` per
  test, ``report`` per test phase (setup/call/teardown: pytest's own status category,
  duration, longrepr, the exception's first line, the traceback frames, captured output),
  ``collect_error``, ``coverage`` (which coverage measured) or ``coverage_error``, ``end``.
- ``HONE_PYTEST_LIMIT``: the most characters kept of each captured text (head and tail).
- ``HONE_PYTEST_ROOT``: the repository root (coverage is recorded for files under it).
- ``HONE_PYTEST_COVERAGE``: when set, per-test coverage: coverage starts at configure, its
  dynamic context is switched to each test's node id for the test's whole protocol (setup,
  call, teardown), and at the end this file receives ``{nodeid: {relative path: [lines]}}``
  for the files under the root, virtual environments inside it excluded.
  ``HONE_PYTEST_COVERAGE_DATA`` is coverage's data file (a temporary one);
  ``HONE_PYTEST_COVERAGE_FALLBACK`` a folder holding hone's ``coverage`` package, used when
  the interpreter has no coverage (or one older than 5.0, without dynamic contexts).
- ``HONE_PYTEST_REQUIRED_PLUGINS=1`` (plugin autoloading is off because the interpreter is
  hone's own): the plugins that the configuration's ``required_plugins`` names are loaded
  from their entry points, as autoloading would have, and only those.

It also turns pytest-xdist off (``-n 0`` appended when xdist is loaded): one process, so
that events and coverage come from where the tests run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings

import _pytest
import pluggy
import pytest

_ENV_REPORT = "HONE_PYTEST_REPORT"
_ENV_LIMIT = "HONE_PYTEST_LIMIT"
_ENV_ROOT = "HONE_PYTEST_ROOT"
_ENV_COVERAGE = "HONE_PYTEST_COVERAGE"
_ENV_COVERAGE_DATA = "HONE_PYTEST_COVERAGE_DATA"
_ENV_COVERAGE_FALLBACK = "HONE_PYTEST_COVERAGE_FALLBACK"
_ENV_REQUIRED = "HONE_PYTEST_REQUIRED_PLUGINS"

# Frames in these folders are pytest's machinery, not the test's story.
_INTERNAL = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (_pytest, pluggy))


class _State:
    writer = None  # type: _Writer | None
    config = None
    coverage = None  # the started coverage.Coverage, or None
    required_done = False


def _limit():
    try:
        return max(1000, int(os.environ.get(_ENV_LIMIT, "1000000")))
    except ValueError:
        return 1000000


def _cap(text, limit=None):
    """``text`` cut to ``limit`` characters: its head and its tail, with a marker between."""
    text = text or ""
    limit = limit or _limit()
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[... {omitted} characters omitted by hone ...]\n{text[-half:]}"


class _Writer:
    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._pid = os.getpid()

    def write(self, event):
        if os.getpid() != self._pid:  # a test forked: the child must not report
            return
        try:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()
        except (OSError, ValueError):
            pass

    def close(self):
        try:
            self._file.close()
        except OSError:
            pass


def _emit(event):
    if _State.writer is not None:
        _State.writer.write(event)


def _is_worker(config):
    return hasattr(config, "workerinput")  # an xdist worker: the controller reports


# -- required plugins when autoloading is off ------------------------------------------


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_required(manager):
    """Load the entry points of the distributions that ``required_plugins`` names."""
    config = manager.get_plugin("pytestconfig")
    if config is None:
        return
    try:
        required = config.getini("required_plugins")
    except (ValueError, KeyError):
        return
    wanted = set()
    for requirement in required:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if match:
            wanted.add(_normalize(match.group(1)))
    if not wanted:
        return
    try:
        import importlib.metadata as metadata
    except ImportError:  # Python < 3.8 never gets here (pytest needs 3.8+)
        return
    names = []
    for dist in metadata.distributions():
        if _normalize(dist.metadata["Name"] or "") not in wanted:
            continue
        for entry in dist.entry_points:
            if entry.group == "pytest11":
                names.append(entry.name)
    for name in names:
        manager.load_setuptools_entrypoints("pytest11", name=name)


def pytest_plugin_registered(plugin, manager):
    # Historic: called when this module is registered (during pytest's argument
    # preparsing, after the ini file is read and before required_plugins is checked).
    if plugin is not sys.modules[__name__] or _State.required_done:
        return
    _State.required_done = True
    if os.environ.get(_ENV_REQUIRED) == "1":
        _load_required(manager)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if early_config.pluginmanager.hasplugin("xdist"):
        args.extend(["-n", "0"])


# -- the report file -------------------------------------------------------------------


def _plugin_names(config):
    names = []
    for name, plugin in config.pluginmanager.list_name_plugin():
        if plugin is not None and not name.isdigit():
            names.append(name)
    return names


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    path = os.environ.get(_ENV_REPORT)
    if not path or _is_worker(config):
        return
    _State.writer = _Writer(path)
    _State.config = config
    dists = []
    for _plugin, dist in config.pluginmanager.list_plugin_distinfo():
        dists.append(f"{dist.project_name} {dist.version}")
    _emit(
        {
            "e": "configure",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
            "plugins": _plugin_names(config),
            "distributions": dists,
        }
    )
    if os.environ.get(_ENV_COVERAGE):
        _start_coverage()


def pytest_runtest_logstart(nodeid, location):
    _emit({"e": "start", "nodeid": nodeid})


def pytest_runtest_logfinish(nodeid, location):
    _emit({"e": "finish", "nodeid": nodeid})


def _hidden(frame):
    for scope in (frame.f_locals, frame.f_globals):
        hide = scope.get("__tracebackhide__")
        if hide is not None:
            return bool(hide) if not callable(hide) else True
    return False


def _frames(tb):
    """The traceback as [path, line, function], pytest's and pluggy's own frames left out."""
    frames = []
    while tb is not None:
        frame = tb.tb_frame
        path = frame.f_code.co_filename
        if not path.startswith("<"):
            path = os.path.abspath(path)
        if not path.startswith(_INTERNAL) and not _hidden(frame):
            frames.append([path, tb.tb_lineno, frame.f_code.co_name])
        tb = tb.tb_next
    return frames


def _first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _last_error_line(text):
    """The last ``E   ...`` line of a longrepr (the exception), else its last line."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("E "):
            return line[1:].strip()
    return lines[-1].strip() if lines else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if excinfo is None or report.passed:
        return
    try:
        if report.skipped and not hasattr(report, "wasxfail"):
            return
        report.hone_message = _first_line(excinfo.exconly())
        report.hone_frames = _frames(excinfo.tb)
    except Exception:  # never let reporting break the user's run
        pass


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return _first_line(getattr(report, "longreprtext", "") or str(longrepr or ""))


def pytest_runtest_logreport(report):
    if _State.writer is None:
        return
    config = _State.config
    try:
        status = config.hook.pytest_report_teststatus(report=report, config=config)
        category = status[0] if status else ""
    except Exception:
        category = report.outcome
    if not isinstance(category, str):
        category = str(category)
    event = {
        "e": "report",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "category": category,
        "duration": getattr(report, "duration", 0.0),
    }
    if not report.passed or hasattr(report, "wasxfail"):
        longrepr = getattr(report, "longreprtext", "") or ""
        if report.skipped:
            message = (
                getattr(report, "wasxfail", "")
                or getattr(report, "hone_message", "")
                or _skip_reason(report)
            )
        else:
            message = getattr(report, "hone_message", "") or _last_error_line(longrepr)
        if report.passed:  # xpassed
            message = getattr(report, "wasxfail", "")
        event["longrepr"] = _cap(longrepr)
        event["message"] = _cap(message, 10000)
        event["frames"] = getattr(report, "hone_frames", [])
    event["stdout"] = _cap(getattr(report, "capstdout", ""))
    event["stderr"] = _cap(getattr(report, "capstderr", ""))
    _emit(event)


def pytest_collectreport(report):
    if report.failed:
        text = getattr(report, "longreprtext", "") or str(report.longrepr)
        _emit(
            {
                "e": "collect_error",
                "nodeid": report.nodeid,
                "longrepr": _cap(text),
                "message": _last_error_line(text),
            }
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _State.writer is None:
        return
    _finish_coverage()
    _emit({"e": "end", "exitstatus": int(exitstatus)})


def pytest_unconfigure(config):
    if _State.writer is not None:
        _State.writer.close()
        _State.writer = None


# -- per-test coverage -----------------------------------------------------------------


def _import_coverage():
    """The user's coverage when it has dynamic contexts (5.0+), else hone's: (module, whose)."""
    try:
        import coverage

        if hasattr(coverage.Coverage, "switch_context"):
            return coverage, "interpreter"
    except ImportError:
        pass
    fallback = os.environ.get(_ENV_COVERAGE_FALLBACK)
    if not fallback:
        raise ImportError("coverage (5.0 or newer) is not installed for this interpreter")
    _forget_coverage()
    sys.path.insert(0, fallback)
    try:
        import coverage
    except Exception as exc:  # e.g. a Python older than hone's coverage supports
        sys.path.remove(fallback)
        _forget_coverage()
        raise ImportError(
            f"this interpreter has no coverage, and hone's does not load on Python "
            f"{sys.version.split()[0]} ({type(exc).__name__}: {exc})"
        ) from None
    return coverage, "hone"


def _forget_coverage():
    for name in list(sys.modules):
        if name == "coverage" or name.startswith("coverage."):
            del sys.modules[name]


def _virtual_envs(root):
    found = []
    try:
        names = os.listdir(root)
    except OSError:
        return found
    for name in names:
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
            found.append(path + os.sep)
    return found


def _start_coverage():
    root = os.path.realpath(os.environ.get(_ENV_ROOT) or os.getcwd())
    try:
        coverage, whose = _import_coverage()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cov = coverage.Coverage(
                data_file=os.environ.get(_ENV_COVERAGE_DATA) or None,
                branch=False,
                source=[root],
                omit=[path + "*" for path in _virtual_envs(root)],
                config_file=False,
            )
            cov.start()
    except Exception as exc:
        _emit({"e": "coverage_error", "message": f"{type(exc).__name__}: {exc}"})
        return
    _State.coverage = cov
    _emit({"e": "coverage", "version": coverage.__version__, "from": whose})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cov = _State.coverage
    if cov is not None:
        cov.switch_context(item.nodeid)
    try:
        yield
    finally:
        if cov is not None:
            cov.switch_context("")


def _relative(path, root, skip):
    real = os.path.realpath(path)
    if not real.startswith(root + os.sep) or real.startswith(tuple(skip)):
        return None
    return os.path.relpath(real, root).replace(os.sep, "/")


def _finish_coverage():
    cov = _State.coverage
    target = os.environ.get(_ENV_COVERAGE)
    if cov is None or not target:
        return
    _State.coverage = None
    root = os.path.realpath(os.environ.get(_ENV_ROOT) or os.getcwd())
    skip = _virtual_envs(root)
    result = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cov.stop()
            data = cov.get_data()
            for path in data.measured_files():
                relative = _relative(path, root, skip)
                if relative is None:
                    continue
                for line, contexts in data.contexts_by_lineno(path).items():
                    for context in contexts:
                        if context:
                            result.setdefault(context, {}).setdefault(relative, []).append(line)
        for files in result.values():
            for lines in files.values():
                lines.sort()
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
    except Exception as exc:
        _emit({"e": "coverage_error", "message": f"{type(exc).__name__}: {exc}"})
