"""Fixtures for hone.models tests: the real embedded model, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The converted embedded model lives in the (gitignored) repo cache unless told otherwise.
os.environ.setdefault("HONE_CACHE_DIR", str(REPO / ".hone-cache"))


@pytest.fixture(scope="session")
def embedded():
    """The embedded model (CPU default: bf16 weights; 2 threads), converted on first use."""
    from hone.models.registry import embedded_backend

    backend = embedded_backend(threads=2)
    backend.load()
    return backend


@pytest.fixture(scope="session")
def embedded_fp32(embedded):
    """The same weights in fp32: deterministic enough to compare cached with fresh runs."""
    from hone.models.transformers_backend import TransformersBackend

    backend = TransformersBackend(embedded.path, dtype="float32", threads=2)
    backend.load()
    return backend
