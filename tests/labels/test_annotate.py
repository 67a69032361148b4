"""The annotate stage on real speech (RAVDESS clips) with the shipped offline heads."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cpqa.labels.annotate import AnnotateStage
from cpqa.labels.probes import shared_features
from cpqa.labels.segment_labels import add_speaker_zscores
from cpqa.records import Recording, Segment, Skip, Word
from cpqa.stage import Config as BackendConfig
from cpqa.stage import StageContext
from cpqa.vocabulary import NO_CLEAR_EMOTION, UNKNOWN_GENDER

RAVDESS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "ravdess_train"
pytestmark = pytest.mark.skipif(not (RAVDESS / "manifest.csv").exists(), reason="shared RAVDESS data not present")


def _rows():
    with open(RAVDESS / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def recording_and_segments(tmp_path_factory):
    """Four clips of actor 10 (female) played one after another: one 16 kHz recording, one segment
    (with fake word times) per clip, plus a segment past the end of the audio."""
    rows = [r for r in _rows() if r["speaker"] == "ravdess_actor_10" and r["label"] in ("angry", "anger", "sadness",
                                                                                            "happiness", "neutral")]
    rows = rows[:4]
    tmp = tmp_path_factory.mktemp("rec")
    audio, segments, t = [], [], 0.0
    for n, row in enumerate(rows):
        clip, rate = sf.read(RAVDESS / row["file"], dtype="float32")
        assert rate == 16000
        words = [Word(word=w, start=round(t + 0.8 + 0.35 * i, 2), end=round(t + 1.1 + 0.35 * i, 2))
                 for i, w in enumerate(row["transcript"].split())]
        segments.append(Segment(id=Segment.make_id("rec", n), recording_id="rec", start=round(t + 0.5, 3),
                                end=round(t + len(clip) / 16000 - 0.3, 3), text=row["transcript"], speaker="S1",
                                words=words))
        audio.append(clip)
        t += len(clip) / 16000
    path = tmp / "rec.flac"
    sf.write(path, np.concatenate(audio), 16000)
    segments.append(Segment(id=Segment.make_id("rec", 99), recording_id="rec", start=t + 5, end=t + 6))
    rec = Recording(id="rec", audio=str(path), duration=t, sample_rate=16000, channels=1)
    return rec, segments


@pytest.fixture(scope="module")
def annotated(recording_and_segments, tmp_path_factory):
    rec, segments = recording_and_segments
    run = tmp_path_factory.mktemp("run")
    stage = AnnotateStage(AnnotateStage.Config(), StageContext(run_dir=run, stage_dir=run / "03-annotate", name="annotate",
                                                               recording_lookup=lambda rid: rec))
    stage.setup()
    out = list(stage.process_batch(segments))
    return stage, out


def test_every_segment_is_labelled_or_skipped_with_a_reason(annotated, recording_and_segments):
    stage, out = annotated
    _, segments = recording_and_segments
    assert [o.id for o in out] == [s.id for s in segments]
    assert isinstance(out[-1], Skip) and out[-1].reason == "empty_segment"
    assert all(isinstance(o, Segment) for o in out[:-1])
    assert stage.context.counters["segments"] == 4


def test_one_encoder_pass_per_30s_chunk(annotated, recording_and_segments):
    rec, _ = recording_and_segments
    assert shared_features(rec.audio, "embedded:base", "cpu", "default").passes == 1


def test_whisper_emotion_and_gender_probes_share_the_encoder_passes(tmp_path, monkeypatch):
    from cpqa.labels.encoder import WhisperEncoder
    from cpqa.labels.probes import WhisperProbeEmotion, WhisperProbeSpeaker
    from cpqa.labels.protocols import AudioWindow

    encode, passes = WhisperEncoder.encode_chunk, []
    monkeypatch.setattr(WhisperEncoder, "encode_chunk", lambda self, samples: passes.append(1) or encode(self, samples))
    path = str(tmp_path / "noise.wav")
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(12 * 16000)).astype(np.float32), 16000)
    windows = [AudioWindow("noise", path, start, start + 4.0, "noise/?") for start in (0.0, 4.0, 8.0)]
    emotions = WhisperProbeEmotion(WhisperProbeEmotion.Config()).predict(windows)
    genders = WhisperProbeSpeaker(WhisperProbeSpeaker.Config()).predict(windows)
    assert len(emotions) == len(genders) == 3 and all(g.gender.label in ("female", "male") for g in genders)
    assert len(passes) == 1  # one 30-s pass over the (looped) recording, for both heads


def test_ge2e_gender_and_dimensions_load_one_encoder(annotated):
    from cpqa.audio.embedding_cluster import EmbeddingClusterDiarizer

    stage, _ = annotated
    assert stage.speaker.encoder is stage.dimensions.encoder  # the GE2E weights are read once per process
    assert EmbeddingClusterDiarizer().encoder is stage.speaker.encoder  # the diarizer's too


def test_windows_labels_and_provenance(annotated):
    _, out = annotated
    for seg in out[:-1]:
        assert seg.windows and seg.windows[0].start == seg.start and seg.windows[-1].end == seg.end
        for w in seg.windows:
            emotion = w.emotion
            assert emotion.abstained is (emotion.label is None) and 0 <= emotion.score <= 1
            assert emotion.abstained or (emotion.label in emotion.probs
                                            and emotion.score >= emotion.min_confidence)
            assert 0 <= w.valence <= 1 and 0 <= w.arousal <= 1 and 0 <= w.dominance <= 1
            assert w.gender.label in ("female", "male")
        labels = seg.labels
        for key in ("emotion", "valence", "arousal", "dominance", "gender", "pitch_mean_hz",
                    "pitch_std_hz", "loudness_lufs", "speaking_rate_wps", "syllable_rate", "snr_db",
                    "clipping_ratio", "text_sentiment", "jitter_local", "shimmer_local", "hnr_db"):
            assert key in labels, key
            assert labels[key].model, key
            assert "score" in labels[key].model_fields_set, key
        assert labels["emotion"].model.startswith("whisper-base-probe-emotion")
        assert sum(labels["emotion"].probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert labels["valence"].extra("derived") is False and labels["valence"].model.startswith("ge2e-ridge")
        assert ("sentiment" in labels) is not labels["emotion"].abstained
        if "sentiment" in labels:
            assert labels["sentiment"].label in ("positive", "negative", "neutral", "ambiguous")
        assert 100 < labels["pitch_mean_hz"].value < 450
        assert 0 < labels["jitter_local"].value < 0.1 and 0 < labels["shimmer_local"].value < 0.3
        assert 0 < labels["hnr_db"].value < 40 and labels["hnr_db"].model == "cpqa-voice-v1"
        json.dumps(seg.model_dump(mode="json"))


def test_actor_10_is_heard_as_female_once_for_the_speaker(annotated):
    stage, out = annotated
    genders = [s.labels["gender"] for s in out[:-1]]
    assert {g.label for g in genders} == {"female"} and {g.extra("pooled_over") for g in genders} == {"speaker"}
    assert len({g.score for g in genders}) == 1  # one pooled label for speaker S1
    assert stage.context.counters["within_speaker_gender_changes"] == 0


def test_words_are_tagged_with_their_decided_window_and_speaker_gender(annotated):
    _, out = annotated
    for seg in out[:-1]:
        for word in seg.words:
            mid = (word.start + word.end) / 2
            window = next((w for w in seg.windows if w.start <= mid < w.end), seg.windows[-1])
            assert (word.emotion, word.gender, word.speaker) == (window.emotion.label or NO_CLEAR_EMOTION,
                                                                 seg.labels["gender"].label or UNKNOWN_GENDER,
                                                                 "S1")


def test_speaker_zscores_compare_segments_of_one_speaker(annotated):
    _, out = annotated
    segs = out[:-1]
    z = [s.labels["pitch_z"].value for s in segs]
    means = [s.labels["pitch_mean_hz"].value for s in segs]
    assert np.mean(z) == pytest.approx(0.0, abs=1e-6)
    assert np.argmax(z) == np.argmax(means) and segs[0].labels["pitch_z"].extra("n_segments") == 4


def test_zscores_need_three_segments_of_the_speaker():
    segs = [Segment(id=f"r-{i}", recording_id="r", start=i, end=i + 1, speaker=spk,
                    labels={"pitch_mean_hz": {"value": v, "model": "m"}})
            for i, (spk, v) in enumerate([("A", 100.0), ("A", 120.0), ("B", 200.0), ("A", 140.0)])]
    add_speaker_zscores(segs)
    assert "pitch_z" not in segs[2].labels
    assert segs[3].labels["pitch_z"].value == pytest.approx(1.2247, abs=1e-3)


def test_unreadable_audio_is_a_skip(tmp_path):
    rec = Recording(id="bad", audio=str(tmp_path / "missing.flac"), duration=5.0, sample_rate=16000, channels=1)
    stage = AnnotateStage(AnnotateStage.Config(), StageContext(run_dir=tmp_path, stage_dir=tmp_path, name="annotate",
                                                               recording_lookup=lambda rid: rec))
    stage.setup()
    (out,) = stage.process_batch([Segment(id="bad-000000", recording_id="bad", start=0, end=2)])
    assert isinstance(out, Skip) and out.reason == "audio_unreadable" and "missing.flac" in out.source


def test_speaker_normalised_head_for_speakers_with_enough_windows(recording_and_segments, tmp_path):
    rec, segments = recording_and_segments
    config = AnnotateStage.Config(emotion={"name": "whisper-probe", "speaker_norm_head": "builtin:emotion-speaker-norm",
                                           "min_speaker_windows": 2}, speaker=None, prosody=False, quality=False)
    stage = AnnotateStage(config, StageContext(run_dir=tmp_path, stage_dir=tmp_path, name="annotate",
                                               recording_lookup=lambda rid: rec))
    stage.setup()
    out = list(stage.process_batch(segments[:4]))
    assert {s.labels["emotion"].model for s in out} == {"whisper-base-probe-emotion-spknorm-v1@embedded:base"}
    assert "gender" not in out[0].labels and out[0].words[0].gender is None
    (alone,) = stage.process_batch(segments[:1])  # one window of the speaker: the plain head (for a short,
    assert alone.labels["emotion"].model == "whisper-base-probe-emotion-short-v3@embedded:base"  # looped recording)


def test_config_validates_backends_before_any_model_loads():
    from pydantic import ValidationError

    config = AnnotateStage.Config(dimensions=None, speaker="audeering-age-gender")
    assert config.dimensions is None and config.speaker.name == "audeering-age-gender"
    assert config.semantic_dict()["emotion"]["head_sha256"]  # a retrained head reruns the stage
    with pytest.raises(ValidationError, match="unknown emotion backend 'nope'"):
        AnnotateStage.Config(emotion={"name": "nope"})
    with pytest.raises(ValidationError, match="members"):
        AnnotateStage.Config(emotion={"name": "ensemble", "members": ["whisper-probe"]})
    with pytest.raises(ValidationError, match="unknown emotion backend 'nope'"):
        AnnotateStage.Config(emotion={"name": "ensemble", "members": ["whisper-probe", "nope"]})
    with pytest.raises(ValidationError):
        AnnotateStage.Config(center_s=1.0, context_s=3.0)
    with pytest.raises(ValidationError, match="voice_quality"):
        AnnotateStage.Config(voice_quality="opensmile")


def test_short_recordings_get_the_head_trained_on_clips_heard_alone(tmp_path):
    from cpqa.labels.probes import WhisperProbeEmotion
    from cpqa.labels.protocols import AudioWindow

    rng = np.random.default_rng(0)
    for name, seconds in (("short", 4.0), ("long", 31.0)):
        sf.write(tmp_path / f"{name}.wav", (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
    backend = WhisperProbeEmotion(WhisperProbeEmotion.Config())
    short, long = backend.predict([AudioWindow("short", str(tmp_path / "short.wav"), 0.0, 4.0, "short/?"),
                                   AudioWindow("long", str(tmp_path / "long.wav"), 0.0, 4.0, "long/?")])
    assert short.model == "whisper-base-probe-emotion-short-v3@embedded:base"
    assert long.model is None and backend.model_name == "whisper-base-probe-emotion-v3@embedded:base"
    assert set(short.probs) == set(long.probs)
    unpaired = WhisperProbeEmotion(WhisperProbeEmotion.Config(short_head=None))
    assert unpaired.predict([AudioWindow("short", str(tmp_path / "short.wav"), 0.0, 4.0, "short/?")])[0].model is None


class HubLikeEmotion:
    """Stands in for a hub emotion model (emotion2vec+, an HF classifier): posteriors without any
    calibration advice; unsure on the first window it is given."""

    class Config(BackendConfig):
        pass

    model_name = "hub-like"

    def __init__(self, config):
        self.config = config

    def predict(self, windows):
        from cpqa.labels.protocols import CategoricalResult

        return [CategoricalResult.from_probs({"neutral": 0.4, "sad": 0.35, "happy": 0.25} if i == 0 else
                                             {"neutral": 0.9, "sad": 0.05, "happy": 0.05})
                for i, _ in enumerate(windows)]


def test_abstention_and_smoothing_apply_to_any_emotion_backend(recording_and_segments, tmp_path):
    rec, segments = recording_and_segments
    config = AnnotateStage.Config(emotion={"name": "test_annotate:HubLikeEmotion"}, dimensions=None, speaker=None,
                                  events=None, prosody=False, quality=False, text_sentiment=False, emotion_stay=None)
    stage = AnnotateStage(config, StageContext(run_dir=tmp_path, stage_dir=tmp_path / "03-annotate", name="annotate",
                                               recording_lookup=lambda rid: rec))
    stage.setup()
    out = [s for s in stage.process_batch(segments[:2]) if isinstance(s, Segment)]
    first = out[0].windows[0].emotion
    assert first.abstained and first.reason == "low-confidence" and first.min_confidence == 0.5
    assert all(w.emotion.label == "neutral" for w in out[0].windows[1:])
    assert NO_CLEAR_EMOTION in {w.emotion for w in out[0].words}
    assert stage.context.counters["windows_emotion_abstained"] == 1
