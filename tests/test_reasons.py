"""One vocabulary of skip and drop reasons: every reason is a snake_case constant of `cpqa.reasons`,
and no stage writes a reason as a string literal of its own."""

import ast
import re
from pathlib import Path

import cpqa
from cpqa import reasons

SRC = Path(cpqa.__file__).parent
LEFT_OUT = {"Skip", "Drop", "DecodeError"}
"""Calls whose `reason` (DecodeError: first argument) is a skip or drop reason."""
REASON_KEYWORDS = {"reason", "error_reason"}


def reason_literals(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = [kw.value for kw in node.keywords if kw.arg in REASON_KEYWORDS]
            if name == "DecodeError" and node.args:
                args.append(node.args[0])
            if name in LEFT_OUT or any(kw.arg == "error_reason" for kw in node.keywords):
                found += [(a.lineno, a.value) for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        elif isinstance(node, ast.keyword) and node.arg == "error_reason" and isinstance(node.value, ast.Constant):
            found.append((node.value.lineno, node.value.value))
    return found


def test_every_reason_is_snake_case_and_unique():
    names = [n for n in vars(reasons) if n.isupper() and isinstance(getattr(reasons, n), str)]
    values = [getattr(reasons, n) for n in names]
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", v) for v in values), values
    assert len(set(values)) == len(values) == len(reasons.ALL)


def test_no_reason_is_written_as_a_literal():
    offenders = [f"{path.relative_to(SRC)}:{line}: {value!r}"
                 for path in sorted(SRC.rglob("*.py")) for line, value in reason_literals(ast.parse(path.read_text()))]
    assert not offenders, "write these reasons as constants of cpqa.reasons:\n" + "\n".join(offenders)


def test_the_scan_finds_a_literal():
    code = 'Skip(id=x, reason="no-audio")\nDrop(id=x, reason=NO_SPEECH)\nraise DecodeError("missing-file", p, "gone")'
    assert [v for _, v in reason_literals(ast.parse(code))] == ["no-audio", "missing-file"]
