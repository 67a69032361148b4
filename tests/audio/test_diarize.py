"""The diarize stage and its backends: embedding-cluster on a generated two-voice dialogue and on a
real AMI meeting, the pyannote backend against a fake pyannote.audio, given turns, failures."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import types
import typing

import numpy as np
import pytest
import soundfile as sf
import soxr
from pydantic import ValidationError
from speechgen import make_stage, quiet_noise, recording, write_16k

from cpqa.audio.der import diarization_error_rate
from cpqa.audio.diarize import DiarizeStage
from cpqa.audio.diarizer import named_by_first_appearance
from cpqa.audio.embedding_cluster import EmbeddingClusterDiarizer, SpeechEmbeddings, assign_speakers
from cpqa.audio.io import SAMPLE_RATE
from cpqa.audio.pyannote_diarizer import PyannoteDiarizer
from cpqa.audio.speakers import Turn, read_rttm
from cpqa.errors import CPQAError
from cpqa.registry import Entry, backend_registry

pytestmark = pytest.mark.timeout(120)

LINES = {
    "A": ["The quarterly report shows that sales grew in every region except the north.",
          "We expect the new product line to launch early next spring.",
          "Our budget for marketing has been cut by almost a third this year."],
    "B": ["I think we should move the meeting to Thursday afternoon instead.",
          "Could you send me the slides before lunch so I can review them?",
          "That sounds reasonable, but the customers will want a firm date."],
}
VOICES = {"A": ("en-gb", 40), "B": ("en-us+f4", 75)}
"""(espeak-ng voice, pitch): a low and a high voice, whose windows merge at cosine distance 0.34 within
a voice and 0.49 between them: clear of the ahc threshold 0.425 on both sides. The windows' mean cosine
similarity is 0.62 over the dialogue and 0.73-0.77 within one voice: either side of spectral's 0.7."""


def _say(speaker: str, text: str) -> np.ndarray:
    voice, pitch = VOICES[speaker]
    wav = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "--stdout", text],
                         capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    """Two espeak-ng voices taking turns (A B A B A B, 0.6 s pauses): (path, reference turns)."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    pieces, reference, t = [], [], 0.0
    for i, (a, b) in enumerate(zip(LINES["A"], LINES["B"])):
        for speaker, text in (("A", a), ("B", b)):
            speech = _say(speaker, text)
            reference.append(Turn(t, t + len(speech) / SAMPLE_RATE, speaker))
            pieces += [speech, quiet_noise(0.6, seed=i)]
            t += len(speech) / SAMPLE_RATE + 0.6
    path = write_16k(tmp_path_factory.mktemp("dialogue") / "dialogue.wav", np.concatenate(pieces))
    return path, reference


@pytest.fixture(scope="module")
def monologue(tmp_path_factory):
    """Voice A alone, its three lines with pauses."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    pieces = []
    for i, text in enumerate(LINES["A"]):
        pieces += [_say("A", text), quiet_noise(0.6, seed=i)]
    return write_16k(tmp_path_factory.mktemp("monologue") / "monologue.wav", np.concatenate(pieces))


@pytest.fixture(scope="module")
def diarizer():
    if importlib.util.find_spec("resemblyzer") is None:  # never imported: its __init__ needs pkg_resources
        pytest.skip("the embedding-cluster backend needs cpqa[labels]")
    return EmbeddingClusterDiarizer()


def _speakers(turns: list[Turn]) -> set[str]:
    return {t.speaker for t in turns}


# --- embedding-cluster ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dialogue_speech(dialogue, diarizer):
    path, _ = dialogue
    return diarizer.embed(str(path), sf.info(str(path)).duration)


@pytest.mark.parametrize("clustering", ["spectral", "ahc"])
def test_two_voices_become_two_speakers(dialogue, dialogue_speech, clustering):
    turns = assign_speakers(dialogue_speech, EmbeddingClusterDiarizer.Config(clustering=clustering))
    assert _speakers(turns) == {"SPK0", "SPK1"}
    assert turns[0].speaker == "SPK0"  # named by first appearance
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:]))  # one speaker at a time, in order
    result = diarization_error_rate(dialogue[1], turns)
    assert result.der < 0.1  # measured 0.036 with both: VAD padding at turn edges, no confusion
    assert result.confusion_s < 0.5


def test_one_voice_is_one_speaker(monologue, diarizer):
    assert diarizer.model_name == "silero-vad+resemblyzer-ge2e+spectral"  # the default
    speech = diarizer.embed(str(monologue), sf.info(str(monologue)).duration)
    assert _speakers(assign_speakers(speech, diarizer.config)) == {"SPK0"}
    # without the mean-similarity rule the eigengap splits the one voice
    assert len(_speakers(assign_speakers(speech, EmbeddingClusterDiarizer.Config(one_speaker_similarity=1.0)))) > 1


def test_small_blocks_and_a_subsample_give_the_same_speakers(dialogue, diarizer):
    """Memory bounds (audio read 4.5 s at a time; 12 windows clustered, the rest assigned to the
    nearest cluster) still find the two voices."""
    path, reference = dialogue
    bounded = EmbeddingClusterDiarizer(EmbeddingClusterDiarizer.Config(block_s=4.5, max_clustered_windows=12))
    turns = bounded.diarize(str(path), sf.info(str(path)).duration)
    assert len(_speakers(turns)) == 2
    assert diarization_error_rate(reference, turns).der < 0.1  # measured 0.030


def test_speaker_count_options(dialogue_speech):
    def count(**options) -> int:
        return len(_speakers(assign_speakers(dialogue_speech, EmbeddingClusterDiarizer.Config(**options))))

    for clustering in ("spectral", "ahc"):
        assert count(clustering=clustering, num_speakers=3) == 3
        assert count(clustering=clustering, max_speakers=1) == 1
    assert count(min_speakers=3) >= 3
    assert count(min_speakers=3, max_speakers=3) == 3
    assert count(clustering="ahc", threshold=1.9, min_speakers=2) == 2
    assert count(clustering="ahc", threshold=0.05, max_speakers=2) == 2
    many = count(clustering="ahc", threshold=0.05)
    assert many > 2
    assert count(clustering="ahc", threshold=0.05, min_speaker_s=4.0) < many


def _speech(embeddings: np.ndarray) -> SpeechEmbeddings:
    """One 0.75 s span of speech per embedding, back to back."""
    return SpeechEmbeddings([(i, i * 0.75, (i + 1) * 0.75) for i in range(len(embeddings))], embeddings)


def _voices(count: int, windows_each: int, spread: float, seed: int = 0) -> np.ndarray:
    """Unit-length non-negative (as GE2E's) embeddings around `count` random voices, voice after voice.
    With spread 0.05: cosine similarity 0.83 within a voice, 0.57 between (GE2E on the dialogue:
    0.66, 0.51)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((count, 256)) ** 16  # a few large dimensions, different for each voice
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.abs(np.repeat(centres, windows_each, axis=0) + spread * rng.standard_normal((count * windows_each, 256)))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_spectral_counts_separated_voices(count):
    turns = assign_speakers(_speech(_voices(count, 12, spread=0.05)), EmbeddingClusterDiarizer.Config())
    assert [t.speaker for t in turns] == [f"SPK{i}" for i in range(count)]  # one turn per voice


def test_every_clustering_option_is_a_registered_clustering():
    options = typing.get_args(EmbeddingClusterDiarizer.Config.model_fields["clustering"].annotation)
    assert set(options) == set(backend_registry("clustering").names())


def test_spectral_is_deterministic():
    speech = _speech(_voices(3, 10, spread=0.07, seed=1))
    config = EmbeddingClusterDiarizer.Config()
    assert assign_speakers(speech, config) == assign_speakers(speech, config)


@pytest.mark.parametrize("clustering,two_window_speakers", [
    ("spectral", 1),  # a graph of two windows has its largest eigengap at one cluster, however unlike
    ("ahc", 2),
])
def test_few_or_identical_windows(clustering, two_window_speakers):
    config = EmbeddingClusterDiarizer.Config(clustering=clustering)
    two_voices = _voices(2, 1, spread=0.0)
    assert _speakers(assign_speakers(_speech(two_voices[:1]), config)) == {"SPK0"}
    assert len(_speakers(assign_speakers(_speech(two_voices), config))) == two_window_speakers
    assert len(_speakers(assign_speakers(
        _speech(two_voices), config.model_copy(update={"min_speakers": 2})))) == 2
    identical = np.repeat(two_voices[:1], 30, axis=0)
    assert assign_speakers(_speech(identical), config) == [Turn(0.0, 22.5, "SPK0")]


def test_silence_has_no_turns(tmp_path, diarizer):
    path = write_16k(tmp_path / "silence.wav", quiet_noise(3.0))
    assert diarizer.diarize(str(path), 3.0) == []


def test_ami_meeting_excerpt(real_data, diarizer):
    """The 60 s AMI excerpt (4 speakers, one of them for 1.2 s; 7.6 s of overlap, which one label
    per frame cannot cover) with the default settings chosen on the AMI 30 s clips."""
    folder = real_data / "ami_meetings" / "meeting_excerpt_60s"
    turns = diarizer.diarize(str(folder / "mixture.wav"), 60.0)
    result = diarization_error_rate(read_rttm(folder / "mixture.rttm"), turns)
    assert result.der < 0.25  # measured 0.216 (confusion 0.08; ahc: 0.445, confusion 0.31), 3 speakers found
    assert len(_speakers(turns)) in (3, 4)


def test_config_checks():
    with pytest.raises(ValidationError, match="window_s"):
        EmbeddingClusterDiarizer.Config(window_s=0.5, hop_s=0.75)
    with pytest.raises(ValidationError, match="max_speakers"):
        EmbeddingClusterDiarizer.Config(min_speakers=3, max_speakers=2)
    with pytest.raises(ValidationError, match="num_speakers"):
        PyannoteDiarizer.Config(num_speakers=5, max_speakers=4)


def test_names_follow_first_appearance():
    turns = [Turn(5, 6, "SPEAKER_00"), Turn(0, 1, "SPEAKER_01"), Turn(2, 3, "SPEAKER_00")]
    assert named_by_first_appearance(turns) == [Turn(0, 1, "SPK0"), Turn(2, 3, "SPK1"), Turn(5, 6, "SPK1")]


# --- the stage -----------------------------------------------------------------------------------

class FixedDiarizer:
    """Two speakers over the first two seconds; fails on a file named 'broken'."""

    model_name = "fixed"

    def __init__(self, config=None):
        self.calls = []

    def diarize(self, path: str, duration: float) -> list[Turn]:
        self.calls.append(path)
        if "broken" in path:
            raise RuntimeError("the model choked")
        return [Turn(0.0, 1.0, "SPK0"), Turn(1.0, 2.0, "SPK1")]


@pytest.fixture
def fixed_backend(monkeypatch):
    monkeypatch.setitem(backend_registry("diarizer").entries, "fixed", Entry("fixed", FixedDiarizer))


def test_stage_keeps_given_turns_and_diarizes_the_rest(tmp_path, fixed_backend):
    audio = write_16k(tmp_path / "a.wav", quiet_noise(2.0))
    given = recording(audio, "given", speaker_turns=[{"start": 0.0, "end": 2.0, "speaker": "alice"}])
    plain = recording(audio, "plain", language="en")
    stage = make_stage(DiarizeStage, tmp_path, backend="fixed")
    stage.setup()
    out = {r.id: r for r in stage.process_batch([given, plain])}
    assert out["given"].speaker_turns == given.speaker_turns
    assert out["given"].diarization.model_dump() == {"model": "given-turns", "speaker_count": 1}
    assert out["plain"].speaker_turns == [Turn(0.0, 1.0, "SPK0"), Turn(1.0, 2.0, "SPK1")]
    assert out["plain"].diarization.model_dump() == {"model": "fixed", "speaker_count": 2}
    assert out["plain"].metadata["language"] == "en"  # the rest of the metadata is kept
    assert stage.diarizer.calls == [str(audio)]

    redo = make_stage(DiarizeStage, tmp_path, backend="fixed", keep_given=False)
    redo.setup()
    [again] = redo.process_batch([given])
    assert again.diarization.model == "fixed"
    assert len(again.speaker_turns) == 2


def test_a_failure_passes_the_recording_on_without_turns(tmp_path, fixed_backend):
    broken = recording(write_16k(tmp_path / "broken.wav", quiet_noise(1.0)), "broken")
    stage = make_stage(DiarizeStage, tmp_path, backend="fixed")
    stage.setup()
    [out] = stage.process_batch([broken])
    assert out.speaker_turns is None
    assert out.diarization.skipped is True
    assert "the model choked" in out.diarization.reason
    assert stage.context.counters["failed"] == 1


def test_unknown_backend_is_a_config_error(tmp_path):
    with pytest.raises(ValidationError, match="unknown diarizer backend 'nope'"):
        DiarizeStage.Config(backend="nope")


def test_the_catalog_registers_the_stage():
    from cpqa.registry import STAGES

    assert STAGES.get("diarize") is DiarizeStage


# --- pyannote, against a fake pyannote.audio -----------------------------------------------------

class _Segment:
    def __init__(self, start, end):
        self.start, self.end = start, end


class _Annotation:
    def __init__(self, tracks):
        self.tracks = tracks

    def itertracks(self, yield_label=False):
        assert yield_label
        for i, (start, end, label) in enumerate(self.tracks):
            yield _Segment(start, end), i, label


def _fake_pyannote(monkeypatch, *, fail: Exception | None = None, returns_none: bool = False):
    """A `pyannote.audio` 4.x whose Pipeline records how it was loaded and called."""
    calls = {}

    class Pipeline:
        def to(self, device):
            calls["device"] = str(device)
            return self

        def __call__(self, audio, **kwargs):
            calls["audio"], calls["kwargs"] = audio, kwargs
            annotation = _Annotation([(2.0, 3.5, "SPEAKER_01"), (0.5, 2.0, "SPEAKER_00"), (3.0, 4.0, "SPEAKER_00")])
            return types.SimpleNamespace(speaker_diarization=annotation)

    def load(model, **kwargs):
        calls["model"], calls["load_kwargs"] = model, kwargs
        if fail:
            raise fail
        return None if returns_none else Pipeline()

    def from_pretrained(checkpoint, revision=None, token=None, cache_dir=None):
        return load(checkpoint, token=token)

    Pipeline.from_pretrained = staticmethod(from_pretrained)
    module = types.ModuleType("pyannote.audio")
    module.Pipeline = Pipeline
    monkeypatch.setitem(sys.modules, "pyannote.audio", module)
    return calls


@pytest.fixture
def five_seconds(tmp_path):
    path = write_16k(tmp_path / "meeting.wav", quiet_noise(5.0))
    return str(path)


def test_pyannote_turns_kwargs_and_token(monkeypatch, five_seconds):
    pytest.importorskip("torch")
    calls = _fake_pyannote(monkeypatch)
    monkeypatch.setenv("MY_HF", "hf_secret")
    diarizer = PyannoteDiarizer(PyannoteDiarizer.Config(
        model="pyannote/speaker-diarization-3.1", token_env="MY_HF", device="cpu", min_speakers=2, max_speakers=3))
    turns = diarizer.diarize(five_seconds, 5.0)
    assert calls["model"] == "pyannote/speaker-diarization-3.1"
    assert calls["load_kwargs"] == {"token": "hf_secret"}
    assert calls["device"] == "cpu"
    assert calls["kwargs"] == {"min_speakers": 2, "max_speakers": 3}
    assert calls["audio"]["sample_rate"] == SAMPLE_RATE
    assert tuple(calls["audio"]["waveform"].shape) == (1, 5 * SAMPLE_RATE)
    assert turns == [Turn(0.5, 2.0, "SPK0"), Turn(2.0, 3.5, "SPK1"), Turn(3.0, 4.0, "SPK0")]
    assert diarizer.model_name == "pyannote/speaker-diarization-3.1"


def test_pyannote_without_a_token_says_what_to_do(monkeypatch):
    _fake_pyannote(monkeypatch)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(CPQAError, match="HF_TOKEN") as error:
        PyannoteDiarizer()
    assert "https://huggingface.co/pyannote/speaker-diarization-community-1" in str(error.value)


@pytest.mark.parametrize("fail,returns_none", [(OSError("401 Client Error: Unauthorized"), False), (None, True)])
def test_pyannote_gated_model_says_what_to_do(monkeypatch, fail, returns_none):
    pytest.importorskip("torch")
    _fake_pyannote(monkeypatch, fail=fail, returns_none=returns_none)
    monkeypatch.setenv("HF_TOKEN", "hf_not_accepted")
    with pytest.raises(CPQAError, match="HF_TOKEN") as error:
        PyannoteDiarizer(PyannoteDiarizer.Config(model="pyannote/speaker-diarization-3.1"))
    assert "https://huggingface.co/pyannote/speaker-diarization-3.1" in str(error.value)


def test_pyannote_missing_names_the_gpu_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyannote.audio", None)  # as if not installed
    with pytest.raises(CPQAError, match=r"cpqa\[gpu\]"):
        PyannoteDiarizer()
