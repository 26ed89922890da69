"""hone.retrieval.git on real repositories made with the git binary: what each function
answers, and a repository whose own configuration tries every way to make git run a
command (each trap touches a marker file; none may appear, and the index stays as it was).
A control test springs the same traps with plain git, so the markers are known to work."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hone.retrieval import git as hgit
from hone.retrieval.git import GitError, head, list_files, top_level, uncommitted_diff

from tests.conftest import git, write

TEN_LINES = "".join(f"line {i}\n" for i in range(1, 11))


def make_repo(root: Path) -> Path:
    """A committed repository, then: a modified, a stat-only-changed, a deleted and a staged
    file, an untracked file and two ignored ones."""
    write(root / ".gitignore", "*.log\nignored/\n")
    write(root / "pkg/mod.py", TEN_LINES)
    write(root / "pkg/same.py", "x = 1\n")
    write(root / "pkg/crlf.py", "a = 1\r\nb = 2\r\n")
    write(root / "gone.py", "gone = True\n")
    write(root / "staged.py", "s = 1\n")
    write(root / "README.md", "# demo\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    write(root / "pkg/mod.py", TEN_LINES.replace("line 5\n", "line five\n"))
    write(root / "pkg/crlf.py", "a = 1\r\nb = 3\r\n")
    os.utime(root / "pkg/same.py", ns=(1, 1))  # stat differs from the index, content does not
    (root / "gone.py").unlink()
    write(root / "staged.py", "s = 2\n")
    git(root, "add", "staged.py")
    write(root / "new.py", "new = 1\n")
    write(root / "debug.log", "log\n")
    write(root / "ignored/x.py", "x = 1\n")
    return root


LISTED = [".gitignore", "README.md", "new.py", "pkg/crlf.py", "pkg/mod.py", "pkg/same.py"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# --------------------------------------------------------------------------------------
# Answers


def test_top_level(repo: Path, tmp_path: Path) -> None:
    top = repo.resolve()
    assert top_level(repo) == top
    assert top_level(repo / "pkg") == top
    assert top_level(repo / "pkg" / "mod.py") == top
    assert top_level(repo / "ignored" / "x.py") == top
    plain = tmp_path / "plain"
    plain.mkdir()
    assert top_level(plain) is None
    assert top_level(tmp_path / "nowhere" / "file.py") is None
    assert top_level(repo / ".git") is None
    assert top_level(repo / ".git" / "refs") is None


def test_list_files(repo: Path) -> None:
    assert sorted(list_files(repo)) == LISTED + ["staged.py"]
    # from a sub-folder: its files only, relative to it
    assert sorted(list_files(repo / "pkg")) == ["crlf.py", "mod.py", "same.py"]
    # restricted to given paths: ignored and deleted ones are still left out
    assert list_files(repo, ["pkg/mod.py", "debug.log", "gone.py", "ignored/x.py"]) == [
        "pkg/mod.py"
    ]
    assert list_files(repo, []) == []


def test_list_files_odd_names_and_literal_paths(repo: Path) -> None:
    write(repo / "a[1]*.py", "odd = 1\n")
    write(repo / "a1x.py", "glob = 1\n")  # what the glob a[1]*.py would match
    write(repo / "dir with space/ünï.py", "u = 1\n")
    write(repo / "line\nbreak.py", "n = 1\n")
    names = list_files(repo)
    assert {"a[1]*.py", "a1x.py", "dir with space/ünï.py", "line\nbreak.py"} <= set(names)
    assert len(names) == len(set(names))
    assert list_files(repo, ["a[1]*.py"]) == ["a[1]*.py"]


def test_list_files_unmerged_paths_once(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "second")
    git(repo, "checkout", "-qb", "other")
    write(repo / "pkg/mod.py", "other\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "-")
    write(repo / "pkg/mod.py", "mine\n")
    git(repo, "commit", "-qam", "mine")
    git(repo, "merge", "other", check=False)  # a conflict: three index entries for mod.py
    assert "pkg/mod.py" in git(repo, "diff", "--name-only", "--diff-filter=U")
    names = list_files(repo)
    assert names.count("pkg/mod.py") == 1


def test_nested_repository_is_not_a_file(repo: Path) -> None:
    nested = repo / "nested"
    write(nested / "inner.py", "i = 1\n")
    git(nested, "init", "-q")
    assert not any(name.startswith("nested") for name in list_files(repo))


def test_repository_without_commits(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    write(root / "a.py", "a = 1\n")
    write(root / "b.py", "b = 1\n")
    write(root / "c.log", "c\n")
    write(root / ".gitignore", "*.log\n")
    git(root, "init", "-q")
    git(root, "add", "a.py")
    assert sorted(list_files(root)) == [".gitignore", "a.py", "b.py"]
    assert head(root) is None
    assert uncommitted_diff(root, "a.py") == ""
    assert top_level(root) == root.resolve()


def test_head(repo: Path) -> None:
    assert head(repo) == git(repo, "rev-parse", "HEAD").strip()
    assert head(repo / "pkg") == head(repo)


def test_uncommitted_diff(repo: Path) -> None:
    diff = uncommitted_diff(repo, "pkg/mod.py")
    lines = diff.splitlines()
    assert lines[0] == "diff --git a/pkg/mod.py b/pkg/mod.py"
    assert lines[1].startswith("index ")
    assert lines[2:] == [
        "--- a/pkg/mod.py",
        "+++ b/pkg/mod.py",
        "@@ -2,7 +2,7 @@ line 1",
        " line 2",
        " line 3",
        " line 4",
        "-line 5",
        "+line five",
        " line 6",
        " line 7",
        " line 8",
    ]
    assert diff.endswith("\n")
    # line breaks as in the file
    assert "-b = 2\r\n+b = 3\r\n" in uncommitted_diff(repo, "pkg/crlf.py")
    # staged and unstaged changes together; a deleted file as a deletion
    assert "-s = 1\n+s = 2\n" in uncommitted_diff(repo, "staged.py")
    assert "deleted file mode" in uncommitted_diff(repo, "gone.py")
    # nothing for clean, stat-only, untracked and ignored files
    for clean in ("README.md", "pkg/same.py", "new.py", "debug.log", "ignored/x.py"):
        assert uncommitted_diff(repo, clean) == "", clean
    # from a sub-folder, paths are relative to it
    assert uncommitted_diff(repo / "pkg", "mod.py") == diff


def test_uncommitted_diff_ignores_the_users_diff_settings(repo: Path) -> None:
    for key, value in [
        ("diff.noprefix", "true"),
        ("diff.mnemonicPrefix", "true"),
        ("diff.context", "10"),
        ("color.ui", "always"),
        ("color.diff", "always"),
    ]:
        git(repo, "config", key, value)
    diff = uncommitted_diff(repo, "pkg/mod.py")
    assert diff.startswith("diff --git a/pkg/mod.py b/pkg/mod.py\n")
    assert "\x1b[" not in diff
    assert "@@ -2,7 +2,7 @@" in diff


def test_literal_pathspecs(repo: Path) -> None:
    write(repo / "star.py", "s = 1\n")
    git(repo, "add", "star.py")
    git(repo, "commit", "-qm", "star")
    write(repo / "star.py", "s = 2\n")
    assert uncommitted_diff(repo, "*.py") == ""  # no file is named *.py


def test_errors_name_the_command_and_the_folder(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError) as info:
        list_files(plain)
    assert "ls-files" in str(info.value) and str(plain) in str(info.value)
    assert info.value.status == 128 and "not a git repository" in info.value.stderr
    with pytest.raises(GitError, match="not a directory"):
        uncommitted_diff(tmp_path / "nowhere", "a.py")
    with pytest.raises(GitError, match="rev-parse"):
        head(plain)
    with pytest.raises(GitError, match="outside repository"):
        uncommitted_diff(repo, str(tmp_path / "elsewhere.py"))


def test_timeout_kills_git(repo: Path) -> None:
    os.mkfifo(repo / "pipe")  # git blocks opening a FIFO that nobody writes to
    with pytest.raises(GitError, match=r"hash-object pipe in .* timed out after 1 s"):
        hgit.run(repo, "hash-object", "pipe", timeout=1)


# --------------------------------------------------------------------------------------
# A repository whose configuration tries to run commands

TRAP = """#!/bin/sh
touch "{markers}/$1"
case "$1" in clean*|smudge) exec cat ;; esac
exit 0
"""


def make_trapped_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose config sets fsmonitor, filters (one with a dotted name, one
    from an included file, one long-running process), text conversion, external diff
    drivers, a pager, an editor and hooks, each to a command that leaves a marker."""
    root = tmp_path / "trapped"
    markers = tmp_path / "markers"
    markers.mkdir()
    script = write(tmp_path / "trap.sh", TRAP.format(markers=markers))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    hooks = tmp_path / "hooks"
    for hook in ("post-index-change", "post-checkout", "pre-commit", "reference-transaction"):
        write(hooks / hook, f"#!/bin/sh\ntouch '{markers}/hook-{hook}'\n").chmod(0o755)
    write(
        root / ".gitattributes",
        "*.py filter=evil diff=evil\n*.js filter=ev.il diff=cmd\n"
        "*.md filter=inc\n*.txt filter=evilproc\n",
    )
    write(root / ".gitignore", "*.log\n")
    write(root / "mod.py", TEN_LINES)
    write(root / "same.py", "same = 1\n")
    write(root / "app.js", "let a = 1;\n")
    write(root / "notes.md", "# notes\n")
    write(root / "data.txt", "data\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    write(root / "mod.py", TEN_LINES.replace("line 5\n", "line five\n"))
    write(root / "app.js", "let a = 2;\n")
    # same sizes as before: git must read (and clean) them to tell that they changed
    write(root / "notes.md", "# NOTES\n")
    write(root / "data.txt", "DATA\n")
    os.utime(root / "same.py", ns=(1, 1))
    write(root / "new.py", "new = 1\n")
    write(root / "debug.log", "log\n")
    included = write(
        tmp_path / "included.cfg",
        f'[filter "inc"]\n\tclean = {script} clean-included\n\trequired = true\n',
    )
    with (root / ".git" / "config").open("a") as config:
        config.write(
            f"""[core]
\tfsmonitor = {script} fsmonitor
\tpager = {script} pager
\teditor = {script} editor
\thooksPath = {hooks}
[pager]
\tdiff = {script} pager-diff
[sequence]
\teditor = {script} sequence-editor
[diff]
\texternal = {script} external
[diff "evil"]
\ttextconv = {script} textconv
[diff "cmd"]
\tcommand = {script} diff-command
[filter "evil"]
\tclean = {script} clean
\tsmudge = {script} smudge
\trequired = true
[filter "ev.il"]
\tclean = {script} clean-dotted
\tsmudge = {script} smudge
\trequired = true
[filter "evilproc"]
\tprocess = {script} process
[include]
\tpath = {included}
"""
        )
    return root, markers


def test_the_traps_fire_without_protection(tmp_path: Path) -> None:
    """Control: plain git springs the traps that the next test must not."""
    root, markers = make_trapped_repo(tmp_path)
    # fsmonitor and the clean filters
    git(root, "status", "--", "mod.py", "same.py", "app.js", "notes.md", check=False)
    git(root, "diff", "HEAD", "--", "mod.py", check=False)  # the external diff
    git(root, "diff", "--no-ext-diff", "HEAD", "--", "mod.py", check=False)  # textconv
    git(root, "diff", "--no-ext-diff", "HEAD", "--", "data.txt", check=False)  # process
    # a hook on the index write (the process filter, which makes git die, out of the way)
    git(root, "config", "--unset", "filter.evilproc.process")
    git(root, "add", "new.py", check=False)
    sprung = set(os.listdir(markers))
    assert {
        "fsmonitor",
        "clean",
        "clean-dotted",
        "clean-included",
        "process",
        "external",
        "textconv",
        "hook-post-index-change",
    } <= sprung


def test_repository_config_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, markers = make_trapped_repo(tmp_path)
    script = tmp_path / "trap.sh"
    # a parent git's `-c` settings reach us through the environment: dropped too
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor'='{script} inherited'")
    index = root / ".git" / "index"
    before = index.read_bytes(), index.stat().st_mtime_ns

    assert top_level(root) == root.resolve()
    assert top_level(root / "mod.py") == root.resolve()
    assert sorted(list_files(root)) == [
        ".gitattributes",
        ".gitignore",
        "app.js",
        "data.txt",
        "mod.py",
        "new.py",
        "notes.md",
        "same.py",
    ]
    assert list_files(root, ["mod.py"]) == ["mod.py"]
    assert head(root) is not None
    # the file as it is on disk against HEAD: no text conversion, no filter
    assert "-line 5\n+line five\n" in uncommitted_diff(root, "mod.py")
    assert "-let a = 1;\n+let a = 2;\n" in uncommitted_diff(root, "app.js")
    assert "-# notes\n+# NOTES\n" in uncommitted_diff(root, "notes.md")
    assert "-data\n+DATA\n" in uncommitted_diff(root, "data.txt")
    assert uncommitted_diff(root, "same.py") == ""
    assert uncommitted_diff(root, "new.py") == ""
    assert uncommitted_diff(root, "debug.log") == ""
    assert hgit.run(root, "cat-file", "-t", "HEAD") == b"commit\n"

    assert sorted(os.listdir(markers)) == []
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert not (root / ".git" / "index.lock").exists()


def test_filter_overrides_cover_every_defined_driver(tmp_path: Path) -> None:
    root, _ = make_trapped_repo(tmp_path)
    env = hgit.environment(hgit.overrides(root))
    pairs = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    for name in ("evil", "ev.il", "evilproc", "inc"):
        for key in ("clean", "smudge", "process"):
            assert pairs[f"filter.{name}.{key}"] == ""
        assert pairs[f"filter.{name}.required"] == "false"
    assert pairs["core.fsmonitor"] == "false"
    assert pairs["core.hooksPath"] == os.devnull
    assert env["GIT_OPTIONAL_LOCKS"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_PARAMETERS"] == ""
