"""`evaluate`: a speech-LLM answers every question of a QA source, an LLM judge rates every
answer, and the scores are written per unit, per item, per type, per emotion and as UAS.

    EVAL/
      predictions.jsonl   one row per (item, turn): the answer, what audio was heard, the judgement
      items.jsonl         one row per item: its score, type, emotion, clip
      results.json        the summary: score, success rate, UAS, per type, per emotion, settings
      predictions.sqlite  answers, keyed by (model + its options + long-clip policy, item, turn, question)
      judgements.sqlite   judge replies, keyed by (judge + rubric + temperature, answer, reference, run)

What the model hears of each clip follows `heard` (the rule `cpqa export` and `cpqa finetune`
follow too): the whole clip when it fits the model's window, else the heard window its evidence lies
in (`split`), the first window (`drop`) or every piece (`chunk`); an item about audio the model would
not hear is left out and counted by reason in results.json.

Answers and judgements are cached apart, so re-judging (another rubric, judge or number of runs)
never asks the speech-LLM again, and a rerun of finished work makes no calls at all. Both are
written after every batch, so a killed evaluation resumes where it stopped. `cache_dir` puts the
caches elsewhere, e.g. shared by several evaluations of one model.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audio.decode import DecodeError, probe
from ..errors import CPQAError
from ..io_atomic import write_json_atomic
from ..llm.cache import RequestCache
from ..manifest import write_jsonl
from ..qa_source import EvalItem, load_items
from ..registry import backend_registry
from ..stage import BackendSpec, ProgressHook
from .answering import Answering, Outcome
from .heard import LONG_AUDIO_POLICIES, LongAudio, Placement, evidence_span, place
from .judge import JudgeSettings, Rating, get_rubric, judge_size_warning
from .judging import Judging
from .metrics import item_results, summarise, unit_score
from .units import Unit

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    out_dir: Path
    summary: dict[str, Any]
    speechllm_queries: int
    """Queries sent to the speech-LLM in this call (0 when every answer was cached)."""
    judge_requests: int
    """Requests sent to the judge in this call."""


def evaluate(qa_source: str | Path, out_dir: str | Path, *, model: str | dict[str, Any] = "cascade",
             judge: str | dict[str, Any] = "llamacpp", rubric: str = "reference", n_judge_runs: int = 1,
             judge_temperature: float = 0.0, long_audio: LongAudio = "split", max_audio_s: float = 30.0,
             clips: str | Path | None = None, cache_dir: str | Path | None = None,
             progress: ProgressHook | None = None) -> EvaluationResult:
    """Evaluate the speech-LLM `model` on `qa_source` (a run, a QA JSONL or a human CSV/JSONL set).

    `model` and `judge` name a registered backend ('speechllm' and 'llm' capabilities) or give
    `{name: ..., **options}`. Everything is validated before any model loads.
    """
    model_spec, judge_spec, settings = _check(model, judge, rubric, n_judge_runs, judge_temperature,
                                              long_audio, max_audio_s)
    items = load_items(qa_source, clips)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir is not None else out_dir
    progress = progress or ProgressHook()
    judge_model = str(getattr(judge_spec.options, "model", judge_spec.name))
    size_warning = judge_size_warning(judge_model)
    if size_warning:
        logger.warning("%s", size_warning)
    if n_judge_runs > 1 and judge_temperature == 0:
        logger.warning("%d judge runs at temperature 0 will mostly repeat one another; "
                       "set a judge temperature to sample independent ratings", n_judge_runs)

    placements, dropped = _placements(items, long_audio, max_audio_s)
    units = [Unit(item, t, placements[item.qa.id]) for item in items if item.qa.id in placements
             for t in range(len(item.qa.turns))]
    model_identity = {"adapter": model_spec.name, "version": backend_registry("speechllm").get(model_spec.name).version,
                      **model_spec.semantic_dict(), "long_audio": long_audio, "max_audio_s": max_audio_s}
    answering = Answering(model_spec, model_identity, max_audio_s, RequestCache(cache / "predictions.sqlite"))
    answers = answering.run(units, progress)
    judging = Judging(judge_spec, settings, RequestCache(cache / "judgements.sqlite"))
    ratings = judging.run(units, answers, progress)

    judge_info = {"backend": judge_spec.name, "model": judge_model, **settings.describe(),
                  "small_judge_warning": size_warning}
    rows = [_row(u, answers[u], ratings.get((u.qa_id, u.turn)), judge_info) for u in units]
    summary = {
        "qa_source": str(Path(qa_source).resolve()), "n_items": len(placements),
        "model": {"name": model_spec.name, "model": answering.model_name, "options": model_spec.semantic_dict()},
        "long_audio": {"policy": long_audio, "max_audio_s": max_audio_s,
                       "windowed_units": sum(r["audio"]["cut"] == "window" for r in rows if r["audio"]),
                       "chunked_units": sum(r["audio"]["cut"] == "chunked" for r in rows if r["audio"]),
                       "dropped_items": dict(sorted(dropped.items()))},
        "judge": judge_info,
        **summarise(rows),
        "calls": {"speechllm_queries": answering.queries, "judge_requests": judging.requests},
    }
    write_jsonl(out_dir / "predictions.jsonl", rows)
    write_jsonl(out_dir / "items.jsonl", item_results(rows))
    write_json_atomic(out_dir / "results.json", summary)
    return EvaluationResult(out_dir, summary, answering.queries, judging.requests)


def _check(model, judge, rubric: str, n_judge_runs: int, judge_temperature: float, long_audio: str,
           max_audio_s: float) -> tuple[BackendSpec, BackendSpec, JudgeSettings]:
    if long_audio not in LONG_AUDIO_POLICIES:
        raise CPQAError(f"long_audio must be one of {', '.join(LONG_AUDIO_POLICIES)}, got '{long_audio}'")
    if max_audio_s <= 0:
        raise CPQAError(f"max_audio_s must be > 0, got {max_audio_s}")
    if n_judge_runs < 1:
        raise CPQAError(f"n_judge_runs must be >= 1, got {n_judge_runs}")
    if judge_temperature < 0:
        raise CPQAError(f"the judge temperature must be >= 0, got {judge_temperature}")
    model_spec = _spec("speechllm", model)
    window = backend_registry("speechllm").get(model_spec.name).window_s
    if window is not None and max_audio_s > window:
        raise CPQAError(f"{model_spec.name} hears at most {window:g} s at once; lower max_audio_s or "
                        "use long_audio='chunk'")
    return model_spec, _spec("llm", judge), JudgeSettings(get_rubric(rubric), judge_temperature, n_judge_runs)


def _placements(items: list[EvalItem], long_audio: LongAudio,
                max_audio_s: float) -> tuple[dict[str, Placement], Counter]:
    """What the model hears of each item's clip, and the items left out (by reason). An item whose
    audio cannot be read stays in: its answer becomes a recorded failure."""
    placements: dict[str, Placement] = {}
    dropped: Counter = Counter()
    for item in items:
        try:
            duration_s = probe(item.audio).duration_s if item.audio else None
        except DecodeError:
            duration_s = None
        if duration_s is None:
            placements[item.qa.id] = Placement(None)
            continue
        placement = place(duration_s, evidence_span(item.qa, item.clip), max_audio_s, long_audio)
        if placement.dropped:
            dropped[placement.dropped] += 1
        else:
            placements[item.qa.id] = placement
    if dropped:
        logger.warning("%d of %d item(s) are about audio past what the model hears at once (%g s) and are not "
                       "asked: %s", sum(dropped.values()), len(items), max_audio_s,
                       ", ".join(f"{reason}: {n}" for reason, n in sorted(dropped.items())))
    if not placements:
        raise CPQAError(f"every item is about audio past the {max_audio_s:g} s the model hears at once "
                        f"({', '.join(sorted(dropped))}); use long_audio='chunk' to give it whole clips in pieces")
    return placements, dropped


def _spec(capability: str, value: str | dict[str, Any]) -> BackendSpec:
    try:
        return BackendSpec.parse(capability, value)
    except ValueError as exc:  # pydantic's ValidationError of the backend's options
        raise CPQAError(f"invalid {capability} options {value!r}: {exc}") from None


def _row(unit: Unit, outcome: Outcome, runs: list[tuple[Rating, str]] | None, judge_info: dict[str, Any]
         ) -> dict[str, Any]:
    """A `predictions.jsonl` row: the Prediction / Judgement record of docs/design.md §2, with context."""
    answer = outcome.answer
    judgement = None
    if runs is not None:
        values = [r.value for r, _ in runs if r.value is not None]
        judgement = {"model": judge_info["model"], "rubric": judge_info["rubric"],
                     "rubric_version": judge_info["rubric_version"], "temperature": judge_info["temperature"],
                     "ratings": values, "score": unit_score(values), "success": len(values) / len(runs),
                     "runs": len(runs), "failures": [r.failure for r, _ in runs if r.failure],
                     "replies": [text for _, text in runs]}
    item = unit.item
    return {"qa_id": unit.qa_id, "turn": unit.turn, "clip_id": item.qa.clip_id, "type": item.qa.type,
            "emotion": item.emotion, "question": unit.question, "reference": unit.reference,
            "model": answer.model, "answer": answer.text if answer.ok else None, "audio": outcome.audio,
            "skipped": not answer.ok, "skip_reason": answer.skip_reason, "error": answer.error, "judge": judgement}
