"""Every git command hone runs, with the repository's own configuration unable to run commands.

A repository is untrusted input: its ``.git/config`` (and any file it includes) can name
commands that git runs on its behalf — ``core.fsmonitor``, filter drivers
(``filter.<name>.clean``/``smudge``/``process``), diff text conversion and external diff
drivers, pagers, editors, hooks. Indexing a repository someone sent you must run none of
them, so every invocation here (:func:`run` and the functions built on it)

- overrides the command-running settings at the command-line scope (the highest), given
  in the environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>``,
  git 2.31+) so that odd names need no quoting: ``core.fsmonitor=false``,
  ``core.hooksPath=/dev/null``, pager, editor, ``diff.external`` and more
  (:data:`SAFE_CONFIG`);
- reads the filter drivers that any configuration defines (``git config --get-regexp``,
  includes followed; reading config runs nothing) and empties each one's ``clean``,
  ``smudge`` and ``process`` with ``required=false``, so that git uses the file as it is;
- runs git with ``--no-pager``, stdin closed, ``GIT_TERMINAL_PROMPT=0``,
  ``GIT_OPTIONAL_LOCKS=0``, no system config, literal pathspecs, and ``-c`` settings
  inherited from a parent git dropped;
- runs only commands that never write the user's index (``ls-files``, ``diff-index``,
  ``rev-parse``, ``config``): the porcelain ``git diff`` refreshes and rewrites it,
  optional locks or not, which would take ``index.lock`` from under the user's own git;
- diffs with ``--no-ext-diff --no-textconv`` (plumbing's defaults, made explicit);
- kills git after a timeout and raises :class:`GitError`, which names the command and
  the repository.

GitPython runs the processes (:class:`git.cmd.Git`); this module never builds a
``git.Repo``, whose Python-side config reading we do not need.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

# Without a git binary GitPython's import raises; let it import, and fail per call instead.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from git.cmd import Git  # noqa: E402
from git.exc import GitCommandNotFound  # noqa: E402

__all__ = [
    "SAFE_CONFIG",
    "TIMEOUT_S",
    "GitError",
    "environment",
    "head",
    "list_files",
    "overrides",
    "run",
    "top_level",
    "uncommitted_diff",
]

TIMEOUT_S = 20.0

# Settings that make git run a command (or talk to a user), neutralized for every call.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("core.askPass", ""),
    ("credential.helper", ""),  # an empty value clears the list of helpers
    ("diff.external", ""),  # and --no-ext-diff on every diff
    ("log.showSignature", "false"),  # runs gpg
    ("protocol.allow", "never"),  # hone never fetches; ext:: runs commands
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    # output that parsers and diffs rely on
    ("color.ui", "false"),
    ("diff.noprefix", "false"),
    ("diff.mnemonicPrefix", "false"),
    ("diff.relative", "false"),
)

# Environment for every call (GitPython adds LC_ALL=C and LANGUAGE=C, so messages are English).
_ENVIRONMENT: dict[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_PARAMETERS": "",  # drop `git -c` settings inherited from a parent git
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_EDITOR": "true",
}

_NOT_A_REPOSITORY = (
    "not a git repository",
    "must be run in a work tree",
    "dubious ownership",  # owned by someone else: git itself refuses it (safe.directory)
)


class GitError(Exception):
    """A git command failed, timed out, or git is not installed.

    The message names the command and the repository; ``command``, ``root``, ``status``
    (None when git did not run or was killed) and ``stderr`` carry the details.
    """

    def __init__(
        self, message: str, command: Sequence[str], root: Path | str, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.command = list(command)
        self.root = str(root)
        self.status = status
        self.stderr = ""


def environment(config: Iterable[tuple[str, str]] = SAFE_CONFIG) -> dict[str, str]:
    """The environment variables for one git call, ``config`` at the command-line scope."""
    env = dict(_ENVIRONMENT)
    pairs = list(config)
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _directory(root: Path | str, args: Sequence[str]) -> Path:
    path = Path(root)
    if not path.is_dir():  # GitPython would fall back to the process's own directory
        raise GitError(f"git {' '.join(args)}: {path} is not a directory", args, path)
    return path


def _execute(
    cwd: Path,
    args: Sequence[str],
    config: Sequence[tuple[str, str]],
    timeout: float,
    ok: Sequence[int] = (0,),
) -> tuple[int, bytes, str]:
    """Run ``git args`` in ``cwd``: (status, stdout, stderr); GitError unless status in ``ok``."""
    executable = Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
    command = [executable, "--no-pager", "-C", str(cwd), *args]
    shown = f"git {' '.join(args)}"
    try:
        status, stdout, stderr = Git(str(cwd)).execute(
            command,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=timeout,
            env=environment(config),
        )
    except GitCommandNotFound as exc:
        raise GitError(f"{shown} in {cwd}: git is not installed ({exc})", args, cwd) from exc
    except OSError as exc:
        raise GitError(f"{shown} in {cwd}: {exc}", args, cwd) from exc
    if status in ok:
        return status, stdout, stderr
    if status < 0 and stderr.startswith("Timeout:"):  # GitPython killed it
        error = GitError(f"{shown} in {cwd}: timed out after {timeout:g} s", args, cwd)
    elif status < 0:
        error = GitError(f"{shown} in {cwd}: killed by signal {-status}", args, cwd)
    else:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        error = GitError(f"{shown} in {cwd} failed (exit {status}): {last}", args, cwd, status)
    error.stderr = stderr
    raise error


def _filter_overrides(cwd: Path, timeout: float) -> list[tuple[str, str]]:
    """Empty every filter driver that the configuration seen from ``cwd`` defines."""
    _, out, _ = _execute(
        cwd,
        ["config", "-z", "--includes", "--get-regexp", r"^filter\."],
        SAFE_CONFIG,
        timeout,
        ok=(0, 1),  # 1: no filter defined
    )
    names: dict[str, None] = {}
    for entry in out.split(b"\0"):
        key = os.fsdecode(entry.split(b"\n", 1)[0])
        if key.startswith("filter.") and "." in key[len("filter.") :]:
            names[key[len("filter.") :].rsplit(".", 1)[0]] = None
    result: list[tuple[str, str]] = []
    for name in names:
        result += [
            (f"filter.{name}.clean", ""),
            (f"filter.{name}.smudge", ""),
            (f"filter.{name}.process", ""),
            (f"filter.{name}.required", "false"),
        ]
    return result


def overrides(root: Path | str, timeout: float = TIMEOUT_S) -> list[tuple[str, str]]:
    """Every config override for a call in ``root``: :data:`SAFE_CONFIG` and the filters.

    Read afresh for each call: a cached list would miss a filter defined since.
    """
    cwd = _directory(root, ["config", "--get-regexp", r"^filter\."])
    return [*SAFE_CONFIG, *_filter_overrides(cwd, timeout)]


def run(
    root: Path | str, *args: str, timeout: float = TIMEOUT_S, ok: Sequence[int] = (0,)
) -> bytes:
    """Run ``git args`` in ``root`` with every protection; its stdout as bytes.

    Raises :class:`GitError` when the exit status is not in ``ok``, on timeout, or when
    git is missing. Pathspecs are literal (``GIT_LITERAL_PATHSPECS``). Prefer plumbing
    commands: porcelain ones (``status``, ``diff``) may rewrite the user's index.
    """
    cwd = _directory(root, args)
    return _execute(cwd, args, overrides(cwd, timeout), timeout, ok)[1]


def top_level(path: Path | str, timeout: float = TIMEOUT_S) -> Path | None:
    """The top level of the git work tree containing ``path`` (a file or folder).

    None when ``path`` is not inside a work tree (or does not exist, or is inside a
    ``.git`` folder or a bare repository, or belongs to another user and git refuses it).
    """
    start = Path(path)
    folder = start if start.is_dir() else start.parent
    if not folder.is_dir():
        return None
    args = ["rev-parse", "--show-toplevel"]
    status, out, err = _execute(folder, args, overrides(folder, timeout), timeout, ok=(0, 128))
    if status == 128:
        if any(marker in err for marker in _NOT_A_REPOSITORY):
            return None
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        raise GitError(f"git rev-parse in {folder} failed (exit 128): {last}", args, folder, 128)
    text = os.fsdecode(out).strip("\n")
    return Path(text) if text else None


# `ls-files -t` tags: R deleted from the work tree, S skip-worktree (sparse checkout),
# K a file in the way of a tracked directory. Everything else is on disk.
_ABSENT_TAGS = frozenset("RSK")


def list_files(
    root: Path | str, paths: Iterable[str] | None = None, timeout: float = TIMEOUT_S
) -> list[str]:
    """Tracked files and untracked files that no ignore rule excludes, under ``root``.

    Relative posix paths (relative to ``root``, which may be a sub-folder of the work
    tree), in git's order, without duplicates (unmerged entries), without tracked files
    deleted from the work tree, and without untracked nested repositories. ``paths``
    restricts the answer to those relative paths (literal, not globs). Works in a
    repository with no commits.
    """
    args = ["ls-files", "-z", "-t", "--cached", "--deleted", "--others", "--exclude-standard"]
    if paths is not None:
        wanted = list(paths)
        if not wanted:
            return []
        args += ["--", *wanted]
    out = run(root, *args, timeout=timeout)
    present: dict[str, None] = {}
    absent: set[str] = set()
    for entry in out.split(b"\0"):
        if len(entry) < 3 or entry.endswith(b"/"):  # "" at the end; "? nested/" repositories
            continue
        tag, path = entry[:1].decode("ascii", "replace"), os.fsdecode(entry[2:])
        if tag in _ABSENT_TAGS:
            absent.add(path)
        else:
            present[path] = None
    return [path for path in present if path not in absent]


def head(root: Path | str, timeout: float = TIMEOUT_S) -> str | None:
    """The commit id at HEAD, or None in a repository with no commits yet."""
    out = run(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", timeout=timeout, ok=(0, 1))
    text = out.decode("ascii", "replace").strip()
    return text or None


def uncommitted_diff(root: Path | str, relpath: str, timeout: float = TIMEOUT_S) -> str:
    """The file's changes in the work tree against HEAD, as a unified diff with 3 lines of
    context (staged and unstaged together; ``a/``/``b/`` prefixes, paths from the top level).

    ``""`` when the file is unchanged, untracked or ignored, or the repository has no
    commits. Text conversion and external diff drivers never run; a binary file shows as
    ``Binary files ... differ``. Undecodable bytes are replaced.
    """
    cwd = _directory(root, ["diff-index", relpath])
    config = overrides(cwd, timeout)
    status, _, _ = _execute(
        cwd, ["rev-parse", "--verify", "-q", "HEAD^{commit}"], config, timeout, ok=(0, 1)
    )
    if status != 0:
        return ""
    args = [
        "diff-index",  # not `git diff`: that rewrites the index, even with GIT_OPTIONAL_LOCKS=0
        "-p",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "--unified=3",
        "--inter-hunk-context=0",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "HEAD",
        "--",
        relpath,
    ]
    _, out, _ = _execute(cwd, args, config, timeout)
    return out.decode("utf-8", "replace")
