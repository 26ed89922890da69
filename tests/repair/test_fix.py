"""The repair loop (hone.agent.repair.loop), its scratch copy (workspace.py) and `hone fix`:
real pytest runs on fixture repositories with real bugs; the model path with a scripted
model and with the real embedded one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hone.agent.repair.loop import apply_fix, repair
from hone.agent.repair.workspace import Scratch, digest, repository_files

from tests.conftest import git

SEQ = '''def last_items(items, n):
    """The last ``n`` items."""
    if n <= 0:
        return []
    return items[len(items) - n - 1 :]


def parse_price(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac or 0)
'''

TESTS = """from lib.seq import last_items, parse_price


def test_last_two():
    assert last_items([1, 2, 3, 4], 2) == [3, 4]


def test_last_none():
    assert last_items([1, 2], 0) == []


def test_price():
    assert parse_price("1.50") == 150


def test_price_with_comma():
    assert parse_price("1,50") == 150
"""

OTHER = """from lib.seq import last_items


def test_last_of_empty():
    assert last_items([], 3) == []
"""


def make_repo(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "seq.py").write_text(SEQ)
    (root / "tests" / "test_seq.py").write_text(TESTS)
    (root / "tests" / "test_other.py").write_text(OTHER)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text("ignored.txt\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "seq-repo")


def tree(root: Path) -> dict[str, str]:
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return digest(root, sorted(f for f in files if not f.startswith(".git/")))


def test_the_scratch_copy_is_the_working_tree_with_the_editors_buffers(repo: Path):
    (repo / "lib" / "extra.py").write_text("X = 1\n")  # untracked, not ignored: copied
    (repo / "ignored.txt").write_text("secret\n")  # ignored: not copied
    venv = repo / ".venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    before = tree(repo)
    with Scratch(repo, {"lib/seq.py": "# unsaved\n" + SEQ}) as s:
        assert s.root != repo and s.root.is_dir()
        assert (s.root / "lib" / "extra.py").read_text() == "X = 1\n"
        assert not (s.root / "ignored.txt").exists() and not (s.root / ".venv").exists()
        assert s.text("lib/seq.py").startswith("# unsaved")  # the buffer, not the disk
        s.write("lib/seq.py", "changed\n")
        assert s.text("lib/seq.py") == "changed\n"
        s.restore()
        assert s.text("lib/seq.py").startswith("# unsaved")
        assert s.env()["PYTHONPATH"].split(os.pathsep)[0] == str(s.root)
        with pytest.raises(Exception, match="inside the workspace"):
            s.write("../outside.py", "x")
        copy = s.root
    assert not copy.exists()  # removed afterwards
    assert tree(repo) == before  # the user's files untouched
    assert "lib/extra.py" in repository_files(repo)


def test_a_copy_left_by_a_killed_process_is_removed_by_the_next_one(repo: Path, tmp_path: Path):
    """A server killed mid-repair leaves its copy; the next repair removes it, and only
    folders that are ours and whose process is gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = tmp_path / "tmp"
    parent.mkdir()
    stale = parent / "hone-fix-stale"
    (stale / "repo").mkdir(parents=True)
    (stale / ".hone-owner").write_text(str(dead.pid))
    alive = parent / "hone-fix-alive"
    alive.mkdir()
    (alive / ".hone-owner").write_text(str(os.getppid()))  # a live process
    foreign = parent / "hone-fix-foreign"  # no owner file: not ours to remove
    foreign.mkdir()
    with Scratch(repo, parent=parent) as s:
        assert s.root.parent.parent == parent
        assert (s.root.parent / ".hone-owner").read_text() == str(os.getpid())
        assert not stale.exists()
        assert alive.exists() and foreign.exists()


def test_a_template_fix_is_validated_and_the_smallest_ranks_first(repo: Path):
    before = tree(repo)
    report = repair(repo, "tests/test_seq.py::test_last_two", budget_s=120)
    assert report.fixed and report.source == "template"
    assert "-    return items[len(items) - n - 1 :]" in report.diff
    assert "+    return items[len(items) - n :]" in report.diff
    # validated on the failing test's file and the other test file that names the function
    assert report.fixes[0].validated_with == ["tests/test_other.py", "tests/test_seq.py"]
    assert report.candidates[-1].outcome == "fixed"  # nothing as small is left after it
    assert tree(repo) == before  # nothing written without --apply
    assert "last_items" in report.explanation and "passes" in report.explanation
    # not written over a file edited since the copy was made
    (repo / "lib" / "seq.py").write_text(SEQ + "\n# edited meanwhile\n")
    with pytest.raises(ValueError, match="changed since"):
        apply_fix(repo, report)
    assert (repo / "lib" / "seq.py").read_text().endswith("# edited meanwhile\n")
    (repo / "lib" / "seq.py").write_text(SEQ)
    written = apply_fix(repo, report)
    assert written == ["lib/seq.py"]
    assert "items[len(items) - n :]" in (repo / "lib" / "seq.py").read_text()


def test_a_regression_is_never_reported_as_a_fix(tmp_path: Path):
    # another test file relies on the bug: every change that fixes the failing test the
    # obvious way breaks it, so those candidates are regressions, not fixes
    root = make_repo(tmp_path / "r")
    (root / "tests" / "test_other.py").write_text(
        OTHER + "\n\ndef test_relies_on_the_bug():\n    assert last_items([1, 2, 3], 1) == [2, 3]\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a test that relies on the bug")
    report = repair(root, "tests/test_seq.py::test_last_two", budget_s=30)
    regressions = [a for a in report.candidates if a.outcome == "regression"]
    assert regressions and "test_relies_on_the_bug" in regressions[0].detail
    for fix in report.fixes:  # whatever is claimed must really pass everything that passed
        copy = tmp_path / "check"
        subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
        for path, text in fix.files.items():
            (copy / path).write_text(text)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=copy, capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 0, (fix.diff, run.stdout)


def scripted(tmp_path: Path, reply: str) -> str:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"responses": [{"match": None, "text": reply}]}))
    return f"scripted:{path}"


FIX_COMMA = """The price must accept a comma.

lib/seq.py
<<<<<<< SEARCH
    whole, _, frac = text.partition(".")
=======
    whole, _, frac = text.replace(",", ".").partition(".")
>>>>>>> REPLACE
"""


def hone(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "fix", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_model_fix_json_and_apply(repo: Path, tmp_path: Path):
    model = scripted(tmp_path, FIX_COMMA)
    test = "tests/test_seq.py::test_price_with_comma"
    out = hone(repo, "--test", test, "--json", "--model", model, "--samples", "1", "--no-templates")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {
        "fixed", "diff", "explanation", "source", "localization", "candidates", "timings"
    }  # fmt: skip
    assert data["fixed"] is True and data["source"] == "model"
    assert 'text.replace(",", ".")' in data["diff"]
    assert data["localization"][0]["name"] == "parse_price"
    assert {"source", "description", "outcome"} <= set(data["candidates"][0])
    assert "replace" not in (repo / "lib" / "seq.py").read_text()  # not applied
    applied = hone(
        repo, "--test", test, "--model", model, "--samples", "1", "--no-templates", "--apply"
    )
    assert applied.returncode == 0, applied.stderr
    assert 'text.replace(",", ".")' in (repo / "lib" / "seq.py").read_text()
    # now it passes: exit 3
    assert hone(repo, "--test", test, "--no-model").returncode == 3


def test_model_edits_to_tests_or_special_cases_are_rejected(repo: Path, tmp_path: Path):
    cheat = (
        FIX_COMMA.replace("lib/seq.py", "tests/test_seq.py")
        .replace(
            '    whole, _, frac = text.partition(".")', '    assert parse_price("1,50") == 150'
        )
        .replace('    whole, _, frac = text.replace(",", ".").partition(".")', "    pass")
    )
    special = FIX_COMMA.replace(
        '    whole, _, frac = text.replace(",", ".").partition(".")',
        '    if text == "1,50":\n        return 150\n    whole, _, frac = text.partition(".")',
    )
    for reply, reason in ((cheat, "test"), (special, "special-cases")):
        test = "tests/test_seq.py::test_price_with_comma"
        out = hone(repo, "--test", test, "--json", "--model", scripted(tmp_path, reply),
                   "--samples", "1", "--no-templates")  # fmt: skip
        data = json.loads(out.stdout)
        assert out.returncode == 1 and data["fixed"] is False
        model = [c for c in data["candidates"] if c["source"] == "model"]
        assert model and all(c["outcome"] in ("invalid", "rejected") for c in model), model
        assert any(reason in (c["detail"] + c["description"]) for c in model), model


def test_an_edit_that_changes_the_failure_gets_a_second_round(repo: Path, tmp_path: Path):
    """Round one drops the comma (the test now fails with 15000 != 150, not a ValueError):
    the model is asked again from that edit, with the new failure, and fixes it."""
    first = FIX_COMMA.replace('text.replace(",", ".")', 'text.replace(",", "")')
    second = FIX_COMMA.replace(
        '    whole, _, frac = text.partition(".")',
        '    whole, _, frac = text.replace(",", "").partition(".")',
    )
    path = tmp_path / "rounds.json"
    path.write_text(
        json.dumps(
            {
                "responses": [
                    # only the second round's prompt holds the earlier change and 15000
                    {"match": "already holds an earlier change", "text": second},
                    {"match": None, "text": first},
                ]
            }
        )
    )
    test = "tests/test_seq.py::test_price_with_comma"
    out = hone(repo, "--test", test, "--json", "--model", f"scripted:{path}",
               "--samples", "1", "--no-templates")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    model = [(c["description"], c["outcome"]) for c in data["candidates"]]
    assert model[0] == ("model sample 1 for parse_price", "fails"), model
    assert "15000" in data["candidates"][0]["detail"]
    assert ("model sample 1 for parse_price (round 2)", "fixed") in model
    assert 'text.replace(",", ".")' in data["diff"] and 'replace(",", "")' not in data["diff"]


def test_cli_exit_codes_for_passing_and_unknown_tests(repo: Path):
    assert hone(repo, "--test", "tests/test_seq.py::test_price", "--no-model").returncode == 3
    bad = hone(repo, "--test", "tests/test_seq.py::test_nope", "--no-model")
    assert bad.returncode == 2 and "no such test" in bad.stderr


def test_the_copys_code_runs_even_when_the_project_is_installed_editable(
    repo: Path, tmp_path: Path
):
    # A virtual environment where the original repository is "installed in editable mode"
    # (a .pth path entry, as pip's legacy editable installs and `pip install -e` with a
    # path finder make): without care the tests in the copy would import the original.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    hones = sysconfig.get_paths()["purelib"]  # pytest comes from hone's environment
    Path(site, "hone_test_deps.pth").write_text(hones + "\n")
    # a src layout (`python -m pytest` puts the working folder first on sys.path, which
    # shadows a flat layout's editable install by itself)
    (repo / "src").mkdir()
    (repo / "lib").rename(repo / "src" / "lib")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "src layout")
    Path(site, "__editable__.seq.pth").write_text(str(repo / "src") + "\n")
    (repo / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")  # no pythonpath
    probe = subprocess.run(
        [str(python), "-c", "import lib.seq; print(lib.seq.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == str(repo / "src" / "lib" / "seq.py")  # installed, editable
    report = repair(repo, "tests/test_seq.py::test_last_two", python=str(python), budget_s=120)
    # had the tests imported the original files, no change in the copy could fix them
    assert report.fixed, [(a.description, a.outcome, a.detail) for a in report.candidates]


@pytest.mark.model
def test_the_real_model_is_asked_and_nothing_false_is_claimed(repo: Path):
    """The embedded model in the loop on a bug no template reaches (a comma in a price):
    its replies are parsed, checked and validated like any candidate; whatever it
    proposes, a fix is only claimed when the tests pass."""
    out = hone(
        repo, "--test", "tests/test_seq.py::test_price_with_comma", "--json",
        "--samples", "1", "--no-templates", "--budget-seconds", "90", timeout=600,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    data = json.loads(out.stdout)
    model = [c for c in data["candidates"] if c["source"] == "model"]
    assert model, data["candidates"]
    if data["fixed"]:
        check = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=repo, capture_output=True, text=True,
        )  # fmt: skip
        assert "1 failed" in check.stdout  # not applied: the original still fails


CALC = """\
def _scale(x):
    return x + 2


def double(x):
    return _scale(x)


def double_all(xs):
    return [double(x) for x in xs]
"""


def test_tests_that_reach_the_changed_function_through_its_module_are_run(tmp_path: Path):
    # The failing test's file passes with `x + 1` (a wrong fix); only another file, which
    # never names `_scale` but imports its module, shows that it breaks `double_all`.
    root = tmp_path / "calc"
    (root / "lib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "calc.py").write_text(CALC)
    (root / "tests" / "test_bugs.py").write_text(
        "from lib.calc import double\n\n\ndef test_double_one():\n    assert double(1) == 2\n"
    )
    (root / "tests" / "test_calc.py").write_text(
        "from lib import calc\n\n\ndef test_double_all():\n    assert calc.double_all([2]) == [4]\n"
    )
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    report = repair(root, "tests/test_bugs.py::test_double_one", budget_s=60)
    outcomes = {a.description: a.outcome for a in report.candidates}
    assert outcomes.get("lib/calc.py: line 2: `2` -> `1`") == "regression", outcomes
    for fix in report.fixes:  # whatever is claimed was checked against the other file
        assert "tests/test_calc.py" in fix.validated_with, fix.validated_with
        assert "x + 1" not in fix.files["lib/calc.py"], fix.diff
