"""Which files of a workspace the index reads, and why the others are skipped.

Inside a git work tree the candidates are what :func:`hone.retrieval.git.list_files`
gives (tracked files plus untracked ones that no ignore rule excludes, so an ignored
file is not even counted); elsewhere the folder is walked, hidden folders left out and
vendored folders pruned. Each candidate is then kept as a :class:`SourceFile` or skipped
with one reason, the cheap checks first: the path and name (``excluded``, ``vendored``,
``unsupported``, and ``minified`` or ``generated`` by name), then one ``lstat``
(``missing``, ``symlink``, ``huge``), then, for what is left, a look at the head of the
file (``binary``, ``minified``, ``generated``).

Symbolic links are never followed, neither a linked file nor a linked folder on the way
to one, so nothing outside the root is read. :func:`read_source` reads without following
a link either, and re-checks size and encoding: the file may have changed since.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hone.retrieval import git
from hone.retrieval.syntax import language_for_path, language_object

__all__ = [
    "MAX_BYTES",
    "REASONS",
    "VENDORED",
    "Listing",
    "SourceFile",
    "exclude_matcher",
    "list_workspace",
    "read_source",
]

log = logging.getLogger(__name__)

MAX_BYTES = 1_000_000

# Why a file was skipped, in the order the checks run.
REASONS = (
    "excluded",  # a user exclude glob matched
    "vendored",  # under a vendored or tool folder (VENDORED)
    "unsupported",  # no tree-sitter grammar for its language
    "minified",  # by name (*.min.js) or by long lines
    "generated",  # by name (*_pb2.py, *.generated.*) or by a marker in its header
    "missing",  # listed, but gone or not a regular file (a submodule, say)
    "symlink",  # a symbolic link, or under a linked folder
    "huge",  # larger than max_bytes
    "binary",  # a NUL byte in the first 8 KiB, or not UTF-8
)

VENDORED = frozenset(
    {
        "node_modules",
        "vendor",
        "third_party",
        "site-packages",
        ".venv",
        "venv",
        "dist",
        "build",
        "__pycache__",
        ".tox",
        ".git",
        ".mypy_cache",
    }
)

EXAMPLES_PER_REASON = 5
_NUL_BYTES = 8 * 1024  # a NUL byte in here: binary
_HEAD_BYTES = 64 * 1024  # the minified check's sample
_MARKER_BYTES = 2 * 1024  # the generated-marker check's sample
_LONG_LINE = 1000
_MINIFIED_AVERAGE = 200

_MINIFIED_NAME = re.compile(r"\.min\.[^/]+$")
_GENERATED_NAME = re.compile(r"(_pb2(_grpc)?\.pyi?|\.pb\.go|\.generated\.[^/]+)$")
# Searched in the lower-cased header; spelled so that this file does not match itself.
_GENERATED_MARKER = re.compile(rb"[@]generated|do\s+not\s+edit|code\s+generated|auto-?generated")


@dataclass(frozen=True)
class SourceFile:
    """A file the index reads: where it is, its language and its stat at listing time."""

    path: str  # relative to the listing's root, posix separators
    abspath: Path
    language: str  # LSP language id (hone.retrieval.syntax.language_for_path)
    size: int
    mtime_ns: int


@dataclass
class Listing:
    """The files of a workspace to index, and counts and examples of those skipped."""

    root: Path
    files: list[SourceFile] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> files
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 5 paths

    def skip(self, reason: str, path: str) -> None:
        """Count ``path`` as skipped for ``reason``, keeping the first few as examples."""
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(path)


# --------------------------------------------------------------------------------------
# Exclude globs


def _glob_to_regex(pattern: str) -> str:
    """Regex source for one glob: ``*`` and ``?`` stay within a path component, ``**``
    crosses components (``**/`` also matches no folder at all), ``[...]`` is a class."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = i + 1
            if pattern[j : j + 1] == "!":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : close]
                negate = body.startswith("!")
                body = "".join("\\" + c if c in "\\[]&~|^" else c for c in body[negate:])
                out.append("[" + ("^" if negate else "") + body + "]")
                i = close + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def exclude_matcher(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for user exclude globs, searched against a root-relative posix path.

    A glob without ``/`` matches any path component, as in ``.gitignore``: ``*.pyi``
    excludes ``a/b/c.pyi`` and ``docs`` everything in any ``docs`` folder. A glob with
    ``/`` is anchored at the root and also excludes what is below a folder it matches:
    ``docs/**``, ``docs/api``, ``/setup.py``, ``src/**/test_*.py``. None when empty.
    """
    parts = []
    for raw in patterns:
        pattern = raw.strip().replace("\\", "/")
        if not pattern:
            continue
        if "/" in pattern.rstrip("/"):
            pattern = pattern.strip("/")
            parts.append(f"^{_glob_to_regex(pattern)}(?:/|$)")
        else:
            pattern = pattern.strip("/")
            parts.append(f"(?:^|/){_glob_to_regex(pattern)}(?:/|$)")
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


# --------------------------------------------------------------------------------------
# Checks


def _by_name(path: str, language: str, excluded: re.Pattern[str] | None) -> str | None:
    """The reason to skip ``path`` that its name alone gives, or None."""
    if excluded is not None and excluded.search(path):
        return "excluded"
    folders = path.split("/")[:-1]
    if any(part in VENDORED for part in folders):
        return "vendored"
    if language_object(language) is None:
        return "unsupported"
    name = path.rsplit("/", 1)[-1].lower()
    if _MINIFIED_NAME.search(name):
        return "minified"
    if _GENERATED_NAME.search(name):
        return "generated"
    return None


def _by_stat(st: os.stat_result, max_bytes: int) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if not stat.S_ISREG(st.st_mode):
        return "missing"
    if st.st_size > max_bytes:
        return "huge"
    return None


def _is_minified(text: str) -> bool:
    """A line over 1,000 characters and an average line over 200 characters."""
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if len(text) / max(lines, 1) <= _MINIFIED_AVERAGE:
        return False
    return max(map(len, text.split("\n"))) > _LONG_LINE


def _by_content(head: bytes, complete: bool) -> str | None:
    """The reason to skip a file whose first bytes are ``head`` (all of it if ``complete``)."""
    if b"\0" in head[:_NUL_BYTES]:
        return "binary"
    try:  # an incomplete character at the cut is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return "binary"
    # Cheap test first: characters are never more than bytes.
    lines = head.count(b"\n") + (0 if head.endswith(b"\n") else 1)
    if len(head) / max(lines, 1) > _MINIFIED_AVERAGE and _is_minified(text):
        return "minified"
    header = head[:_MARKER_BYTES].lower()
    if (b"generated" in header or b"edit" in header) and _GENERATED_MARKER.search(header):
        return "generated"
    return None


def _read_head(path: Path, size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        return os.read(fd, min(size, _HEAD_BYTES))
    except OSError:
        return None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------
# Listing


def _consider(
    listing: Listing,
    path: str,
    abspath: Path,
    st: os.stat_result | None,
    excluded: re.Pattern[str] | None,
    max_bytes: int,
) -> None:
    """Keep or skip one candidate; ``st`` is its lstat if known (None: take it now)."""
    language = language_for_path(path)
    reason = _by_name(path, language, excluded)
    if reason is None:
        if st is None:
            try:
                st = os.lstat(abspath)
            except OSError:
                st = None
        reason = "missing" if st is None else _by_stat(st, max_bytes)
    if reason is None:
        assert st is not None
        head = _read_head(abspath, st.st_size)
        reason = "missing" if head is None else _by_content(head, st.st_size <= len(head))
    if reason is not None:
        listing.skip(reason, path)
        return
    assert st is not None
    listing.files.append(SourceFile(path, abspath, language, st.st_size, st.st_mtime_ns))


def _git_candidates(
    root: Path, only: Sequence[str] | None, listing: Listing
) -> Iterable[tuple[str, Path, None]]:
    """Git's files under ``root``, minus those below a folder that is a symbolic link."""
    linked: dict[str, bool] = {"": False}

    def under_link(folder: str) -> bool:
        if folder not in linked:
            parent = folder.rpartition("/")[0]
            linked[folder] = under_link(parent) or os.path.islink(root / folder)
        return linked[folder]

    for path in git.list_files(root, only):
        if under_link(path.rpartition("/")[0]):
            listing.skip("symlink", path)
        else:
            yield path, root / path, None


def _walk_candidates(root: Path, listing: Listing) -> Iterable[tuple[str, Path, os.stat_result]]:
    """Every entry below ``root`` outside hidden folders, with its lstat. A vendored folder
    counts once (its path with a trailing ``/``) and is not entered; a symbolic link to a
    folder is an entry like any link, and is not entered either."""
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.debug("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            path = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith("."):
                        continue
                    if entry.name in VENDORED:
                        listing.skip("vendored", path + "/")
                    else:
                        stack.append((path + "/", Path(entry.path)))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                listing.skip("missing", path)
                continue
            yield path, Path(entry.path), st


def _walk_only(root: Path, only: Sequence[str]) -> Iterable[tuple[str, Path, None]]:
    """The given relative paths of a plain folder, as the walk would have found them."""
    for raw in only:
        path = raw.replace("\\", "/").strip("/")
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") or p.startswith(".") for p in parts[:-1]):
            continue
        if parts[-1] in (".", ".."):
            continue
        # a linked folder on the way: the walk would not have entered it
        if any(os.path.islink(root.joinpath(*parts[:i])) for i in range(1, len(parts))):
            continue
        yield path, root.joinpath(*parts), None


def list_workspace(
    root: Path | str,
    exclude: Sequence[str] = (),
    max_bytes: int = MAX_BYTES,
    *,
    only: Iterable[str] | None = None,
) -> Listing:
    """The files under ``root`` to index, and what was skipped and why (:data:`REASONS`).

    ``exclude`` holds user globs (see :func:`exclude_matcher`). ``only`` restricts the
    listing to these root-relative paths (a saved or changed file, say), with the same
    rules: a git-ignored path yields nothing, a vendored one is skipped. Files are sorted
    by path. Inside a work tree, git's file list is used; when git is missing or fails
    to say whether ``root`` is in a work tree, the folder is walked instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    listing = Listing(root)
    excluded = exclude_matcher(exclude)
    wanted = None if only is None else [p.replace(os.sep, "/") for p in only]
    try:
        in_git = git.top_level(root) is not None
    except git.GitError as exc:
        log.warning("walking %s without git: %s", root, exc)
        in_git = False
    candidates: Iterable[tuple[str, Path, os.stat_result | None]]
    if in_git:
        candidates = _git_candidates(root, wanted, listing)
    elif wanted is not None:
        candidates = _walk_only(root, wanted)
    else:
        candidates = _walk_candidates(root, listing)
    for path, abspath, st in candidates:
        _consider(listing, path, abspath, st, excluded, max_bytes)
    listing.files.sort(key=lambda f: f.path)
    return listing


def read_source(file: SourceFile, max_bytes: int = MAX_BYTES) -> str | None:
    """The file's text, decoded as UTF-8 with its line breaks as they are (``\\r\\n`` kept).

    None if it is no longer a regular file (gone, or replaced by a symbolic link, which
    is not followed), grew past ``max_bytes``, or turned binary (a NUL byte in the first
    8 KiB, or not UTF-8).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(file.abspath, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        chunks = []
        remaining = max_bytes + 1  # one byte more tells that it grew while we read
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes or b"\0" in data[:_NUL_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
