"""Context for a cursor: ranked chunks from the workspace, from several sources, fused.

Sources (each a ranked list of chunks):

- ``lexical``: BM25 (:mod:`.store`) over identifier-split tokens of the lines before the
  cursor;
- ``cursor``: definitions of the names on the cursor's line (the call being written);
- ``symbols``: definitions of the names on the lines just before and of the enclosing
  class's bases (resolved through the import to the module's file where it is in the
  workspace);
- ``expected``: definitions of the names the file imports, ranked by how well each fits
  the cursor when its name is not typed yet (``resp = ``): how often the file already
  uses it after the same token (``raise``, ``await``, ``=``...), the parts of its name the
  cursor's line and the enclosing function share, and whether its kind fits (an
  exception after ``raise``, a coroutine after ``await``);
- ``recent``: windows of other open buffers most similar to the code before the cursor
  (token-set overlap), most recently edited first on ties;
- ``git``: the current file's uncommitted changes (a pseudo-chunk of the diff);
- ``embeddings`` (with an embedder): the chunks whose vectors are nearest the embedding of
  the lines before the cursor (:mod:`.embeddings`, :mod:`.vectors`): related code that
  shares no identifier with them. Only when the index holds vectors of the embedder's
  model; the query's embedding is part of the source's time.

Fusion: reciprocal-rank fusion (``sum(weight / (K + rank))``); duplicates merge, keeping
every source that ranked the chunk; chunks that overlap the code around the cursor in the
current file (already in the prompt) are dropped. Retrieval returns ranked chunks and
knows nothing of prompts: the completion engine packs them (``retrievalTokens``).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hone.retrieval.chunks import Chunk
from hone.retrieval.lexical import STOPWORDS, tokens
from hone.retrieval.store import IndexStore

if TYPE_CHECKING:
    from hone.retrieval.embeddings import Embedder
    from hone.retrieval.vectors import VectorSearch

log = logging.getLogger("hone.retrieval.context")

# One thread embeds queries while the retrieving thread runs the other sources.
_QUERY_POOL = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hone-query-embed")

RRF_K = 60
WEIGHTS = {
    "cursor": 2.0,
    "symbols": 1.0,
    "lexical": 1.0,
    "recent": 0.8,
    "git": 0.6,
    "embeddings": 1.0,
    "expected": 2.0,
}
CURSOR_WHEN_CALLING = 4.0  # the cursor source's weight right after a resolved `name(`
QUERY_LINES = 12  # lines before the cursor that the lexical, recent and embeddings sources read
AROUND_BEFORE = 60  # the current file's lines around the cursor that the prompt shows
AROUND_AFTER = 20
RECENT_WINDOW = 20  # lines per window of an open buffer
PER_SOURCE = 20

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PY_FROM = re.compile(r"^[ \t]*from\s+(\.*[\w.]*)\s+import\s+(\([^)]*\)|[^#\n]+)", re.M)
_PY_IMPORT = re.compile(
    r"^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)", re.M
)
_PY_CLASS = re.compile(r"^(\s*)class\s+\w+\s*\(([^)]*)\)\s*:", re.M)


@dataclass
class Query:
    path: str  # the current file, relative to the workspace root (posix)
    text: str  # its live text
    offset: int  # the cursor
    language: str
    # other open buffers (relative path -> live text), most recently edited first
    open_buffers: dict[str, str] = field(default_factory=dict)
    diff: str = ""  # the current file's uncommitted diff (git), if known


@dataclass
class Hit:
    chunk: Chunk
    score: float
    sources: list[str]
    ranks: dict[str, int]


@dataclass
class Retrieval:
    hits: list[Hit]
    timings_ms: dict[str, float]


class Retriever:
    """``Retriever(store)``: the sources without embeddings. ``embed``: an embedder
    (:class:`~hone.retrieval.embeddings.Embedder`) adds the ``embeddings`` source, over
    ``vectors`` (default: in memory, filled from the store's vectors on first use) when the
    store holds vectors of the embedder's model (``embed.key``)."""

    def __init__(
        self,
        store: IndexStore,
        embed: Embedder | None = None,
        vectors: VectorSearch | None = None,
    ) -> None:
        self.store = store
        self.embed = embed
        self.vectors = vectors
        self._model_checked = False

    def retrieve(self, q: Query, limit: int = 20) -> Retrieval:
        timings: dict[str, float] = {}
        lists: dict[str, list[Chunk]] = {}
        before = q.text[: q.offset]
        line_no = before.count("\n") + 1  # 1-based cursor line
        query_text = "\n".join(before.rsplit("\n", QUERY_LINES)[-QUERY_LINES:])
        # what the symbol sources read of a huge file: whole lines around the cursor
        near, near_offset = _bounded(q.text, q.offset)
        near_before = near[:near_offset]

        # The query's embedding runs beside the other sources (torch and SQLite release the
        # GIL): the retrieval takes about the longer of the two, not their sum.
        embedded = _QUERY_POOL.submit(self._timed_embeddings, query_text) if self.embed else None

        t = time.perf_counter()
        lists["lexical"] = [s.chunk for s, _ in self.store.search(query_text, PER_SOURCE)]
        timings["lexical"] = _ms(t)

        t = time.perf_counter()
        imported = imports(_import_text(q.text, near), q.language)
        lists["cursor"], lists["symbols"] = self._symbols(q, near_before, imported)
        timings["symbols"] = _ms(t)

        t = time.perf_counter()
        lists["expected"] = self._expected(q, near, near_before, imported)
        timings["expected"] = _ms(t)

        t = time.perf_counter()
        lists["recent"] = _recent(q, query_text)
        timings["recent"] = _ms(t)

        if q.diff.strip():
            lists["git"] = [_diff_chunk(q)]

        if embedded is not None:
            lists["embeddings"], timings["embeddings"] = embedded.result()

        t = time.perf_counter()
        weights = WEIGHTS
        if lists["cursor"] and _calling(near_before):
            # the call being written is named and its definition found: it comes first
            # (an imported name the line does not call outranked `self.x.method(`'s); the
            # expected names stay, for its arguments
            weights = {**WEIGHTS, "cursor": CURSOR_WHEN_CALLING}
        hits = fuse(lists, q.path, line_no, weights)
        timings["fuse"] = _ms(t)
        return Retrieval(hits[:limit], timings)

    # -- embeddings ----------------------------------------------------------------------

    def _timed_embeddings(self, query_text: str) -> tuple[list[Chunk], float]:
        t = time.perf_counter()
        return self._embeddings(query_text), _ms(t)

    def _embeddings(self, query_text: str) -> list[Chunk]:
        """The chunks nearest the query's embedding (none when the store holds no vectors
        of this embedder's model, or the model fails: logged once)."""
        embed = self.embed
        if embed is None or not query_text.strip():
            return []
        if not self._model_checked:
            model = self.store.meta().get("embed_model")
            if model != embed.key:
                log.info("the index holds no vectors of %s (it has %s)", embed.key, model)
                self.embed = None
                return []
            self._model_checked = True
        if self.vectors is None:
            from hone.retrieval.vectors import VectorSearch

            self.vectors = VectorSearch(self.store)
        if not self.vectors.available():
            return []  # nothing embedded yet (or not loaded yet): no query to embed
        from hone.retrieval.embeddings import EmbeddingError

        try:
            vector = embed.encode_query(query_text)
        except EmbeddingError as exc:
            log.warning("embeddings source off: %s", exc)
            self.embed = None
            return []
        return [s.chunk for s, _ in self.vectors.search(vector, PER_SOURCE)]

    # -- symbols -------------------------------------------------------------------------

    def _symbols(
        self, q: Query, before: str, imported: dict[str, str]
    ) -> tuple[list[Chunk], list[Chunk]]:
        """Definitions of the names on the cursor's line (nearest first: the call being
        written), and of the names on the few lines before it and the enclosing class's
        bases (resolved through the file's imports where they are imported)."""
        lines = before.rsplit("\n", 4)
        at = [m for m in reversed(_IDENT.findall(lines[-1])) if _is_name(m)]
        near: list[str] = []
        for line in reversed(lines[-4:-1]):
            near += [m for m in reversed(_IDENT.findall(line)) if _is_name(m)]
        bases = _enclosing_bases(before) if q.language == "python" else []
        # (the imported names themselves are the ``expected`` source, ranked for the slot)
        wanted = list(dict.fromkeys([*at, *near, *bases]))
        if not wanted:
            return [], []
        found = self.store.chunks_named(wanted[:40], limit=200)
        order = {name: i for i, name in enumerate(wanted)}
        modules = {name: mod for name, mod in imported.items() if mod}

        def rank(chunk: Chunk) -> tuple[int, int, int]:
            last = chunk.name.rsplit(".", 1)[-1]
            position = min(order.get(chunk.name, 1 << 20), order.get(last, 1 << 20))
            # resolved through the import: the definition in the imported module's file
            module = modules.get(last) or modules.get(chunk.name)
            resolved = 0 if module and _module_matches(chunk.path, module) else 1
            same_file = 1 if chunk.path == q.path else 0
            return (position, resolved, same_file)

        ranked = sorted((s.chunk for s in found), key=rank)
        at_cursor = set(at)
        cursor = [
            c for c in ranked if c.name.rsplit(".", 1)[-1] in at_cursor or c.name in at_cursor
        ]
        return cursor[:PER_SOURCE], [c for c in ranked if c not in cursor][:PER_SOURCE]

    # -- expected ------------------------------------------------------------------------

    def _expected(self, q: Query, text: str, before: str, imported: dict[str, str]) -> list[Chunk]:
        """Definitions of the imported names, by how well each fits the cursor's slot:
        the hard case where the name is not typed yet (``resp = ``, ``raise ``). ``text``:
        the file (or the part of a huge one around the cursor), ``before`` its text up to
        the cursor."""
        if not imported:
            return []
        names = list(imported)[:200]
        found = [s.chunk for s in self.store.chunks_named(names, limit=400)]
        candidates: dict[str, list[Chunk]] = {}
        for chunk in found:
            if "." not in chunk.name and chunk.name in imported and chunk.path != q.path:
                candidates.setdefault(chunk.name, []).append(chunk)
        if not candidates:
            return []
        line = before.rsplit("\n", 1)[-1]
        scores = expected_scores(text, before, line, candidates)
        order = {name: i for i, name in enumerate(imported)}
        ranked: list[Chunk] = []
        for name in sorted(candidates, key=lambda n: (-scores[n], order[n])):
            chunks = candidates[name]
            module = imported[name]
            chunks.sort(key=lambda c: not (module and _module_matches(c.path, module)))
            ranked += chunks[:2]
        return ranked[:PER_SOURCE]


# Chosen on the dev split of eval-retrieval (a count of all uses, whatever the slot, only
# lowered the recall there: 0.594 -> 0.556 at weight 0.3).
NEAR_CHARS = 100_000  # a huge file's symbol sources read this much before the cursor
IMPORT_HEAD = 20_000  # ... and its imports from this much of its start
EXPECTED = {"slot": 1.0, "line": 2.0, "enclosing": 1.0, "kind": 1.0}
_SLOT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|[^\sA-Za-z0-9_])\s*$")
_IMPORT_LINE = re.compile(r"^\s*(from\s+\S+\s+)?import\b")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(([^)]*)", re.M)
_EXCEPTION = re.compile(r"(Error|Exception|Warning|Exit|Abort|Interrupt)\b")


_CALL = re.compile(r"[A-Za-z_][\w.]*\(\s*$")


def _calling(before: str) -> bool:
    """Whether the cursor is right after ``name(`` (the call being written is named)."""
    return _CALL.search(before[-200:]) is not None


def _bounded(text: str, offset: int) -> tuple[str, int]:
    """``text`` and ``offset``, or for a huge file the whole lines from NEAR_CHARS before the
    cursor to a quarter of that after it, and the cursor's offset in them: the symbol
    sources' work stays bounded whatever the file's size."""
    if len(text) <= NEAR_CHARS * 5 // 4:
        return text, offset
    lo = text.rfind("\n", 0, max(0, offset - NEAR_CHARS)) + 1
    hi = text.find("\n", offset + NEAR_CHARS // 4)
    hi = len(text) if hi < 0 else hi
    return text[lo:hi], offset - lo


def _import_text(text: str, near: str) -> str:
    """Where a file's imports are read: all of it, or for a huge one its start (whole
    lines) and the part around the cursor."""
    if near is text:
        return text
    head = text[:IMPORT_HEAD]
    return head[: head.rfind("\n") + 1] + near


def _parts(text: str) -> set[str]:
    """The parts of the identifiers in ``text`` (``get_netrc_auth`` -> get, netrc, auth;
    a one-part name stays whole)."""
    out: set[str] = set()
    for word in _IDENT.findall(text):
        split = [t for t in tokens(word)]
        out.update(split[1:] if len(split) > 1 else split)
    return out


def _shared(parts: set[str], other: set[str]) -> int:
    """How many of ``parts`` ``other`` holds; two words of 4+ letters also match when one
    starts the other but for its last letter (``proxy`` ~ ``proxies``, ``cookie`` ~
    ``cookiejar``)."""
    return sum(1 for part in parts if part in other or any(_alike(part, o) for o in other))


def _alike(a: str, b: str) -> bool:
    shorter = min(len(a), len(b))
    if shorter < 4:
        return False
    n = len(os.path.commonprefix((a, b)))
    return n >= 4 and n >= shorter - 1


def _slot(text_before: str) -> str:
    """The token just before a name: ``raise``, ``=``, ``(``, ``await``... ("^" at the
    start of a line)."""
    m = _SLOT.search(text_before)
    return m.group(1) if m else "^"


def expected_scores(
    text: str, before: str, line: str, candidates: dict[str, list[Chunk]]
) -> dict[str, float]:
    """A score per candidate name for the cursor: how often the file already uses it in
    the same slot (after ``raise``, ``await``, ``=``...), how many of its parts the
    cursor's line and the enclosing function's name and parameters share, and whether its
    kind fits the slot (an exception after ``raise``, a coroutine after ``await``)."""
    import math

    slot = _slot(line)
    line_tokens = _parts(line)
    enclosing: set[str] = set()
    indent = len(line) - len(line.lstrip())
    for m in reversed(list(_DEF.finditer(before))):
        if len(m.group(1)) < max(indent, 1):
            enclosing = _parts(m.group(2) + " " + m.group(3))
            break
    # How often each name already follows the cursor's slot token, in one pass over the
    # file (not one per name: a module can import hundreds)
    same: dict[str, int] = dict.fromkeys(candidates, 0)
    names = sorted(candidates, key=len, reverse=True)
    pattern = re.compile(rf"(?<![\w.])({'|'.join(map(re.escape, names))})\b")
    cursor = before.count("\n")
    skip = {cursor}  # the cursor's line, and every line of an import
    first, at = 0, 0
    for m in _PY_FROM.finditer(text):
        first += text.count("\n", at, m.start())
        at = m.start()
        skip.update(range(first, first + m.group().count("\n") + 1))
    for i, source_line in enumerate(text.split("\n")):
        if i in skip or _IMPORT_LINE.match(source_line):
            continue
        for m in pattern.finditer(source_line):
            if _slot(source_line[: m.start()]) == slot:
                same[m.group(1)] += 1
    scores: dict[str, float] = {}
    for name, chunks in candidates.items():
        parts = _parts(name)
        score = EXPECTED["slot"] * math.log1p(same[name])
        if parts:
            score += EXPECTED["line"] * _shared(parts, line_tokens) / len(parts)
            score += EXPECTED["enclosing"] * _shared(parts, enclosing) / len(parts)
        chunk = chunks[0]
        if slot == "raise":
            fits = chunk.kind == "class" and _EXCEPTION.search(chunk.signature or chunk.name)
            score += EXPECTED["kind"] * (1 if fits else -1)
        elif slot == "await":
            score += EXPECTED["kind"] * (1 if chunk.text.lstrip().startswith("async ") else -1)
        scores[name] = score
    return scores


def fuse(
    lists: dict[str, Sequence[Chunk]],
    path: str,
    line: int,
    weights: dict[str, float] | None = None,
) -> list[Hit]:
    """Reciprocal-rank fusion of the sources' lists (``weights``, default WEIGHTS), without
    duplicates and without the current file's chunks around the cursor (``line``,
    1-based)."""
    merged: dict[tuple[str, int, int], Hit] = {}
    for source, found in lists.items():
        weight = (weights or WEIGHTS).get(source, 1.0)
        chunks = [
            c
            for c in found
            if source == "git"
            or c.path != path
            or not _overlaps(c, line - AROUND_BEFORE, line + AROUND_AFTER)
        ]
        for rank, chunk in enumerate(chunks, 1):
            key = (chunk.path, chunk.start_line, chunk.end_line)
            hit = merged.get(key)
            if hit is None:
                hit = merged[key] = Hit(chunk, 0.0, [], {})
            if source in hit.ranks:
                continue
            hit.score += weight / (RRF_K + rank)
            hit.sources.append(source)
            hit.ranks[source] = rank
    return sorted(merged.values(), key=lambda h: -h.score)


# -- imports ---------------------------------------------------------------------------------


def imports(text: str, language: str) -> dict[str, str]:
    """Names the file imports -> the module they come from ("" when unknown).

    Python: ``from a.b import c as d`` gives ``c -> a.b`` (the definition is named ``c``);
    ``import a.b`` gives ``b -> a.b``. Other languages: ``import {x} from './m'`` (JS/TS)
    gives ``x -> ./m``; Go and Rust are left to the lexical source for now."""
    out: dict[str, str] = {}
    if language == "python":
        for m in _PY_FROM.finditer(text):
            module = m.group(1)
            names = re.sub(r"#[^\n]*", "", m.group(2)).strip("()")
            for part in re.split(r"[,\n]", names):
                name = part.strip().split(" as ")[0].strip()
                if _IDENT.fullmatch(name) and name != "*":
                    out.setdefault(name, module)
        for m in _PY_IMPORT.finditer(text):
            for part in m.group(1).split(","):
                module = part.strip().split(" as ")[0].strip()
                if module:
                    out.setdefault(module.rsplit(".", 1)[-1], module)
    elif language in ("javascript", "javascriptreact", "typescript", "typescriptreact"):
        for m in re.finditer(r"import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+['\"]([^'\"]+)", text):
            for part in m.group(1).split(","):
                name = part.strip().split(" as ")[0].strip()
                if _IDENT.fullmatch(name):
                    out.setdefault(name, m.group(2))
    return out


def _module_matches(path: str, module: str) -> bool:
    """Whether ``path`` is the file of ``module`` (``a.b`` -> ``a/b.py``, ``a/b/__init__.py``;
    relative imports and JS specifiers by their last parts)."""
    parts = [p for p in re.split(r"[./\\]+", module) if p]
    if not parts:
        return False
    stem = path.rsplit(".", 1)[0]
    if stem.endswith("/__init__") or stem.endswith("/index"):
        stem = stem.rsplit("/", 1)[0]
    return stem.split("/")[-len(parts) :] == parts


def _enclosing_bases(before: str) -> list[str]:
    """The bases of the Python class the cursor is in (the nearest ``class X(A, B):``
    above with less indentation than the cursor's line)."""
    last = before[before.rfind("\n") + 1 :]
    cursor_indent = len(last) - len(last.lstrip())
    for m in reversed(list(_PY_CLASS.finditer(before))):
        if len(m.group(1)) < max(cursor_indent, 1):
            return [b.strip().split(".")[-1] for b in m.group(2).split(",") if b.strip()][:4]
    return []


def _is_name(word: str) -> bool:
    return len(word) > 2 and word.lower() not in STOPWORDS and not word.isupper()


# -- recent buffers ----------------------------------------------------------------------------


def _recent(q: Query, query_text: str) -> list[Chunk]:
    """Windows of the other open buffers, by the share of the query's tokens they hold."""
    wanted = set(tokens(query_text))
    if not wanted:
        return []
    scored: list[tuple[float, int, Chunk]] = []
    for order, (path, text) in enumerate(q.open_buffers.items()):
        if path == q.path:
            continue
        for start, window, have in _windows(text):
            score = len(wanted & have) / len(wanted | have)
            if score > 0:
                chunk = Chunk(
                    path, start + 1, start + window.count("\n") + 1, "window", "",
                    q.language, window, "",
                )  # fmt: skip
                scored.append((score, order, chunk))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [c for _, _, c in scored[:PER_SOURCE]]


@functools.lru_cache(maxsize=16)
def _windows(text: str) -> tuple[tuple[int, str, frozenset[str]], ...]:
    """(first line, text, token set) of the overlapping windows of a buffer; cached by its
    text, so a buffer that did not change since the last request is not tokenized again."""
    lines = text.split("\n")
    step = RECENT_WINDOW // 2
    out = []
    for start in range(0, max(1, len(lines) - step), step):
        window = "\n".join(lines[start : start + RECENT_WINDOW])
        have = frozenset(tokens(window))
        if have:
            out.append((start, window, have))
    return tuple(out)


def _diff_chunk(q: Query) -> Chunk:
    return Chunk(q.path, 1, q.text.count("\n") + 1, "diff", "", "diff", q.diff, "")


def _overlaps(chunk: Chunk, lo: int, hi: int) -> bool:
    return chunk.start_line <= hi and chunk.end_line >= lo


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)


__all__ = ["Hit", "Query", "Retrieval", "Retriever", "fuse", "imports"]
