"""Which test: pytest node ids from a source position, the test functions of a file, and the
project root a test runs in (for the editor's "fix the test under the cursor" and its code
lenses).

pytest collects ``test*`` functions at module level and ``test*`` methods of ``Test*``
classes (nested classes too); the node id is ``path::Class::method``. A position anywhere
in a test function (its decorators included) names it; a position in a nested helper
function names the test around it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hone.agent.repair.edits import is_test_path

# Files whose presence makes a folder the root the tests run from.
ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini", ".git")


@dataclass(frozen=True)
class TestFunction:
    __test__ = False  # not a pytest test class itself

    name: str  # qualified: "TestA.test_b"
    start_line: int  # 1-based, the first decorator's line
    def_line: int  # 1-based, the `def` line
    end_line: int  # 1-based, inclusive

    def nodeid(self, path: str) -> str:
        return "::".join([path, *self.name.split(".")])


def is_test_module(path: str) -> bool:
    """A file pytest would collect tests from, by its name and folder."""
    p = PurePosixPath(path)
    if p.suffix != ".py" or p.name == "conftest.py":
        return False
    return p.name.startswith("test_") or p.stem.endswith("_test") or is_test_path(path)


def test_functions(source: str) -> list[TestFunction]:
    """The test functions of a module's source, in order ([] when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out: list[TestFunction] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("test"):
                    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                    end = node.end_lineno or node.lineno
                    out.append(TestFunction(prefix + node.name, first, node.lineno, end))

    walk(tree.body, "")
    return out


def test_at(source: str, line: int) -> TestFunction | None:
    """The test function around ``line`` (1-based), or None."""
    inside = [t for t in test_functions(source) if t.start_line <= line <= t.end_line]
    return max(inside, key=lambda t: t.start_line, default=None)


def project_root(path: Path, folder: Path) -> Path:
    """The innermost folder from ``path``'s folder up to ``folder`` (a workspace folder)
    holding a project marker; ``folder`` when none does (or ``path`` is outside it)."""
    path, folder = path.resolve(), folder.resolve()
    if not path.is_relative_to(folder):
        return folder
    here = path.parent
    while here != folder and here.is_relative_to(folder):
        if any((here / marker).exists() for marker in ROOT_MARKERS):
            return here
        here = here.parent
    return folder


__all__ = [
    "ROOT_MARKERS",
    "TestFunction",
    "is_test_module",
    "project_root",
    "test_at",
    "test_functions",
]
