"""Identifier-split tokens for lexical search (BM25 in SQLite FTS5, :mod:`.store`).

Code names things in compounds: ``getUserName``, ``user_name``, ``HTTPServer``. A chunk is
indexed under each identifier whole and under its parts, lower-cased, so a query for
``user`` finds ``get_user_name`` and a query for ``getUserName`` finds both spellings.
Keywords and one-letter names carry no signal and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# camelCase / PascalCase / ACRONYMWord parts, and digits
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Keywords and names so common in every file that they only add noise (Python, JS/TS, Go,
# Rust). Builtin types and common verbs are kept: they can be what a snippet is about.
STOPWORDS = frozenset(
    """
    and as assert async await break case catch class const continue def del elif else
    except export extends false finally for from func function go if impl import in is
    let match mod mut nil none not null or pass pub raise return self struct super switch
    this throw true try type typeof undefined use var void while with yield fn let new
    package interface enum trait where loop static
    """.split()
)


def split_identifier(name: str) -> list[str]:
    """``getUserName`` -> ``["getusername", "get", "user", "name"]`` (the whole first)."""
    whole = name.lower().strip("_")
    if not whole:
        return []
    parts = [p.lower() for chunk in name.split("_") if chunk for p in _PART.findall(chunk)]
    out = [whole]
    if len(parts) > 1 or (parts and parts[0] != whole):
        out += [p for p in parts if p != whole]
    return out


def tokens(text: str) -> list[str]:
    """Search tokens of ``text``: identifiers whole and split, lower-cased, stopwords and
    one-character tokens left out (repeated as often as they occur)."""
    out: list[str] = []
    for match in _IDENTIFIER.finditer(text):
        for token in split_identifier(match.group()):
            if len(token) > 1 and token not in STOPWORDS:
                out.append(token)
    return out


def fts_query(words: Iterable[str], limit: int = 64) -> str:
    """An FTS5 MATCH expression: any of ``words`` (distinct, in order, at most ``limit``),
    each quoted so no word is read as FTS5 syntax. "" when there is none."""
    seen: dict[str, None] = {}
    for word in words:
        if word and word not in seen and _IDENTIFIER.fullmatch(word):
            seen[word] = None
            if len(seen) >= limit:
                break
    return " OR ".join(f'"{w}"' for w in seen)
