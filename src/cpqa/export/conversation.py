"""What a training example says, before a format lays it out: an optional system message, then
user / assistant messages, one pair per turn. The clip's audio belongs to the first user message.

The explicit variant (as in arXiv 2508.07273, where paralinguistic metadata is given to the model)
opens the first user message with the clip's labels, e.g.
`[Paralinguistic labels] emotion: sad (also heard: angry); gender: female; speakers: 1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .source import NOT_A_LABEL, Example

DEFAULT_SYSTEM = "You are a helpful assistant."
"""Qwen2-Audio's own default, so training and evaluation prompts agree."""
LABELS_TAG = "[Paralinguistic labels]"
MultiTurn = Literal["conversation", "first"]


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    text: str


def labels_text(labels: dict[str, Any]) -> str | None:
    """The labels as one line for a prompt; None when nothing is known."""
    parts = []
    emotion = labels.get("emotion")
    if emotion and emotion not in NOT_A_LABEL:
        others = [e for e in labels.get("emotions") or [] if e != emotion]
        parts.append(f"emotion: {emotion}" + (f" (also heard: {', '.join(others)})" if others else ""))
    if labels.get("genders"):
        parts.append(f"gender: {', '.join(labels['genders'])}")
    if labels.get("num_speakers"):
        parts.append(f"speakers: {labels['num_speakers']}")
    return f"{LABELS_TAG} {'; '.join(parts)}" if parts else None


def build_messages(example: Example, system: str | None = DEFAULT_SYSTEM, explicit: bool = False,
                   multi_turn: MultiTurn = "conversation") -> list[Message]:
    turns = example.qa.turns if multi_turn == "conversation" else example.qa.turns[:1]
    messages = [Message("system", system)] if system else []
    for i, turn in enumerate(turns):
        question = turn.question
        if i == 0 and explicit:
            line = labels_text(example.labels)
            question = f"{line}\n{question}" if line else question
        messages += [Message("user", question), Message("assistant", turn.answer)]
    return messages
