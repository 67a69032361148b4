from pathlib import Path

import pytest

from cpqa.audio.speakers import Turn, overlaps, read_rttm, speaker_at
from cpqa.errors import CPQAError
from cpqa.labels.annotate import _with_turns
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
