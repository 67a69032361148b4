"""The typed parts of records: read from the JSON cpqa writes and written back unchanged."""

import json

from cpqa.record_parts import Label, label_of, word_emotion
from cpqa.records import Clip, Recording, Segment
from cpqa.vocabulary import ABSTAIN_LOW_CONFIDENCE, NO_CLEAR_EMOTION

CONDENSE = {"emotion": None, "sentiment": None, "reliable_for": ["content"], "kept_for": ["content"],
            "no_emotion_reason": "all_windows_abstained", "no_emotion_detail": "abstained on 2 windows",
            "recording_has_reliable_emotion": False, "qualifying": {}, "window_counts": {}, "windows_total": 2,
            "windows_kept": 0, "dropped_windows": [{"start": 0.0, "end": 2.0, "emotion": None, "score": 0.3,
                                                     "valence": 0.5, "reason": "emotion_abstained"}],
            "rule": {"x": 0.5, "y": 0.4, "ambiguous_min_score": 0.5, "min_windows": 2, "min_window_share": 0.5}}
SEGMENT = {
    "id": "r-000000", "metadata": {"segmentation": "vad", "condense": CONDENSE, "selection": {"score": 0.5, "reasons": []}},
    "recording_id": "r", "start": 0.0, "end": 4.0, "text": "", "language": None, "speaker": "A", "words": [],
    "windows": [{"start": 0.0, "end": 2.0, "context_start": 0.0, "context_end": 3.0, "valence": 0.5,
                 "emotion": {"label": None, "abstained": True, "reason": ABSTAIN_LOW_CONFIDENCE, "score": 0.3,
                             "probs": {"happy": 0.3, "sad": 0.2}, "model": "probe", "min_confidence": 0.4}}],
    "labels": {"snr_db": {"model": "wada-snr", "score": 1.0, "value": 30.5},
               "age": {"value": 31.0, "score": None, "model": "ge2e"},
               "gender": {"label": "male", "abstained": False, "score": 0.9, "speaker": "A", "pooled_over": "speaker"},
               "text_sentiment": {"label": "negative", "score": 0.6, "compound": -0.6, "model": "vader-3.3"},
               "dnsmos": {"ovrl_mos": 3.1, "sig_mos": 3.5, "model": "dnsmos"},
               "events": [{"label": "Laughter", "start": 1.0, "end": 1.5, "score": 0.8, "model": "panns"}]},
}


def test_a_segment_reads_typed_and_writes_back_what_it_read():
    segment = Segment.model_validate(SEGMENT)
    assert segment.metadata == {"segmentation": "vad"}          # user data only
    assert segment.condense.dropped_windows[0].reason == "emotion_abstained"
    assert segment.selection.score == 0.5
    window = segment.windows[0]
    assert window.emotion.is_abstained and window.emotion.category is None and window.context_end == 3.0
    assert word_emotion(window.emotion) == NO_CLEAR_EMOTION and word_emotion(None) is None
    assert label_of(segment.labels, "gender").category == "male"
    assert label_of(segment.labels, "dnsmos").extra("ovrl_mos") == 3.1
    assert label_of(segment.labels, "text_sentiment").compound == -0.6
    assert label_of(segment.labels, "events") is None and segment.labels["events"][0].label == "Laughter"
    assert json.loads(segment.model_dump_json()) == SEGMENT   # nothing added, nothing lost


def test_parts_never_given_are_not_written():
    assert Label(label="happy", score=None).model_dump() == {"label": "happy", "score": None}
    clip = Clip(id="c", recording_id="r", start=0.0, end=1.0, audio="c.flac")
    assert clip.model_dump()["selection"] == {}
    recording = Recording.model_validate({"id": "r", "audio": "r.flac", "duration": 2.0, "sample_rate": 16000,
                                          "channels": 1, "metadata": {"speaker_turns": [
                                              {"start": 0.0, "end": 1.0, "speaker": "A"}]}})
    assert recording.speaker_turns[0].speaker == "A" and recording.metadata == {}
    assert recording.model_dump()["metadata"] == {"speaker_turns": [{"start": 0.0, "end": 1.0, "speaker": "A"}]}
    assert "speaker_turns" not in Recording.model_validate({**recording.model_dump(), "metadata": {}}).model_dump()["metadata"]
