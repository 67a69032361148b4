"""A small synthetic run for the review app: three clips cut from real speech (two AMI meeting
excerpts, one RAVDESS utterance resampled 48 → 16 kHz) and six generated QA, some of them carrying
HTML and script in their text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

pytest.importorskip("fastapi")

XSS_QUESTION = "<script>window.__xss = 1</script>What is said first?"
XSS_ANSWER = '<img src=x onerror="window.__xss = 2">Nothing much.'

# (clip id, recording, start s, end s, source) — source: (folder, glob, offset s in the file)
CLIPS = [
    ("trn00-c000", "trn00", 0.0, 6.0, ("ami_meetings/meeting_clips_30s", "trn00.wav", 0.0)),
    ("trn01-c005", "trn01", 5.0, 11.0, ("ami_meetings/meeting_clips_30s", "trn01.wav", 5.0)),
    ("ravdess-angry", "ravdess-angry", 0.0, 3.0, ("ravdess/wav", "03-01-05-*.wav", 0.0)),
]
TAGS = {
    "trn00-c000": [("SPK_A", "female", "happy"), ("SPK_A", "female", "neutral"), ("SPK_B", "male", "neutral")],
    "trn01-c005": [("SPK_C", "male", "sad"), ("SPK_D", "female", "neutral")],
    "ravdess-angry": [("SPK_1", "male", "angry")],
}
# (qa id, clip id, type, turns)
QA = [
    ("trn00-c000-qa0", "trn00-c000", "C", [("What are they planning?", "A product design meeting.")]),
    ("trn00-c000-qa1", "trn00-c000", "DE", [("How does the first speaker sound?", "Cheerful.")]),
    ("trn00-c000-qa2", "trn00-c000", "C", [("Who speaks last?", "A man.")]),
    ("trn01-c005-qa0", "trn01-c005", "DE", [(XSS_QUESTION, XSS_ANSWER)]),
    ("trn01-c005-qa1", "trn01-c005", "CE", [("Does the mood change?", "It lightens.")]),
    ("ravdess-angry-qa0", "ravdess-angry", "EMP",
     [("How would you reply to the speaker?", "Calmly acknowledge the frustration."),
      ("And then?", "Offer to help.")]),
]
RUN_INFO = {"input": "synthetic", "recipe": "test", "recipe_source": "test", "overrides": [], "until": None,
            "cpqa_version": "0", "stages": [{"name": "clips", "dir": "05-clips-abc"}, {"name": "qa", "dir": "06-qa-def"}]}


def _cut(real: Path, folder: str, pattern: str, offset: float, seconds: float) -> np.ndarray:
    path = min((real / folder).glob(pattern))
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != 16000:
        audio = soxr.resample(audio, rate, 16000)
    return audio[int(offset * 16000): int((offset + seconds) * 16000)]


def _words(clip_id: str, start: float, end: float) -> list[dict]:
    tags = TAGS[clip_id]
    n = int((end - start) / 0.5)
    words = []
    for i in range(n):
        speaker, gender, emotion = tags[i * len(tags) // n]
        words.append({"word": f"w{i}", "start": round(start + 0.5 * i, 2), "end": round(start + 0.5 * i + 0.4, 2),
                      "emotion": emotion, "gender": gender, "speaker": speaker})
    return words


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_run(root: Path, real: Path) -> Path:
    run = root / "run"
    clips_dir, qa_dir = run / "05-clips-abc", run / "06-qa-def"
    (clips_dir / "audio").mkdir(parents=True)
    qa_dir.mkdir()
    (run / "run.json").write_text(json.dumps(RUN_INFO))
    clips = []
    for i, (clip_id, rec, start, end, (folder, pattern, offset)) in enumerate(CLIPS):
        flac = clips_dir / "audio" / f"{clip_id}.flac"
        sf.write(flac, _cut(real, folder, pattern, offset, end - start), 16000, subtype="PCM_16")
        words = _words(clip_id, start, end)
        tagged = " ".join(f"{w['word']}<{w['emotion']},{w['gender']},{w['speaker']}>" for w in words)
        clips.append({
            "id": clip_id, "recording_id": rec, "start": start, "end": end,
            # one absolute path (inside the run) beside the relative ones: both forms occur
            "audio": str(flac.resolve()) if i == 1 else flac.relative_to(run).as_posix(),
            "words": words,
            "tagged_transcript": tagged + (" <script>window.__xss = 3</script>" if i == 2 else ""),
            "context": {"before": "<b>earlier</b> talk", "after": "later talk"},
            "selection": {"score": 0.8 - 0.1 * i, "reasons": ["balanced emotion"]},
        })
    _write_lines(clips_dir / "records.jsonl", clips)
    _write_lines(qa_dir / "records.jsonl", [
        {"id": q, "clip_id": c, "type": t, "turns": [{"question": a, "answer": b} for a, b in turns],
         "generator": {"model": "test-llm", "prompt_version": "1", "raw_output": "{}"}, "filters": {"passed": True}}
        for q, c, t, turns in QA])
    for d in (clips_dir, qa_dir):
        (d / "_SUCCESS").touch()
    return run


@pytest.fixture
def review_run(tmp_path, real_data) -> Path:
    return make_run(tmp_path, real_data)


@pytest.fixture
def client_for():
    """A TestClient for a run, as one reviewer (or none); `token` as in `create_app`."""
    from fastapi.testclient import TestClient

    from cpqa.review.app import create_app

    clients = []

    def make(run: Path, reviewer: str | None = "alice", **kwargs) -> TestClient:
        client = TestClient(create_app(run, **kwargs), base_url="http://127.0.0.1")
        if reviewer:
            assert client.post("/api/reviewer", json={"name": reviewer}).status_code == 200
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
