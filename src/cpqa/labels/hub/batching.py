"""Shared pieces of the hub backends: duration-bucketed batches, device and dtype, label mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from ...emotions import EMOTIONS
from ...stage import Config
from ..protocols import EMOTION2VEC_MAP, AudioWindow

EMOTION_STEMS = {
    "ang": "angry", "mad": "angry", "dis": "disgusted", "fea": "fearful", "fear": "fearful",
    "hap": "happy", "joy": "happy", "exc": "happy", "neu": "neutral", "cal": "neutral",
    "sad": "sad", "sur": "surprised", "oth": "other", "unk": "unknown",
}
"""Label prefixes of common emotion models onto the emotion2vec vocabulary ("ang" → angry,
"calm" → neutral, "exc(ited)" → happy), tried after the exact names of `EMOTION2VEC_MAP`; a
label matching none maps to 'other'."""


def to_emotion2vec(label: str, overrides: dict[str, str] | None = None) -> str:
    key = label.strip().lower()
    if overrides and label in overrides:
        return overrides[label]
    if "/" in key:  # emotion2vec's own '生气/angry'
        key = key.split("/")[-1]
    if key in EMOTIONS:
        return key
    if key in EMOTION2VEC_MAP:  # emotion2vec's '<unk>' → unknown, not 'other'
        return EMOTION2VEC_MAP[key]
    for stem, name in EMOTION_STEMS.items():
        if key.startswith(stem):
            return name
    return "other"


class HubConfig(Config):
    non_semantic: ClassVar[frozenset[str]] = frozenset({"device", "batch_seconds", "fp16"})

    model: str = Field(..., description="Hub id or local folder.")
    device: str = Field("cuda", description="cpu, cuda or cuda:N.")
    fp16: bool = Field(True, description="Half precision on a CUDA device (ignored on CPU).")
    batch_seconds: float = Field(64.0, gt=0, description="Padded audio seconds per forward pass.")


def duration_batches(windows: list[AudioWindow], batch_seconds: float) -> Iterator[list[int]]:
    """Indices of `windows`, sorted by duration and cut into batches whose padded length × size
    stays under `batch_seconds` (a window longer than that is a batch alone)."""
    order = sorted(range(len(windows)), key=lambda i: windows[i].duration)
    batch: list[int] = []
    for i in order:
        longest = windows[i].duration
        if batch and longest * (len(batch) + 1) > batch_seconds:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def torch_device(device: str, fp16: bool):
    """(torch.device, dtype): float16 only on CUDA when asked."""
    import torch

    dev = torch.device(device)
    return dev, (torch.float16 if fp16 and dev.type == "cuda" else torch.float32)

