"""The typed-ahead cache on large documents: no full copies kept, and an edit anywhere
(near the cursor or megabytes away, even one that keeps the length) turns an entry off."""

from __future__ import annotations

import tracemalloc

from hone.agent.completion.cache import NEAR, TypedAheadCache

BODY = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(20_000))  # ~0.6 MB


def test_large_documents_are_not_copied():
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = TypedAheadCache()
        for key in range(8):  # the engine hands over fresh slices of the document
            prefix, suffix = BODY + f"x{key} = ", "\n" + BODY
            cache.remember(f"doc{key}", prefix, suffix, "compute(1)")
        del prefix, suffix
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 8 * 4 * (2 * NEAR + 200), kept  # bounded text per entry, not megabytes
    assert cache.lookup("doc3", BODY + "x3 = comp", "\n" + BODY) == "ute(1)"


def test_an_edit_anywhere_turns_the_entry_off():
    prefix, suffix = BODY + "x = ", "\n" + BODY
    cache = TypedAheadCache()
    cache.remember("a", prefix, suffix, "compute(1)")
    assert cache.lookup("a", prefix + "co", suffix) == "mpute(1)"
    far = len(BODY) // 2  # far from the cursor on both sides: same length, other text
    assert far > NEAR
    prefix_far = prefix[:far] + "#" + prefix[far + 1 :]
    suffix_far = suffix[:far] + "#" + suffix[far + 1 :]
    assert cache.lookup("a", prefix_far + "co", suffix) is None
    assert cache.lookup("a", prefix_far, suffix) is None
    assert cache.lookup("a", prefix + "co", suffix_far) is None
    # near the cursor, and lengths that differ
    assert cache.lookup("a", prefix[:-2] + "y " + "co", suffix) is None
    assert cache.lookup("a", prefix + "co", "\n#" + suffix[2:]) is None
    assert cache.lookup("a", prefix + "co", suffix + "\n") is None
    assert cache.lookup("a", prefix[1:] + "co", suffix) is None
    # the text before the remembered cursor, as typed-ahead sees it, unchanged: still a hit
    assert cache.lookup("a", prefix + "compute(", suffix) == "1)"
