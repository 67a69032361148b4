import pytest

from cpqa.labels.windows import aggregate_values, layout, window_of


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


def test_duration_weighted_values():
    assert aggregate_values([0.2, None, 0.6], [1.0, 5.0, 3.0]) == pytest.approx(0.5)
    assert aggregate_values([None], [1.0]) is None


def test_a_time_belongs_to_the_window_of_its_centre():
    spans = layout(0.0, 6.0)
    assert window_of(2.1, spans) == 1
    assert window_of(99.0, spans) == 2 and window_of(-1.0, spans) == 0
