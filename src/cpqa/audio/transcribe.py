"""Transcription: each Segment gets its text and word times (seconds from the recording start).

Language: the stage's `language` if set, else the segment's own (from a manifest), else detected
once per recording and reused for all its segments. Detection looks at the first 30 s of speech
within the recording's first `LANGUAGE_PROBE_S` seconds, which depends on the recording alone, so
a resumed run (whose batches differ) detects exactly what an uninterrupted one did.

A segment that already has text (a manifest's transcript) keeps it, unchanged: a human transcript
beats ASR, and forced alignment would need a model we do not ship. Its word times are estimated
by sharing the segment's duration among its words in proportion to their length in characters,
and marked `metadata["word_times"] = "estimated"` so later stages can tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from ..reasons import EMPTY_SEGMENT, NO_WORDS
from ..records import Drop, Segment, Skip, Word
from ..stage import BackendSpec, Stage, StageConfig, backend_field
from . import asr  # noqa: F401  (registers the faster-whisper backend)
from .io import read_range

LANGUAGE_PROBE_S = 120.0
"""How much of a recording's start language detection searches for speech."""


def to_recording_time(words: list[Word], start: float, end: float) -> list[Word]:
    """Shift word times from segment time to recording time, clipped to [start, end], each word
    starting no earlier than the previous one ended."""
    out = []
    floor = start
    for w in words:
        w_start = min(max(start + w.start, floor), end)
        w_end = min(max(start + w.end, w_start), end)
        out.append(w.model_copy(update={"start": round(w_start, 3), "end": round(w_end, 3)}))
        floor = w_end
    return out


def estimate_word_times(text: str, start: float, end: float) -> list[Word]:
    """Words of `text` sharing [start, end] in proportion to their length in characters."""
    tokens = text.split()
    total = sum(len(t) for t in tokens)
    words = []
    done = 0
    for token in tokens:
        w_start = start + (end - start) * done / total
        done += len(token)
        words.append(Word(word=token, start=round(w_start, 3), end=round(start + (end - start) * done / total, 3)))
    return words


class TranscribeConfig(StageConfig):
    batch_size: int = Field(8, ge=1, description="Segments per process_batch call (and per durable write).")
    backend: BackendSpec = Field({"name": "faster-whisper"}, description="The ASR backend and its options.")
    language: str | None = Field(None, description="Language code for every segment; None: the segment's "
                                                   "own, else detected once per recording.")

    _backend = backend_field("asr")


class TranscribeStage(Stage[Segment, Segment]):
    """Transcribe segments with word times, or time the words of a transcript the manifest gives."""

    name = "transcribe"
    Config = TranscribeConfig
    input_type = Segment
    output_type = Segment

    def setup(self) -> None:
        self.asr = self.config.backend.build()
        self._languages: dict[str, tuple[str, float]] = {}

    def process_batch(self, items: list[Segment]) -> Iterator[Segment | Drop | Skip]:
        for segment in items:
            yield self._transcribe(segment)

    def _transcribe(self, segment: Segment) -> Segment | Drop | Skip:
        language, language_info = self._language(segment)
        metadata: dict[str, Any] = {**segment.metadata, "language_detection": language_info}
        if segment.text.strip():
            self.count("given_text")
            words = estimate_word_times(segment.text, segment.start, segment.end)
            return segment.model_copy(update={"language": language, "words": words,
                                              "metadata": {**metadata, "word_times": "estimated"}})
        audio = read_range(self.context.recording(segment.recording_id).audio, segment.start, segment.end)
        if audio.size == 0:
            return Skip(id=segment.id, reason=EMPTY_SEGMENT, detail=f"no samples in {segment.start}-{segment.end} s")
        result = self.asr.transcribe(audio, language=language)
        if not result.words:
            return Drop(id=segment.id, reason=NO_WORDS,
                        detail=f"{self.asr.model_name} heard no words in {segment.duration:.2f} s")
        self.count("transcribed")
        self.count("words", len(result.words))
        metadata["asr"] = {"backend": self.config.backend.name, "model": self.asr.model_name}
        return segment.model_copy(update={
            "text": result.text,
            "language": language,
            "words": to_recording_time(result.words, segment.start, segment.end),
            "metadata": {**metadata, "word_times": "asr"},
        })

    def _language(self, segment: Segment) -> tuple[str, dict[str, Any]]:
        """The segment's language and where it came from."""
        if self.config.language:
            return self.config.language, {"source": "config"}
        if segment.language:
            return segment.language, {"source": "given"}
        rid = segment.recording_id
        if rid not in self._languages:
            audio = read_range(self.context.recording(rid).audio, 0.0, LANGUAGE_PROBE_S)
            self._languages[rid] = self.asr.detect_language(audio)
            self.count("language_detections")
        language, prob = self._languages[rid]
        return language, {"source": "detected", "prob": round(prob, 4), "model": self.asr.model_name}
