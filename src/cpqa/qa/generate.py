"""The `qa` stage: an LLM writes contextual paralinguistic QA for each clip, and per-clip filters
judge each item.

Per clip: its labels (`facts`) decide which types it can have: a clip whose words carry no
reliable emotion ("no clear emotion" throughout) gets no DE/CE/EMP items, one with a speaker of
unknown gender no DG/CG, one without speaker turns no DS/CS, one where nobody sounds other than
neutral no EMP (v3); each left-out slot is counted under
`qa/types_unavailable/<type>` and `qa/types_unavailable_because/<why>` (see `facts.unavailable`).
The planned slots (`counts` per type, then `multi_turn` items of `follow_up_turns` turns, their
types rotating over the allowed `multi_turn_types`) become one request whose JSON schema fixes
every slot's type and turn count; with `direct_items: template`, cpqa writes the direct slots
itself from the QA types' phrasings (`cpqa.qa.direct`) and the request holds the others. Items
failing a check of their own go back to the generator in the same conversation, up to
`max_attempts` per slot, every attempt kept in `generator.attempts` (see `cpqa.qa.regenerate`). The batch's requests of each attempt go to the
backend at once, through the run's request cache (`RUN/cache/llm.sqlite`); follow-up requests are
built from the cached replies only, so a rerun of finished generation makes no LLM call. Item ids
are `f"{clip_id}-qa{n:03d}"`, n the slot.

A clip whose generation failed becomes a Skip with the LLM's skip reason (`timeout`,
`invalid_output`, `http_500`, ...) or `unparseable`, its raw output in the detail, unless cpqa
phrased some of its direct items: those stand, and the failure is counted under
`qa/generation_failed/<reason>`; a clip without
words is a Drop as `no_transcript`, one whose labels allow no configured type as `no_qa_types`
(its detail says why for each type). Items carry `generator{model, backend, prompt_version,
raw_output, temperature, seed}`, the clip's audio in
`metadata{audio, recording_id, start, end}` (so the set stands on its own) and the verdicts of the
filters (see `cpqa.qa.filters`, `cpqa.qa.claims`, `cpqa.qa.type_check`): schema, leakage, label
consistency, unsupported claims, type check, then (on the final attempt's items) near-duplicates within the clip and
text-only answerability for the items still passing, and the speech-LLM check of their direct
items where the recipe names one (`cpqa.qa.speech_check`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable

from pydantic import ValidationError

from ..llm import LLMBackend, LLMConfig, LLMRequest, LLMResult
from ..ordering import stable_hash
from ..reasons import (
    DUPLICATE_IN_CLIP,
    LEAKAGE,
    NO_QA_TYPES,
    NO_TRANSCRIPT,
    SCHEMA,
    UNPARSEABLE,
    UNSUPPORTED_CLAIM,
    WRONG_TYPE,
)
from ..record_parts import Generator
from ..records import Clip, Drop, QAItem, Skip, Turn
from ..registry import backend_registry
from ..stage import BackendSpec, Stage
from .answerability import TextOnlyCheck
from .claims import load_claim_words, unsupported_claims
from .config import QAConfig
from .direct import can_phrase, phrased_item
from .embeddings import greedy_duplicates, load_embedder
from .facts import ClipFacts, clip_facts
from .filters import (
    cut_leaking_evidence,
    label_problem,
    leaks,
    load_vocabulary,
    new_filters,
    outcome,
    record,
    schema_problem,
    strip_copied_tags,
    verdict_counts,
)
from .prompts import generation_request, reply_budget, slot_instructions
from .regenerate import ClipPlan, attempt_counts
from .speech_check import SpeechCheck
from .targets import slot_targets
from .type_check import repeated_instruction, type_problem
from .type_judge import TypeJudge
from .types import QA_TYPES, Slot, data_digest, load_qa_types

logger = logging.getLogger(__name__)

RAW_EXCERPT_CHARS = 600


class QAStage(Stage[Clip, QAItem]):
    """Generate contextual paralinguistic QA per clip with an LLM, and filter it."""

    name = "qa"
    version = "8"  # 2: quote attribution, sampled retries, abstention words as leakage; 3: a repeat ends a slot;
    # 4: leaking evidence cut; 5: direct text-only answers rated by rule, copied tags stripped from evidence;
    # 6: speech an answer reports must be said in the clip, by the speaker it names; 7: EMP's affect needs 1 s;
    # 8: content said only around the clip is an unsupported claim.
    # Edits to the prompt and word-list files rerun the stage by themselves (`data_digest`).
    Config = QAConfig
    input_type = Clip
    output_type = QAItem
    config: QAConfig

    @classmethod
    def data_digest(cls, config: QAConfig) -> str:
        return data_digest(config.prompt_version, config.filters.vocabulary_version)

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
        self.text_only = TextOnlyCheck(self.answerer, self.judge, self.qa_types, text_only.action,
                                       text_only.threshold, text_only.max_tokens, self.claim_words)
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
            start = stable_hash(clip.id, digest_size=4)
            slots.extend(Slot(rotation[(start + k) % len(rotation)], self.config.follow_up_turns)
                         for k in range(self.config.multi_turn))
        return slots

    def process_batch(self, items: list[Clip]) -> Iterable[QAItem | Drop | Skip]:
        c = self.config
        plans: list[ClipPlan] = []
        out: dict[str, list[QAItem] | Drop | Skip] = {}
        for clip in items:
            facts = clip_facts(clip, self.vocab.gender)
            unavailable = self.unavailable(facts)
            slots = self.slots(clip, unavailable)
            if not facts.transcript.strip():
                out[clip.id] = Drop(id=clip.id, reason=NO_TRANSCRIPT, detail="the clip has no transcribed words")
            elif not slots:
                why = ", ".join(f"{code}: {reason}" for code, reason in unavailable.items())
                out[clip.id] = Drop(id=clip.id, reason=NO_QA_TYPES,
                                    detail=f"the clip's labels allow none of the configured QA types ({why})")
            else:
                plans.append(self._plan(clip, facts, slots))
        for attempt in range(1, c.max_attempts + 1):
            active = [plan for plan in plans if plan.pending]
            if not active:
                break
            results = self.llm.generate_many_sync([plan.request for plan in active])
            fresh = {plan.clip.id: self._attempt(plan, result, attempt, out) for plan, result in zip(active, results)}
            self._add(self.type_judge.run([(item, plan.facts, plan.instructions[n]) for plan in active
                                           for n, item in fresh[plan.clip.id].items()]))
            for plan, result in zip(active, results):
                for n, item in fresh[plan.clip.id].items():
                    plan.take(n, item, attempt)
                if fresh[plan.clip.id] and attempt < c.max_attempts:
                    plan.next_attempt(result.text, self.qa_types, c.max_tokens_per_turn,
                                      c.temperature if c.retry_temperature is None else c.retry_temperature)
                else:
                    plan.stop()
        checked: list[tuple[QAItem, ClipFacts]] = []
        for plan in plans:
            if plan.clip.id not in out:
                out[plan.clip.id] = [plan.items[n] for n in sorted(plan.items)]
                checked.extend((item, plan.facts) for item in out[plan.clip.id])
        self._add(attempt_counts(item for item, _ in checked))
        self._near_duplicates([item for item, _ in checked if item.filters.passed])
        if c.filters.text_only.action != "off":
            self._add(self.text_only.run([(item, facts) for item, facts in checked if item.filters.passed
                                          and self.qa_types.types[item.type].needs_audio_cues]))
        clips = {clip.id: clip for clip in items}
        self._add(self.speech_check.run([(item, clips[item.clip_id]) for item, _ in checked if item.filters.passed]))
        self._add(verdict_counts(item for item, _ in checked))
        records: list[QAItem | Drop | Skip] = []
        for clip in items:
            result = out[clip.id]
            records.extend([outcome(item) for item in result] if isinstance(result, list) else [result])
        self._count_llm()
        return records

    def _plan(self, clip: Clip, facts: ClipFacts, slots: list[Slot]) -> ClipPlan:
        """The clip's slots: direct ones cpqa phrases itself where the recipe says so (checked, as
        attempt 1), the others in one request to the generator."""
        c = self.config
        targets = slot_targets(facts, slots, self.qa_types, self.claim_words.ordinals)
        instructions = slot_instructions(facts, slots, targets, self.qa_types)
        phrased = [n for n, (slot, target) in enumerate(zip(slots, targets))
                   if c.direct_items == "template" and can_phrase(self.qa_types.types[slot.code], slot, target)]
        asked = [n for n in range(len(slots)) if n not in phrased]
        request = generation_request(
            facts, clip.context, [slots[n] for n in asked], [instructions[n] for n in asked], self.qa_types,
            temperature=c.temperature, seed=c.seed,
            max_tokens=reply_budget([slots[n] for n in asked], c.max_tokens_per_turn)) if asked else None
        plan = ClipPlan(clip, facts, slots, instructions, request, pending=asked)
        for n in phrased:
            item = phrased_item(f"{clip.id}-qa{n:03d}", clip, facts, self.qa_types.types[slots[n].code], targets[n],
                                self.vocab.numbers, c.prompt_version)
            self._check(item, slots[n], facts, instructions[n])
            plan.take(n, item, 1)
        return plan

    def _attempt(self, plan: ClipPlan, result: LLMResult, attempt: int,
                 out: dict[str, list[QAItem] | Drop | Skip]) -> dict[int, QAItem]:
        """One attempt's items for the plan's pending slots, checked by the rules (none when it failed)."""
        parsed = self._parse(plan.clip, {n: plan.slots[n] for n in plan.pending}, result, plan.request)
        if isinstance(parsed, Skip):
            logger.warning("clip %s: generation attempt %d failed (%s)", plan.clip.id, attempt, parsed.reason)
            if attempt == 1 and not plan.items:
                out[plan.clip.id] = parsed
            elif attempt == 1:  # the phrased direct items stand; the generator's slots have no item
                self.count(f"qa/generation_failed/{parsed.reason}")
            plan.failed_request(attempt, parsed.reason, parsed.detail)
            return {}
        for n, item in parsed.items():
            self._check(item, plan.slots[n], plan.facts, plan.instructions[n])
        return parsed

    def _parse(self, clip: Clip, slots: dict[int, Slot], result: LLMResult,
               request: LLMRequest) -> dict[int, QAItem] | Skip:
        """Slot number → item, for the requested `slots` in order."""
        if result.skipped:
            return Skip(id=clip.id, reason=result.skip_reason or UNPARSEABLE, detail=_excerpt(result))
        generator = {"model": result.model or self.llm.model_name, "backend": self.config.llm.name,
                     "prompt_version": self.config.prompt_version, "raw_output": result.text,
                     "temperature": request.temperature, "seed": request.seed}
        try:
            entries = result.parsed["items"]
            return {n: QAItem(id=f"{clip.id}-qa{n:03d}", clip_id=clip.id, type=entry["type"],
                              turns=[Turn(question=t["question"].strip(), answer=t["answer"].strip())
                                     for t in entry["turns"]],
                              evidence=(entry.get("evidence") or "").strip() or None,
                              generator=Generator(**generator), filters=new_filters(),
                              metadata={"audio": clip.audio, "recording_id": clip.recording_id,
                                        "start": clip.start, "end": clip.end})
                    for n, entry in zip(slots, entries)}
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            return Skip(id=clip.id, reason=UNPARSEABLE, detail=f"{type(exc).__name__}: {exc}; {_excerpt(result)}")

    def _check(self, item: QAItem, slot: Slot, facts: ClipFacts, instruction: str) -> None:
        f = self.config.filters
        if problem := schema_problem(item, slot.turns, f.min_question_words):
            record(item, SCHEMA, f.schema_check, problem)
        if found := leaks(item, self.vocab):
            record(item, LEAKAGE, f.leakage, "; ".join(found))
        item.evidence = strip_copied_tags(item.evidence)
        if f.leakage != "off":
            cut_leaking_evidence(item, self.vocab)
        if problem := label_problem(item, facts, self.vocab):
            record(item, problem[0], f.label_consistency, problem[1])
        if unsupported := unsupported_claims(item, facts, self.claim_words):
            record(item, UNSUPPORTED_CLAIM, f.claims, "; ".join(unsupported))
        if problem := type_problem(item, facts, self.claim_words) or repeated_instruction(
                item, instruction, self.claim_words):
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
