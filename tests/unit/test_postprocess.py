"""hone.agent.completion.postprocess: golden cases, real stdlib bodies streamed through
is_complete/postprocess, and hand-written edge cases."""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hone.agent.completion.policy import Mode
from hone.agent.completion.postprocess import CONTROL_TOKEN, is_complete, postprocess

if TYPE_CHECKING:
    from conftest import Block

GOLDEN = Path(__file__).parent / "golden" / "postprocess"
GOLDEN_CASES = sorted(GOLDEN.glob("*.json"))
FILES = ["difflib.py", "textwrap.py", "json/decoder.py", "enum.py", "traceback.py", "argparse.py"]


def run(raw: str, case: dict[str, Any]) -> str:
    return postprocess(
        raw,
        prefix=case["prefix"],
        suffix=case["suffix"],
        mode=Mode(case["mode"]),
        language=case.get("language", "python"),
        max_lines=case.get("max_lines"),
        truncated=case.get("truncated", False),
    )


def done(generated: str, case: dict[str, Any]) -> bool:
    return is_complete(
        generated,
        prefix=case["prefix"],
        suffix=case["suffix"],
        mode=Mode(case["mode"]),
        language=case.get("language", "python"),
        max_lines=case.get("max_lines"),
    )


def assert_early_stop_is_safe(case: dict[str, Any], final: str, step: int = 1) -> int | None:
    """Wherever is_complete says stop, postprocess of the text so far is already final.

    Returns the first length at which it said stop (None if never).
    """
    raw = case["raw"]
    first = None
    for end in range(1, len(raw) + 1, step):
        if done(raw[:end], case):
            first = first or end
            assert run(raw[:end], case) == final, (end, raw[:end])
    return first


# --------------------------------------------------------------------------------------
# Golden files: tests/unit/golden/postprocess/*.json


def test_there_are_golden_cases() -> None:
    assert len(GOLDEN_CASES) >= 50


@pytest.mark.parametrize("path", GOLDEN_CASES, ids=[p.stem for p in GOLDEN_CASES])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert set(case) >= {"description", "mode", "prefix", "suffix", "raw", "expected"}
    assert set(case) <= {"description", "mode", "prefix", "suffix", "raw", "expected"} | {
        "language",
        "max_lines",
        "truncated",
    }
    assert run(case["raw"], case) == case["expected"]
    assert_early_stop_is_safe(case, case["expected"])


# --------------------------------------------------------------------------------------
# Real code: every function body of some stdlib files, as the model's output


def body_expected(body: str, base: str) -> str:
    """What a perfect MULTI suggestion keeps of a real block's text: all of it but
    trailing blank lines and trailing comments at or under the header's indentation
    (those belong to what follows)."""
    lines = [line.rstrip() for line in body.split("\n")]

    def at_base_comment(line: str) -> bool:
        return line.lstrip().startswith("#") and len(line) - len(line.lstrip()) <= len(base)

    while lines and (not lines[-1].strip() or at_base_comment(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def has_repeats(lines: list[str]) -> bool:
    """Any non-blank line with letters or digits appearing twice (the cut rules are
    tested on their own; here a repeat would make the oracle ambiguous)."""
    seen = [line.strip() for line in lines if any(c.isalnum() for c in line)]
    return len(seen) != len(set(seen))


def function_blocks(text: str, blocks: Callable[[str], list[Block]]) -> list[Block]:
    return [b for b in blocks(text) if b.keyword in ("def", "async")]


@pytest.fixture(scope="module", params=FILES)
def stdlib_functions(
    request: pytest.FixtureRequest,
    stdlib_source: Callable[[str], str],
    blocks: Callable[[str], list[Block]],
) -> tuple[str, list[Block]]:
    text = stdlib_source(request.param)
    return text, function_blocks(text, blocks)


def stdlib_cases(text: str, block: Block, at_blank_line: bool) -> dict[str, Any] | None:
    """A MULTI case whose raw output is the real body followed by the real next code."""
    body = text[block.body_start : block.body_end]
    tail = text[block.body_end : block.body_end + 300]
    next_line = next((line.strip() for line in tail.split("\n") if line.strip()), "")
    lines = body.split("\n")
    if has_repeats(lines) or next_line in {line.strip() for line in lines}:
        return None
    if at_blank_line:
        if not lines[0].startswith(block.body_indent) or not lines[0].strip():
            return None
        prefix = text[: block.header_end] + "\n" + block.body_indent
        raw = body[len(block.body_indent) :] + tail
        expected = body_expected(body[len(block.body_indent) :], block.header_indent)
    else:
        prefix = text[: block.header_end]
        raw = "\n" + body + tail
        expected = "\n" + body_expected(body, block.header_indent)
    suffix = "\n" + text[block.body_end :]  # the document with this body removed
    return {"mode": "multi", "prefix": prefix, "suffix": suffix, "raw": raw, "expected": expected}


@pytest.mark.parametrize("at_blank_line", [False, True], ids=["header", "blank-line"])
def test_real_function_bodies_are_reproduced(
    stdlib_functions: tuple[str, list[Block]], at_blank_line: bool
) -> None:
    """The model "writes" the real body and goes on with the next function: the
    suggestion is exactly the body, and streaming stops right after the body."""
    text, functions = stdlib_functions
    rng = random.Random(len(text))
    checked = 0
    for block in functions:
        case = stdlib_cases(text, block, at_blank_line)
        if case is None:
            continue
        assert run(case["raw"], case) == case["expected"], case["prefix"][-120:]
        checked += 1
        if block.body_end >= len(text) or rng.random() > 0.25:
            continue
        # stream a quarter of them: line by line inside the body, then char by char
        raw = case["raw"]
        tail = text[block.body_end : block.body_end + 300]
        body_len = len(raw) - len(tail)
        for end in [i + 1 for i, ch in enumerate(raw[:body_len]) if ch == "\n"]:
            assert not done(raw[:end], case), raw[:end]
        stop = assert_early_stop_is_safe(case, case["expected"])
        first_code = body_len + len(tail) - len(tail.lstrip())  # the dedented next line
        assert stop is not None and stop <= first_code + 1
    assert checked >= max(3, len(functions) // 2)  # most functions qualify


@pytest.fixture(scope="module", params=FILES[:4])
def stdlib_text(request: pytest.FixtureRequest, stdlib_source: Callable[[str], str]) -> str:
    return stdlib_source(request.param)


def test_single_line_statements_are_reproduced(stdlib_text: str) -> None:
    """Cut a real one-line statement anywhere: SINGLE gives back the rest of the line."""
    text = stdlib_text
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    rng = random.Random(len(text))
    checked = 0
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Expr | ast.Assign | ast.Return | ast.AugAssign | ast.Raise):
            continue
        if node.lineno != node.end_lineno:
            continue
        row = node.lineno - 1
        line = lines[row]
        code = line.rstrip()
        neighbours = {lines[i].strip() for i in (row - 1, row + 1) if 0 <= i < len(lines)}
        if code.strip() in neighbours:
            continue
        start = node.col_offset
        cut = rng.randrange(start, len(code))
        prefix = text[: offsets[row] + cut]
        raw = line[cut:] + "\n" + "\n".join(lines[row + 1 : row + 3])
        case = {"mode": "single", "prefix": prefix, "suffix": text[offsets[row] + len(line) :]}
        assert run(raw, case) == code[cut:].rstrip(), line
        case["raw"] = raw
        assert done(raw[: len(line) - cut + 1], case)
        assert not done(raw[: len(line) - cut], case)
        checked += 1
    assert checked > 50


# --------------------------------------------------------------------------------------
# Hand-written edge cases

SINGLE = {"prefix": "x = ", "suffix": "\n", "mode": "single"}
MULTI = {"prefix": "def f():", "suffix": "\n", "mode": "multi"}

CONTROL_TOKENS = [
    "<|endoftext|>",
    "<|im_end|>",
    "<|im_start|>",
    "<file_sep>",
    "<filename>",
    "<repo_name>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<fim_pad>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|file_separator|>",
    "<|repo_name|>",
    "<｜fim▁begin｜>",
    "<｜fim▁hole｜>",
    "<｜fim▁end｜>",
    "<｜end▁of▁sentence｜>",
    "<EOT>",
    "<PRE>",
    "<SUF>",
    "<MID>",
]


@pytest.mark.parametrize("token", CONTROL_TOKENS)
def test_control_tokens_cut_the_completion(token: str) -> None:
    assert run(f"compute(1){token}junk()", SINGLE) == "compute(1)"
    assert run(f"\n    return 1{token}\n    junk()", MULTI) == "\n    return 1"
    assert run(f"{token}compute(1)", SINGLE) == ""
    assert done(f"compute(1){token}", SINGLE)
    assert done(f"\n    a = 1{token}", MULTI)
    assert not done(f"compute(1){token[:-1]}", SINGLE)


@pytest.mark.parametrize(
    "text", ["a < b", "x = a <| b", "List<String>", "if a<b and c>d:", "<pre>", "<s>"]
)
def test_lookalikes_are_not_control_tokens(text: str) -> None:
    assert run(text, SINGLE) == text
    assert not done(text, SINGLE)


def test_none_mode_and_bad_input_give_nothing() -> None:
    assert run("1", {**SINGLE, "mode": "none"}) == ""
    assert done("", {**SINGLE, "mode": "none"})
    assert run("", SINGLE) == ""
    assert run("", MULTI) == ""
    kwargs = {"prefix": "x = ", "suffix": "", "language": "python"}
    assert postprocess(None, mode=Mode.SINGLE, **kwargs) == ""  # type: ignore[arg-type]
    assert postprocess("1", mode="bogus", **kwargs) == ""  # type: ignore[arg-type]
    assert is_complete(None, mode=Mode.SINGLE, **kwargs)  # type: ignore[arg-type]
    # a mode given by value is accepted
    assert postprocess("1\n2", mode="single", **kwargs) == "1"  # type: ignore[arg-type]
    # missing prefix/suffix/language are treated as empty
    weird = {"prefix": None, "suffix": 3, "language": None}
    assert postprocess("y = 1\nz", mode=Mode.SINGLE, **weird) == "y = 1"  # type: ignore[arg-type]
    # no prefix: no enclosing block to end (the leading newline on the blank line folds)
    assert postprocess("\n    y = 1\nz", mode=Mode.MULTI, **weird) == "    y = 1\nz"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw", ["\x00\xff\ud800", "\r\r\n\r", "(((((", "}}}}}", '"""' * 7, "\\" * 9, "\t" * 50]
)
def test_garbage_never_raises(raw: str) -> None:
    for case in (SINGLE, MULTI, {**MULTI, "language": "javascript"}):
        assert isinstance(run(raw, case), str)
        assert isinstance(done(raw, case), bool)


def test_single_mode_is_complete_at_first_newline() -> None:
    assert not done("compute(", SINGLE)
    assert done("compute()\n", SINGLE)
    assert done("\n", SINGLE)  # a leading newline: SINGLE keeps nothing, so stop
    assert done("a\r\n", SINGLE)


def test_multi_mode_is_complete_at_block_end() -> None:
    assert not done("\n", MULTI)
    assert not done("\n    a = 1\n", MULTI)
    assert not done("\n    a = 1\n\n", MULTI)
    assert not done("\n    a = (\n", MULTI)
    assert not done("\n    a = (\n1", MULTI)  # inside brackets: not a dedent
    assert not done("\n    a = 1\n# note", MULTI)  # a comment at the base is not decisive
    assert done("\n    a = 1\nb", MULTI)
    assert done("\n    a = 1\n\n\nclass", MULTI)
    assert done("\n    a = 1\n    a = 1\n", MULTI)  # a line repeated back to back


def test_brace_closer_line_waits_for_its_newline() -> None:
    case = {"prefix": "if (x) {", "suffix": "\n", "mode": "multi", "language": "javascript"}
    assert not done("\n  run();\n}", case)
    assert done("\n  run();\n}\n", case)
    assert run("\n  run();\n}\n", case) == "\n  run();\n}"
    assert done("\n  run();\n} else", case)
    assert run("\n  run();\n} else {\n  stop();\n}\n", case) == "\n  run();"
    closed = {**case, "suffix": "\n}\n"}
    assert done("\n  run();\n}", closed)
    assert run("\n  run();\n}", closed) == "\n  run();"


def test_tab_indented_blocks() -> None:
    case = {"prefix": "class A:\n\tdef f(self):", "suffix": "\n", "mode": "multi"}
    assert run("\n\t\treturn 1\n\n\tdef g(self):\n\t\tpass", case) == "\n\t\treturn 1"


def test_windows_line_endings() -> None:
    case = {"prefix": "def f():\r\n    ", "suffix": "\r\n", "mode": "multi"}
    assert run("a = 1\r\n    return a\r\nx = 2\r\n", case) == "a = 1\n    return a"


def test_prefix_without_the_indentation_still_ends_the_block() -> None:
    """The engine may put the indentation in the prefix, or leave it to the model."""
    with_indent = {"prefix": "def f():\n    ", "suffix": "\n", "mode": "multi"}
    without = {"prefix": "def f():\n", "suffix": "\n", "mode": "multi"}
    assert run("a = 1\n    return a\nx = 2", with_indent) == "a = 1\n    return a"
    assert run("    a = 1\n    return a\nx = 2", without) == "    a = 1\n    return a"


def test_leading_newline_that_cannot_be_folded_is_kept() -> None:
    """On an indented blank line, a leading newline is folded only into lines that
    carry the cursor line's indentation; a shallower line cannot be un-indented."""
    case = {"prefix": "def f():\n        ", "suffix": "\n", "mode": "multi"}
    assert run("\n    a = 1\n    return a\nx", case) == "\n    a = 1\n    return a"


def test_real_stdlib_stream_stops_inside_no_docstring(stdlib_source: Callable[[str], str]) -> None:
    """Doctest lines repeat inside docstrings; that is not a loop."""
    text = stdlib_source("difflib.py")
    header = "    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):"
    start = text.index(header) + len(header)
    end = text.index("\n    def get_matching_blocks", start)
    case = {
        "mode": "multi",
        "prefix": text[:start],
        "suffix": text[end:],
        "raw": text[start:end] + text[end : end + 200],
    }
    expected = text[start:end].rstrip()
    assert expected.count(">>> s.find_longest_match(0, 5, 0, 9)") == 2
    assert run(case["raw"], case) == expected
    assert assert_early_stop_is_safe(case, expected, step=7) is not None


# --------------------------------------------------------------------------------------
# Repetition loops inside a line, and the line cap

# Standard-library modules with tables, hex and escape strings, doctests and other
# repetitive but real lines (none of them in the completion evaluation's held-out split).
REPETITIVE_FILES = [
    "hashlib.py",
    "uuid.py",
    "stringprep.py",
    "pickletools.py",
    "turtle.py",
    "random.py",
    "datetime.py",
    "_pydecimal.py",
    "ftplib.py",
    "cgitb.py",
    "plistlib.py",
    "zipimport.py",
    "encodings/cp1252.py",
    "re/_parser.py",
]
WORD = re.compile(r"[A-Za-z_]\w*")


def repetitive(code: str) -> bool:
    """A line where some word appears three times or more: worth streaming through."""
    words = WORD.findall(code)
    return len(words) - len(set(words)) >= 2


@pytest.mark.parametrize("name", REPETITIVE_FILES)
def test_real_lines_are_not_taken_for_loops(name: str, stdlib_source: Callable[[str], str]) -> None:
    """Every line of real code, offered as a SINGLE suggestion where it stands, is kept
    whole; streamed, generation never stops inside it."""
    text = stdlib_source(name)
    lines = text.split("\n")
    start = 0
    checked = streamed = 0
    for i, line in enumerate(lines):
        line_start, start = start, start + len(line) + 1
        code = line.strip()
        if not code:
            continue
        neighbours = [ln.strip() for ln in (*lines[max(0, i - 3) : i], *lines[i + 1 : i + 4])]
        if code in neighbours:
            continue  # the rule for repeated lines applies there, rightly
        indent = len(line) - len(line.lstrip())
        case = {
            "mode": "single",
            "prefix": text[: line_start + indent],
            "suffix": text[line_start + len(line) :],
        }
        raw = line[indent:] + "\n" + (lines[i + 1] if i + 1 < len(lines) else "")
        got, want = run(raw, case), line[indent:].rstrip()
        if got != want:  # only closers the statement cannot take (`:)` in a docstring) may
            # go, or a control token (`<filename>`) and what follows it
            tail = want[len(got) :].lstrip()
            assert want.startswith(got) and tail, f"{name}:{i + 1}: {line}"
            assert tail[0] in ")]}" or CONTROL_TOKEN.match(tail), f"{name}:{i + 1}: {line}"
        checked += 1
        if repetitive(code):
            for end in range(indent + 1, len(line.rstrip()) + 1):
                assert not done(line[indent:end], case), f"{name}:{i + 1}: {line[:end]}"
            streamed += 1
    assert checked > 200 and streamed >= (0 if name.startswith("encodings/") else 3)


LOOPS = [
    "return True, " + ", ".join(["False"] * 30),
    " or ".join(f"not isinstance(stream[{i}])" for i in range(12)),
    "return self.types[param] + t.type" + "_value" * 20,
    "return self.types[param] + t.type" + "_of_self_type" * 8,
    "return self.types[param] + t.type" + "_of_self_type_of_type" * 5,  # not back to back
    'return f"A: ' + "{self.name} {self.type} " * 8,
    "result = " + " + ".join(["self.count"] * 20),
    "x = foo(foo(foo(foo(foo(foo(foo(foo(foo(foo(foo(foo(",
    "print(" + ", ".join(f"arg{i}" for i in range(20)) + ")",
]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("mode", ["single", "multi"])
def test_loops_inside_a_line_are_cut_while_streaming(loop: str, mode: str) -> None:
    """The loop gives no suggestion, and streaming stops well before the token cap."""
    case = {"mode": mode, "prefix": "class A:\n    def f(self, stream):\n        ", "suffix": "\n"}
    raw = loop + "\n        return None\n"
    assert run(raw, case) == ""
    stop = assert_early_stop_is_safe({**case, "raw": raw}, "")
    assert stop is not None and stop < len(loop) * 0.8


def test_lines_before_a_loop_are_kept() -> None:
    case = {"mode": "multi", "prefix": "def f(stream):\n    ", "suffix": "\n"}
    raw = "items = list(stream)\n    return " + " + ".join(["items[0]"] * 20)
    assert run(raw, case) == "items = list(stream)"
    assert assert_early_stop_is_safe({**case, "raw": raw}, "items = list(stream)")


@pytest.mark.parametrize(
    "line",
    [
        "a, b, c = 1, 2, 3",
        "return (0, 0, 0, 0)",
        "x = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
        "mask = [False, False, False, False, False, False, False, False]",
        "self._data = (None, None, None, None, None, k, None, len(t), t)",
        "return x[0][0][0][0]",
        "md5(), sha1(), sha224(), sha256(), sha384(), sha512(), blake2b(), blake2s()",
        "def shapetransform(self, t11=None, t12=None, t21=None, t22=None):",
        "SEPARATOR = '-' * 70 + '=' * 70",
        "_WHATWG = '\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x0b\\x0c\\x0e\\x0f\\x10'",
        "dotdotdot = 'rwxrwxrwx'",
        "return '%s-%s-%s-%s-%s' % (a, b, c, d, e)",
        "x = self.a.b.c.d.e.f.g.h",
        # five copies and a longer word: the sixth copy is only there while it is written
        "x = y + count + count + count + count + count + counter",
    ],
)
def test_repetitive_real_looking_lines_are_kept(line: str) -> None:
    case = {"mode": "single", "prefix": "def f():\n    ", "suffix": "\n"}
    assert run(line, case) == line
    assert not any(done(line[:end], case) for end in range(1, len(line) + 1))


def numbered_body(n: int) -> str:
    return "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, n + 1))


@pytest.mark.parametrize("cap", [1, 3, 12])
def test_line_cap_cuts_at_a_line_end_and_stops_the_stream(cap: int) -> None:
    case = {"mode": "multi", "prefix": "def f(value_0):", "suffix": "\n", "max_lines": cap}
    raw = "\n" + numbered_body(30)
    expected = "\n" + numbered_body(cap).rstrip("\n")
    assert run(raw, case) == expected
    stop = assert_early_stop_is_safe({**case, "raw": raw}, expected)
    # the stream stops once the first line past the cap is finished
    assert stop == len("\n" + numbered_body(cap + 1))
    assert run(raw, {**case, "max_lines": None}) == "\n" + numbered_body(30).rstrip("\n")


def test_line_cap_counts_lines_on_a_blank_line_too() -> None:
    case = {"mode": "multi", "prefix": "def f(value_0):\n    ", "suffix": "\n", "max_lines": 2}
    assert run(numbered_body(5).lstrip(), case) == numbered_body(2).strip()


def test_line_cap_in_a_single_long_statement_cuts_at_the_cap() -> None:
    case = {"mode": "multi", "prefix": "def f():\n    ", "suffix": "\n", "max_lines": 3}
    raw = "return compute(\n        1,\n        2,\n        3,\n    )\n"
    assert run(raw, case) == "return compute(\n        1,\n        2,"


@pytest.mark.parametrize("bad", [0, -5, True, "12", 2.5, None])
def test_line_cap_odd_values(bad: object) -> None:
    case = {"mode": "multi", "prefix": "def f(value_0):", "suffix": "\n", "max_lines": bad}
    got = run("\n" + numbered_body(20), case)
    lines = got.split("\n")[1:]
    assert len(lines) == (1 if isinstance(bad, int) and not isinstance(bad, bool) else 20)


def test_extra_indentation_after_typed_indentation_single_mode() -> None:
    """A blank line in a body, indentation typed: the suggestion starts at the cursor."""
    case = {"mode": "single", "prefix": "def f(x):\n    y = x\n    ", "suffix": "\n"}
    assert run("      return y\n", case) == "return y"
    # at column 0 the model's indentation is the line's indentation, and is kept
    assert run("    return y\n", {**case, "prefix": "def f(x):\n    y = x\n"}) == "    return y"
