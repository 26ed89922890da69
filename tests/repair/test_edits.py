"""hone.agent.repair.edits: the model's SEARCH/REPLACE blocks, parsed, checked, applied."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hone.agent.repair.edits import (
    Edit,
    EditError,
    apply_edits,
    function_edit,
    is_test_path,
    parse_edits,
    special_cases_inputs,
    unified_diff,
)

STATS = """\
def mean(values):
    total = 0
    for v in values:
        total += v
    return total / len(values) + 1


def spread(values):
    return max(values) - min(values)
"""

CLI = """\
import sys


def main(argv):
    if len(argv) > 2:
        print("usage: tool FILE")
        return 1
    return 0
"""

FILES = {"pkg/stats.py": STATS, "pkg/cli.py": CLI, "tests/test_stats.py": "def test(): pass\n"}

REPLY = """\
The mean is off by one: the `+ 1` should not be there. Here is the fix.

pkg/stats.py
```python
<<<<<<< SEARCH
    return total / len(values) + 1
=======
    return total / len(values)
>>>>>>> REPLACE
```

And the usage check in `pkg/cli.py` is inverted too:

```python
`pkg/cli.py`
<<<<<<< SEARCH
    if len(argv) > 2:
=======
    if len(argv) < 2:
>>>>>>> REPLACE
<<<<<<< SEARCH
        return 1
=======
        return 2
>>>>>>> REPLACE
```
Let me know if you want tests for this.
"""


def test_parse_edits_reads_blocks_out_of_prose_and_fences() -> None:
    edits = parse_edits(REPLY)
    assert edits == [
        Edit(
            "pkg/stats.py",
            "    return total / len(values) + 1\n",
            "    return total / len(values)\n",
        ),
        Edit("pkg/cli.py", "    if len(argv) > 2:\n", "    if len(argv) < 2:\n"),
        # No path line above the third block: it keeps the previous block's path.
        Edit("pkg/cli.py", "        return 1\n", "        return 2\n"),
    ]


def test_parse_edits_with_crlf_bold_paths_and_a_default_path() -> None:
    reply = REPLY.replace("\n", "\r\n").replace("`pkg/cli.py`\r\n", "**File: pkg/cli.py**\r\n")
    assert parse_edits(reply) == parse_edits(REPLY)
    heading = REPLY.replace("pkg/stats.py\n```python", "### `pkg/stats.py`\n\n```python")
    assert parse_edits(heading) == parse_edits(REPLY)
    bare = "Sure:\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
    assert parse_edits(bare, default_path="pkg/a.py") == [Edit("pkg/a.py", "x = 1\n", "x = 2\n")]
    # A later block without a path continues the previous block's file.
    assert [e.path for e in parse_edits(REPLY, default_path="pkg/a.py")] == [
        "pkg/stats.py",
        "pkg/cli.py",
        "pkg/cli.py",
    ]
    # Prose right above a block is not a path: the default applies.
    prose = "Change this line:\n" + bare
    assert parse_edits(prose, default_path="pkg/a.py")[0].path == "pkg/a.py"
    # An empty REPLACE deletes; no blocks at all is no edits.
    deletion = "a.py\n<<<<<<< SEARCH\nx = 1\n=======\n>>>>>>> REPLACE\n"
    assert parse_edits(deletion) == [Edit("a.py", "x = 1\n", "")]
    assert parse_edits("No change is needed.") == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", "no file path"),
        ("a.py\n<<<<<<< SEARCH\nx\ny\n>>>>>>> REPLACE\n", "without ======="),
        ("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n", "not closed"),
    ],
)
def test_parse_edits_refuses_unfinished_blocks(reply: str, message: str) -> None:
    with pytest.raises(EditError, match=message) as error:
        parse_edits(reply)
    assert error.value.code == "malformed"


def test_apply_edits_returns_only_the_changed_files() -> None:
    changed = apply_edits(FILES, parse_edits(REPLY))
    assert set(changed) == {"pkg/stats.py", "pkg/cli.py"}
    assert changed["pkg/stats.py"] == STATS.replace(" + 1\n", "\n")
    assert changed["pkg/cli.py"] == CLI.replace("> 2", "< 2").replace("return 1", "return 2")
    assert FILES["pkg/stats.py"] == STATS  # the inputs are untouched
    # A no-op edit changes nothing.
    same = Edit("pkg/stats.py", "    total = 0\n", "    total = 0\n")
    assert apply_edits(FILES, [same]) == {}


def test_loose_match_ignores_indentation_shift_and_trailing_whitespace() -> None:
    # The model wrote the method's lines at the left margin, with a trailing space.
    source = (
        "class A:\n    def f(self, x):\n        if x:\n            return 1\n        return 2\n"
    )
    edit = Edit("m.py", "if x:   \n    return 1\n", "if x is not None:\n    return 1\n")
    changed = apply_edits({"m.py": source}, [edit])
    assert changed["m.py"] == source.replace("if x:", "if x is not None:")
    # ... or further right than the file has them.
    deeper = Edit("m.py", "            return 2\n", "            return 3\n")
    assert apply_edits({"m.py": source}, [deeper])["m.py"] == source.replace("2", "3")


def test_crlf_files_stay_crlf() -> None:
    source = STATS.replace("\n", "\r\n")
    edits = parse_edits(REPLY.replace("\n", "\r\n"))[:1]
    changed = apply_edits({"pkg/stats.py": source}, edits)["pkg/stats.py"]
    assert changed == STATS.replace(" + 1\n", "\n").replace("\n", "\r\n")
    # A SEARCH text across a line break, starting mid-line: only an exact match finds it.
    edit = Edit("pkg/stats.py", "total = 0\n    for v", "total = 0.0\n    for v")
    changed = apply_edits({"pkg/stats.py": source}, [edit])["pkg/stats.py"]
    assert changed == source.replace("total = 0\r\n", "total = 0.0\r\n")


@pytest.mark.parametrize(
    ("edit", "code", "message"),
    [
        (Edit("pkg/stats.py", "    return 42\n", "x"), "not-found", "not in the file"),
        (Edit("pkg/stats.py", "(values)", "(vals)"), "ambiguous", "occurs 5 times"),
        # No exact match; a loose one at two places (two indentations, trailing spaces).
        (Edit("pkg/dup.py", "return 1  \n", "return 2\n"), "ambiguous", "matches 2 places"),
        (Edit("pkg/stats.py", "\n\n", "\n"), "empty-search", "empty"),
        (Edit("/etc/passwd", "root", "toor"), "outside", "outside the workspace"),
        (Edit("C:/pkg/stats.py", "total", "t"), "outside", "outside the workspace"),
        (Edit("pkg/../../x.py", "total", "t"), "outside", "outside the workspace"),
        (Edit("pkg/new.py", "total", "t"), "outside", "not a file of the workspace"),
        (Edit("tests/test_stats.py", "pass", "..."), "test-file", "test file"),
        (
            Edit("pkg/stats.py", "    return total / len(values) + 1\n", "    return (\n"),
            "syntax",
            "does not parse",
        ),
    ],
)
def test_apply_edits_refusals(edit: Edit, code: str, message: str) -> None:
    files = {**FILES, "pkg/dup.py": "def a():\n    return 1\n\n\ndef b():\n        return 1\n"}
    with pytest.raises(EditError) as error:
        apply_edits(files, [edit])
    assert error.value.code == code
    assert edit.path in error.value.reason
    assert message in str(error.value)


def test_not_allowed_and_a_later_bad_edit_refuse_the_whole_reply() -> None:
    edits = parse_edits(REPLY)
    with pytest.raises(EditError) as error:
        apply_edits(FILES, edits, allowed=lambda path: path != "pkg/cli.py")
    assert error.value.code == "not-allowed" and "pkg/cli.py" in error.value.reason
    bad = [*edits, Edit("pkg/stats.py", "no such line\n", "x\n")]
    with pytest.raises(EditError) as error:
        apply_edits(FILES, bad)
    assert error.value.code == "not-found" and error.value.edit == bad[-1]


def test_edits_to_one_file_apply_in_order_and_syntax_is_checked_at_the_end() -> None:
    # The first edit alone leaves an open bracket; the second closes it.
    edits = [
        Edit("pkg/stats.py", "    total = 0\n", "    total = sum(\n"),
        Edit("pkg/stats.py", "    for v in values:\n        total += v\n", "        values)\n"),
    ]
    changed = apply_edits(FILES, edits)["pkg/stats.py"]
    assert "    total = sum(\n        values)\n    return total" in changed


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("test_app.py", True),
        ("pkg/test_app.py", True),
        ("pkg/app_test.py", True),
        ("tests/helpers.py", True),
        ("pkg/test/data.py", True),
        ("src/pkg/tests/fixtures/x.py", True),
        ("pkg/testing/helpers.py", True),
        ("conftest.py", True),
        ("pkg/conftest.py", True),
        ("pkg/app.py", False),
        ("pkg/testing.py", False),
        ("pkg/contest.py", False),
        ("latest/app.py", False),
    ],
)
def test_test_paths(path: str, is_test: bool) -> None:
    assert is_test_path(path) is is_test


def test_windows_separators_are_normalised() -> None:
    edit = Edit("pkg\\stats.py", "    total = 0\n", "    total = 0.0\n")
    assert "pkg/stats.py" in apply_edits(FILES, [edit])
    with pytest.raises(EditError) as error:
        apply_edits(FILES, [Edit("tests\\test_stats.py", "pass", "...")])
    assert error.value.code == "test-file"


# --------------------------------------------------------------------------------------
# Special-casing the test's inputs

OLD = """\
def price(quantity):
    if quantity < 0:
        raise ValueError(quantity)
    return quantity * 3
"""

TEST = """\
from shop import price

def test_bulk_discount():
    assert price(17) == 42
    assert price("bulk") == 100
    assert price(1) == 3
"""


@pytest.mark.parametrize(
    "new",
    [
        OLD.replace("    return", "    if quantity == 17:\n        return 42\n    return"),
        OLD.replace("    return", "    if 17 == quantity:\n        return 42\n    return"),
        OLD.replace("    return", "    if quantity in (16, 17):\n        return 42\n    return"),
        OLD.replace("    return", '    if quantity == "bulk":\n        return 100\n    return'),
        OLD.replace(
            "    return", "    match quantity:\n        case 17:\n            return 42\n    return"
        ),
        # A fragment that does not parse on its own still counts.
        "    if quantity == 17: return 42\n  return (",
    ],
)
def test_special_casing_the_tests_inputs_is_detected(new: str) -> None:
    assert special_cases_inputs(OLD, new, TEST)


@pytest.mark.parametrize(
    "new",
    [
        # A literal the test does not use.
        OLD.replace("    return", "    if quantity == 1000:\n        return 0\n    return"),
        # Common literals (base cases) do not count.
        OLD.replace("    return", "    if quantity == 1:\n        return 3\n    return"),
        # Moving an existing bound is a fix, even to a value the test uses.
        OLD.replace("quantity < 0", "quantity < 17"),
        # The literal was in the old code already.
        OLD.replace("* 3", "* 17").replace(
            "    return", "    if quantity > 17:\n        return 1\n"
        ),
        # A real fix with no new comparison.
        OLD.replace("* 3", "* 2 + 8"),
        # A literal in the test used as data, not compared against.
        OLD.replace("* 3", "* 42 // 17"),
    ],
)
def test_ordinary_fixes_are_not_flagged(new: str) -> None:
    old = OLD.replace("* 3", "* 17") if "quantity > 17" in new else OLD
    assert not special_cases_inputs(old, new, TEST)


# --------------------------------------------------------------------------------------


def test_unified_diff_is_git_style_and_applies(tmp_path: Path) -> None:
    new = STATS.replace(" + 1\n", "\n")
    diff = unified_diff("pkg/stats.py", STATS, new)
    assert diff.startswith("diff --git a/pkg/stats.py b/pkg/stats.py\n--- a/pkg/stats.py\n")
    assert "+++ b/pkg/stats.py\n@@ " in diff
    assert "-    return total / len(values) + 1\n+    return total / len(values)\n" in diff
    assert unified_diff("pkg/stats.py", STATS, STATS) == ""
    no_newline = unified_diff("a.py", "x = 1\n", "x = 2")
    assert no_newline.endswith("+x = 2\n\\ No newline at end of file\n")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "stats.py").write_text(STATS)
    (tmp_path / "fix.diff").write_text(diff)
    # --check: git reads the patch and the file, and writes nothing.
    result = subprocess.run(
        ["git", "apply", "--check", "fix.diff"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


METHOD = """\
class Stats:
    def mean(self, values):
        total = 0
        for v in values:
            total += v
        return total / len(values) + 1

    def spread(self, values):
        return max(values) - min(values)
"""


def test_a_reply_with_the_whole_function_rewritten_is_an_edit() -> None:
    function = "\n".join(METHOD.split("\n")[1:6])
    reply = (
        "The mean adds one too many. Here is the fixed function:\n\n```python\n"
        "def mean(self, values):\n    total = 0\n    for v in values:\n        total += v\n"
        "\n    return total / len(values)\n```\n\nThis divides by the count only."
    )
    edit = function_edit(reply, "Stats.mean", "stats.py", function)
    assert edit is not None and edit.path == "stats.py"
    new = apply_edits({"stats.py": METHOD}, [edit])["stats.py"]
    assert "        return total / len(values)\n\n    def spread" in new  # re-indented
    assert new.count("def mean") == 1 and "+ 1" not in new
    namespace: dict = {}
    exec(new, namespace)
    assert namespace["Stats"]().mean([1, 2, 3]) == 2


def test_whole_function_replies_that_are_no_edit() -> None:
    function = "\n".join(STATS.split("\n")[:5])
    assert function_edit("I cannot tell what is wrong.", "mean", "s.py", function) is None
    assert (
        function_edit("```python\ndef median(v):\n    return v\n```", "mean", "s.py", function)
        is None
    )
    assert (
        function_edit(f"```python\n{function}\n```", "mean", "s.py", function) is None
    )  # unchanged
    # bare, with a signature over two lines and a trailing explanation; the last one counts
    reply = (
        "def mean(values):\n    return 0\n\nBetter:\n\ndef mean(\n    values,\n):\n"
        "    return sum(values) / len(values)\nDone."
    )
    edit = function_edit(reply, "mean", "s.py", function)
    assert edit is not None
    assert edit.replace == "def mean(\n    values,\n):\n    return sum(values) / len(values)\n"
    assert edit.search == function + "\n"
