"""The ingest stage: discovery from every input kind, decoding decisions, skips and resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audiogen import encode_pyav, sine, write_audio

from cpqa.audio import decode
from cpqa.audio.ingest import IngestStage, audio_relpath
from cpqa.audio.sources import SourceItem
from cpqa.errors import CPQAError
from cpqa.executors.local import LocalExecutor
from cpqa.manifest import iter_jsonl
from cpqa.recipe import Recipe, StageSpec
from cpqa.records import Recording, Skip

pytestmark = pytest.mark.timeout(60)


def _ingest(stage: IngestStage, input_path: Path) -> tuple[dict[str, Recording], dict[str, Skip]]:
    out = list(stage.process_batch(list(stage.discover(input_path))))
    recordings = {r.id: r for r in out if isinstance(r, Recording)}
    skips = {s.id: s for s in out if isinstance(s, Skip)}
    return recordings, skips


def _write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, objects: list) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects))
    return path


# --- folder -------------------------------------------------------------------------------------

def test_folder_discovery_is_recursive_sorted_and_deterministic(tmp_path, make_stage):
    root = tmp_path / "in"
    for rel in ["b/z.wav", "b/a.FLAC", "a.wav", "c/d/e.ogg", ".hidden.wav", ".cache/x.wav", "notes.txt"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    stage = make_stage()
    ids = [item.id for item in stage.discover(root)]
    assert ids == ["a", "b/a", "b/z", "c/d/e"]
    assert ids == [item.id for item in make_stage().discover(root)]
    assert all(Path(item.audio).is_absolute() for item in stage.discover(root))
    assert [i.id for i in make_stage(extensions=["ogg"]).discover(root)] == ["c/d/e"]


def test_folder_ingest_uses_16k_mono_in_place_and_normalises_the_rest(tmp_path, make_stage):
    root = tmp_path / "in"
    ready = write_audio(root / "ready.wav", sine(200, 1.0, 16000), 16000)
    write_audio(root / "sub" / "cd.wav", np.stack([sine(440, 2.0, 44100)] * 2, axis=1), 44100)
    write_audio(root / "float.wav", sine(300, 1.5, 16000), 16000, subtype="FLOAT")
    encode_pyav(root / "talk.mp3", sine(440, 1.0, 22050), 22050, "mp3")
    stage = make_stage()
    recordings, skips = _ingest(stage, root)
    assert skips == {}
    assert set(recordings) == {"ready", "sub/cd", "float", "talk"}
    assert recordings["ready"].audio == str(ready) == recordings["ready"].source
    assert recordings["float"].audio == str(root / "float.wav")
    cd = recordings["sub/cd"]
    assert Path(cd.audio) == stage.context.stage_dir / "audio" / "sub" / "cd.flac"
    assert (cd.sample_rate, cd.channels, cd.source_sample_rate, cd.source_channels) == (16000, 1, 44100, 2)
    assert abs(cd.duration - 2.0) < 0.001 and cd.source == str(root / "sub" / "cd.wav")
    assert sf.info(cd.audio).samplerate == 16000 and sf.info(cd.audio).channels == 1
    assert abs(recordings["talk"].duration - 1.0) < 0.03
    assert stage.context.counters["used_in_place"] == 2 and stage.context.counters["decoded"] == 2


def test_same_id_twice_in_a_folder_is_a_duplicate_skip(tmp_path, make_stage):
    write_audio(tmp_path / "in" / "a.wav", sine(200, 0.5, 16000), 16000)
    encode_pyav(tmp_path / "in" / "a.mp3", sine(200, 0.5, 16000), 16000, "mp3")
    recordings, skips = _ingest(make_stage(), tmp_path / "in")
    assert list(recordings) == ["a"] and recordings["a"].source.endswith("a.mp3")  # sorted: a.mp3 first
    assert skips["a#dup1"].reason == "duplicate_id" and skips["a#dup1"].source.endswith("a.wav")


def test_run_folder_inside_the_input_is_not_ingested(tmp_path):
    from cpqa.stage import StageContext

    root = tmp_path / "in"
    write_audio(root / "a.wav", sine(200, 0.5, 8000), 8000)
    write_audio(root / "run" / "00-ingest" / "audio" / "a.flac", sine(200, 0.5, 16000), 16000)
    context = StageContext(run_dir=root / "run", stage_dir=root / "run" / "00-ingest", name="ingest")
    assert [i.id for i in IngestStage(IngestStage.Config(), context).discover(root)] == ["a"]


# --- bad inputs -------------------------------------------------------------------------------

def test_every_bad_input_is_a_skip_with_its_reason(tmp_path, make_stage, monkeypatch):
    root = tmp_path / "in"
    root.mkdir()
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("hello, not audio\n" * 20)
    (root / "random.flac").write_bytes(np.random.default_rng(1).bytes(10_000))
    write_audio(root / "silent.wav", np.zeros(0, dtype=np.float32), 16000)
    write_audio(root / "long.wav", sine(200, 3.0, 8000), 8000)
    write_audio(root / "long16k.wav", sine(200, 3.0, 16000), 16000)
    write_audio(root / "ok.wav", sine(200, 1.0, 8000), 8000)
    write_audio(root / "locked.wav", sine(200, 1.0, 8000), 8000)
    (root / "gone.wav").symlink_to(root / "nowhere.wav")
    real_open = open

    def open_denying_locked(path, *args, **kwargs):
        if str(path).endswith("locked.wav"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(decode, "open", open_denying_locked, raising=False)
    recordings, skips = _ingest(make_stage(max_duration_s=2.0), root)
    assert list(recordings) == ["ok"]
    assert {k: s.reason for k, s in skips.items()} == {
        "empty": "empty_file", "text": "undecodable", "random": "undecodable", "silent": "zero_length",
        "long": "too_long", "long16k": "too_long", "locked": "audio_unreadable", "gone": "missing_file",
    }
    assert all(s.detail and s.source.startswith(str(root)) for s in skips.values())
    assert sorted(p.name for p in (tmp_path / "run" / "00-ingest" / "audio").iterdir()) == ["ok.flac"]


def test_16k_float_wav_with_nan_gets_a_cleaned_copy(tmp_path, make_stage):
    samples = sine(200, 1.0, 16000)
    samples[100:110] = np.nan
    src = write_audio(tmp_path / "in" / "nan.wav", samples, 16000, subtype="FLOAT")
    stage = make_stage()
    recordings, _ = _ingest(stage, tmp_path / "in")
    assert recordings["nan"].audio != str(src) and recordings["nan"].audio.endswith(".flac")
    assert np.isfinite(sf.read(recordings["nan"].audio)[0]).all()
    assert stage.context.counters["nonfinite_samples"] == 10


def test_copy_if_compatible_writes_even_ready_sources(tmp_path, make_stage):
    write_audio(tmp_path / "in" / "ready.wav", sine(200, 1.0, 16000), 16000)
    recordings, _ = _ingest(make_stage(copy_if_compatible=True), tmp_path / "in")
    assert recordings["ready"].audio.endswith("audio/ready.flac")
    assert recordings["ready"].source.endswith("in/ready.wav")


def test_unknown_input_kind_is_a_user_error(tmp_path, make_stage):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CPQAError, match="cannot tell how to read"):
        list(make_stage().discover(tmp_path / "notes.txt"))


def test_one_audio_file_as_input(tmp_path, make_stage):
    src = write_audio(tmp_path / "solo.wav", sine(200, 1.0, 16000), 16000)
    recordings, _ = _ingest(make_stage(), src)
    assert recordings["solo"].audio == str(src)


# --- CSV / JSONL manifests --------------------------------------------------------------------

@pytest.fixture
def clips(tmp_path) -> Path:
    """A corpus folder with three 2 s clips at 8 kHz under wav/."""
    root = tmp_path / "corpus"
    for name in ["a", "b", "c"]:
        write_audio(root / "wav" / f"{name}.wav", sine(300, 2.0, 8000), 8000)
    return root


def test_csv_manifest_rows_extra_columns_and_whole_file_text(clips, make_stage):
    manifest = _write_csv(clips / "manifest.csv", [
        {"file": "wav/a.wav", "id": "utt-a", "transcript": "hello there", "speaker": "s1", "gender": "female",
         "emotion": "happy", "language": "en", "corpus": "demo", "quality": "good"},
        {"file": "wav/b.wav", "id": "", "transcript": "", "speaker": "s2", "gender": "", "emotion": "",
         "language": "", "corpus": "demo", "quality": ""},
    ])
    recordings, skips = _ingest(make_stage(), manifest)
    assert skips == {} and list(recordings) == ["utt-a", "wav/b"]
    a = recordings["utt-a"]
    assert a.source == str(clips / "wav" / "a.wav")
    assert a.model_dump()["metadata"] == {
        "corpus": "demo", "quality": "good", "speaker": "s1", "gender": "female", "emotion": "happy", "language": "en",
        "given_segments": [{"start": 0.0, "end": a.duration, "text": "hello there", "speaker": "s1",
                            "gender": "female", "emotion": "happy", "language": "en"}],
        "speaker_turns": [{"start": 0.0, "end": a.duration, "speaker": "s1"}],
    }
    assert recordings["wav/b"].model_dump()["metadata"] == {"corpus": "demo", "quality": "", "speaker": "s2",
                                            "speaker_turns": [{"start": 0.0, "end": 2.0, "speaker": "s2"}]}


def test_consecutive_segment_rows_group_into_one_recording(clips, make_stage):
    manifest = _write_csv(clips / "segments.csv", [
        {"audio": "wav/a.wav", "id": "a1", "start": "0.0", "end": "0.8", "text": "one", "speaker": "x",
         "session": "s1", "snr": "10"},
        {"audio": "wav/a.wav", "id": "a2", "start": "1.0", "end": "2.5", "text": "two", "speaker": "y",
         "session": "s1", "snr": "12"},
        {"audio": "wav/b.wav", "id": "b1", "start": "0.5", "end": "1.0", "text": "", "speaker": "",
         "session": "s2", "snr": "9"},
        {"audio": "wav/a.wav", "id": "a3", "start": "0.1", "end": "0.2", "text": "late", "speaker": "",
         "session": "s1", "snr": "1"},
    ])
    stage = make_stage()
    recordings, skips = _ingest(stage, manifest)
    assert list(recordings) == ["wav/a", "wav/b"]
    a = recordings["wav/a"]
    assert a.model_dump()["metadata"] == {"session": "s1", "given_segments": [
        {"start": 0.0, "end": 0.8, "text": "one", "speaker": "x", "row_id": "a1", "metadata": {"snr": "10"}},
        {"start": 1.0, "end": 2.0, "text": "two", "speaker": "y", "row_id": "a2", "metadata": {"snr": "12"}},
    ], "speaker_turns": [{"start": 0.0, "end": 0.8, "speaker": "x"}, {"start": 1.0, "end": 2.0, "speaker": "y"}],
    }  # the second segment is clipped to the 2 s of audio
    assert recordings["wav/b"].model_dump()["metadata"] == {  # one row: all its columns are shared
        "session": "s2", "snr": "9", "given_segments": [{"start": 0.5, "end": 1.0, "row_id": "b1"}]}
    assert skips["wav/a#dup1"].reason == "duplicate_id"  # rows of one audio must be consecutive
    assert stage.context.counters["given_segments_clipped"] == 1


def test_rttm_turns_from_a_manifest_column_and_beside_folder_files(clips, make_stage):
    (clips / "wav" / "a.rttm").write_text(
        "SPEAKER other 1 0.00 1.00 <NA> <NA> Z <NA> <NA>\n"
        "SPEAKER a 1 0.50 0.70 <NA> <NA> MEO1 <NA> <NA>\n"
        "SPEAKER a 1 0.10 0.30 <NA> <NA> FEE2 <NA> <NA>\n"
        "SPEAKER a 1 1.80 5.00 <NA> <NA> FEE2 <NA> <NA>\n")  # runs past the 2 s of audio
    (clips / "b.rttm").write_text("SPEAKER meeting 1 0.25 0.5 <NA> <NA> X <NA> <NA>\n")
    (clips / "bad.rttm").write_text("SPEAKER a 1 zero 0.5 <NA> <NA> X <NA> <NA>\n")
    manifest = _write_csv(clips / "m.csv", [
        {"audio": "wav/a.wav", "rttm": "wav/a.rttm", "speaker": "ignored"},
        {"audio": "wav/b.wav", "id": "b", "rttm_file": "b.rttm"},
        {"audio": "wav/a.wav", "id": "bad", "rttm": "bad.rttm"},
        {"audio": "wav/b.wav", "id": "gone", "rttm": "missing.rttm"},
    ])
    recordings, skips = _ingest(make_stage(), manifest)
    assert [t.model_dump() for t in recordings["wav/a"].speaker_turns] == [  # its own file id, sorted, clipped
        {"start": 0.1, "end": 0.4, "speaker": "FEE2"}, {"start": 0.5, "end": 1.2, "speaker": "MEO1"},
        {"start": 1.8, "end": 2.0, "speaker": "FEE2"}]
    assert "rttm" not in recordings["wav/a"].metadata
    assert [t.model_dump() for t in recordings["b"].speaker_turns] == [{"start": 0.25, "end": 0.75, "speaker": "X"}]
    assert skips["bad"].reason == skips["gone"].reason == "bad_rttm"
    assert "bad.rttm:1" in skips["bad"].detail

    folder, _ = _ingest(make_stage(), clips / "wav")  # a.rttm lies beside a.wav
    assert [t.speaker for t in folder["a"].speaker_turns] == ["FEE2", "MEO1", "FEE2"]
    assert folder["b"].speaker_turns is None


def test_malformed_manifest_rows_are_skips_and_do_not_break_a_group(clips, make_stage):
    manifest = _write_csv(clips / "m.csv", [
        {"audio": "wav/a.wav", "id": "a1", "start": "0", "end": "1"},
        {"audio": "", "id": "noaudio", "start": "", "end": ""},
        {"audio": "wav/a.wav", "id": "bad-start", "start": "soon", "end": "1"},
        {"audio": "wav/a.wav", "id": "backwards", "start": "1.5", "end": "1.0"},
        {"audio": "wav/a.wav", "id": "half", "start": "1.0", "end": ""},
        {"audio": "wav/a.wav", "id": "nan", "start": "nan", "end": "1"},
        {"audio": "wav/a.wav", "id": "a2", "start": "1", "end": "2"},
        {"audio": "wav/missing.wav", "id": "", "start": "", "end": ""},
    ])
    recordings, skips = _ingest(make_stage(), manifest)
    assert [s["row_id"] for s in recordings["wav/a"].metadata["given_segments"]] == ["a1", "a2"]
    assert {k: s.reason for k, s in skips.items()} == {
        "noaudio": "bad_manifest_row", "bad-start": "bad_manifest_row", "backwards": "bad_manifest_row",
        "half": "bad_manifest_row", "nan": "bad_manifest_row", "wav/missing": "missing_file",
    }
    assert "m.csv line 4" in skips["bad-start"].detail and "not a number" in skips["bad-start"].detail
    assert "not after" in skips["backwards"].detail


def test_csv_without_an_audio_column_skips_every_row(tmp_path, make_stage):
    manifest = _write_csv(tmp_path / "m.csv", [{"name": "x.wav"}, {"name": "y.wav"}])
    recordings, skips = _ingest(make_stage(), manifest)
    assert recordings == {} and [s.reason for s in skips.values()] == ["bad_manifest_row"] * 2
    assert list(skips) == ["m.csv#line2", "m.csv#line3"]


def test_jsonl_manifest_with_path_column_and_bad_lines(clips, make_stage):
    manifest = _write_jsonl(clips / "m.jsonl", [
        {"path": "wav/c.wav", "text": "whole", "speaker": 7, "tags": ["a", "b"]},
        "{not json",
        [1, 2],
        {"path": "wav/a.wav", "start": 0.25, "end": 1.25, "emotion": "sad"},
        {"path": str(clips / "wav" / "b.wav"), "id": "abs-b"},
    ])
    recordings, skips = _ingest(make_stage(), manifest)
    assert list(recordings) == ["wav/c", "wav/a", "abs-b"]
    assert recordings["wav/c"].model_dump()["metadata"] == {"tags": ["a", "b"], "speaker": "7", "given_segments": [
        {"start": 0.0, "end": 2.0, "text": "whole", "speaker": "7"}],
        "speaker_turns": [{"start": 0.0, "end": 2.0, "speaker": "7"}]}
    assert recordings["wav/a"].metadata["given_segments"] == [{"start": 0.25, "end": 1.25, "emotion": "sad"}]
    assert recordings["abs-b"].source == str(clips / "wav" / "b.wav")
    assert {k: s.reason for k, s in skips.items()} == {"m.jsonl#line2": "bad_manifest_row",
                                                        "m.jsonl#line3": "bad_manifest_row"}


# --- lhotse -----------------------------------------------------------------------------------

def test_lhotse_recordings_with_supervisions(clips, make_stage):
    lhotse = pytest.importorskip("lhotse")
    recs = lhotse.RecordingSet.from_recordings(
        [lhotse.Recording.from_file(clips / "wav" / f"{n}.wav", recording_id=f"rec-{n}") for n in "ab"])
    sups = lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment("s2", "rec-a", 1.0, 0.5, text="later", speaker="B", custom={"emotion": "sad"}),
        lhotse.SupervisionSegment("s1", "rec-a", 0.1, 0.4, text="first", speaker="A", gender="m", language="en"),
    ])
    recs.to_file(clips / "demo_recordings.jsonl.gz")
    sups.to_file(clips / "demo_supervisions.jsonl.gz")
    recordings, skips = _ingest(make_stage(), clips / "demo_recordings.jsonl.gz")
    assert skips == {} and list(recordings) == ["rec-a", "rec-b"]
    assert recordings["rec-a"].metadata["given_segments"] == [
        {"start": 0.1, "end": 0.5, "text": "first", "speaker": "A", "gender": "m", "language": "en", "row_id": "s1"},
        {"start": 1.0, "end": 1.5, "text": "later", "speaker": "B", "emotion": "sad", "row_id": "s2"},
    ]
    assert "given_segments" not in recordings["rec-b"].metadata
    assert recordings["rec-b"].source_sample_rate == 8000


def test_lhotse_cuts_group_by_recording_in_recording_time(clips, make_stage):
    lhotse = pytest.importorskip("lhotse")
    rec = lhotse.Recording.from_file(clips / "wav" / "a.wav", recording_id="rec-a")
    sup = lhotse.SupervisionSegment("s1", "rec-a", 1.2, 0.3, text="hi")
    cuts = lhotse.CutSet.from_manifests(recordings=lhotse.RecordingSet.from_recordings([rec]),
                                        supervisions=lhotse.SupervisionSet.from_segments([sup]))
    windows = cuts.cut_into_windows(duration=1.0)  # two cuts of rec-a; s1 lies in the second
    windows.to_file(clips / "cuts.jsonl.gz")
    recordings, _ = _ingest(make_stage(), clips / "cuts.jsonl.gz")
    assert list(recordings) == ["rec-a"]
    [seg] = recordings["rec-a"].metadata["given_segments"]
    assert seg["row_id"] == "s1" and seg["text"] == "hi"
    assert abs(seg["start"] - 1.2) < 1e-6 and abs(seg["end"] - 1.5) < 1e-6


# --- Parquet / Arrow --------------------------------------------------------------------------

def _audio_bytes(tmp_path: Path, name: str, rate: int, subtype: str = "PCM_16") -> bytes:
    return write_audio(tmp_path / "blobs" / name, sine(250, 1.0, rate), rate, subtype=subtype).read_bytes()


def test_parquet_with_audio_bytes(tmp_path, make_stage):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    audio = [
        {"bytes": _audio_bytes(tmp_path, "x.wav", 44100), "path": "x.wav"},
        {"bytes": _audio_bytes(tmp_path, "y.flac", 16000), "path": "y.flac"},
        {"bytes": b"not audio at all", "path": "z.wav"},
        {"bytes": None, "path": None},
    ]
    table = pa.table({"audio": audio, "text": ["hi", None, "x", "y"], "speaker": ["s1", "s2", "s3", "s4"],
                      "blob": [b"1", b"2", b"3", b"4"], "score": [0.5, 0.6, 0.7, 0.8]})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=2)
    stage = make_stage()
    recordings, skips = _ingest(stage, tmp_path / "data.parquet")
    assert list(recordings) == ["00000000", "00000001"]
    x, y = recordings["00000000"], recordings["00000001"]
    assert x.source == f"{tmp_path / 'data.parquet'}#row=0" and x.source_sample_rate == 44100
    assert x.audio.endswith("audio/00000000.flac") and abs(x.duration - 1.0) < 0.001
    assert x.model_dump()["metadata"] == {"score": 0.5, "audio_path": "x.wav", "speaker": "s1", "given_segments": [
        {"start": 0.0, "end": 1.0, "text": "hi", "speaker": "s1"}],
        "speaker_turns": [{"start": 0.0, "end": 1.0, "speaker": "s1"}]}
    assert y.audio.endswith("sources/00000001.flac") and sf.info(y.audio).frames == 16000  # used in place
    assert {k: s.reason for k, s in skips.items()} == {"00000002": "undecodable", "00000003": "bad_manifest_row"}
    assert sorted(p.name for p in (stage.context.stage_dir / "sources").iterdir()) == ["00000001.flac"]


def test_hf_save_to_disk_dataset_dict(tmp_path, make_stage):
    pa = pytest.importorskip("pyarrow")
    root = tmp_path / "hf"
    (root / "train").mkdir(parents=True)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}))
    shards = []
    for shard, rate in enumerate([8000, 48000]):
        name = f"data-0000{shard}-of-00002.arrow"
        table = pa.table({"id": [f"utt{shard}"], "audio": [{"bytes": _audio_bytes(tmp_path, f"{shard}.wav", rate),
                                                             "path": f"{shard}.wav"}]})
        with pa.OSFile(str(root / "train" / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        shards.append({"filename": name})
    (root / "train" / "state.json").write_text(json.dumps({"_data_files": shards}))
    recordings, skips = _ingest(make_stage(), root)
    assert skips == {} and list(recordings) == ["utt0", "utt1"]
    assert [r.source_sample_rate for r in recordings.values()] == [8000, 48000]
    assert recordings["utt1"].source.endswith("train/data-00001-of-00002.arrow#row=0")


# --- resume and the executor ------------------------------------------------------------------

def test_processing_the_same_items_twice_writes_nothing_new(tmp_path, make_stage):
    root = tmp_path / "in"
    write_audio(root / "a.wav", sine(200, 1.0, 44100), 44100)
    write_audio(root / "b.wav", sine(200, 1.0, 16000), 16000)
    stage = make_stage()
    items = list(stage.discover(root))
    first = list(stage.process_batch(items))
    audio_dir = stage.context.stage_dir / "audio"
    before = {p: p.stat().st_mtime_ns for p in audio_dir.rglob("*")}
    second = list(make_stage().process_batch(items))
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in audio_dir.rglob("*")} == before


def test_a_partial_file_from_a_killed_run_is_never_taken_as_done(tmp_path, make_stage):
    write_audio(tmp_path / "in" / "a.wav", sine(200, 1.0, 44100), 44100)
    stage = make_stage()
    partial = stage.context.stage_dir / "audio" / ".a.flac.999.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"fLaC half")
    recordings, _ = _ingest(stage, tmp_path / "in")
    assert abs(sf.info(recordings["a"].audio).duration - 1.0) < 0.001


def test_local_executor_runs_and_resumes_the_ingest_stage(tmp_path):
    root = tmp_path / "in"
    write_audio(root / "good.wav", sine(200, 1.0, 22050), 22050)
    (root / "bad.wav").write_bytes(b"")
    recipe = Recipe("ingest-only", "", [StageSpec("ingest", "ingest", IngestStage, IngestStage.Config())], "test")
    result = LocalExecutor().build(root, tmp_path / "run", recipe)
    [stage] = result.stages
    assert stage.stats["items_in"] == 2 and stage.stats["items_out"] == 1
    assert stage.stats["skipped"] == {"empty_file": 1}
    [record] = list(iter_jsonl(stage.dir / "records.jsonl"))
    assert Recording.model_validate(record).id == "good"
    again = LocalExecutor().build(root, tmp_path / "run", recipe)
    assert again.stages[0].already_done and not again.did_work


def test_real_corpora_manifests(real_data, make_stage):
    stage = make_stage()
    ravdess = list(stage.discover(real_data / "ravdess" / "manifest.csv"))
    assert len(ravdess) == 80 and ravdess[0].metadata["corpus"] == "RAVDESS"
    out = list(stage.process_batch(ravdess[:2]))
    for rec, item in zip(out, ravdess):
        assert rec.source_sample_rate == 48000 and rec.audio.endswith(".flac")
        assert abs(rec.duration - float(item.metadata["duration_s"])) < 0.001
        assert rec.metadata["given_segments"][0]["text"] == item.given_segments[0]["text"]
    ami = [i for i in stage.discover(real_data / "ami_meetings" / "manifest.csv") if i.id.endswith("trn00")]
    [rec] = stage.process_batch(ami)
    assert rec.audio == rec.source and abs(rec.duration - 30.0) < 0.001  # 32-bit float 16 kHz: in place
    assert {t.speaker for t in rec.speaker_turns} == set(ami[0].metadata["speakers"].split(";"))


def test_audio_relpath_is_safe_and_unique():
    assert audio_relpath("a/b") == Path("a/b.flac")
    for weird in ["../x", "a//b", "a b?", "/abs", "x" * 300]:
        path = audio_relpath(weird)
        assert ".." not in path.parts and not path.is_absolute()
        assert all(0 < len(part.encode()) < 255 for part in path.parts)
    assert audio_relpath("a b") != audio_relpath("a_b")


def test_source_item_bytes_stay_out_of_json():
    item = SourceItem(id="x", audio="d.parquet#row=0", audio_bytes=b"RIFF")
    assert "audio_bytes" not in item.model_dump()
