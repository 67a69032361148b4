"""The condense and clips stages through the local executor, on a corpus made from the real
RAVDESS clips and AMI meetings in ../shared/data/real with synthetic annotations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
from condense_synth import SENTIMENT, build_real_corpus, make_recipe

from cpqa.cli.runs import distribution_table
from cpqa.condense.clips import ClipsConfig, ClipsStage
from cpqa.condense.condense import CondenseStage
from cpqa.condense.config import CondenseConfig
from cpqa.executors.local import LocalExecutor
from cpqa.manifest import iter_jsonl
from cpqa.recipe import StageSpec

SCORERS = [{"name": n} for n in ("confidence", "prosody_deviation", "voice_text_mismatch", "emotion_change")]
FRAME_S = 1 / 16000


def recipe(x: float = 0.5, y: float = 0.4, clips_cls=ClipsStage, **condense):
    return make_recipe(
        StageSpec("condense", "condense", CondenseStage, CondenseConfig(x=x, y=y, scorers=SCORERS, batch_size=8, **condense)),
        StageSpec("clips", "clips", clips_cls, ClipsConfig(batch_size=4)),
    )


@pytest.fixture(scope="module")
def corpus(real_data, tmp_path_factory) -> Path:
    return build_real_corpus(real_data, tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    result = LocalExecutor().build(corpus, run, recipe())
    return {s.name: s for s in result.stages}


def records(stage, name="records.jsonl") -> list[dict]:
    return list(iter_jsonl(stage.dir / name))


def test_kept_windows_satisfy_the_consistency_rule(built):
    kept = records(built["condense"])
    assert kept
    for seg in kept:
        for w in seg["windows"]:
            label, valence = w["emotion"]["label"], w["valence"]
            sentiment = SENTIMENT[label]
            if sentiment == "positive":
                assert valence >= 0.5
            elif sentiment == "negative":
                assert valence <= 0.4
            elif sentiment == "neutral":
                assert 0.4 < valence < 0.5
            else:
                assert w["emotion"]["score"] >= 0.5


def test_balancing_raises_the_emotion_entropy_and_stats_hold_distributions(built):
    counters = built["condense"].stats["counters"]
    assert counters["entropy_bits/emotion_after"] > counters["entropy_bits/emotion_before"]
    for dim in ("emotion", "sentiment", "gender", "duration"):
        assert any(k.startswith(f"{dim}_before/") for k in counters)
        assert any(k.startswith(f"{dim}_after/") for k in counters)
    n_in = built["condense"].stats["items_in"]
    assert sum(v for k, v in counters.items() if k.startswith("emotion_before/")) == n_in
    after = {k.split("/")[1]: v for k, v in counters.items() if k.startswith("emotion_after/")}
    assert sum(after.values()) == built["condense"].stats["items_out"]
    kept = records(built["condense"])
    without = sum(seg["metadata"]["condense"]["emotion"] is None for seg in kept)
    assert without and after.pop("none") == without == built["condense"].stats["items_out"] - counters["reliable_after/emotion"]
    assert len(set(after.values())) == 1  # the emotion-reliable segments are strictly balanced by default
    assert counters["speakers_before"] >= counters["speakers_after"] > 0
    table = distribution_table(counters)
    assert {row for row in table.columns[0].cells} == {"emotion", "sentiment", "gender", "duration", "totals",
                                                       "reliable", "recordings"}


def test_every_segment_is_kept_or_dropped_with_a_reason(built):
    annotated = {s["id"] for s in records(built["annotate"])}
    kept = records(built["condense"])
    dropped = records(built["condense"], "excluded.jsonl")
    assert {s["id"] for s in kept} | {s["id"] for s in dropped} == annotated
    assert not {s["id"] for s in kept} & {s["id"] for s in dropped}
    assert all(s["reason"] and s["detail"] for s in dropped)
    assert {"too_short", "balance"} <= {s["reason"] for s in dropped}
    assert not records(built["condense"], "skipped.jsonl")  # deliberate drops are no failures
    stats = built["condense"].stats
    assert stats["dropped"] == {r: stats["counters"][f"dropped/{r}"] for r in stats["dropped"]} and not stats["skipped"]
    for seg in kept:
        c = seg["metadata"]["condense"]
        assert c["windows_total"] == c["windows_kept"] + len(c["dropped_windows"]) == c["windows_kept"] + len(
            [w for w in c["dropped_windows"] if w["reason"]])
        if c["emotion"] is None:  # kept for the other labels it carries reliably
            assert c["no_emotion_reason"] and "emotion" not in c["reliable_for"]
            assert c["kept_for"] and set(c["kept_for"]) <= set(c["reliable_for"])
        else:
            assert c["emotion"] in c["qualifying"] and c["sentiment"] == SENTIMENT[c["emotion"]]
            assert c["kept_for"] == ["emotion"] and "emotion" in c["reliable_for"]
        assert set(seg["metadata"]["selection"]) == {"score", "reasons"}
    assert any(seg["metadata"]["condense"]["dropped_windows"] for seg in kept)


def test_clips_are_flac_files_whose_durations_match_their_records(built):
    clips = records(built["clips"])
    assert clips
    config = ClipsConfig()
    for clip in clips:
        assert re.fullmatch(rf"{re.escape(clip['recording_id'])}-clip\d{{4}}", clip["id"])
        audio = built["clips"].dir.parent / clip["audio"]  # relative to the run, so a moved run still finds it
        assert not Path(clip["audio"]).is_absolute() and audio.resolve().parent == built["clips"].dir.resolve() / "audio"
        info = sf.info(audio)
        assert info.format == "FLAC" and info.samplerate == 16000 and info.channels == 1
        assert abs(info.frames / 16000 - (clip["end"] - clip["start"])) <= FRAME_S
        duration = clip["end"] - clip["start"]
        assert clip["selection"]["short"] or duration >= config.min_duration_s - FRAME_S
        assert duration <= config.max_duration_s + FRAME_S
    short = [c for c in clips if c["selection"]["short"]]
    assert short and all(c["id"].startswith("ravdess/") and c["start"] == 0 for c in short)
    assert len({c["audio"] for c in clips}) == len(clips)
    kept_ids = {s["id"] for s in records(built["condense"])}
    assert sorted(i for c in clips for i in c["metadata"]["kept_segments"]) == sorted(kept_ids)
    annotated = {s["id"]: s for s in records(built["annotate"])}
    for clip in clips:  # every transcribed segment inside the clip gives its words, kept or not
        inside = {i for i, s in annotated.items()
                  if s["recording_id"] == clip["recording_id"] and s["end"] > clip["start"] and s["start"] < clip["end"]}
        assert set(clip["segments"]) == inside >= set(clip["metadata"]["kept_segments"])


def test_every_tagged_word_has_emotion_gender_and_speaker(built):
    for clip in records(built["clips"]):
        assert clip["words"]
        for w in clip["words"]:
            assert w["emotion"] and w["gender"] and w["speaker"]
            assert clip["start"] <= (w["start"] + w["end"]) / 2 <= clip["end"]
        transcript = clip["tagged_transcript"]
        assert re.sub(r"\[[^]]*\]", "", transcript).split() == [w["word"] for w in clip["words"]]
        aliases = clip["metadata"]["speakers"]
        for tag in re.findall(r"\[([^]]*)\]", transcript):
            alias, gender, emotion = tag.split("|")
            assert alias in aliases and gender and emotion


def test_changing_x_reruns_condense_and_clips_only(corpus, tmp_path):
    run = tmp_path / "run"
    before = LocalExecutor().build(corpus, run, recipe(x=0.5))
    after = LocalExecutor().build(corpus, run, recipe(x=0.55))
    assert [s.already_done for s in after.stages] == [True, True, False, False]
    assert [s.dir for s in after.stages[:2]] == [s.dir for s in before.stages[:2]]
    assert all(a.dir != b.dir for a, b in zip(after.stages[2:], before.stages[2:]))
    for seg in records(after.stages[2]):
        for w in seg["windows"]:
            sentiment = SENTIMENT[w["emotion"]["label"]]
            assert sentiment != "positive" or w["valence"] >= 0.55
            assert sentiment != "neutral" or 0.4 < w["valence"] < 0.55
    again = LocalExecutor().build(corpus, run, recipe(x=0.55))
    assert not again.did_work


class CrashingClips(ClipsStage):
    """Dies on its second batch, as a killed process would."""

    batches = 0

    def process_batch(self, items):
        type(self).batches += 1
        if type(self).batches == 2:
            raise KeyboardInterrupt("simulated kill")
        return super().process_batch(items)


def test_interrupted_clips_resume_to_the_same_clips(corpus, built, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        LocalExecutor().build(corpus, run, recipe(clips_cls=CrashingClips))
    result = LocalExecutor().build(corpus, run, recipe())
    resumed = sorted(records(result.stages[-1]), key=lambda c: c["id"])
    reference = sorted(records(built["clips"]), key=lambda c: c["id"])
    assert [_without_run_path(c) for c in resumed] == [_without_run_path(c) for c in reference]
    assert result.stages[-1].stats["counters"] == built["clips"].stats["counters"]


def _without_run_path(clip: dict) -> dict:
    return {**clip, "audio": Path(clip["audio"]).name}


def test_unreadable_audio_becomes_a_skip(corpus, tmp_path):
    entries = json.loads(corpus.read_text())
    broken = [{**e, "audio": str(tmp_path / "missing.flac")} if e["id"] == "ami-mixture" else e for e in entries]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = LocalExecutor().build(path, tmp_path / "run", recipe())
    skipped = records(result.stages[-1], "skipped.jsonl")
    assert {s["reason"] for s in skipped} == {"audio_unreadable"}
    assert all(s["id"].startswith("ami-mixture-clip") and "missing.flac" in s["detail"] for s in skipped)
