"""The pure parts of condensation: rules, selection, scorers, statistics."""

import random

import pytest
from condense_synth import ABSTAINED, segment, skewed_emotion, window_specs

from cpqa.condense.analysis import analyse, summarise
from cpqa.condense.config import CondenseConfig
from cpqa.condense.rules import (
    LOW_CONFIDENCE_AMBIGUOUS,
    NO_VALENCE,
    UNMAPPED_EMOTION,
    VALENCE_ABOVE_Y,
    VALENCE_BELOW_X,
    VALENCE_OUTSIDE_NEUTRAL_BAND,
    ConsistencyRule,
    attribute,
)
from cpqa.condense.selection import round_robin, score_all, select
from cpqa.condense.stats import before_after, distribution_counters, entropy_bits


@pytest.mark.parametrize("label,score,valence,reason", [
    ("happy", 0.9, 0.5, None), ("happy", 0.9, 0.49, VALENCE_BELOW_X),
    ("sad", 0.9, 0.4, None), ("angry", 0.9, 0.41, VALENCE_ABOVE_Y),
    ("neutral", 0.9, 0.45, None), ("neutral", 0.9, 0.5, VALENCE_OUTSIDE_NEUTRAL_BAND),
    ("neutral", 0.9, 0.4, VALENCE_OUTSIDE_NEUTRAL_BAND),
    ("surprised", 0.5, None, None), ("surprised", 0.49, 0.9, LOW_CONFIDENCE_AMBIGUOUS),
    ("other", 0.9, 0.5, UNMAPPED_EMOTION), ("unknown", 0.9, 0.5, UNMAPPED_EMOTION), ("happy", 0.9, None, NO_VALENCE),
])
def test_consistency_rule(label, score, valence, reason):
    assert ConsistencyRule(0.5, 0.4, 0.5).drop_reason(label, score, valence) == reason


def test_neutral_band_must_be_open():
    with pytest.raises(ValueError, match="y < x"):
        ConsistencyRule(0.4, 0.4)


def test_occurrence_needs_k_windows_or_share_r():
    kept = [("happy", 0.9), ("sad", 0.6), ("sad", 0.7)]
    assert attribute(kept, 10, 2, 0.5).emotion == "sad"
    assert attribute(kept, 10, 3, 0.5).emotion is None
    assert attribute(kept, 4, 3, 0.5).emotion == "sad"  # 2 of 4 windows is a 50 % share
    tie = attribute([("happy", 0.9), ("sad", 0.6)], 2, 1, 1.0)
    assert tie.emotion == "happy" and tie.qualifying == {"happy": 1, "sad": 1}


def test_analysis_drops_with_reasons():
    paper = CondenseConfig(min_snr_db=10, without_emotion={"keep_for": []})
    short = segment("r", 0, 0.0, [("happy", 0.8)], end=0.5)
    noisy = segment("r", 1, 0.0, [("happy", 0.8)], snr_db=3.0)
    inconsistent = segment("r", 2, 0.0, [("happy", 0.1), ("sad", 0.9)])
    scattered = segment("r", 3, 0.0, [("happy", 0.8), ("sad", 0.1), ("angry", 0.2), ("neutral", 0.45), ("other", 0.5)])
    abstained = segment("r", 4, 0.0, [(ABSTAINED, 0.3), (ABSTAINED, 0.5)])
    good = segment("r", 5, 0.0, [("happy", 0.8), ("happy", 0.9), ("sad", 0.9)])
    segments = (short, noisy, inconsistent, scattered, abstained, good)
    reasons = [analyse(s, paper).drop_reason for s in segments]
    assert reasons == ["too_short", "low_snr", "no_consistent_window", "no_dominant_emotion", "all_windows_abstained", None]
    analysis = analyse(good, paper)
    assert analysis.occurrence.emotion == "happy" and analysis.kept_for == ["emotion"]
    assert analysis.reliable_for == ["content", "emotion", "gender", "speakers"]
    assert [v.reason for v in analysis.verdicts] == [None, None, VALENCE_ABOVE_Y]
    # By default a segment without a reliable emotion is kept for what it carries reliably; gates still drop.
    default = CondenseConfig(min_snr_db=10)
    analyses = [analyse(s, default) for s in segments]
    assert [a.drop_reason for a in analyses] == ["too_short", "low_snr", None, None, None, None]
    for a, why in zip(analyses[2:5], ("no_consistent_window", "no_dominant_emotion", "all_windows_abstained")):
        assert a.no_emotion_reason == why and a.occurrence.emotion is None
        assert a.reliable_for == a.kept_for == ["content", "gender", "speakers"]
    assert "nothing else to keep it for" in analyse(inconsistent, paper).drop_detail


def _summaries(n: int, seed: int = 0, config: CondenseConfig | None = None):
    config = config or CondenseConfig()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        truth = skewed_emotion(rng)
        seg = segment(f"rec{i % 5}", i, float(i * 10), window_specs(rng, truth, rng.randint(1, 5), agree=0.9, noise=0.1),
                      speaker=f"spk{i % 3}", gender=("female", "male")[i % 2])
        out.append(summarise(seg, analyse(seg, config), i, config))
    return out


def test_balance_is_uniform_deterministic_and_independent_of_input_order():
    config = CondenseConfig()
    candidates = [s for s in _summaries(400) if s.drop_reason is None]
    kept, dropped = select(candidates, config)
    counts = {}
    for s in kept:
        counts[s.emotion] = counts.get(s.emotion, 0) + 1
    without = [s for s in candidates if s.emotion is None]  # kept for content etc., outside the balance
    assert without and counts.pop(None) == len(without) and all(s.kept_for != ("emotion",) for s in without)
    assert len(set(counts.values())) == 1 and len(counts) == 7  # six emotions + neutral as a class
    assert all(reason == "balance" for reason, _ in dropped.values())
    assert len(kept) + len(dropped) == len(candidates)
    shuffled = candidates[:]
    random.Random(1).shuffle(shuffled)
    assert {s.id for s in select(shuffled, config)[0]} == {s.id for s in kept}
    reseeded = CondenseConfig(balance={"seed": 7})
    assert {s.id for s in select(candidates, reseeded)[0]} != {s.id for s in kept}


def test_balance_target_size_by_gender_and_neutral_policies():
    candidates = [s for s in _summaries(400) if s.drop_reason is None]
    kept, _ = select(candidates, CondenseConfig(balance={"target_size": 40, "by_gender": True, "neutral": "drop"}))
    kept = [s for s in kept if s.emotion is not None]
    assert len(kept) == 40 and not any(s.emotion == "neutral" for s in kept)
    kept_per_group, available = {}, {}
    for s in kept:
        kept_per_group[(s.emotion, s.gender)] = kept_per_group.get((s.emotion, s.gender), 0) + 1
    for s in candidates:
        if s.emotion not in ("neutral", None):
            available[(s.emotion, s.gender)] = available.get((s.emotion, s.gender), 0) + 1
    top = max(kept_per_group.values())
    for group, n in available.items():  # max-min fair: a group below the top kept everything it had
        assert kept_per_group.get(group, 0) >= top - 1 or kept_per_group.get(group, 0) == n
    n_neutral = sum(s.emotion == "neutral" for s in candidates)
    kept, _ = select(candidates, CondenseConfig(balance={"neutral": "keep"}))
    assert sum(s.emotion == "neutral" for s in kept) == n_neutral


def test_an_emotion_added_to_the_sentiment_map_is_balanced_too():
    config = CondenseConfig(sentiment_map={"happy": "positive", "neutral": "neutral", "other": "ambiguous"},
                            ambiguous_min_score=0.0, without_emotion={"keep_for": []})
    candidates = [s for s in _summaries(300, config=config) if s.drop_reason is None]
    assert {s.emotion for s in candidates} == {"happy", "neutral", "other"}
    kept, dropped = select(candidates, config)
    assert len(kept) + len(dropped) == len(candidates)
    assert {s.emotion for s in kept} == {"happy", "neutral", "other"}


def test_round_robin_prefix_is_max_min_fair():
    candidates = [s for s in _summaries(200) if s.drop_reason is None]
    order = round_robin(candidates, by_gender=False)
    prefix = order[:21]
    counts = {}
    for s in prefix:
        counts[s.emotion] = counts.get(s.emotion, 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 1


def test_caps_and_budget_keep_the_best_ranked():
    config = CondenseConfig(max_per_speaker=3, balance={"enabled": False}, scorers=[{"name": "confidence"}])
    summaries = _summaries(120, config=config)
    candidates = [s for s in summaries if s.drop_reason is None]
    score_all(summaries, candidates, config)
    kept, dropped = select(candidates, config)
    per_speaker = {}
    for s in kept:
        per_speaker[s.speaker] = per_speaker.get(s.speaker, 0) + 1
    assert max(per_speaker.values()) == 3
    worst_kept = {sp: min(s.score for s in kept if s.speaker == sp) for sp in per_speaker}
    for sid, (reason, _) in dropped.items():
        s = next(c for c in candidates if c.id == sid)
        assert reason == "speaker_cap" and s.score <= worst_kept[s.speaker]
    budget = CondenseConfig(budget_hours=20 / 3600, balance={"enabled": False})
    kept, dropped = select(candidates, budget)
    assert sum(s.duration for s in kept) <= 20 and {r for r, _ in dropped.values()} == {"budget"}


def test_scorers_give_reasons():
    segs = [
        segment("r", 0, 0.0, [("neutral", 0.45)] * 2, pitch_mean_hz=150.0),
        segment("r", 1, 5.0, [("happy", 0.8, 0.9)] * 2, pitch_mean_hz=152.0, text_sentiment=-0.8),
        segment("r", 2, 10.0, [("happy", 0.8, 0.5)] * 2, pitch_mean_hz=148.0, text_sentiment=0.9),
        segment("r", 3, 15.0, [("sad", 0.2, 0.9, ["sad", "sad", "angry"])] * 2, pitch_mean_hz=240.0),
    ]
    config = CondenseConfig(scorers=[{"name": n} for n in ("confidence", "prosody_deviation", "voice_text_mismatch", "emotion_change")])
    summaries = [summarise(s, analyse(s, config), i, config) for i, s in enumerate(segs)]
    score_all(summaries, summaries, config)
    reasons = {s.id: " | ".join(s.reasons) for s in summaries}
    assert "voice_text_mismatch: voice positive (happy), text -0.80" in reasons["r-000001"]
    assert "voice_text_mismatch" not in reasons["r-000002"]
    assert "emotion_change: emotion change neutral → happy" in reasons["r-000001"]
    assert "emotion_change" not in reasons["r-000002"]
    assert "pitch_mean_hz +1.5 sd" in reasons["r-000003"]
    assert "agreement 0.67" in reasons["r-000003"]
    assert summaries[1].score > summaries[2].score


def test_entropy_and_before_after_table():
    assert entropy_bits({"a": 1, "b": 1}) == pytest.approx(1.0)
    assert entropy_bits({"a": 5}) == 0.0 and entropy_bits({}) == 0.0
    summaries = _summaries(50)
    counters = distribution_counters(summaries, "before", lambda s: s.label_emotion, CondenseConfig().sentiment_map)
    counters.update(distribution_counters(summaries[:10], "after", lambda s: s.emotion, CondenseConfig().sentiment_map))
    table = before_after({**counters, "windows_dropped/no_valence": 3})
    assert set(table) == {"emotion", "sentiment", "gender", "duration", "totals"}
    assert table["totals"]["speakers"][0] == 15 and "entropy_bits/emotion" in table["totals"]
    assert sum(b for b, _ in table["emotion"].values()) == 50 and sum(a for _, a in table["emotion"].values()) == 10


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="y < x"):
        CondenseConfig(x=0.3, y=0.4)
    with pytest.raises(ValueError, match="unknown selection-scorer"):
        CondenseConfig(scorers=[{"name": "nope"}])
