"""Checking LLM output against a JSON schema, with one textual repair.

The repair covers what small and unconstrained models get wrong most: prose or a Markdown fence
around the object, and trailing commas. Anything else is reported, never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import CPQAError

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@dataclass
class Checked:
    parsed: Any = None
    repaired: bool = False
    error: str | None = None


def check_schema(schema: dict[str, Any]) -> None:
    """Raise CPQAError when `schema` is not a valid JSON schema (a caller's bug, not the model's)."""
    from jsonschema import SchemaError

    try:
        _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        raise CPQAError(f"the JSON schema of an LLM request is invalid: {exc.message}") from exc


@lru_cache(maxsize=64)
def _validator(schema_json: str):
    from jsonschema.validators import validator_for

    schema = json.loads(schema_json)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_output(text: str, schema: dict[str, Any]) -> Checked:
    """Parse `text` as JSON valid against `schema`, repairing it once if it does not parse."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    repaired = False
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        candidate = repair_json_text(text)
        try:
            parsed = json.loads(candidate) if candidate is not None else None
        except json.JSONDecodeError:
            candidate = None
        if candidate is None:
            return Checked(error=f"not JSON: {exc.msg} at char {exc.pos}")
        repaired = True
    error = next(iter(sorted(validator.iter_errors(parsed), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Checked(repaired=repaired, error=f"schema: {where}: {error.message:.300}")
    return Checked(parsed=parsed, repaired=repaired)


def repair_json_text(text: str) -> str | None:
    """The JSON value inside `text` (a fenced block, else the first balanced {...} or [...]), with
    trailing commas removed; None when there is none."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    span = _balanced_span(body)
    if span is None:
        return None
    return _TRAILING_COMMA.sub(r"\1", body[span[0]:span[1]])


def _balanced_span(text: str) -> tuple[int, int] | None:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return start, i + 1
    return None
