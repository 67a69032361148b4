"""One vocabulary of skip and drop reasons: every reason is a snake_case constant of `cpqa.reasons`,
and no stage writes a reason as a string literal of its own."""

import ast
import re
from pathlib import Path

import cpqa
from cpqa import reasons

SRC = Path(cpqa.__file__).parent
REASON_FIRST = {"DecodeError", "failure"}
"""Calls whose first argument is a reason: DecodeError(reason, ...), Outcome.failure(reason, ...)."""
REASON_KEYWORDS = {"reason", "error_reason", "skip_reason"}
LEFT_OUT = {"Skip", "Drop"}


def _strings(node: ast.AST) -> list[tuple[int, str]]:
    """The string literals an expression may evaluate to: through `a if c else b`, `a or b`,
    `a + b` and f-strings (their literal parts), not through calls or conditions."""
    if isinstance(node, ast.Constant):
        return [(node.lineno, node.value)] if isinstance(node.value, str) else []
    if isinstance(node, ast.JoinedStr):
        return [(node.lineno, "".join(v.value for v in node.values if isinstance(v, ast.Constant)))]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [found for value in node.values for found in _strings(value)]
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    return []


def reason_literals(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            values = [kw.value for kw in node.keywords
                      if kw.arg in REASON_KEYWORDS and (name in LEFT_OUT or kw.arg != "reason")]
            if name in REASON_FIRST and node.args:
                values.append(node.args[0])
            for value in values:
                found += _strings(value)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts)
                         if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                         else [(target, node.value)])
                for t, v in pairs:
                    if isinstance(t, ast.Attribute) and t.attr == "skip_reason":
                        found += _strings(v)
    return sorted(found)


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
    code = """
Skip(id=x, reason="no-audio")
Drop(id=x, reason=NO_SPEECH, detail="fine")
raise DecodeError("missing-file", p, "gone")
LLMResult.failure(r.skip_reason or "llm_failed", "detail")
result.skipped, result.skip_reason = True, "refused" if refusal else EMPTY_REPLY
Result(skipped=True, skip_reason=f"too-short ({n})")
"""
    assert [v for _, v in reason_literals(ast.parse(code))] == ["no-audio", "missing-file", "llm_failed", "refused",
                                                                "too-short ()"]
