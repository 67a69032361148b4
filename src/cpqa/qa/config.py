"""The `qa` stage's configuration: which items per clip, the generator, and the filters' actions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import CPQAError
from ..records import QAType
from ..stage import BackendSpec, Config, StageConfig, backend_field
from .answerability import TextOnlyAction
from .claims import load_claim_words
from .embeddings import EMBEDDED_MINILM, check_model_name
from .filters import FilterAction
from .speech_check import SpeechCheckConfig
from .types import DIRECT_TYPES, available_versions, load_qa_types


class TypeCounts(Config):
    """Single-turn items per type per clip (a type the clip's labels cannot support is left out)."""

    C: int = Field(1, ge=0, description="Content.")
    DE: int = Field(1, ge=0, description="Direct emotion.")
    DG: int = Field(1, ge=0, description="Direct gender.")
    DS: int = Field(1, ge=0, description="Direct speaker count.")
    CE: int = Field(1, ge=0, description="Contextual emotion.")
    CG: int = Field(1, ge=0, description="Contextual gender.")
    CS: int = Field(1, ge=0, description="Contextual speakers.")
    EMP: int = Field(1, ge=0, description="Empathetic response.")


class TextOnlyConfig(Config):
    """The text-only answerability filter (see `cpqa.qa.answerability`)."""

    action: TextOnlyAction = Field(
        "flag", description="What a text-answerable item gets: drop, flag, retype (kept as C), or off (not checked).")
    threshold: int = Field(4, ge=0, le=5, description="Judge rating (0-5) from which the text-only answer counts as right.")
    llm: BackendSpec | None = Field(None, description="Answers from the transcript; unset: the generation backend.")
    judge: BackendSpec | None = Field(None, description="Rates the text-only answer; unset: the text-only answerer.")
    max_tokens: int = Field(128, ge=8, description="Longest text-only answer.")

    _llm = backend_field("llm", "llm", optional=True)
    _judge = backend_field("llm", "judge", optional=True)


class QAFiltersConfig(Config):
    vocabulary_version: str = Field("v1", description="Version of label_words_*.yaml, claim_words_*.yaml and leakage_*.yaml.")
    schema_check: FilterAction = Field("drop", description="Items with a wrong turn count, empty or too short text.")
    min_question_words: int = Field(3, ge=1, description="Shorter questions fail the schema check.")
    leakage: FilterAction = Field("drop", description="Items mentioning transcripts, labels, tags, annotations.")
    label_consistency: FilterAction = Field(
        "drop", description="DE/DG/DS answers that disagree with the clip's labels or whose question gives them away.")
    claims: FilterAction = Field(
        "drop", description="Items with an emotion, affect, gender or speaker-count word no confident label of that "
                            "speaker and moment supports (cpqa.qa.claims).")
    type_check: FilterAction = Field("drop", description="Items that do not test what their type says (cpqa.qa.claims).")
    type_judge: FilterAction = Field(
        "off", description="An LLM judge (text_only.judge, else the text-only answerer, else the generator) rates how "
                           "well items of `type_judge_types` that the rules passed test their type (cpqa.qa.type_judge).")
    type_judge_types: list[QAType] = Field(default_factory=lambda: ["EMP"], description="Types the type judge rates.")
    type_judge_threshold: int = Field(3, ge=0, le=5, description="Ratings below this fail the type check.")
    duplicates: FilterAction = Field("drop", description="Near-duplicate questions within a clip (the later one).")
    duplicate_threshold: float = Field(0.85, gt=0, le=1, description="Cosine similarity of questions from which they are near-duplicates.")
    embedding_model: str = Field(EMBEDDED_MINILM, description="Sentence-transformers model for near-duplicates.")
    text_only: TextOnlyConfig = Field(default_factory=TextOnlyConfig)
    speech_llm: SpeechCheckConfig = Field(default_factory=SpeechCheckConfig,
                                          description="A speech-LLM answers the direct questions from the audio.")

    @field_validator("embedding_model")
    @classmethod
    def _known_embedder(cls, name: str) -> str:
        return check_model_name(name)

    @field_validator("vocabulary_version")
    @classmethod
    def _known_vocabulary(cls, version: str) -> str:
        try:
            load_claim_words(version)
        except CPQAError as exc:
            raise ValueError(str(exc)) from None
        return version


class QAConfig(StageConfig):
    llm: BackendSpec = Field(default_factory=lambda: {"name": "llamacpp"},
                             description="The generator: a registered LLM backend and its options.")
    counts: TypeCounts = Field(default_factory=TypeCounts, description="Single-turn items per type per clip.")
    multi_turn: int = Field(1, ge=0, description="Multi-turn items per clip.")
    follow_up_turns: int = Field(2, ge=2, le=4, description="Turns of a multi-turn item.")
    multi_turn_types: list[QAType] = Field(default_factory=lambda: ["CE", "EMP", "C"],
                                           description="Types multi-turn items rotate over (per clip).")
    temperature: float = Field(0.7, ge=0, le=2)
    retry_temperature: float | None = Field(
        0.7, ge=0, le=2, description="Sampling temperature of the regeneration attempts (None: `temperature`): "
                                     "decoding greedily, a small model given the reasons often writes the refused "
                                     "item again word for word.")
    seed: int = 0
    max_tokens_per_turn: int = Field(150, ge=16, description="Reply budget per requested turn.")
    max_attempts: int = Field(
        3, ge=1, description="Generation attempts per slot: an item failing a check of its own goes back to the "
                             "generator with its reasons until it passes or this many attempts were made "
                             "(cpqa.qa.regenerate); every attempt is kept in generator.attempts.")
    prompt_version: str = Field(
        "v3", description="Version of qa_types_*.yaml and the prompt templates it names (v2: each item that needs a "
                          "speaker's label names that speaker and label, cpqa.qa.targets; v1: the generator picks; "
                          "v3: as v2, with direct phrasings, CS on a reply, evidence quoted).")
    direct_items: Literal["llm", "template"] = Field(
        "llm", description="Who writes the direct items (DE, DG, DS): the generator, or cpqa from the prompt "
                           "version's phrasings (cpqa.qa.direct; v3 has them): the answer is a label either way, and "
                           "a small generator adds only errors and tokens.")
    filters: QAFiltersConfig = Field(default_factory=QAFiltersConfig)

    _llm = backend_field("llm", "llm")

    @field_validator("prompt_version")
    @classmethod
    def _known_version(cls, version: str) -> str:
        if version not in available_versions():
            raise ValueError(f"unknown prompt_version '{version}'. Known: {', '.join(available_versions())}")
        return version

    @model_validator(mode="after")
    def _something_to_ask(self) -> QAConfig:
        if sum(n for _, n in self.counts) + self.multi_turn == 0:
            raise ValueError("counts and multi_turn ask for no item at all")
        if self.multi_turn and not self.multi_turn_types:
            raise ValueError("multi_turn items need at least one of multi_turn_types")
        if self.direct_items == "template":
            types = load_qa_types(self.prompt_version).types
            if unphrased := [code for code in DIRECT_TYPES if types[code].phrasings is None]:
                raise ValueError(f"direct_items: template needs phrasings, which prompt_version "
                                 f"{self.prompt_version} lacks for {', '.join(unphrased)} (v3 has them)")
        return self
