"""The transcribe stage and the faster-whisper backend, on real speech with the embedded models."""

import json
import re
import time

import jiwer
import pytest
from speechgen import make_stage, quiet_noise, ravdess_files, recording, statement, write_16k

from cpqa.audio.asr import FasterWhisperASR
from cpqa.audio.segment import SegmentStage
from cpqa.audio.transcribe import TranscribeStage, estimate_word_times, to_recording_time
from cpqa.errors import CPQAError
from cpqa.manifest import read_records
from cpqa.records import Drop, Segment, Skip, Word
from cpqa.registry import Entry, backend_registry
from cpqa.run import build
from cpqa.testing.dummy import DummyASR

AMI = "ami_meetings/meeting_excerpt_60s"
TINY = {"name": "faster-whisper", "model": "embedded:tiny.en", "device": "cpu"}
DUMMY = {"name": "dummy"}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def segment_of(rec, n=0, start=0.0, end=2.0, **fields) -> Segment:
    return Segment(id=Segment.make_id(rec.id, n), recording_id=rec.id, start=start, end=end, **fields)


# --- word times --------------------------------------------------------------------------------

def test_word_times_move_to_recording_time_clipped_and_in_order():
    words = [Word(word="a", start=-0.1, end=0.3, prob=0.9), Word(word="b", start=0.2, end=0.8),
             Word(word="c", start=1.9, end=2.6)]
    out = to_recording_time(words, start=10.0, end=12.0)
    assert [(w.word, w.start, w.end, w.prob) for w in out] == [
        ("a", 10.0, 10.3, 0.9), ("b", 10.3, 10.8, None), ("c", 11.9, 12.0, None)]


def test_estimated_word_times_share_the_segment_by_length():
    words = estimate_word_times("hi there  everyone", 1.0, 3.0)
    assert [w.word for w in words] == ["hi", "there", "everyone"]
    assert [(w.start, w.end) for w in words] == [(1.0, 1.267), (1.267, 1.933), (1.933, 3.0)]


# --- the stage's logic, with the dummy ASR -----------------------------------------------------

@pytest.fixture
def rec(tmp_path):
    return recording(write_16k(tmp_path / "r.wav", quiet_noise(6.0, rms=0.05)), "r")


def test_given_text_is_kept_with_estimated_word_times(tmp_path, rec):
    stage = make_stage(TranscribeStage, tmp_path, [rec], backend=DUMMY)
    stage.setup()
    [seg] = stage.process_batch([segment_of(rec, text="Hello there.", language="fr", metadata={"row_id": "7"})])
    assert seg.text == "Hello there." and seg.language == "fr"
    assert [(w.word, w.start, w.end) for w in seg.words] == [("Hello", 0.0, 0.909), ("there.", 0.909, 2.0)]
    assert seg.metadata == {"row_id": "7", "language_detection": {"source": "given"}, "word_times": "estimated"}


def test_language_is_detected_once_per_recording(tmp_path, rec):
    other = rec.model_copy(update={"id": "r2"})
    stage = make_stage(TranscribeStage, tmp_path, [rec, other], backend=DUMMY)
    stage.setup()
    segs = list(stage.process_batch([segment_of(rec, 0), segment_of(rec, 1, 2.0, 4.0), segment_of(other, 0)]))
    segs += list(stage.process_batch([segment_of(rec, 2, 4.0, 6.0)]))
    assert stage.context.counters["language_detections"] == 2
    assert [s.language for s in segs] == ["en"] * 4
    assert segs[0].metadata["language_detection"] == {"source": "detected", "prob": 1.0, "model": "dummy"}
    assert segs[0].metadata["asr"] == {"backend": "dummy", "model": "dummy"}
    assert segs[1].words[0].start == 2.0  # shifted to recording time

    forced = make_stage(TranscribeStage, tmp_path, [rec], backend=DUMMY, language="de")
    forced.setup()
    [seg] = forced.process_batch([segment_of(rec, language="fr")])
    assert seg.language == "de" and seg.metadata["language_detection"] == {"source": "config"}


class ProbeLengthASR(DummyASR):
    """Names the language after the audio it was given to detect it from."""

    def detect_language(self, audio):
        return f"probe{len(audio)}", 0.5


def test_detected_language_does_not_depend_on_which_segment_comes_first(tmp_path, monkeypatch):
    monkeypatch.setitem(backend_registry("asr").entries, "test-probe-length", Entry("test-probe-length", ProbeLengthASR))
    long = recording(write_16k(tmp_path / "long.wav", quiet_noise(150.0, rms=0.05)), "long")
    segments = [segment_of(long, n, 10.0 * n, 10.0 * n + 2) for n in range(3)]
    outputs = []
    for batch in (segments, segments[2:]):  # a resumed run sees only the segments left to do
        stage = make_stage(TranscribeStage, tmp_path, [long], backend={"name": "test-probe-length"})
        stage.setup()
        outputs.append({s.id: s.language for s in stage.process_batch(batch)})
    assert outputs[0]["long-000002"] == outputs[1]["long-000002"] == "probe1920000"  # the first 120 s


def test_no_words_is_a_drop_and_no_audio_a_skip(tmp_path, rec):
    stage = make_stage(TranscribeStage, tmp_path, [rec], backend={"name": "dummy", "word_s": 5.0})
    stage.setup()
    out = list(stage.process_batch([segment_of(rec, 0, 0.0, 2.0), segment_of(rec, 1, 7.0, 9.0)]))
    assert [(s.id, s.reason) for s in out] == [("r-000000", "no_words"), ("r-000001", "empty_segment")]
    assert [type(s) for s in out] == [Drop, Skip]


def test_backend_config_and_signature():
    assert backend_registry("asr").get("faster-whisper") is FasterWhisperASR
    default = TranscribeStage.Config()
    assert default.batch_size == 8 and default.backend.options.model == "embedded:base"
    how = TranscribeStage.Config(backend={"name": "faster-whisper", "device": "cuda", "cpu_threads": 3}, batch_size=2)
    assert how.semantic_dict() == default.semantic_dict()  # how to compute does not change the output
    what = TranscribeStage.Config(backend={"name": "faster-whisper", "beam_size": 1})
    assert what.semantic_dict() != default.semantic_dict()
    with pytest.raises(ValueError, match="device"):
        TranscribeStage.Config(backend={"name": "faster-whisper", "device": "tpu"})


def test_a_model_that_cannot_load_is_a_clear_error():
    with pytest.raises(CPQAError, match="cannot load Whisper model 'embedded:tiny.en'.*float16x"):
        FasterWhisperASR(FasterWhisperASR.Config(model="embedded:tiny.en", device="cpu", compute_type="float16x"))


def test_importing_the_stage_loads_no_model():
    import subprocess
    import sys

    code = "import sys, cpqa.audio.transcribe, cpqa.audio.segment; print('faster_whisper' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# --- real models -------------------------------------------------------------------------------

def test_ami_meeting_words_are_timed_inside_their_segments(real_data, tmp_path):
    rec = recording(real_data / AMI / "mixture.wav", "ami")
    segmenter = make_stage(SegmentStage, tmp_path, max_segment_s=15.0)
    segmenter.setup()
    segments = list(segmenter.process_batch([rec]))
    stage = make_stage(TranscribeStage, tmp_path, [rec], backend=TINY)
    stage.setup()
    out = list(stage.process_batch(segments))
    transcribed = [s for s in out if isinstance(s, Segment)]
    assert len(transcribed) >= len(segments) - 1
    for seg in transcribed:
        assert seg.words and seg.text and seg.language == "en"
        assert seg.metadata["asr"] == {"backend": "faster-whisper", "model": "embedded:tiny.en"}
        times = [t for w in seg.words for t in (w.start, w.end)]
        assert times == sorted(times), seg.id
        assert seg.start <= times[0] and times[-1] <= seg.end
        assert all(0.0 <= w.prob <= 1.0 for w in seg.words)
    # most words it hears are words these four people said
    human = json.loads((real_data / AMI / "transcripts" / "transcripts.json").read_text())
    vocabulary = set(normalise(" ".join(ch["text"] for ch in human.values())).split())
    heard = normalise(" ".join(s.text for s in transcribed)).split()
    assert len(heard) > 60
    known = sum(w in vocabulary for w in heard) / len(heard)
    assert known > 0.7, f"only {known:.0%} of the heard words are in the human transcript"


def ravdess_wer(run_dir) -> tuple[float, list[Segment]]:
    """WER of each recording's joined transcript against its statement (a skip counts as empty)."""
    [stage_dir] = run_dir.glob("*-transcribe-*")
    segments = list(read_records(stage_dir / "records.jsonl", Segment))
    [ingest_dir] = run_dir.glob("*-ingest-*")
    recordings = [json.loads(line)["id"] for line in (ingest_dir / "records.jsonl").read_text().splitlines()]
    hyps = {rid: [] for rid in recordings}
    for seg in sorted(segments, key=lambda s: s.id):
        hyps[seg.recording_id].append(seg.text)
    refs = [statement(rid) for rid in recordings]
    return jiwer.wer(refs, [normalise(" ".join(hyps[rid])) for rid in recordings]), segments


def check_ravdess_build(input_dir, run_dir, n_clips: int) -> tuple[float, float]:
    """Build `local` until transcribe on RAVDESS clips; check WER and language; (WER, wall s)."""
    started = time.perf_counter()
    build(input_dir, run_dir, "local", until="transcribe")
    wall_s = time.perf_counter() - started
    wer, segments = ravdess_wer(run_dir)
    assert wer <= 0.10, f"WER {wer:.2%} on {n_clips} RAVDESS clips with embedded:base (limit 10 %)"
    assert {s.language for s in segments} == {"en"}
    assert all(s.metadata["language_detection"]["source"] == "detected" for s in segments)
    assert len({s.recording_id for s in segments}) == n_clips
    for seg in segments:
        assert seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end
    return wer, wall_s


def test_a_few_ravdess_clips_through_the_local_recipe(real_data, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in ravdess_files(real_data)[::20]:  # neutral, happy, angry and disgusted clips
        (clips / path.name).symlink_to(path)
    check_ravdess_build(clips, tmp_path / "run", 4)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 5 min on 2 idle cores (two Whisper encodes per clip); more when shared
def test_ravdess_wer_with_embedded_base(real_data, tmp_path):
    """Acceptance: the 80 RAVDESS clips, ingested (48 → 16 kHz), segmented and transcribed by the
    `local` recipe with Whisper base, reach a WER of at most 10 %, language detected as English."""
    wer, wall_s = check_ravdess_build(real_data / "ravdess" / "wav", tmp_path / "run", 80)
    print(f"RAVDESS WER {wer:.2%} on 80 clips in {wall_s:.0f} s")
