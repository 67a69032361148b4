"""LLM judges: a versioned rubric renders the prompt, any `cpqa.llm` backend replies, and the reply's
final `Rating: N` line is the score.

Parsing is strict, so a malformed reply is a counted failure, never a score: the last non-empty
line (markdown emphasis, quotes and code fences aside) must read `Rating: N` with N a whole number
from 0 to 5 (`N/5` accepted). `n_runs` requests per answer differ by seed; their ratings are
averaged. A judge under 7B parameters (by its name) or an embedded model gets a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from ..errors import CPQAError
from ..llm.protocol import LLMRequest

TEMPLATES = "cpqa.evaluate"
SMALL_JUDGE_B = 7.0


@dataclass(frozen=True)
class Rubric:
    name: str
    version: str
    template: str

    def messages(self, question: str, reference: str, answer: str, qa_type: str) -> list[dict[str, str]]:
        module = template_module(self.template)
        return [{"role": "system", "content": str(module.system()).strip()},
                {"role": "user", "content": str(module.user(question, reference, answer, qa_type)).strip()}]


RUBRICS: dict[str, Rubric] = {
    r.name: r for r in (
        Rubric("reference", "1", "reference-v1.j2"),
        Rubric("paralinguistic", "1", "paralinguistic-v1.j2"),
    )
}


def get_rubric(name: str) -> Rubric:
    if name not in RUBRICS:
        raise CPQAError(f"unknown rubric '{name}'. Known: {', '.join(RUBRICS)}")
    return RUBRICS[name]


@cache
def template_module(name: str):
    """The macros of a packaged template (`system`, `user`, ...)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader(TEMPLATES, "templates"), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=False, autoescape=False)
    return env.get_template(name).module


@dataclass(frozen=True)
class Rating:
    value: int | None
    failure: str | None = None
    """Why the reply gave no rating: `no_rating`, `not_final`, `bad_value`, `empty` or an LLM skip reason."""


_DECORATION = re.compile(r"^[\s`*_>#~\-=]*$")
_RATING_LINE = re.compile(r"^[\s*_>#`]*rating[\s*_`]*[:：=][\s*_`\[(]*(?P<value>[^\s*_`\])/]+)"
                          r"[\s\])]*(?:/\s*5(?:\.0+)?)?[\s*_`.]*$", re.IGNORECASE)
_MENTION = re.compile(r"^[\s*_>#`]*rating[\s*_`]*[:：=]", re.IGNORECASE)


REPAIRABLE = frozenset({"not_final", "no_rating"})
"""Failures a follow-up question may fix: the judge gave no rating on its final line."""
RATING_REMINDER = "Reply with only your final rating, as one line of exactly this form: Rating: N"


def parse_rating(reply: str) -> Rating:
    """The rating on the reply's final line, or the reason there is none."""
    lines = [line for line in reply.splitlines() if line.strip() and not _DECORATION.match(line)]
    if not lines:
        return Rating(None, "empty")
    match = _RATING_LINE.match(lines[-1])
    if match is None:
        if _MENTION.match(lines[-1]):
            return Rating(None, "bad_value")
        return Rating(None, "not_final" if any(_MENTION.match(line) for line in lines) else "no_rating")
    value = match["value"].rstrip(".")
    if not value.isdigit() or not 0 <= int(value) <= 5:
        return Rating(None, "bad_value")
    return Rating(int(value))


def judge_size_warning(model: str) -> str | None:
    """Why `model` looks too small to judge reliably, or None (unknown sizes pass)."""
    if model.startswith("embedded:"):
        return f"the judge '{model}' is a small embedded model; its ratings are a smoke test, not a benchmark"
    sizes = [float(s) for s in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model.replace("_", "-"))]
    if sizes and max(sizes) < SMALL_JUDGE_B:
        return (f"the judge '{model}' looks like a {max(sizes):g}B model; judges under {SMALL_JUDGE_B:g}B "
                "rate unreliably (the paper used GPT-4o and Llama-3-70B-Instruct)")
    return None


@dataclass(frozen=True)
class JudgeSettings:
    rubric: Rubric
    temperature: float
    n_runs: int
    max_tokens: int = 384

    def requests(self, question: str, reference: str, answer: str, qa_type: str) -> list[LLMRequest]:
        """One request per run; runs differ by seed, so a sampling judge gives independent ratings."""
        messages = self.rubric.messages(question, reference, answer, qa_type)
        return [LLMRequest(messages=messages, temperature=self.temperature, max_tokens=self.max_tokens, seed=run)
                for run in range(self.n_runs)]

    def describe(self) -> dict[str, Any]:
        return {"rubric": self.rubric.name, "rubric_version": self.rubric.version,
                "temperature": self.temperature, "n_runs": self.n_runs, "max_tokens": self.max_tokens}
