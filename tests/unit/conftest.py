"""Helpers shared by the unit tests: real stdlib sources and their block structure,
worked out with :mod:`tokenize` (independently of the tree-sitter code under test)."""

from __future__ import annotations

import io
import sysconfig
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def read_stdlib(name: str) -> str:
    return (STDLIB / name).read_text(encoding="utf-8")


def line_offsets(text: str) -> list[int]:
    """Offset of the start of each line (1 more entry than lines)."""
    offsets = [0]
    for line in text.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    return offsets


@dataclass
class Block:
    keyword: str  # def, if, else, ...
    header_end: int  # offset just after the header's colon
    header_indent: str  # indentation of the header's first line
    body_start: int  # offset of the line after the header
    body_end: int  # offset of the first line after the body (the dedented one)
    body_indent: str  # indentation of the body's first code line
    placeholder_only: bool  # body is nothing but pass / ...


HEADER_WORDS = {"def", "class", "if", "elif", "else", "for", "while", "with", "try"}
HEADER_WORDS |= {"except", "finally", "match", "case", "async"}


def find_blocks(text: str) -> list[Block]:
    """Every block header that ends its line, with its body."""
    offsets = line_offsets(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    found = []
    line_start = True
    for i, tok in enumerate(tokens):
        starts = line_start
        line_start = tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.NL)
        if not (starts and tok.type == tokenize.NAME and tok.string in HEADER_WORDS):
            continue
        depth, j = 0, i
        while j < len(tokens):
            t = tokens[j]
            if t.type == tokenize.OP and t.string == ":" and depth == 0:
                break
            if t.type == tokenize.NEWLINE:
                break
            if t.type == tokenize.OP and t.string in "([{":
                depth += 1
            elif t.type == tokenize.OP and t.string in ")]}":
                depth -= 1
            j += 1
        if j >= len(tokens) or tokens[j].string != ":":
            continue  # `match = ...`: a soft keyword used as a name
        k = j + 1
        while tokens[k].type == tokenize.COMMENT:
            k += 1
        if tokens[k].type != tokenize.NEWLINE:
            continue  # a one-liner: `if x: pass`
        k += 1
        while tokens[k].type in (tokenize.NL, tokenize.COMMENT):
            k += 1
        assert tokens[k].type == tokenize.INDENT
        level, m, body_tokens = 1, k + 1, []
        while level:
            if tokens[m].type == tokenize.INDENT:
                level += 1
            elif tokens[m].type == tokenize.DEDENT:
                level -= 1
            elif tokens[m].type not in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT):
                body_tokens.append(tokens[m].string)
            m += 1
        dedent = tokens[m - 1]
        body_end = min(offsets[dedent.start[0] - 1], len(text))
        header_row = tok.start[0]
        line = text[offsets[header_row - 1] : offsets[header_row]]
        found.append(
            Block(
                keyword=tok.string,
                header_end=offsets[tokens[j].end[0] - 1] + tokens[j].end[1],
                header_indent=line[: len(line) - len(line.lstrip())],
                body_start=offsets[tokens[j].end[0]],
                body_end=body_end if dedent.type == tokenize.DEDENT else len(text),
                body_indent=tokens[k].string,
                placeholder_only=set(body_tokens) <= {"pass", "..."},
            )
        )
    return found


@pytest.fixture(scope="session")
def stdlib_source() -> Callable[[str], str]:
    return read_stdlib


@pytest.fixture(scope="session")
def blocks() -> Callable[[str], list[Block]]:
    return find_blocks


@pytest.fixture(scope="session")
def offsets() -> Callable[[str], list[int]]:
    return line_offsets
