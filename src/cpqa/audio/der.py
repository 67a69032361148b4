"""Diarization error rate, frame by frame (10 ms by default).

Each frame counts the reference speakers `r` and the hypothesis speakers `h` active in it:
missed speech adds max(0, r - h), false alarm max(0, h - r), confusion min(r, h) minus the speakers
the optimal one-to-one speaker mapping matches there. The mapping maximises the time both sides
share (Hungarian algorithm). DER = (missed + false alarm + confusion) / total reference speech.

`collar_s` follows md-eval: frames within collar_s of a reference turn's start or end (on either
side) are not scored. pyannote.metrics calls the whole width the collar, so md-eval's 0.25 s is
its 0.5. `skip_overlap` leaves out frames where two or more reference speakers talk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import require
from .speakers import Turn


@dataclass(frozen=True)
class DERResult:
    missed_s: float
    false_alarm_s: float
    confusion_s: float
    total_s: float
    """Reference speech scored (a frame with two reference speakers counts twice)."""
    mapping: dict[str, str]
    """Hypothesis speaker → the reference speaker it was matched with."""

    @property
    def der(self) -> float:
        errors = self.missed_s + self.false_alarm_s + self.confusion_s
        if self.total_s == 0:
            return 0.0 if errors == 0 else float("inf")
        return errors / self.total_s


def activity(turns: list[Turn], n_frames: int, frame_s: float) -> tuple[list[str], np.ndarray]:
    """Speakers (sorted) and an (n_frames, speakers) boolean matrix: frame i, whose centre is at
    (i + 0.5) * frame_s, is active for a speaker when one of their turns covers that centre."""
    speakers = sorted({t.speaker for t in turns})
    column = {s: i for i, s in enumerate(speakers)}
    active = np.zeros((n_frames, len(speakers)), dtype=bool)
    for t in turns:
        first, last = _frame_span(t.start, t.end, frame_s, n_frames)
        active[first:last, column[t.speaker]] = True
    return speakers, active


def _frame_span(start: float, end: float, frame_s: float, n_frames: int) -> tuple[int, int]:
    """Frames whose centres lie in [start, end)."""
    first = int(np.ceil(start / frame_s - 0.5))
    last = int(np.ceil(end / frame_s - 0.5))
    return max(0, first), min(n_frames, max(0, last))


def diarization_error_rate(reference: list[Turn], hypothesis: list[Turn], *, collar_s: float = 0.0,
                           skip_overlap: bool = False, frame_s: float = 0.01) -> DERResult:
    linear_sum_assignment = require("scipy.optimize", "labels", "scipy").linear_sum_assignment

    end_s = max((t.end for t in [*reference, *hypothesis]), default=0.0)
    n_frames = int(np.ceil(end_s / frame_s)) + 1
    ref_names, ref = activity(reference, n_frames, frame_s)
    hyp_names, hyp = activity(hypothesis, n_frames, frame_s)

    scored = np.ones(n_frames, dtype=bool)
    if collar_s > 0:
        for t in reference:
            for boundary in (t.start, t.end):
                first, last = _frame_span(boundary - collar_s, boundary + collar_s, frame_s, n_frames)
                scored[first:last] = False
    if skip_overlap:
        scored &= ref.sum(axis=1) < 2
    ref, hyp = ref[scored].astype(np.int64), hyp[scored].astype(np.int64)

    shared = ref.T @ hyp  # frames each (reference, hypothesis) pair is active together
    rows, cols = linear_sum_assignment(-shared) if shared.size else ([], [])
    matched = np.zeros(len(ref), dtype=np.int64)
    for r, h in zip(rows, cols):
        matched += ref[:, r] & hyp[:, h]

    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    return DERResult(
        missed_s=float(np.maximum(0, n_ref - n_hyp).sum() * frame_s),
        false_alarm_s=float(np.maximum(0, n_hyp - n_ref).sum() * frame_s),
        confusion_s=float((np.minimum(n_ref, n_hyp) - matched).sum() * frame_s),
        total_s=float(n_ref.sum() * frame_s),
        mapping={hyp_names[h]: ref_names[r] for r, h in zip(rows, cols) if shared[r, h] > 0},
    )
