"""AudioSet clip classifiers as event taggers: their class scores on sliding windows, mapped onto
cpqa event labels (`AUDIOSET_EVENTS`), are the frames `cpqa.labels.event_frames` turns into events."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError
from .event_frames import EventsConfig, FrameScores, FrameTagger

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

