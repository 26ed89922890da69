"""hone.retrieval.lexical, .store and .index: identifier tokens, the on-disk index (schema,
writer lock, readers, crash recovery) and incremental updates, on real git repositories
holding real standard-library code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
from hone.retrieval.index import Index
from hone.retrieval.lexical import fts_query, split_identifier, tokens
from hone.retrieval.store import SCHEMA_VERSION, IndexBusy, IndexStore

from tests.conftest import git

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ["textwrap.py", "shlex.py", "fractions.py", "bisect.py", "heapq.py", "colorsys.py"]


def make_repo(path: Path, modules: list[str] = MODULES) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pkg").mkdir(exist_ok=True)
    for name in modules:
        shutil.copy(STDLIB / name, path / "pkg" / name.replace("/", "_"))
    (path / ".gitignore").write_text("ignored/\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "init")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def index(repo: Path, tmp_path: Path):
    ix = Index(repo, folder=tmp_path / "index")
    yield ix
    ix.close()


# -- lexical -------------------------------------------------------------------------------


def test_identifiers_are_split_whole_and_in_parts():
    assert split_identifier("getUserName") == ["getusername", "get", "user", "name"]
    assert split_identifier("user_name") == ["user_name", "user", "name"]
    assert split_identifier("HTTPServer") == ["httpserver", "http", "server"]
    assert split_identifier("_private") == ["private"]
    assert split_identifier("x") == ["x"]
    assert tokens("def get_user(self): return self.userName") == [
        "get_user",
        "get",
        "user",
        "username",
        "user",
        "name",
    ]


def test_fts_query_quotes_words_and_drops_duplicates():
    assert fts_query(["user", "name", "user", "AND", "x-y", ""]) == '"user" OR "name" OR "AND"'
    assert fts_query([]) == ""


# -- index ---------------------------------------------------------------------------------


def test_build_then_nothing_to_do_then_incremental(index: Index, repo: Path):
    first = index.update()
    assert first.files == len(MODULES) and first.indexed == len(MODULES)
    assert first.chunks > 100 and first.removed == 0
    again = index.update()
    assert (again.indexed, again.unchanged, again.removed) == (0, len(MODULES), 0)
    assert again.chunks == first.chunks

    # one file changed, one deleted, one added, one ignored
    target = repo / "pkg" / "bisect.py"
    target.write_text(target.read_text() + "\n\ndef brand_new_helper(items):\n    return items\n")
    (repo / "pkg" / "heapq.py").unlink()
    (repo / "pkg" / "extra.py").write_text("def another_one():\n    return 1\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "secret.py").write_text("def hidden():\n    pass\n")
    third = index.update()
    assert (third.indexed, third.removed) == (2, 1), third
    assert "pkg/heapq.py" not in index.store.files()
    assert "ignored/secret.py" not in index.store.files()
    names = {c.chunk.name for c in index.store.chunks_of("pkg/bisect.py")}
    assert "brand_new_helper" in names

    # the same text with a new modification time: read and hashed, not re-chunked
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    fourth = index.update()
    assert fourth.indexed == 0 and fourth.unchanged == len(MODULES)


def test_search_finds_the_defining_chunk(index: Index):
    index.update()
    hits = index.search("wrapper = TextWrapper(width=width, **kwargs)\nreturn wrapper.", 5)
    assert hits, "no hits"
    assert any(h.chunk.path == "pkg/textwrap.py" for h, _ in hits[:3])
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    # split identifiers: the query's camelCase finds snake_case definitions
    hits = index.search("limitDenominator", 5)
    assert any(h.chunk.name.endswith("limit_denominator") for h, _ in hits)


def test_named_definitions(index: Index):
    index.update()
    found = index.store.chunks_named(["dedent", "limit_denominator"])
    names = {c.chunk.name for c in found}
    assert "dedent" in names and "Fraction.limit_denominator" in names
    assert all(c.chunk.kind != "module" for c in found)


def test_live_buffer_text_is_indexed_and_kept_until_saved(index: Index, repo: Path):
    index.update()
    assert index.update_text("pkg/bisect.py", "def typed_not_saved(a):\n    return a\n")
    assert not index.update_text("pkg/bisect.py", "def typed_not_saved(a):\n    return a\n")
    names = {c.chunk.name for c in index.store.chunks_of("pkg/bisect.py")}
    assert names == {"typed_not_saved"}
    # saved: the file on disk wins again
    assert index.update_paths(["pkg/bisect.py"]) == 1
    names = {c.chunk.name for c in index.store.chunks_of("pkg/bisect.py")}
    assert "bisect_right" in names or "insort_right" in names
    # deleted on disk
    (repo / "pkg" / "colorsys.py").unlink()
    assert index.update_paths(["pkg/colorsys.py"]) == 1
    assert index.store.chunks_of("pkg/colorsys.py") == []


def test_the_index_lives_outside_the_repository(repo: Path, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path / "cache"))
    ix = Index(repo)
    try:
        ix.update()
        assert ix.store.folder.is_relative_to(tmp_path / "cache" / "index")
        assert not any(p.suffix == ".sqlite" for p in repo.rglob("*"))
        # another path to the same folder (a symlink) is the same index
        link = tmp_path / "link"
        link.symlink_to(repo)
        assert Index(link).store.folder == ix.store.folder
    finally:
        ix.close()


# -- store ---------------------------------------------------------------------------------


def test_an_index_of_another_schema_version_is_rebuilt(index: Index, repo: Path, tmp_path: Path):
    index.update()
    index.close()
    db = sqlite3.connect(index.store.path)
    db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    again = Index(repo, folder=tmp_path / "index")
    assert again.store.rebuilt_because == f"schema version 0 (this hone writes {SCHEMA_VERSION})"
    assert again.store.counts()["chunks"] == 0
    report = again.update()
    assert report.indexed == len(MODULES)
    again.close()


def test_a_corrupt_index_file_is_rebuilt(index: Index, repo: Path, tmp_path: Path):
    index.update()
    index.close()
    for suffix in ("-wal", "-shm"):
        Path(str(index.store.path) + suffix).unlink(missing_ok=True)
    index.store.path.write_bytes(b"this is not a database" * 100)
    again = Index(repo, folder=tmp_path / "index")
    assert again.store.rebuilt_because and "unreadable" in again.store.rebuilt_because
    assert again.update().indexed == len(MODULES)
    again.close()


def test_one_writer_at_a_time_across_processes(index: Index, repo: Path, tmp_path: Path):
    index.update()
    lock = index.store.folder / "writer.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'a+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusy, match="another process is updating"):
            with index.store.writer(wait=False):
                pass
        # readers are not blocked by the writer
        assert index.search("dedent", 3)
    finally:
        holder.kill()
        holder.wait()
    with index.store.writer(wait=False):
        pass


def test_readers_see_the_last_commit_while_a_write_is_open(index: Index):
    index.update()
    before = index.store.counts()["chunks"]
    started, release = threading.Event(), threading.Event()

    def write() -> None:
        db = index.store._db()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM chunks")
        started.set()
        release.wait(10)
        db.rollback()

    t = threading.Thread(target=write)
    t.start()
    try:
        assert started.wait(10)
        reader = IndexStore(index.root, index.store.folder)
        t0 = time.perf_counter()
        assert reader.counts()["chunks"] == before
        assert time.perf_counter() - t0 < 5  # not waiting for the writer (busy timeout 30 s)
        reader.close()
    finally:
        release.set()
        t.join()


def test_an_update_killed_midway_is_detected_and_completed(tmp_path: Path):
    """kill -9 `hone index` while it writes; the next open knows, and the next update
    gives the same index as an uninterrupted build."""
    modules = sorted(
        str(p.relative_to(STDLIB))
        for p in STDLIB.glob("*.py")
        if p.stat().st_size < 200_000 and not p.name.startswith("_")
    )[:150]
    repo = make_repo(tmp_path / "big", modules)
    env = {**os.environ, "HONE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hone.server.cli", "index", str(repo), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "cache" / "index").glob("*/index.sqlite"))
        if found:
            folder = found[0].parent
            try:
                db = sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True, timeout=1)
                n = db.execute("SELECT count(*) FROM files").fetchone()[0]
                db.close()
            except sqlite3.Error:
                n = 0
            if n >= 20:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the update finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert folder is not None

    resumed = Index(repo, folder=folder)
    assert resumed.store.interrupted
    report = resumed.update()
    assert report.interrupted_before and not resumed.store.interrupted
    fresh = Index(repo, folder=tmp_path / "fresh")
    full = fresh.update()
    assert full.indexed == full.files > 100  # (a few stdlib modules are skipped: generated)
    assert 0 < report.indexed < full.files  # only what the killed run had not written
    assert resumed.store.counts() == fresh.store.counts()
    assert resumed.store.files().keys() == fresh.store.files().keys()
    resumed.close()
    fresh.close()


def test_cli_index_twice(repo: Path, tmp_path: Path):
    env = {**os.environ, "HONE_CACHE_DIR": str(tmp_path / "cache")}
    # (the embedding pass is tested in test_embeddings.py, on a smaller repository)
    cmd = [sys.executable, "-m", "hone.server.cli", "index", "--no-embeddings", "--json"]
    first = json.loads(
        subprocess.run(
            cmd, cwd=repo / "pkg", env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    assert first["root"] == str(repo.resolve()) and first["indexed"] == len(MODULES)
    second = json.loads(
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, text=True).stdout
    )
    assert second["indexed"] == 0 and second["unchanged"] == len(MODULES)
    plain = subprocess.run(
        [*cmd[:-1], str(tmp_path / "missing")], env=env, capture_output=True, text=True
    )
    assert plain.returncode == 2 and "is not a folder" in plain.stderr


def test_a_short_query_leaves_out_tokens_most_chunks_hold(tmp_path: Path):
    """A token in more than 2% of the chunks (and over 50 of them) adds little to BM25 and
    costs the most: even a query of a few tokens leaves it out, so only the chunks with its
    rare tokens come back (before, short queries kept every token)."""
    root = tmp_path / "many"
    for i in range(70):
        (root / f"m{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / f"m{i}.py").write_text(f"def handler_{i}(event):\n    return shared_value\n")
    (root / "special.py").write_text("def special_thing():\n    return shared_value + 1\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    index = Index(root, folder=tmp_path / "idx")
    index.update()
    try:
        found = index.store.search("special_thing(shared_value)", 20)
        assert [c.chunk.path for c, _ in found] == ["special.py"], found
        # a query of the common token alone still finds its chunks (nothing rarer left)
        assert len(index.store.search("shared_value", 20)) == 20
    finally:
        index.close()
