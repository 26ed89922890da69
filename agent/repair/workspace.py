"""A scratch copy of a repository's current state, where tests run and candidate patches
are tried: the user's files are never touched.

The copy holds the working tree as it is (tracked files with their uncommitted changes,
and untracked files no ignore rule excludes, through :func:`hone.retrieval.git.list_files`;
a folder that is not a git work tree is walked, leaving out virtual environments, caches
and VCS folders), then the editor's unsaved buffers on top (``overlays``). Virtual
environments are not copied: the tests run with the original repository's interpreter.

The code under test must be the copy's, even for a project installed in editable mode in
the user's environment (a ``.pth`` path entry or an editable finder would import the
original files): :meth:`Scratch.env` puts the copy's import roots (``src/`` when the
project has one, and the copy's root) first on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from hone.retrieval.git import GitError, list_files, top_level

SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "__pycache__", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", ".tox", ".nox", "node_modules", ".eggs", "build", "dist",
    }
)  # fmt: skip
MAX_FILE_BYTES = 50_000_000


PREFIX = "hone-fix-"
OWNER = ".hone-owner"  # in each copy's folder: the process id that made it


class WorkspaceError(Exception):
    pass


def sweep(parent: Path | None = None) -> list[Path]:
    """Remove the scratch copies whose process is gone (a server or ``hone fix`` killed
    mid-repair cannot clean up after itself); only folders named like ours that hold an
    owner file naming a dead process. Returns the folders removed."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            pid = int((folder / OWNER).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue  # not ours, or still being made
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def _is_venv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file()


def repository_files(root: Path) -> list[str]:
    """The files of ``root``'s current state, relative posix paths."""
    root = root.resolve()
    try:
        inside_git = top_level(root) is not None
    except GitError:
        inside_git = False
    if inside_git:
        try:
            files = list_files(root)
        except GitError as exc:
            raise WorkspaceError(f"cannot list the files of {root}: {exc}") from exc
        return [f for f in files if not _skipped(PurePosixPath(f), root)]
    out: list[str] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not _is_venv(here / d))
        for name in sorted(names):
            out.append((here / name).relative_to(root).as_posix())
    return out


def _skipped(rel: PurePosixPath, root: Path) -> bool:
    """A tracked file inside a virtual environment or cache folder (some repositories
    commit them): not needed to run the tests."""
    for i, part in enumerate(rel.parts[:-1]):
        if part in ("__pycache__", ".pytest_cache") or _is_venv(root.joinpath(*rel.parts[: i + 1])):
            return True
    return False


def digest(root: Path, files: Iterable[str]) -> dict[str, str]:
    """Content hash of each of ``files`` under ``root`` ("" for a missing file)."""
    out = {}
    for rel in files:
        try:
            out[rel] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        except OSError:
            out[rel] = ""
    return out


class Scratch:
    """``with Scratch(root, overlays) as s:`` — ``s.root`` is the copy (removed on exit).

    ``overlays``: relative path -> text of unsaved editor buffers, written over the copy.
    ``write``/``restore`` change one file of the copy and put it back; ``text`` reads it.
    """

    def __init__(
        self,
        root: Path,
        overlays: Mapping[str, str] | None = None,
        *,
        parent: Path | None = None,
    ) -> None:
        self.source = root.resolve()
        self.overlays = dict(overlays or {})
        self._parent = parent
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.root = Path()
        self.files: list[str] = []
        self._original: dict[str, str] = {}
        self._disk: dict[str, str] = {}  # content hash on disk of each overlaid file

    def __enter__(self) -> Scratch:
        sweep(self._parent)
        self._tmp = tempfile.TemporaryDirectory(prefix=PREFIX, dir=self._parent)
        Path(self._tmp.name, OWNER).write_text(str(os.getpid()), encoding="ascii")
        self.root = Path(self._tmp.name) / self.source.name
        try:
            self._copy()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _copy(self) -> None:
        files = repository_files(self.source)
        for rel in files:
            src = self.source / rel
            dst = self.root / rel
            try:
                if src.is_symlink():
                    target = os.readlink(src)
                    resolved = (src.parent / target).resolve()
                    if not resolved.is_relative_to(self.source):
                        continue  # a link out of the repository is not followed
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, dst)
                    continue
                if not src.is_file() or src.stat().st_size > MAX_FILE_BYTES:
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            except OSError:
                continue  # unreadable: the tests will say if it mattered
        self.files = files
        for rel, text in self.overlays.items():
            self._check(rel)
            dst = self.root / rel
            self._disk[rel] = digest(self.root, [rel])[rel]
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text, encoding="utf-8", newline="")
            if rel not in self.files:
                self.files.append(rel)

    def _check(self, rel: str) -> Path:
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise WorkspaceError(f"{rel}: not a path inside the workspace")
        return self.root / rel

    def text(self, rel: str) -> str:
        """The copy's file as it is now, line ends as they are (no newline translation)."""
        with open(self._check(rel), encoding="utf-8", errors="surrogateescape", newline="") as f:
            return f.read()

    def original_text(self, rel: str) -> str:
        """The file as the copy was made (with the editor's buffers), whatever was written."""
        if rel in self._original:
            return self._original[rel]
        return self.text(rel)

    def copied_digest(self, rel: str) -> str:
        """The content hash the user's file had on disk when the copy was made (what
        :func:`digest` of the user's tree gives while nobody has changed it since)."""
        if rel in self._disk:
            return self._disk[rel]
        try:
            data = self.original_text(rel).encode("utf-8", errors="surrogateescape")
        except OSError:
            return ""
        return hashlib.sha256(data).hexdigest()

    def write(self, rel: str, text: str) -> None:
        """Change one file of the copy (remembering the original for :meth:`restore`)."""
        path = self._check(rel)
        if rel not in self._original:
            self._original[rel] = self.text(rel) if path.exists() else ""
        path.write_text(text, encoding="utf-8", errors="surrogateescape", newline="")

    def restore(self) -> None:
        """Every file written back to how the copy was made."""
        for rel, text in self._original.items():
            self._check(rel).write_text(
                text, encoding="utf-8", errors="surrogateescape", newline=""
            )
        self._original.clear()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment additions that make the copy's code the one imported."""
        roots = [self.root / "src"] if (self.root / "src").is_dir() else []
        roots.append(self.root)
        existing = (base or {}).get("PYTHONPATH", "")
        path = os.pathsep.join([*map(str, roots), *([existing] if existing else [])])
        return {"PYTHONPATH": path}


__all__ = ["Scratch", "WorkspaceError", "digest", "repository_files", "sweep"]
