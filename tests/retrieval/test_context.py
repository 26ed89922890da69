"""hone.retrieval.context: the sources (lexical, symbols through imports, recent buffers,
git), reciprocal-rank fusion, and `hone context` on a real workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hone.retrieval.chunks import Chunk
from hone.retrieval.context import Query, Retriever, expected_scores, fuse, imports
from hone.retrieval.index import Index

from tests.conftest import git

# A small real-looking package: the call site in app/service.py needs definitions that
# live in other files (models.py, util/text.py).
FILES = {
    "app/__init__.py": "",
    "app/models.py": '''"""Data model."""

from dataclasses import dataclass


@dataclass
class Invoice:
    """An invoice with its lines."""

    number: str
    lines: list


class Base:
    def describe(self):
        return type(self).__name__


def total_amount(invoice, tax_rate=0.2):
    """The invoice's total with tax."""
    net = sum(line.price * line.quantity for line in invoice.lines)
    return round(net * (1 + tax_rate), 2)
''',
    "app/util/__init__.py": "",
    "app/util/text.py": '''def slugify(title, separator="-"):
    """A URL-safe slug of ``title``."""
    words = "".join(c if c.isalnum() else " " for c in title.lower()).split()
    return separator.join(words)


def total_width(columns):
    return sum(len(c) for c in columns)
''',
    "app/service.py": """from app.models import Invoice, total_amount
from app.util.text import slugify
import app.models


class Billing(app.models.Base):
    def summary(self, invoice: Invoice):
        slug = slugify(invoice.number)
        amount = total_amount(""",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@pytest.fixture
def retriever(workspace: Path, tmp_path: Path):
    index = Index(workspace, folder=tmp_path / "index")
    index.update()
    yield Retriever(index.store)
    index.close()


def chunk(path: str, start: int, end: int, name: str = "") -> Chunk:
    return Chunk(path, start, end, "function", name, "python", "x", "")


def test_fusion_adds_reciprocal_ranks_merges_and_drops_the_cursor_region():
    a, b, c = chunk("a.py", 1, 5), chunk("b.py", 1, 5), chunk("c.py", 1, 5)
    own = chunk("cur.py", 90, 110)  # around the cursor (line 100): already in the prompt
    far = chunk("cur.py", 1, 10)
    hits = fuse({"lexical": [a, b, own, far], "symbols": [b, c]}, "cur.py", 100)
    assert [h.chunk.path for h in hits] == ["b.py", "a.py", "c.py", "cur.py"]
    top = hits[0]
    assert top.sources == ["lexical", "symbols"] and top.ranks == {"lexical": 2, "symbols": 1}
    assert top.score == pytest.approx(1.0 / 62 + 1.0 / 61)
    # ranks count only what is kept: `far` is third in lexical once `own` is dropped
    assert hits[-1].ranks == {"lexical": 3}
    assert own not in [h.chunk for h in hits] and far in [h.chunk for h in hits]
    # a duplicate inside one list counts once
    once = fuse({"lexical": [a, a]}, "x.py", 1)
    assert len(once) == 1 and once[0].ranks == {"lexical": 1}


def test_python_imports_name_their_modules():
    text = FILES["app/service.py"] + "\nimport os.path as p, json\nfrom . import sibling\n"
    got = imports(text, "python")
    assert got["Invoice"] == "app.models" and got["total_amount"] == "app.models"
    assert got["slugify"] == "app.util.text"
    assert got["path"] == "os.path" and got["json"] == "json"
    assert got["sibling"] == "."
    js = "import { render, Row as R } from './view';\nimport x from 'y';\n"
    assert imports(js, "typescript") == {"render": "./view", "Row": "./view"}


def test_the_call_site_gets_the_definition_from_the_imported_file(retriever, workspace):
    text = FILES["app/service.py"]
    q = Query("app/service.py", text, len(text), "python")
    got = retriever.retrieve(q, limit=10)
    names = [(h.chunk.path, h.chunk.name) for h in got.hits]
    assert names[0] == ("app/models.py", "total_amount"), names
    first = got.hits[0]
    # the call being written; and the imported name that fits `amount = ` best
    assert first.sources == ["lexical", "cursor", "expected"]
    assert ("app/util/text.py", "slugify") in names and ("app/models.py", "Invoice") in names
    # the imported function outranks its look-alike `total_width` in another file
    assert names.index(("app/models.py", "total_amount")) < names.index(
        ("app/util/text.py", "total_width")
    )
    # the enclosing class's base (in another file) is a symbol too
    assert ("app/models.py", "Base") in names
    # nothing from around the cursor in the file itself: the prompt has it
    assert all(p != "app/service.py" for p, _ in names)
    assert set(got.timings_ms) >= {"lexical", "symbols", "recent", "fuse"}


def test_before_the_name_is_typed_imports_and_the_enclosing_scope_lead(retriever):
    text = FILES["app/service.py"].replace("        amount = total_amount(", "        amount = ")
    q = Query("app/service.py", text, len(text), "python")
    hits = retriever.retrieve(q, limit=5).hits
    names = [h.chunk.name for h in hits]
    # `amount = `: of the names the file imports, the one whose name shares a part with the
    # line is expected first; after the two names just used on the lines above
    assert names[:3] == ["slugify", "Invoice", "total_amount"], names
    # expected: `Invoice` (the enclosing function's parameter) and `total_amount` (the line)
    # before `slugify`
    assert hits[2].ranks["expected"] < hits[0].ranks["expected"]


def test_python_imports_in_parentheses_over_several_lines():
    text = "from .a import (\n    b,  # why\n    c as d,\n)\nfrom q import (r, s)\nx = 1\n"
    assert imports(text, "python") == {"b": ".a", "c": ".a", "r": "q", "s": "q"}


def _defs(**kinds: str) -> dict[str, list[Chunk]]:
    """Candidate definitions by name: kind "class", "exception" or "async"."""
    out = {}
    for name, kind in kinds.items():
        if kind == "exception":
            c = Chunk("m.py", 1, 2, "class", name, "python", f"class {name}(ValueError): ...",
                      f"class {name}(ValueError):")  # fmt: skip
        elif kind == "async":
            c = Chunk("m.py", 1, 2, "function", name, "python", f"async def {name}(): ...",
                      f"async def {name}():")  # fmt: skip
        else:
            c = Chunk("m.py", 1, 2, kind, name, "python", f"def {name}(): ...", f"def {name}():")
        out[name] = [c]
    return out


def _best(text: str, candidates: dict[str, list[Chunk]]) -> str:
    before = text
    scores = expected_scores(text, before, before.rsplit("\n", 1)[-1], candidates)
    return max(scores, key=lambda n: scores[n])


def test_expected_names_fit_the_slot_the_line_and_the_enclosing_function():
    imports_ = "from .m import select_proxy, BadRequest, fetch_all, render\n\n"
    defs = _defs(
        select_proxy="function", BadRequest="exception", fetch_all="async", render="function"
    )
    body = "def handle(item):\n"
    # an exception after `raise`
    assert _best(imports_ + body + "    raise ", defs) == "BadRequest"
    # a coroutine after `await`
    assert _best(imports_ + body + "    items = await ", defs) == "fetch_all"
    # a part of the name on the line (a plural or longer word counts: proxies ~ proxy)
    assert _best(imports_ + body + "    proxies = ", defs) == "select_proxy"
    # a part of the enclosing function's name or parameters
    assert _best(imports_ + "def render_page(page):\n    html = ", defs) == "render"
    # the file already uses a name after the same token (here: a decorator)
    used = imports_ + "@render\ndef a():\n    pass\n\n\n@"
    assert _best(used, _defs(select_proxy="function", render="function")) == "render"
    # no line of an import statement is a use (`render` starts a line there, as the
    # cursor does here)
    text = "from .m import (\n    BadRequest, select_proxy,\n    render,\n)\ndef f():\n    "
    two = _defs(select_proxy="function", render="function")
    scores = expected_scores(text, text, text.rsplit("\n", 1)[-1], two)
    assert scores["render"] == scores["select_proxy"]


def test_open_buffers_and_the_diff_are_sources(retriever):
    text = FILES["app/service.py"]
    other = "def render_invoice(invoice):\n    return total_amount(invoice)\n"
    q = Query(
        "app/service.py",
        text,
        len(text),
        "python",
        open_buffers={"app/views.py": other},
        diff="@@ -1 +1 @@\n-old\n+new\n",
    )
    hits = retriever.retrieve(q, limit=20).hits
    recent = [h for h in hits if "recent" in h.sources]
    assert recent and recent[0].chunk.path == "app/views.py"
    assert recent[0].chunk.text.startswith("def render_invoice")
    assert any(h.sources == ["git"] and "+new" in h.chunk.text for h in hits)


def test_cli_context_json(workspace: Path, tmp_path: Path, script):
    model = script("x")
    env = {**os.environ, "HONE_CACHE_DIR": str(tmp_path / "cache")}
    text = FILES["app/service.py"]
    line = text.count("\n") + 1
    col = len(text.split("\n")[-1]) + 1
    out = subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "context", f"app/service.py:{line}:{col}"]
        + ["--json", "--limit", "5", "--model", model],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert 1 <= len(rows) <= 5
    assert set(rows[0]) == {"path", "start_line", "end_line", "sources", "score", "packed", "text"}
    assert rows[0]["path"] == "app/models.py" and rows[0]["packed"] is True
    assert rows[0]["text"].startswith("def total_amount")
    assert (rows[0]["start_line"], rows[0]["end_line"]) == (19, 22)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    bad = subprocess.run(
        [sys.executable, "-m", "hone.server.cli", "context", "app/service.py:99:1"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "is outside" in bad.stderr


def test_a_huge_file_reads_its_imports_and_the_code_near_the_cursor(retriever):
    # ~300 kB: the symbol sources read the lines near the cursor and the file's start
    filler = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(6000))
    head = FILES["app/service.py"].split("class Billing")[0]
    text = head + filler + "def report(invoice):\n    amount = "
    assert len(text) > 250_000
    q = Query("app/service.py", text, len(text), "python")
    hits = retriever.retrieve(q, limit=5).hits
    names = [h.chunk.name for h in hits]
    assert "total_amount" in names, names
    assert "expected" in hits[names.index("total_amount")].sources
