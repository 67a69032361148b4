"""Rendering the versioned prompt templates of `cpqa/qa/prompts/` into LLM requests.

Untrusted text (the transcript and the context around a clip) only ever enters a prompt between
`<<<DATA NONCE>>>` and `<<<END NONCE>>>` lines, and the system prompt tells the model that text
there is never an instruction. The nonce is a keyed hash of the clip, so it is the same on every
rerun (the request cache keeps working) yet cannot be guessed by whoever wrote the speech.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

import jinja2

from ..errors import CPQAError
from ..llm import LLMRequest
from ..records import Turn
from .facts import ClipFacts
from .targets import Target
from .types import QATypes, QATypeSpec, Slot

_RATING = re.compile(r"rating\s*[:=]?\s*\**\s*([0-5])(?:\s*/\s*5)?\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("cpqa.qa", "prompts"), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False, autoescape=False)


def render(name: str, **values: Any) -> str:
    try:
        return environment().get_template(name).render(**values).strip()
    except jinja2.TemplateNotFound as exc:
        raise CPQAError(f"cpqa has no prompt template '{name}' (look in cpqa/qa/prompts/)") from exc


@lru_cache(maxsize=64)
def _snippet(snippet: str) -> jinja2.Template:
    return environment().from_string(snippet)


def render_snippet(snippet: str, **values: Any) -> str:
    """A Jinja snippet of a data file (compiled once), rendered on one line."""
    return " ".join(_snippet(snippet).render(**values).split())


def nonce(*parts: str) -> str:
    """A 16-hex-digit code from `parts` that does not occur in any of them."""
    salt = 0
    while True:
        code = hashlib.blake2b("\x1f".join([*parts, str(salt)]).encode(), digest_size=8,
                               key=b"cpqa-data-delimiter").hexdigest()
        if not any(code in part for part in parts):
            return code
        salt += 1


QUESTION_CHARS, ANSWER_CHARS = 300, 600
"""Far above a good item (an answer is one to three sentences): a small model that loops on one
sentence gets a cut item the checks judge, not a reply that never ends and fails the whole clip."""


def output_schema(slots: list[Slot], evidence_chars: int) -> dict[str, Any]:
    """The JSON schema of a generation reply: `{"items": [...]}` with one entry per slot, its type
    and turn count fixed, so constrained decoding cannot drift from the plan. The evidence is
    bounded (the QA types version's `evidence_chars`): a small model would spend a hundred tokens
    quoting the clip back."""
    turn = {"type": "object", "properties": {"question": {"type": "string", "minLength": 1, "maxLength": QUESTION_CHARS},
                                             "answer": {"type": "string", "minLength": 1, "maxLength": ANSWER_CHARS}},
            "required": ["question", "answer"], "additionalProperties": False}

    def item(slot: Slot) -> dict[str, Any]:
        return {"type": "object",
                "properties": {"type": {"const": slot.code},
                               "turns": {"type": "array", "prefixItems": [turn] * slot.turns, "items": False,
                                         "minItems": slot.turns},
                               "evidence": {"type": "string", "maxLength": evidence_chars}},
                "required": ["type", "turns", "evidence"], "additionalProperties": False}

    # `items: false` + `minItems` pin the length for validators; llama.cpp's grammar reads prefixItems.
    return {"type": "object",
            "properties": {"items": {"type": "array", "prefixItems": [item(s) for s in slots], "items": False,
                                     "minItems": len(slots)}},
            "required": ["items"], "additionalProperties": False}


def reply_budget(slots: list[Slot], max_tokens_per_turn: int) -> int:
    """The `max_tokens` of a reply writing `slots`: the JSON frame and `max_tokens_per_turn` per turn."""
    return 64 + max_tokens_per_turn * sum(s.turns for s in slots)


def slot_instructions(facts: ClipFacts, slots: list[Slot], targets: list[Target | None],
                      qa_types: QATypes) -> list[str]:
    """What the generator is told to write for each slot (its type's snippet, with its target)."""
    return [render_snippet(qa_types.types[slot.code].instruction, facts=facts, target=target)
            for slot, target in zip(slots, targets)]


def generation_request(facts: ClipFacts, context: dict[str, str], slots: list[Slot], instructions: list[str],
                       qa_types: QATypes, *, temperature: float, seed: int | None, max_tokens: int) -> LLMRequest:
    code = nonce(facts.clip_id, facts.tagged_transcript, context.get("before", ""), context.get("after", ""))
    rendered_slots = []
    for slot, instruction in zip(slots, instructions):
        spec: QATypeSpec = qa_types.types[slot.code]
        rendered_slots.append({
            "code": slot.code, "name": spec.name, "turns": slot.turns, "instruction": instruction,
            "follow_up": render_snippet(qa_types.follow_up, turns=slot.turns) if slot.turns > 1 else "",
        })
    user = render(qa_types.template("generate.user"), nonce=code, facts=facts, slots=rendered_slots,
                  context_before=context.get("before", "").strip(), context_after=context.get("after", "").strip())
    return LLMRequest(messages=[{"role": "system", "content": render(qa_types.template("generate.system"))},
                                {"role": "user", "content": user}],
                      json_schema=output_schema(slots, qa_types.evidence_chars), temperature=temperature, seed=seed,
                      max_tokens=max_tokens)


def regeneration_request(previous: LLMRequest, reply: str, failures: list[dict[str, str]], slots: list[Slot],
                         qa_types: QATypes, max_tokens: int, temperature: float) -> LLMRequest:
    """The conversation of `previous` continued: its `reply`, then the failed items (`code`,
    `question`, `answer`, `problems`, `instruction` each) to write again as `slots`, sampled at
    `temperature` with the next seed (the same seed drew the refused reply). Built only from the
    earlier request and reply, so a rerun sends the same request and hits the cache."""
    message = render(qa_types.template("regenerate.user"), failures=failures)
    return replace(previous.follow_up(reply, message, max_tokens),
                   json_schema=output_schema(slots, qa_types.evidence_chars), temperature=temperature,
                   seed=None if previous.seed is None else previous.seed + 1)


def text_only_request(facts: ClipFacts, turns: list[Turn], qa_types: QATypes, max_tokens: int) -> LLMRequest:
    """Ask a model that only reads the plain transcript the last question of an item (earlier
    turns are given with their reference answers)."""
    code = nonce(facts.clip_id, facts.transcript)
    user = render(qa_types.template("text_only.user"), nonce=code, transcript=facts.transcript,
                  previous=turns[:-1], question=turns[-1].question)
    return LLMRequest(messages=[{"role": "system", "content": render(qa_types.template("text_only.system"))},
                                {"role": "user", "content": user}], temperature=0.0, seed=0, max_tokens=max_tokens)


def judge_request(question: str, reference: str, candidate: str, qa_types: QATypes) -> LLMRequest:
    user = render(qa_types.template("judge.user"), question=question, reference=reference, candidate=candidate)
    return LLMRequest(messages=[{"role": "user", "content": user}], temperature=0.0, seed=0, max_tokens=24)


def type_judge_request(facts: ClipFacts, spec: QATypeSpec, turn: Turn, instruction: str,
                       qa_types: QATypes) -> LLMRequest:
    """Ask a judge how well an item's first turn tests what its type says ('Rating: N'), given
    the instruction its generator had."""
    user = render(qa_types.template("type_judge.user"), spec=spec, facts=facts, question=turn.question,
                  answer=turn.answer, instruction=instruction)
    return LLMRequest(messages=[{"role": "user", "content": user}], temperature=0.0, seed=0, max_tokens=24)


def parse_rating(text: str) -> int | None:
    """N from a judge's 'Rating: N' (0–5); None when there is none."""
    match = _RATING.search(text or "")
    return int(match.group(1)) if match else None
