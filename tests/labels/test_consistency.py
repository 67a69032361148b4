"""Speaker-consistent gender, smoothed emotion, abstention (labels.consistency)."""

import numpy as np
import pytest

from cpqa.labels.consistency import (
    Decision,
    changes_per_speaker,
    decide_emotions,
    pool_genders,
    segment_emotion,
    smooth,
)
from cpqa.record_parts import Label, word_emotion
from cpqa.records import Segment, Window, Word
from cpqa.vocabulary import ABSTAIN_LOW_CONFIDENCE, ABSTAIN_OUT_OF_DISTRIBUTION, NO_CLEAR_EMOTION

DECISION = Decision(emotion_min_confidence=None, gender_min_confidence=0.75, stay=0.8)


def _window(start, probs, ood=False, gender=None, min_confidence=0.4):
    w = Window(start=start, end=start + 2.0)
    w.emotion = Label(label=max(probs, key=probs.get), probs=probs, model="m", out_of_distribution=ood,
                      min_confidence=min_confidence)
    if gender:
        w.gender = Label(label=max(gender, key=gender.get), probs=gender)
    return w


def _segment(windows, speaker="A", words=None, sid="r-000000"):
    return Segment(id=sid, recording_id="r", start=windows[0].start, end=windows[-1].end, speaker=speaker,
                   windows=windows, words=words or [])


def test_one_odd_window_inside_a_run_is_smoothed_away():
    calm = {"neutral": 0.7, "sad": 0.3}
    odd = {"neutral": 0.4, "sad": 0.6}
    seg = _segment([_window(0, calm), _window(2, calm), _window(4, odd), _window(6, calm), _window(8, calm)])
    decide_emotions(seg, DECISION)
    assert [w.emotion.label for w in seg.windows] == ["neutral"] * 5
    # without smoothing the odd window keeps its class
    seg = _segment([_window(0, calm), _window(2, calm), _window(4, odd), _window(6, calm), _window(8, calm)])
    decide_emotions(seg, Decision(None, 0.75, None))
    assert seg.windows[2].emotion.label == "sad"


def test_smoothing_keeps_a_sustained_change():
    a, b = np.array([0.9, 0.1]), np.array([0.1, 0.9])
    out = smooth(np.array([a, a, a, b, b, b]), 0.8)
    assert list(out.argmax(axis=1)) == [0, 0, 0, 1, 1, 1]
    assert smooth(np.array([a]), 0.8).tolist() == [a.tolist()]


def test_low_confidence_and_out_of_distribution_abstain():
    flat = {"neutral": 0.35, "sad": 0.33, "happy": 0.32}
    seg = _segment([_window(0, flat), _window(2, {"neutral": 0.9, "sad": 0.05, "happy": 0.05}, ood=True)])
    decide_emotions(seg, Decision(None, 0.75, None))
    low, far = seg.windows
    assert low.emotion.label is None and low.emotion.abstained and low.emotion.reason == ABSTAIN_LOW_CONFIDENCE
    assert far.emotion.reason == ABSTAIN_OUT_OF_DISTRIBUTION and far.emotion.probs["neutral"] == 0.9
    assert word_emotion(low.emotion) == NO_CLEAR_EMOTION
    # a configured threshold overrides the model's advice
    seg = _segment([_window(0, flat)])
    decide_emotions(seg, Decision(0.3, 0.75, None))
    assert seg.windows[0].emotion.label == "neutral" and seg.windows[0].emotion.min_confidence == 0.3


def test_segment_abstains_when_most_of_it_is_out_of_distribution():
    sure = {"neutral": 0.9, "sad": 0.1}
    seg = _segment([_window(0, sure, ood=True), _window(2, sure, ood=True), _window(4, sure)])
    decide_emotions(seg, DECISION)
    emotion = segment_emotion(seg, DECISION)
    assert emotion.abstained and emotion.reason == ABSTAIN_OUT_OF_DISTRIBUTION
    seg = _segment([_window(0, sure), _window(2, sure)])
    decide_emotions(seg, DECISION)
    assert segment_emotion(seg, DECISION).label == "neutral"


def test_gender_is_pooled_per_speaker_and_abstains_when_unclear():
    f, m = {"female": 0.9, "male": 0.1}, {"female": 0.3, "male": 0.7}
    neutral = {"neutral": 0.9, "sad": 0.1}
    a1 = _segment([_window(t, neutral, gender=f) for t in (0, 2, 4, 6)], "A", sid="r-1")
    a2 = _segment([_window(10, neutral, gender=m)], "A", sid="r-2")  # one odd window of speaker A
    b = _segment([_window(20, neutral, gender={"female": 0.55, "male": 0.45})], "B", sid="r-3")
    pooled = pool_genders([a1, a2, b], "g", DECISION)
    assert pooled["A"].label == "female" and pooled["A"].extra("windows") == 5
    assert pooled["A"].score == pytest.approx((0.9 * 8 + 0.3 * 2) / 10, abs=1e-4)
    assert pooled["B"].label is None and pooled["B"].reason == ABSTAIN_LOW_CONFIDENCE


def test_changes_are_counted_within_each_speaker():
    words = [Word(word="a", start=0, end=1, speaker="A", gender="female", emotion="neutral"),
             Word(word="b", start=1, end=2, speaker="B", gender="male", emotion="sad"),
             Word(word="c", start=2, end=3, speaker="A", gender="female", emotion="happy"),
             Word(word="d", start=3, end=4, speaker="A", gender="male", emotion="happy")]
    seg = Segment(id="r-1", recording_id="r", start=0, end=4, words=words)
    assert changes_per_speaker([seg], "gender") == (1, pytest.approx(4 / 60))
    assert changes_per_speaker([seg], "emotion")[0] == 1
