"""Secrets in repository content (keys, tokens, private keys, passwords in code), found by
detect-secrets' detectors and replaced before the text is kept or sent anywhere.

A repository often holds a credential someone should not have committed, and an open
buffer one the user is about to move to a vault. hone keeps them out of the index
(:meth:`hone.retrieval.index.Index` redacts each file's text before chunking it, so
neither the stored chunks, the full-text index nor the embeddings hold them), out of
prompts sent to a backend on another machine (backends with ``remote = True``:
``hone.models.backend.redact_request``), and out of training data.

The detectors are detect-secrets' (a well-kept scanner, Yelp's): the known formats (AWS,
GitHub, GitLab, Slack, Stripe, OpenAI, npm, PyPI, JWTs, private key blocks, URLs with a
password, ...) and the keyword detector (``password = "..."``), called through each
plugin's ``analyze_string`` only: no global settings (hone scans from several threads)
and no verification (detect-secrets can call a provider's API to check a key; hone never
sends one anywhere). The high-entropy string detectors and the public-IP one are left out:
in code they flag hashes, test data and examples far more often than secrets.

The detectors cost about 1 MB/s; a line goes to them only when it could hold a secret
(:data:`GATE`: a run of 20 token characters, a key block, a URL with credentials, or a
keyword). Every detector's pattern needs one of those (the tests hold an example of each
format), so the gate changes what runs, not what is found.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["GATE", "PLACEHOLDER", "Secret", "find_secrets", "redact"]

PLACEHOLDER = "<redacted>"
# Left out: they flag hashes, fixtures and examples in code far more often than secrets.
SKIPPED = frozenset({"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"})
GATE = re.compile(
    r"[A-Za-z0-9_\-+/=.]{20,}"  # keys and tokens: 20 characters and more
    r"|AKC[A-Za-z0-9]{10}|AP[\dA-F][A-Za-z0-9]{8}"  # Artifactory's shorter forms
    r"|-----BEGIN|://\S+@"  # a key block; a URL with user:password@
    r"|(?i:pass|pwd|secret|key|contrase|token|auth|credential|api)"  # the keyword detector
)

_local = threading.local()


@dataclass(frozen=True)
class Secret:
    """One secret: its span in the scanned text and the detector that found it."""

    start: int
    end: int
    kind: str  # detect-secrets' secret type, e.g. "AWS Access Key"


def _plugins() -> list[Any]:
    """detect-secrets' detectors (one set per thread: a plugin may keep state)."""
    plugins = getattr(_local, "plugins", None)
    if plugins is None:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

        classes = get_mapping_from_secret_type_to_class().values()
        plugins = [cls() for cls in classes if cls.__name__ not in SKIPPED]
        _local.plugins = plugins
    return plugins


def _lines(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    for line in text.splitlines(keepends=True):
        yield start, line
        start += len(line)


def find_secrets(text: str) -> list[Secret]:
    """The secrets in ``text``, in order, overlapping spans merged."""
    found: list[Secret] = []
    for offset, line in _lines(text):
        if not GATE.search(line):
            continue
        for plugin in _plugins():
            for value in plugin.analyze_string(line):
                if not value:
                    continue
                at = line.find(value)
                while at >= 0:
                    found.append(Secret(offset + at, offset + at + len(value), plugin.secret_type))
                    at = line.find(value, at + len(value))
    found.sort(key=lambda s: (s.start, -s.end))
    merged: list[Secret] = []
    for secret in found:
        if merged and secret.start < merged[-1].end:
            last = merged[-1]
            if secret.end > last.end:
                merged[-1] = Secret(last.start, secret.end, last.kind)
            continue
        merged.append(secret)
    return merged


def redact(text: str) -> tuple[str, int]:
    """``text`` with each secret replaced by :data:`PLACEHOLDER` (lines stay lines), and how
    many were replaced."""
    secrets = find_secrets(text)
    if not secrets:
        return text, 0
    parts: list[str] = []
    at = 0
    for secret in secrets:
        parts += [text[at : secret.start], PLACEHOLDER]
        at = secret.end
    parts.append(text[at:])
    return "".join(parts), len(secrets)
