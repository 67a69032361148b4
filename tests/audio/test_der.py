"""Diarization error rate: hand-computed cases, and agreement with pyannote.metrics where installed."""

import numpy as np
import pytest

from cpqa.audio.der import diarization_error_rate
from cpqa.audio.speakers import Turn, read_rttm

pytestmark = pytest.mark.timeout(60)


def test_perfect_hypothesis_with_other_names_scores_zero():
    ref = [Turn(0, 2, "A"), Turn(2, 5, "B"), Turn(6, 7, "A")]
    hyp = [Turn(0, 2, "x"), Turn(2, 5, "y"), Turn(6, 7, "x")]
    result = diarization_error_rate(ref, hyp)
    assert result.der == 0
    assert result.total_s == pytest.approx(6.0)
    assert result.mapping == {"x": "A", "y": "B"}


def test_missed_false_alarm_and_confusion_by_hand():
    ref = [Turn(0, 4, "A"), Turn(4, 8, "B")]
    # 0-1 missed; 1-4 right; 4-6 called A (confusion); 6-8 right; 8-9 false alarm
    hyp = [Turn(1, 4, "s1"), Turn(4, 6, "s1"), Turn(6, 9, "s2")]
    r = diarization_error_rate(ref, hyp)
    assert (r.missed_s, r.false_alarm_s, r.confusion_s, r.total_s) == pytest.approx((1.0, 1.0, 2.0, 8.0))
    assert r.der == pytest.approx(0.5)


def test_overlap_counts_each_reference_speaker_and_can_be_skipped():
    ref = [Turn(0, 4, "A"), Turn(2, 4, "B")]  # 2-4: both talk
    hyp = [Turn(0, 4, "s")]  # one speaker can cover only one of the two
    r = diarization_error_rate(ref, hyp)
    assert (r.missed_s, r.confusion_s, r.total_s) == pytest.approx((2.0, 0.0, 6.0))
    skipped = diarization_error_rate(ref, hyp, skip_overlap=True)
    assert (skipped.der, skipped.total_s) == (0.0, pytest.approx(2.0))


def test_the_mapping_is_optimal_not_greedy():
    # greedy by largest overlap would map s1→A (3 s) and leave B to s2 (0 s); optimal maps s1→B, s2→A
    ref = [Turn(0, 3, "A"), Turn(3, 5, "B")]
    hyp = [Turn(0, 5, "s1"), Turn(0, 2.5, "s2")]
    r = diarization_error_rate(ref, hyp)
    assert r.mapping == {"s1": "B", "s2": "A"}
    assert r.confusion_s == pytest.approx(0.5)  # 2.5-3: only s1, mapped to B, while A talks
    assert r.false_alarm_s == pytest.approx(2.5)  # 0-2.5: two hypothesis speakers, one reference


def test_collar_forgives_boundaries_on_both_sides():
    ref = [Turn(1, 3, "A")]
    hyp = [Turn(1.2, 3.2, "s")]
    assert diarization_error_rate(ref, hyp).der == pytest.approx(0.2)
    collared = diarization_error_rate(ref, hyp, collar_s=0.25)
    assert collared.der == 0
    assert collared.total_s == pytest.approx(1.5)  # 1.25-2.75


def test_empty_inputs():
    assert diarization_error_rate([], []).der == 0
    assert diarization_error_rate([], [Turn(0, 1, "s")]).der == float("inf")
    assert diarization_error_rate([Turn(0, 1, "A")], []).der == pytest.approx(1.0)


@pytest.mark.parametrize("collar_s,skip_overlap", [(0.0, False), (0.25, False), (0.0, True)])
def test_agrees_with_pyannote_metrics_on_ami(real_data, collar_s, skip_overlap):
    metrics = pytest.importorskip("pyannote.metrics.diarization")
    core = pytest.importorskip("pyannote.core")
    ref = read_rttm(real_data / "ami_meetings" / "meeting_excerpt_60s" / "mixture.rttm")
    rng = np.random.default_rng(0)
    # a plausible wrong hypothesis: shifted boundaries, one speaker pair merged, a spurious turn
    hyp = [Turn(t.start + rng.uniform(-0.3, 0.3), t.end + rng.uniform(-0.3, 0.3),
                {"FEE016": "FEE013"}.get(t.speaker, t.speaker)) for t in ref] + [Turn(58.0, 59.5, "X")]

    def annotation(turns):
        out = core.Annotation()
        for i, t in enumerate(turns):
            out[core.Segment(t.start, t.end), i] = t.speaker
        return out.support()  # one track per speaker: a frame counts a speaker once, as ours does

    theirs = metrics.DiarizationErrorRate(collar=2 * collar_s, skip_overlap=skip_overlap)(
        annotation(ref), annotation(hyp), uem=core.Timeline([core.Segment(0, 61)]), detailed=True)
    ours = diarization_error_rate(ref, hyp, collar_s=collar_s, skip_overlap=skip_overlap)
    assert ours.total_s == pytest.approx(theirs["total"], abs=0.05)
    assert ours.missed_s == pytest.approx(theirs["missed detection"], abs=0.05)
    assert ours.false_alarm_s == pytest.approx(theirs["false alarm"], abs=0.05)
    assert ours.confusion_s == pytest.approx(theirs["confusion"], abs=0.05)
