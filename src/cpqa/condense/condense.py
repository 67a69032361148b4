"""The `condense` stage: keep segments whose paralinguistic labels are clear and reliable.

Steps, in order (each configurable in `CondenseConfig`, each drop recorded with its reason):
per segment — length filter, quality gates (SNR, DNSMOS), sentiment mapping and emotion–valence
consistency per window (abstained windows dropped as `emotion_abstained`), occurrence filter (see
`rules`); a segment without a reliable emotion is kept for the other labels it carries reliably
(content, gender, speakers: `without_emotion`, see `analysis`); then over the whole input —
selection scores, per-speaker / per-recording caps, balance of the six non-neutral emotions
(optionally × gender, emotion-reliable segments only), budget in hours.

Why one stage with `needs_fit` rather than a separate `balance` stage: caps, balance, budget, the
speaker baselines and the emotion-change scorer all need the same global view and the same
per-segment analysis, and computing every statistic in `fit()` — which runs over the whole input on
every (re)start — keeps the before/after distributions in stats.json exact after a resume. The
per-segment analysis is cheap and pure, so `process_batch` recomputes it instead of holding
windows in memory.

Output: each kept segment with `windows` reduced to its consistent windows, `Segment.condense`
(`record_parts.Condensation`: the attributed emotion or None, sentiment, what it is reliable for and
kept for, why it holds no reliable emotion, the window counts, the dropped windows with reasons and
the rule) and `Segment.selection` (score, reasons). Each dropped segment is a `Drop(id, reason,
detail)` (excluded.jsonl).

The yield (stats.json counters, see `stats`): before/after distributions, `reliable_<when>/<label>`,
`recordings_<when>/{with,without}_reliable_emotion`, `no_reliable_emotion/<reason>` (input segments
without a reliable emotion, by why), `windows_dropped/<reason>`; each recording that holds no
reliable emotion is logged by id with what was kept of it instead.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator

from ..errors import CPQAError
from ..record_parts import Condensation, CondenseRule, Selection
from ..records import Drop, Segment
from ..stage import Filter
from .analysis import SegmentAnalysis, SegmentSummary, analyse, counts_text, summarise
from .config import CondenseConfig
from .selection import score_all, select
from .stats import distribution_counters, recordings_without_reliable_emotion, reliability_counters

logger = logging.getLogger(__name__)


class CondenseStage(Filter[Segment]):
    """Keep segments with consistent, recurring emotion labels, balance emotions (paper
    §condensation); keep segments without one for the other labels they carry reliably."""

    name = "condense"
    version = "2"
    Config = CondenseConfig
    input_type = Segment
    output_type = Segment
    needs_fit = True
    config: CondenseConfig

    def fit(self, items: Iterator[Segment]) -> None:
        summaries: list[SegmentSummary] = []
        windows: Counter = Counter()
        for order, segment in enumerate(items):
            analysis = analyse(segment, self.config)
            windows.update(v.reason or "kept" for v in analysis.verdicts)
            summaries.append(summarise(segment, analysis, order, self.config))
        candidates = [s for s in summaries if s.drop_reason is None]
        score_all(summaries, candidates, self.config)
        kept, self._dropped = select(candidates, self.config)
        self._kept = {s.id: s for s in kept}
        self._recordings_without_emotion = recordings_without_reliable_emotion(summaries)

        for reason, n in windows.items():
            self.count("windows/kept" if reason == "kept" else f"windows_dropped/{reason}", n)
        for reason, n in Counter(s.no_emotion_reason for s in summaries if s.no_emotion_reason).items():
            self.count(f"no_reliable_emotion/{reason}", n)
        sentiment_map = self.config.sentiment_map
        for key, n in distribution_counters(summaries, "before", lambda s: s.label_emotion, sentiment_map).items():
            self.count(key, n)
        for key, n in distribution_counters(kept, "after", lambda s: s.emotion, sentiment_map).items():
            self.count(key, n)
        for when, group in (("before", summaries), ("after", kept)):
            for key, n in reliability_counters(group, when).items():
                self.count(key, n)
        self._log_recordings_without_emotion(summaries, kept)
        logger.info("condense: %d of %d segments kept (%d windows kept of %d)", len(kept), len(summaries),
                    windows["kept"], sum(windows.values()))

    def _log_recordings_without_emotion(self, summaries: list[SegmentSummary], kept: list[SegmentSummary]) -> None:
        without = self._recordings_without_emotion
        reasons: dict[str, Counter] = defaultdict(Counter)
        kept_for: dict[str, Counter] = defaultdict(Counter)
        n_kept: Counter = Counter()
        for s in summaries:
            if s.recording_id in without:
                reasons[s.recording_id][s.no_emotion_reason] += 1
        for s in kept:
            if s.recording_id in without:
                n_kept[s.recording_id] += 1
                kept_for[s.recording_id].update(s.kept_for)
        for rid in sorted(without):
            logger.info("condense: recording %s holds no reliable emotion (%s); kept %d segments%s", rid,
                        counts_text(reasons[rid]), n_kept[rid], f" for {counts_text(kept_for[rid])}" if n_kept[rid] else "")

    def keep(self, segment: Segment) -> Segment | Drop:
        if segment.id in self._dropped:
            reason, detail = self._dropped[segment.id]
            return Drop(id=segment.id, reason=reason, detail=detail)
        analysis = analyse(segment, self.config)
        if analysis.drop_reason is not None:
            return Drop(id=segment.id, reason=analysis.drop_reason, detail=analysis.drop_detail)
        if segment.id not in self._kept:
            raise CPQAError(f"condense: segment '{segment.id}' was not in the input seen by fit(); "
                            "the upstream records changed during the stage")
        return self._condensed(segment, analysis, self._kept[segment.id])

    def _condensed(self, segment: Segment, analysis: SegmentAnalysis, summary: SegmentSummary) -> Segment:
        c = self.config
        condense = Condensation(
            emotion=summary.emotion,
            sentiment=summary.sentiment,
            reliable_for=list(summary.reliable_for),
            kept_for=list(summary.kept_for),
            **({"no_emotion_reason": analysis.no_emotion_reason, "no_emotion_detail": analysis.no_emotion_detail}
               if analysis.no_emotion_reason else {}),
            recording_has_reliable_emotion=segment.recording_id not in self._recordings_without_emotion,
            qualifying=analysis.occurrence.qualifying,
            window_counts=analysis.occurrence.counts,
            windows_total=len(analysis.verdicts),
            windows_kept=len(analysis.kept),
            dropped_windows=[v.as_dropped() for v in analysis.verdicts if v.reason is not None],
            rule=CondenseRule(x=c.x, y=c.y, ambiguous_min_score=c.ambiguous_min_score, min_windows=c.min_windows,
                              min_window_share=c.min_window_share),
        )
        return segment.model_copy(update={"windows": [v.window for v in analysis.kept], "condense": condense,
                                          "selection": Selection(score=summary.score, reasons=list(summary.reasons))})
