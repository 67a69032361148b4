"""The `qa` stage: an LLM writes contextual paralinguistic QA for each clip, and per-clip filters
judge each item.

Per clip: its labels (`facts`) decide which types it can have: a clip whose words carry no
reliable emotion ("no clear emotion" throughout) gets no DE/CE/EMP items, one with a speaker of
unknown gender no DG/CG, one without speaker turns no DS/CS; each left-out slot is counted under
`qa/types_unavailable/<type>` and `qa/types_unavailable_because/<why>` (see `facts.unavailable`).
The planned slots (`counts` per type, then `multi_turn` items of `follow_up_turns` turns, their
types rotating over the allowed `multi_turn_types`) become one request whose JSON schema fixes
every slot's type and turn count. Items failing a check of their own go back to the generator in
the same conversation, up to `max_attempts` per slot, every attempt kept in
`generator["attempts"]` (see `cpqa.qa.regenerate`). The batch's requests of each attempt go to the
backend at once, through the run's request cache (`RUN/cache/llm.sqlite`); follow-up requests are
built from the cached replies only, so a rerun of finished generation makes no LLM call. Item ids
are `f"{clip_id}-qa{n:03d}"`, n the slot.

A clip whose generation failed becomes a Skip with the LLM's skip reason (`timeout`,
`invalid_output`, `http_500`, ...) or `unparseable`, its raw output in the detail; a clip without
words is skipped as `no_transcript`, one whose labels allow no configured type as `no_qa_types`
(its detail says why for each type). Items carry `generator{model, backend, prompt_version,
raw_output, temperature, seed}`, the clip's audio in
`metadata{audio, recording_id, start, end}` (so the set stands on its own) and the verdicts of the
filters (see `cpqa.qa.filters`, `cpqa.qa.claims`): schema, leakage, label consistency, unsupported
claims, type check, then (on the final attempt's items) near-duplicates within the clip and
text-only answerability for the items still passing, and the speech-LLM check of their direct
items where the recipe names one (`cpqa.qa.speech_check`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable

from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import CPQAError
from ..llm import LLMBackend, LLMConfig, LLMResult
from ..records import Clip, QAItem, QAType, Skip, Turn
from ..registry import backend_registry
from ..stage import BackendSpec, Config, Stage, StageConfig, backend_field, register_stage
from .answerability import TextOnlyAction, TextOnlyCheck
from .claims import UNSUPPORTED_CLAIM, WRONG_TYPE, load_claim_words, type_problem, unsupported_claims
from .embeddings import EMBEDDED_MINILM, check_model_name, greedy_duplicates, load_embedder
from .facts import ClipFacts, clip_facts
from .filters import (
    DUPLICATE_IN_CLIP,
    LEAKAGE,
    SCHEMA,
    FilterAction,
    label_problem,
    leaks,
    load_vocabulary,
    new_filters,
    record,
    schema_problem,
    verdict_counts,
)
from .prompts import Slot, generation_request, reply_budget
from .regenerate import ClipPlan, attempt_counts
from .speech_check import SpeechCheck, SpeechCheckConfig
from .type_judge import TypeJudge
from .types import QA_TYPES, available_versions, load_qa_types

logger = logging.getLogger(__name__)

UNPARSEABLE = "unparseable"
NO_TYPES = "no_qa_types"
NO_TRANSCRIPT = "no_transcript"
RAW_EXCERPT_CHARS = 600


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
    seed: int = 0
    max_tokens_per_turn: int = Field(150, ge=16, description="Reply budget per requested turn.")
    max_attempts: int = Field(
        3, ge=1, description="Generation attempts per slot: an item failing a check of its own goes back to the "
                             "generator with its reasons until it passes or this many attempts were made "
                             "(cpqa.qa.regenerate); every attempt is kept in generator.attempts.")
    prompt_version: str = Field("v1", description="Version of the prompt templates and qa_types_*.yaml.")
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
        return self


@register_stage
class QAStage(Stage[Clip, QAItem]):
    """Generate contextual paralinguistic QA per clip with an LLM, and filter it."""

    name = "qa"
    version = "1"
    Config = QAConfig
    input_type = Clip
    output_type = QAItem
    config: QAConfig

    def setup(self) -> None:
        c = self.config
        self.qa_types = load_qa_types(c.prompt_version)
        self.vocab = load_vocabulary(c.filters.vocabulary_version)
        self.claim_words = load_claim_words(c.filters.vocabulary_version)
        self._backends: dict[str, LLMBackend] = {}
        self.llm = self._backend(c.llm)
        text_only = c.filters.text_only
        self.answerer = self._backend(text_only.llm) if text_only.llm else self.llm
        self.judge = self._backend(text_only.judge) if text_only.judge else self.answerer
        self.text_only = TextOnlyCheck(self.answerer, self.judge, c.prompt_version, text_only.action,
                                       text_only.threshold, text_only.max_tokens)
        self.type_judge = TypeJudge(self.judge, self.qa_types, frozenset(c.filters.type_judge_types),
                                    c.filters.type_judge_threshold, c.filters.type_judge)
        self.speech_check = SpeechCheck(c.filters.speech_llm, self.context.run_dir, self.vocab)
        self.embedder = load_embedder(c.filters.embedding_model) if c.filters.duplicates != "off" else None
        self._llm_counted: dict[str, float] = {}

    def _backend(self, spec: BackendSpec) -> LLMBackend:
        """One backend per distinct spec: a judge configured like the generator shares its model."""
        key = json.dumps(spec.model_dump_flat(), sort_keys=True)
        if key not in self._backends:
            options = spec.options
            if isinstance(options, LLMConfig) and options.cache_path is None:
                options = options.model_copy(update={"cache_path": str(self.context.run_dir / "cache" / "llm.sqlite")})
            self._backends[key] = backend_registry("llm").get(spec.name)(options)
        return self._backends[key]

    def teardown(self) -> None:
        for backend in self._distinct_backends().values():
            backend.close()
        self.speech_check.close()

    def _count_llm(self) -> None:
        """Add what the backends did since the last batch (the executor saves counters per batch)."""
        for prefix, backend in self._distinct_backends().items():
            for key, value in backend.stats.as_dict(prefix).items():
                delta = value - self._llm_counted.get(key, 0)
                if delta:
                    self.count(key, round(delta, 3) if isinstance(delta, float) else delta)
                self._llm_counted[key] = value

    def _distinct_backends(self) -> dict[str, LLMBackend]:
        named = {"llm_": self.llm, "text_only_llm_": self.answerer, "judge_llm_": self.judge}
        seen: dict[int, str] = {}
        return {prefix: b for prefix, b in named.items() if seen.setdefault(id(b), prefix) == prefix}

    def unavailable(self, facts: ClipFacts) -> dict[str, str]:
        """Type → why the clip's labels cannot support it (the first label it lacks), for the
        types this stage asks for (by count or multi-turn)."""
        wanted = {code for code in QA_TYPES if getattr(self.config.counts, code)}
        if self.config.multi_turn:
            wanted |= set(self.config.multi_turn_types)
        out = {}
        for code in sorted(wanted):
            why = next((w for label in self.qa_types.types[code].labels if (w := facts.unavailable(label))), None)
            if why:
                out[code] = why
        return out

    def slots(self, clip: Clip, unavailable: dict[str, str]) -> list[Slot]:
        """The items to ask for: every configured type the clip's labels allow, then multi-turn ones."""
        slots = []
        for code in QA_TYPES:
            n = getattr(self.config.counts, code)
            if n and code in unavailable:
                self.count(f"qa/types_unavailable/{code}", n)
                self.count(f"qa/types_unavailable_because/{unavailable[code]}", n)
            elif n:
                slots.extend(Slot(code) for _ in range(n))
        rotation = [code for code in self.config.multi_turn_types if code not in unavailable]
        if self.config.multi_turn and rotation:
            # A stable per-clip start spreads the multi-turn types over the dataset.
            start = int.from_bytes(hashlib.blake2b(clip.id.encode(), digest_size=4).digest(), "big")
            slots.extend(Slot(rotation[(start + k) % len(rotation)], self.config.follow_up_turns)
                         for k in range(self.config.multi_turn))
        return slots

    def process_batch(self, items: list[Clip]) -> Iterable[QAItem | Skip]:
        c = self.config
        plans: list[ClipPlan] = []
        out: dict[str, list[QAItem] | Skip] = {}
        for clip in items:
            facts = clip_facts(clip, self.vocab.gender)
            unavailable = self.unavailable(facts)
            slots = self.slots(clip, unavailable)
            if not facts.transcript.strip():
                out[clip.id] = Skip(id=clip.id, reason=NO_TRANSCRIPT, detail="the clip has no transcribed words")
            elif not slots:
                why = ", ".join(f"{code}: {reason}" for code, reason in unavailable.items())
                out[clip.id] = Skip(id=clip.id, reason=NO_TYPES,
                                    detail=f"the clip's labels allow none of the configured QA types ({why})")
            else:
                plans.append(ClipPlan(clip, facts, slots, generation_request(
                    facts, clip.context, slots, self.qa_types, temperature=c.temperature, seed=c.seed,
                    max_tokens=reply_budget(slots, c.max_tokens_per_turn))))
        for attempt in range(1, c.max_attempts + 1):
            active = [plan for plan in plans if plan.pending]
            if not active:
                break
            results = self.llm.generate_many_sync([plan.request for plan in active])
            fresh = {plan.clip.id: self._attempt(plan, result, attempt, out) for plan, result in zip(active, results)}
            self._add(self.type_judge.run([(item, plan.facts) for plan in active for item in fresh[plan.clip.id].values()]))
            for plan, result in zip(active, results):
                for n, item in fresh[plan.clip.id].items():
                    plan.take(n, item, attempt)
                if fresh[plan.clip.id] and attempt < c.max_attempts:
                    plan.next_attempt(result.text, c.prompt_version, c.max_tokens_per_turn)
                else:
                    plan.stop()
        checked: list[tuple[QAItem, ClipFacts]] = []
        for plan in plans:
            if plan.clip.id not in out:
                out[plan.clip.id] = [plan.items[n] for n in sorted(plan.items)]
                checked.extend((item, plan.facts) for item in out[plan.clip.id])
        self._add(attempt_counts(item for item, _ in checked))
        self._near_duplicates([item for item, _ in checked if item.filters["passed"]])
        if c.filters.text_only.action != "off":
            self._add(self.text_only.run([(item, facts) for item, facts in checked if item.filters["passed"]
                                          and self.qa_types.types[item.type].needs_audio_cues]))
        clips = {clip.id: clip for clip in items}
        self._add(self.speech_check.run([(item, clips[item.clip_id]) for item, _ in checked if item.filters["passed"]]))
        records: list[QAItem | Skip] = []
        for clip in items:
            result = out[clip.id]
            records.extend([result] if isinstance(result, Skip) else result)
        self._add(verdict_counts(r for r in records if isinstance(r, QAItem)))
        self._count_llm()
        return records

    def _attempt(self, plan: ClipPlan, result: LLMResult, attempt: int,
                 out: dict[str, list[QAItem] | Skip]) -> dict[int, QAItem]:
        """One attempt's items for the plan's pending slots, checked by the rules (none when it failed)."""
        parsed = self._parse(plan.clip, {n: plan.slots[n] for n in plan.pending}, result)
        if isinstance(parsed, Skip):
            logger.warning("clip %s: generation attempt %d failed (%s)", plan.clip.id, attempt, parsed.reason)
            if attempt == 1:
                out[plan.clip.id] = parsed
            plan.failed_request(attempt, parsed.reason, parsed.detail)
            return {}
        for n, item in parsed.items():
            self._check(item, plan.slots[n], plan.facts)
        return parsed

    def _parse(self, clip: Clip, slots: dict[int, Slot], result: LLMResult) -> dict[int, QAItem] | Skip:
        """Slot number → item, for the requested `slots` in order."""
        if result.skipped:
            return Skip(id=clip.id, reason=result.skip_reason or UNPARSEABLE, detail=_excerpt(result))
        generator = {"model": result.model or self.llm.model_name, "backend": self.config.llm.name,
                     "prompt_version": self.config.prompt_version, "raw_output": result.text,
                     "temperature": self.config.temperature, "seed": self.config.seed}
        try:
            entries = result.parsed["items"]
            return {n: QAItem(id=f"{clip.id}-qa{n:03d}", clip_id=clip.id, type=entry["type"],
                              turns=[Turn(question=t["question"].strip(), answer=t["answer"].strip())
                                     for t in entry["turns"]],
                              evidence=(entry.get("evidence") or "").strip() or None,
                              generator=dict(generator), filters=new_filters(),
                              metadata={"audio": clip.audio, "recording_id": clip.recording_id,
                                        "start": clip.start, "end": clip.end})
                    for n, entry in zip(slots, entries)}
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            return Skip(id=clip.id, reason=UNPARSEABLE, detail=f"{type(exc).__name__}: {exc}; {_excerpt(result)}")

    def _check(self, item: QAItem, slot: Slot, facts: ClipFacts) -> None:
        f = self.config.filters
        if problem := schema_problem(item, slot.turns, f.min_question_words):
            record(item, SCHEMA, f.schema_check, problem)
        if found := leaks(item, self.vocab):
            record(item, LEAKAGE, f.leakage, "; ".join(found))
        if problem := label_problem(item, facts, self.vocab):
            record(item, problem[0], f.label_consistency, problem[1])
        if unsupported := unsupported_claims(item, facts, self.claim_words):
            record(item, UNSUPPORTED_CLAIM, f.claims, "; ".join(unsupported))
        if problem := type_problem(item, facts, self.claim_words):
            record(item, WRONG_TYPE, f.type_check, problem)

    def _near_duplicates(self, items: list[QAItem]) -> None:
        if self.embedder is None or len(items) < 2:
            return
        f = self.config.filters
        vectors = self.embedder.encode([" ".join(t.question for t in item.turns) for item in items])
        for i, j in greedy_duplicates(vectors, [item.clip_id for item in items], f.duplicate_threshold,
                                      same_group=True).items():
            record(items[i], DUPLICATE_IN_CLIP, f.duplicates,
                   f"near-duplicate of {items[j].id} (cosine {float(vectors[i] @ vectors[j]):.2f})")


    def _add(self, counts: Counter) -> None:
        for key, n in counts.items():
            self.count(key, n)


def _excerpt(result: LLMResult) -> str:
    raw = result.text or ""
    cut = raw[:RAW_EXCERPT_CHARS] + (f"… ({len(raw)} chars)" if len(raw) > RAW_EXCERPT_CHARS else "")
    return f"{result.error or 'no parsed output'}; raw output: {cut!r}"
