from pathlib import Path

import pytest

from cpqa.audio.speakers import Turn, overlaps, read_rttm, snap_changes, speaker_at
from cpqa.errors import CPQAError
from cpqa.labels.annotate import _with_recording_turns, _with_turns
from cpqa.records import Segment, Word

AMI = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "ami_meetings"


def test_read_rttm(tmp_path):
    rttm = tmp_path / "a.rttm"
    rttm.write_text("SPEAKER mix 1 2.50 1.00 <NA> <NA> B <NA> <NA>\n"
                    "SPEAKER mix 1 0.00 3.00 <NA> <NA> A <NA> <NA>\n"
                    "SPEAKER other 1 0.00 9.00 <NA> <NA> C <NA> <NA>\n")
    assert read_rttm(rttm, "mix") == [Turn(0.0, 3.0, "A"), Turn(2.5, 3.5, "B")]
    assert len(read_rttm(rttm)) == 3
    rttm.write_text("SPEAKER mix 1 zero 1.0 <NA> <NA> A\n")
    with pytest.raises(CPQAError, match="a.rttm:1"):
        read_rttm(rttm)


@pytest.mark.skipif(not AMI.exists(), reason="shared AMI data not present")
def test_ami_rttm_has_the_four_speakers():
    turns = read_rttm(AMI / "meeting_excerpt_60s" / "mixture.rttm")
    assert {t.speaker for t in turns} == {"FEE013", "FEE016", "MEE014", "MEO015"}
    assert speaker_at(turns, 10.0, 10.5) == "FEE013"  # inside FEE013's 7.43–29.79 s turn


def test_turns_give_words_their_speaker_and_segments_a_count():
    turns = [Turn(0.0, 3.0, "A"), Turn(2.5, 6.0, "B"), Turn(8.0, 9.0, "C")]
    assert overlaps(turns, 2.0, 4.0) == pytest.approx({"A": 1.0, "B": 1.5})
    seg = Segment(id="r-000000", recording_id="r", start=1.0, end=6.0,
                  words=[Word(word="hi", start=1.0, end=1.5), Word(word="yo", start=4.0, end=4.4),
                         Word(word="me", start=4.5, end=4.9, speaker="Z")])
    out = _with_turns(seg, turns, "given-turns")
    assert out.speaker == "B"  # most of 1–6 s
    assert [w.speaker for w in out.words] == ["A", "B", "Z"]
    assert out.labels["speaker_count"].value == 2 and out.labels["speaker_count"].model == "given-turns"
    assert out.labels["speaker_count"].extra("recording_value") == 3
    kept = _with_turns(seg.model_copy(update={"speaker": "A"}), turns, "embedding-cluster")
    assert kept.labels["speaker_count"].model == "embedding-cluster"
    assert kept.speaker == "A"


def _said(*words):
    return [Word(word=w, start=s, end=e, speaker=who) for w, who, s, e in words]


def test_a_late_speaker_change_moves_back_to_the_sentence_end_or_pause_before_it():
    # The AMI excerpt: the diarizer gave "I was" of the second speaker's "I was thinking on the
    # same lines" to the first.
    late = _said(("LCD", "A", 43.17, 43.77), ("display.", "A", 43.77, 44.29), ("I", "A", 44.57, 44.71),
                 ("was", "A", 44.71, 45.07), ("thinking", "B", 45.07, 45.27), ("on", "B", 45.27, 45.41))
    assert [w.speaker for w in snap_changes(late)] == ["A", "A", "B", "B", "B", "B"]
    # a trailing-off "they're..." ends no sentence; "them." does
    trailing = _said(("them.", "A", 7.14, 7.46), ("When", "A", 7.48, 7.64), ("they're...", "A", 7.64, 8.64),
                     ("When", "C", 8.67, 9.21))
    assert [w.speaker for w in snap_changes(trailing)] == ["A", "C", "C", "C"]
    # a pause longer than the one at the change marks the start too; times and words stay
    paused = _said(("so", "A", 0.0, 0.2), ("we", "A", 0.6, 0.7), ("go", "B", 0.7, 0.9))
    assert [(w.word, w.speaker, w.start) for w in snap_changes(paused)] == [
        ("so", "A", 0.0), ("we", "B", 0.6), ("go", "B", 0.7)]


def test_a_change_at_a_sentence_end_or_with_no_cue_within_two_words_stays():
    at_end = _said(("display.", "A", 0.0, 0.5), ("thinking", "B", 0.5, 0.9))
    no_cue = _said(("a.", "A", 0.0, 0.1), ("b", "A", 0.1, 0.2), ("c", "A", 0.2, 0.3), ("d", "A", 0.3, 0.4),
                   ("e", "B", 0.4, 0.5))
    island = _said(("x", "C", 0.0, 0.1), ("y.", "A", 0.1, 0.2), ("z", "A", 0.2, 0.3), ("w", "B", 0.3, 0.4))
    for words in (at_end, no_cue):
        assert [w.speaker for w in snap_changes(words)] == [w.speaker for w in words]
    # "z" moves to B (after "y."); "y." is another speaker's than "x" and stays A
    assert [w.speaker for w in snap_changes(island)] == ["C", "A", "B", "B"]


def test_a_speaker_change_moves_back_across_a_segment_boundary():
    # The AMI excerpt: "…protect them. | When they're... | When you've got": the new speaker's
    # first words sit in the segment before; a segment whose words the manifest gave keeps them.
    turns = [Turn(0.0, 2.0, "A"), Turn(2.0, 4.0, "C")]
    first = Segment(id="r-000000", recording_id="r", start=0.0, end=1.0,
                    words=[Word(word="protect", start=0.0, end=0.5), Word(word="them.", start=0.5, end=1.0),
                           Word(word="When", start=1.0, end=1.2)])
    second = Segment(id="r-000001", recording_id="r", start=1.25, end=3.0,
                     words=[Word(word="they're...", start=1.25, end=1.9), Word(word="When", start=2.1, end=2.4),
                            Word(word="you've", start=2.4, end=2.7)])
    given = Segment(id="r-000002", recording_id="r", start=3.0, end=4.0,
                    words=[Word(word="so", start=3.0, end=3.2, speaker="Z"), Word(word="yes.", start=3.2, end=3.5)])
    out = _with_recording_turns([second, first, given], turns, "given-turns")
    assert [o.id for o in out] == ["r-000001", "r-000000", "r-000002"]
    assert [w.speaker for w in out[1].words] == ["A", "A", "C"] and [w.speaker for w in out[0].words] == ["C"] * 3
    assert [w.speaker for w in out[2].words] == ["Z", "C"]
    assert [w.speaker for w in _with_turns(first, turns, "given-turns").words] == ["A", "A", "A"]  # one segment alone
