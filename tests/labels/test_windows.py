import pytest

from cpqa.labels.windows import aggregate_probs, aggregate_values, layout, tag_words, window_of
from cpqa.records import Word


def test_short_segment_is_one_window_of_itself():
    (w,) = layout(10.0, 13.5)
    assert (w.start, w.end, w.context_start, w.context_end) == (10.0, 13.5, 10.0, 13.5)


def test_windows_are_t_plus_two_dt_with_hop_t_and_context_clipped_to_segment():
    spans = layout(0.0, 10.0, center_s=2.0, context_s=1.0)
    assert [(s.start, s.end) for s in spans] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert (spans[0].context_start, spans[0].context_end) == (0.0, 3.0)
    assert (spans[2].context_start, spans[2].context_end) == (3.0, 7.0)
    assert spans[2].context_end - spans[2].context_start == pytest.approx(4.0)
    assert (spans[-1].context_start, spans[-1].context_end) == (7.0, 10.0)


def test_centres_tile_the_segment_and_a_short_remainder_joins_the_last_window():
    spans = layout(1.0, 7.5)  # 6.5 s: 2 + 2 + 2.5 (a 0.5 s remainder < t/2 joins the last window)
    assert [(s.start, s.end) for s in spans] == [(1.0, 3.0), (3.0, 5.0), (5.0, 7.5)]
    assert (spans[-1].context_start, spans[-1].context_end) == (4.0, 7.5)
    spans = layout(0.0, 9.2)  # a 1.2 s remainder is a window of its own
    assert [(s.start, s.end) for s in spans][-1] == (8.0, 9.2)
    total = sum(s.duration for s in spans)
    assert total == pytest.approx(9.2)


def test_duration_weighted_aggregation():
    probs = aggregate_probs([{"happy": 1.0, "sad": 0.0}, {"happy": 0.0, "sad": 1.0}], [3.0, 1.0])
    assert probs == pytest.approx({"happy": 0.75, "sad": 0.25})
    assert aggregate_values([0.2, None, 0.6], [1.0, 5.0, 3.0]) == pytest.approx(0.5)
    assert aggregate_values([None], [1.0]) is None


def test_words_take_the_window_of_their_midpoint():
    spans = layout(0.0, 6.0)
    words = [Word(word="a", start=0.1, end=0.5), Word(word="b", start=1.9, end=2.3),  # midpoint 2.1 → window 1
             Word(word="c", start=5.5, end=6.4, speaker="S9")]  # midpoint 5.95
    tagged = tag_words(words, spans, ["happy", "sad", "angry"], ["female", "male", None], "S1")
    assert [(w.emotion, w.gender, w.speaker) for w in tagged] == [
        ("happy", "female", "S1"), ("sad", "male", "S1"), ("angry", None, "S9")]
    assert window_of(99.0, spans) == 2 and window_of(-1.0, spans) == 0
    assert words[0].emotion is None  # copies, not in place
