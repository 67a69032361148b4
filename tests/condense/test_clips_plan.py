"""Clip planning and word tagging (pure functions)."""

import re

import pytest
from condense_synth import segment

from cpqa.condense.clips import ClipsConfig, Span, audio_file_stem, plan_clips
from cpqa.condense.tagging import speaker_aliases, tag_words, tagged_transcript
from cpqa.records import Word

CONFIG = ClipsConfig(min_duration_s=30, max_duration_s=60, max_gap_s=10)


def spans(*pairs):
    return [Span(f"s{i}", a, b) for i, (a, b) in enumerate(pairs)]


def test_short_recording_is_one_clip_flagged_short():
    [clip] = plan_clips(spans((1, 3), (5, 8)), 12.0, CONFIG)
    assert (clip.start, clip.end, clip.short, clip.segment_ids) == (0.0, 12.0, True, ["s0", "s1"])


def test_neighbours_merge_within_the_maximum_and_clips_end_on_segment_boundaries():
    plans = plan_clips(spans((10, 20), (22, 35), (40, 52), (55, 75), (200, 240)), 600.0, CONFIG)
    assert [p.segment_ids for p in plans] == [["s0", "s1", "s2"], ["s3"], ["s4"]]
    assert (plans[0].start, plans[0].end, plans[0].padded_s) == (10, 52, 0.0)
    assert plans[1].end - plans[1].start == pytest.approx(30) and plans[1].start >= 52  # padded, not into clip 0
    assert (plans[2].start, plans[2].end) == (200, 240)


def test_a_long_clip_takes_the_next_segment_only_within_max_gap():
    plans = plan_clips(spans((0, 32), (45, 50)), 600.0, CONFIG)
    assert [p.segment_ids for p in plans] == [["s0"], ["s1"]]
    plans = plan_clips(spans((0, 32), (40, 50)), 600.0, CONFIG)
    assert [p.segment_ids for p in plans] == [["s0", "s1"]]


def test_padding_stays_inside_the_recording_and_between_neighbours():
    plans = plan_clips(spans((1, 4), (100, 103)), 110.0, CONFIG)
    first, second = plans
    assert (first.start, first.end) == (0.0, pytest.approx(30.0))
    assert (second.start, second.end) == (pytest.approx(80.0), 110.0)
    assert first.padded_s == pytest.approx(27) and second.padded_s == pytest.approx(27)
    unpadded = plan_clips(spans((1, 4)), 110.0, ClipsConfig(pad_short_groups=False))
    assert (unpadded[0].start, unpadded[0].end, unpadded[0].short) == (1, 4, False)


def test_a_segment_longer_than_the_maximum_is_kept_whole():
    [clip] = plan_clips(spans((5, 80)), 100.0, CONFIG)
    assert (clip.start, clip.end) == (5, 80)


def test_clip_file_names_are_safe_and_distinct():
    assert audio_file_stem("rec-1-clip0000") == "rec-1-clip0000"
    names = {audio_file_stem(i) for i in ("wav/a-clip0000", "wav_a-clip0000", "../a-clip0000", "wav\\a-clip0000")}
    assert len(names) == 4 and all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", n) for n in names)


def test_min_above_max_is_rejected():
    with pytest.raises(ValueError, match="min_duration_s"):
        ClipsConfig(min_duration_s=70, max_duration_s=60)


def test_words_take_kept_window_else_attributed_emotion_and_always_all_tags():
    seg = segment("r", 0, 0.0, [("happy", 0.9), ("sad", 0.9)], speaker="spk1", gender="male")
    seg.windows = seg.windows[:1]  # condense dropped the inconsistent sad window
    seg.metadata["condense"] = {"emotion": "happy"}
    seg.words[-1] = Word(word="x", start=3.0, end=3.4)  # no tags of its own
    words, interpolated = tag_words(seg)
    assert not interpolated
    assert {w.emotion for w in words} == {"happy"}
    assert (words[-1].gender, words[-1].speaker) == ("male", "spk1")


def test_text_without_word_times_is_spread_over_the_segment():
    seg = segment("r", 0, 2.0, [("neutral", 0.45)], words=False, text="hello there friend", speaker=None)
    words, interpolated = tag_words(seg)
    assert interpolated and [w.word for w in words] == ["hello", "there", "friend"]
    assert words[0].start == 2.0 and words[-1].end == pytest.approx(4.0)
    assert all(w.speaker == "unknown" and w.gender == "female" for w in words)
    seg.labels.pop("gender")
    seg.metadata["gender"] = "male"  # given by the manifest
    assert {w.gender for w in tag_words(seg)[0]} == {"male"}


def test_tagged_transcript_groups_runs_and_starts_a_line_per_speaker_turn():
    a = segment("r", 0, 0.0, [("happy", 0.9)], speaker="FEE013", gender="female")
    b = segment("r", 1, 2.0, [("neutral", 0.45)], speaker="MEE014", gender="male")
    words = tag_words(a)[0] + tag_words(b)[0]
    words[1] = words[1].model_copy(update={"emotion": "surprised"})
    aliases = speaker_aliases(words)
    assert aliases == {"FEE013": "S1", "MEE014": "S2"}
    assert tagged_transcript(words, aliases) == (
        "[S1|female|happy] w0 [S1|female|surprised] w1 [S1|female|happy] w2 w3\n[S2|male|neutral] w0 w1 w2 w3")
