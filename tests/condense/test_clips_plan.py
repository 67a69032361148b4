"""Clip planning and word tagging (pure functions)."""

import re

import pytest
from condense_synth import ABSTAINED, condense, segment

from cpqa.condense.clips import ClipsConfig, Span, audio_file_stem, plan_clips
from cpqa.condense.tagging import speaker_aliases, tag_words, tagged_transcript
from cpqa.record_parts import Condensation, CondenseRule
from cpqa.records import ClipWord, Word
from cpqa.vocabulary import NO_CLEAR_EMOTION, UNKNOWN_GENDER

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


def condensed(*segments, **config):
    """The segments as the condense stage writes them (kept ones only)."""
    return condense(*segments, **config)[0]


def test_words_take_kept_window_else_attributed_emotion_and_always_all_tags():
    seg = segment("r", 0, 0.0, [("happy", 0.9), ("sad", 0.9)], speaker="spk1", gender="male")
    seg.windows = seg.windows[:1]  # condense dropped the inconsistent sad window
    seg.condense = Condensation(emotion="happy", sentiment="positive", reliable_for=["emotion", "gender", "speakers"],
                                kept_for=["emotion"], recording_has_reliable_emotion=True, qualifying={"happy": 1},
                                window_counts={"happy": 1}, windows_total=2, windows_kept=1, dropped_windows=[],
                                rule=CondenseRule(x=0.5, y=0.4, ambiguous_min_score=0.5, min_windows=1,
                                                  min_window_share=0.5))
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
    a, b = condensed(segment("r", 0, 0.0, [("happy", 0.9)], speaker="FEE013", gender="female"),
                     segment("r", 1, 2.0, [("neutral", 0.45)], speaker="MEE014", gender="male"),
                     min_windows=1, balance={"enabled": False})
    words = tag_words(a)[0] + tag_words(b)[0]
    words[1] = words[1].model_copy(update={"emotion": "surprised"})
    aliases = speaker_aliases(words)
    assert aliases == {"FEE013": "S1", "MEE014": "S2"}
    assert tagged_transcript(words, aliases) == (
        "[S1|female|happy] w0 [S1|female|surprised] w1 [S1|female|happy] w2 w3\n[S2|male|neutral] w0 w1 w2 w3")


def test_abstained_and_unconfirmed_emotions_are_tagged_no_clear_emotion_never_as_a_class():
    reliable, calm, abstained = condensed(
        # happy is attributed; the middle window abstained and the last one fails the agreement check
        segment("r", 0, 0.0, [("happy", 0.9), (ABSTAINED, 0.9), ("happy", 0.8), ("sad", 0.9)], speaker="A", gender="male"),
        # sad windows fail the agreement check: no reliable emotion, kept for content, gender, speakers
        segment("r", 1, 8.0, [("sad", 0.9), ("sad", 0.8)], speaker="B", gender="female"),
        # every window abstained, and so did the speaker's pooled gender
        segment("r", 2, 12.0, [(ABSTAINED, 0.5)] * 3, speaker="C", gender=None),
        balance={"enabled": False})
    assert reliable.condense.reliable_for == ["content", "emotion", "gender", "speakers"]
    assert calm.condense.kept_for == ["content", "gender", "speakers"]
    assert abstained.condense.kept_for == ["content", "speakers"]
    assert abstained.condense.no_emotion_reason == "all_windows_abstained"

    def by_window(seg):
        words = tag_words(seg)[0]
        return [sorted({w.emotion for w in words if s <= w.start < s + 2}) for s in (seg.start + 2 * i for i in range(4))
                if any(s <= w.start < s + 2 for w in words)]

    assert by_window(reliable) == [["happy"], [NO_CLEAR_EMOTION], ["happy"], ["happy"]]  # rejected sad → attributed
    assert by_window(calm) == [[NO_CLEAR_EMOTION], [NO_CLEAR_EMOTION]]
    assert {(w.emotion, w.gender) for w in tag_words(abstained)[0]} == {(NO_CLEAR_EMOTION, UNKNOWN_GENDER)}
    words = [w for seg in (calm, abstained) for w in tag_words(seg)[0]]
    assert tagged_transcript(words, speaker_aliases(words)) == (
        "[S1|female|no clear emotion] w0 w1 w2 w3 w4 w5 w6 w7\n"
        "[S2|unknown gender|no clear emotion] w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11")
    # Speech condensation never confirmed (a clip's words from the annotate stage) shows no class either.
    raw = segment("r", 3, 20.0, [("angry", 0.1), ("angry", 0.1)], speaker="D", gender="male")
    assert {w.emotion for w in tag_words(raw)[0]} == {NO_CLEAR_EMOTION}


def test_gender_tags_come_from_each_words_speaker():
    seg = segment("r", 0, 0.0, [("neutral", 0.45)] * 2, speaker="A", gender="female")
    # annotate tags each word with its own speaker's pooled gender: B speaks inside A's segment
    seg.words[0] = seg.words[0].model_copy(update={"gender": "male", "speaker": "B"})
    tags = [(w.speaker, w.gender) for w in tag_words(seg)[0]]
    assert tags[0] == ("B", "male") and set(tags[1:]) == {("A", "female")}
    seg.words[0] = seg.words[0].model_copy(update={"gender": UNKNOWN_GENDER})  # B's pooled gender abstained
    assert tag_words(seg)[0][0].gender == UNKNOWN_GENDER
    seg.labels["gender"] = {"label": None, "abstained": True, "score": 0.52, "model": "m", "pooled_over": "speaker"}
    seg.words[1] = seg.words[1].model_copy(update={"gender": None})  # an untagged word of the abstained speaker
    assert tag_words(seg)[0][1].gender == UNKNOWN_GENDER


def test_words_the_asr_was_unsure_of_are_not_shown_to_the_generator():
    words = [ClipWord(word=w, start=i, end=i + 0.5, prob=p, emotion="neutral", gender="female", speaker="A")
             for i, (w, p) in enumerate([("symbols", 0.76), ("who", 0.45), ("protect", 0.44), ("them", 0.26),
                                          ("when", 0.74), ("they're", None)])]
    text = tagged_transcript(words, speaker_aliases(words), min_word_prob=0.5)
    assert text == "[S1|female|neutral] symbols … when they're"
    assert "protect" in tagged_transcript(words, speaker_aliases(words))  # no threshold: every word
    seg = segment("r", 0, 0.0, [("neutral", 0.45)] * 2, speaker="A", gender="female")
    assert {w.prob for w in tag_words(seg)[0]} == {0.9}  # the clip's words keep the ASR probability
