"""hone.agent.repair.localize and `hone localize`: real pytest runs (with coverage) on a
small fixture repository with real bugs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hone.agent.repair.localize import (
    LocalizeError,
    TestPasses,
    is_test_file,
    localize,
    rank,
    similarity,
)
from hone.agent.repair.runner import Frame, TestResult, TestRun
from hone.retrieval.chunks import Chunk

PRICING = '''"""Prices of a basket."""


def subtotal(items):
    return sum(price * qty for price, qty in items)


def discount(total, rate):
    if rate > 0.5:
        return total * rate  # the bug: should keep (1 - rate)
    return total * (1 - rate)


def apply_tax(total, tax):
    return round(total * (1 + tax), 2)


def _to_cents(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac or 0)


def parse_price(text):
    return _to_cents(text.strip().lstrip("$"))


class Basket:
    def __init__(self, items):
        self.items = list(items)

    def total(self, rate=0.0):
        return discount(subtotal(self.items), rate)
'''

TESTS = """from shop.pricing import Basket, apply_tax, discount, parse_price, subtotal


def test_subtotal():
    assert subtotal([(2.0, 3), (1.5, 2)]) == 9.0


def test_small_discount():
    assert discount(100.0, 0.1) == 90.0


def test_large_discount():
    assert discount(100.0, 0.75) == 25.0


def test_tax():
    assert apply_tax(10.0, 0.2) == 12.0


def test_parse_price():
    assert parse_price("$1.50") == 150


def test_parse_price_with_comma():
    assert parse_price("1,50") == 150


def test_basket_total():
    assert Basket([(10.0, 1)]).total() == 10.0
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop-repo"
    (root / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "pricing.py").write_text(PRICING)
    (root / "tests" / "test_pricing.py").write_text(TESTS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    return root


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(p.relative_to(root).as_posix().encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_an_assertion_failure_is_found_by_its_spectrum(repo: Path):
    before = tree_digest(repo)
    found = localize(repo, "tests/test_pricing.py::test_large_discount")
    assert found.outcome == "failed" and "75.0 == 25.0" in found.message
    top = found.functions[0]
    assert (top.path, top.name, top.start_line, top.end_line) == (
        "shop/pricing.py",
        "discount",
        8,
        11,
    )
    # no frame inside the faulty function (the assertion is in the test), but only the
    # failing test ran its buggy line: the spectrum finds it
    assert top.signals["traceback"] == 0.0
    # (of the file's two failing tests, the other one, another bug, does not run it)
    # its best line's Ochiai, and (a tenth) its line only failing tests ran, the most of
    # any candidate: (2**-0.5 + 0.1 * 1) / 1.1
    assert top.signals["spectrum"] == pytest.approx((2**-0.5 + 0.1) / 1.1)
    assert found.passing_tests == 5  # the other failing test is not among them
    assert tree_digest(repo) == before  # nothing written into the repository


def test_an_exception_is_found_by_its_traceback(repo: Path):
    found = localize(repo, "tests/test_pricing.py::test_parse_price_with_comma")
    by_name = {s.name: s for s in found.functions}
    assert set(by_name) == {"parse_price", "_to_cents"}
    # the deepest frame in the source is _to_cents; its caller one step up
    assert by_name["_to_cents"].signals["traceback"] == 1.0
    assert 0.0 < by_name["parse_price"].signals["traceback"] < 1.0
    # both ran in the passing test_parse_price too: the spectrum cannot tell them apart
    assert by_name["_to_cents"].signals["spectrum"] == by_name["parse_price"].signals["spectrum"]
    assert by_name["_to_cents"].signals["spectrum"] < 1.0


def test_passing_and_unknown_tests(repo: Path):
    with pytest.raises(TestPasses):
        localize(repo, "tests/test_pricing.py::test_tax")
    with pytest.raises(LocalizeError, match="no such test"):
        localize(repo, "tests/test_pricing.py::test_nope")
    (repo / "tests" / "test_broken.py").write_text("def test_x(:\n    pass\n")
    with pytest.raises(LocalizeError):
        localize(repo, "tests/test_broken.py::test_x")


def _chunk(name: str, start: int, end: int, text: str = "") -> Chunk:
    return Chunk("m.py", start, end, "function", name, "python", text or f"def {name}(): ...", "")


def test_rank_combines_the_signals_per_function(tmp_path: Path):
    (tmp_path / "m.py").write_text(
        "class A:\n    def run(self, x):\n        return helper(x)\n\n\n"  # 1-5
        "def helper(x):\n    if x:\n        return 1\n    return 0\n"  # 6-9
    )
    fail = TestResult(
        "t.py::test_a", "failed", 0.1, "ValueError: x", "", [
            Frame("t.py", 3, "test_a", True),
            Frame("m.py", 3, "run", True),
            Frame("m.py", 8, "helper", True),
        ], "", "",
    )  # fmt: skip
    ok = TestResult("t.py::test_b", "passed", 0.1, "", "", [], "", "")
    run = TestRun(
        results={fail.nodeid: fail, ok.nodeid: ok},
        exit_code=1, timed_out=False, running=None, interpreter=sys.executable,
        command=[], output="", duration_s=0.2,
        coverage={
            fail.nodeid: {"m.py": {2, 3, 6, 7, 8}, "t.py": {1, 2, 3}},
            ok.nodeid: {"m.py": {2, 3, 6, 7, 9}},
        },
    )  # fmt: skip
    suspects, passing = rank(tmp_path, run, fail)
    assert passing == 1
    by_name = {s.name: s for s in suspects}
    assert set(by_name) == {"A.run", "helper"}  # qualified; test files left out
    helper, run_ = by_name["helper"], by_name["A.run"]
    # line 8 only the failing test ran: 1, and it is the one such line (a tenth more);
    # A.run's lines both ran: 1/sqrt(2), and none only failing tests ran
    assert helper.signals["spectrum"] == 1.0
    assert run_.signals["spectrum"] == pytest.approx(2**-0.5 / 1.1)
    assert helper.signals["traceback"] == 1.0 and run_.signals["traceback"] == pytest.approx(0.6)
    assert suspects[0].name == "helper"
    assert (run_.start_line, run_.end_line) == (2, 3)


def test_similarity_prefers_the_function_the_test_names_and_shares_words_with():
    fns = [
        _chunk("parse_header", 1, 3, "def parse_header(line):\n    key, value = line.split(':')"),
        _chunk("render_page", 5, 7, "def render_page(page):\n    return page.html"),
    ]
    got = similarity("def test_header():\n    parse_header('a: b')\nKeyError: key", fns)
    assert got[("m.py", "parse_header", 1)] == 1.0
    assert got[("m.py", "render_page", 5)] < 0.2


def test_test_files_are_recognised():
    assert is_test_file("tests/unit/helpers.py") and is_test_file("pkg/test_x.py")
    assert is_test_file("pkg/x_test.py") and is_test_file("conftest.py")
    assert not is_test_file("pkg/testing_utils.py") and not is_test_file("src/contest.py")


def test_cli_json_and_exit_codes(repo: Path):
    def hone(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "hone.server.cli", "localize", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = hone("--test", "tests/test_pricing.py::test_large_discount", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    first = data["functions"][0]
    assert set(first) == {"path", "name", "start_line", "end_line", "score", "signals"}
    assert set(first["signals"]) == {"traceback", "spectrum", "similarity"}
    assert (first["path"], first["name"]) == ("shop/pricing.py", "discount")
    scores = [f["score"] for f in data["functions"]]
    assert scores == sorted(scores, reverse=True)
    assert hone("--test", "tests/test_pricing.py::test_tax").returncode == 3
    bad = hone("--test", "tests/test_pricing.py::test_nope", "--repo", str(repo))
    assert bad.returncode == 2 and "no such test" in bad.stderr


def test_a_function_the_test_calls_outranks_a_lookalike():
    fns = [
        _chunk("alpha", 1, 2, "def alpha(record):\n    return record.total + record.tax"),
        _chunk("beta", 4, 5, "def beta(record):\n    return record.total - record.tax - 1"),
    ]
    got = similarity("def test_it():\n    assert alpha(make_record()) == 3", fns)
    # nearly the same words; the test calls `alpha` by name
    assert got[("m.py", "alpha", 1)] == 1.0 and got[("m.py", "beta", 4)] < 0.4
