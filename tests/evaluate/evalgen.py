"""Synthetic QA sets on real speech: RAVDESS clips resampled to 16 kHz FLAC in a temp folder (the
real data never enters the repository), clip records with tagged words, QA items of several types,
written as an exported QA file, a clips JSONL, a human CSV and a run directory; and the script of
the test server that plays both the cascade's text LLM (model `answerer`) and the judge (`judge`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cpqa.manifest import write_jsonl
from cpqa.records import Clip, ClipWord, QAItem, Turn

EMOTIONS = {"happiness": "happy", "anger": "angry", "sadness": "sad", "neutral": "neutral", "fear": "fearful",
            "disgust": "disgusted", "surprise": "surprised", "calm": "neutral"}


def ravdess_rows(real: Path, labels: tuple[str, ...]) -> list[dict[str, str]]:
    with open(real / "ravdess" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [next(r for r in rows if r["label"] == label) for label in labels]


def to_flac(source: Path, target: Path) -> float:
    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    mono = soxr.resample(samples.mean(axis=1), rate, 16000)
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, mono, 16000, format="FLAC", subtype="PCM_16")
    return len(mono) / 16000


def make_clip(clip_id: str, audio: Path, duration: float, text: str, emotion: str, gender: str) -> Clip:
    tokens = text.split()
    step = duration / len(tokens)
    words = [ClipWord(word=t, start=round(i * step, 3), end=round((i + 1) * step, 3), emotion=emotion,
                      gender=gender, speaker="spk") for i, t in enumerate(tokens)]
    return Clip(id=clip_id, recording_id=f"rec-{clip_id}", start=0.0, end=duration, audio=str(audio), words=words,
                tagged_transcript=f"[S1|{gender}|{emotion}] {text}")


def qa_for(clip: Clip, emotion: str, gender: str) -> list[QAItem]:
    text = " ".join(w.word for w in clip.words)
    return [
        QAItem(id=f"{clip.id}-c", clip_id=clip.id, type="C", turns=[Turn(question=f"What did {clip.id} say?",
                                                                         answer=text)]),
        QAItem(id=f"{clip.id}-de", clip_id=clip.id, type="DE",
               turns=[Turn(question=f"How does the speaker of {clip.id} feel?", answer=f"The speaker sounds {emotion}.")]),
        QAItem(id=f"{clip.id}-dg", clip_id=clip.id, type="DG",
               turns=[Turn(question=f"Is the speaker of {clip.id} male or female?", answer=f"The speaker is {gender}."),
                      Turn(question=f"And is {clip.id} calm?", answer="Not entirely.")]),
    ]


def build_set(real: Path, root: Path, labels=("happiness", "anger", "sadness")) -> dict[str, Path]:
    """Clips (16 kHz FLAC), QA items, a clips JSONL, an exported QA JSONL, a human CSV and a run."""
    clips, items = [], []
    for i, row in enumerate(ravdess_rows(real, labels)):
        audio = root / "audio" / f"clip{i}.flac"
        duration = to_flac(real / "ravdess" / row["file"], audio)
        emotion = EMOTIONS[row["label"]]
        clip = make_clip(f"clip{i}", audio, duration, row["transcript"], emotion, row["gender"])
        clips.append(clip)
        items += qa_for(clip, emotion, row["gender"])
    write_jsonl(root / "clips.jsonl", clips)
    exported = [q.model_copy(update={"metadata": {"audio": f"audio/{q.clip_id}.flac"}}) for q in items]
    write_jsonl(root / "qa.jsonl", exported)
    with open(root / "human.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "question", "answer", "type", "clip_id"])
        for clip in clips:
            writer.writerow([clip.audio, f"What emotion does {clip.id} convey?", "A strong emotion.", "de", clip.id])
    return {"clips": root / "clips.jsonl", "qa": root / "qa.jsonl", "human": root / "human.csv",
            "run": make_run(root / "run", clips, items)}


def make_run(run: Path, clips: list[Clip], items: list[QAItem], qa_stages: tuple[str, ...] = ("qa",)) -> Path:
    """A run directory holding only a clips stage and QA stages, as `cpqa build` lays them out."""
    stages = [("clips", "05-clips-0000000000", clips),
              *((name, f"{6 + i:02d}-{name}-0000000000", items) for i, name in enumerate(qa_stages))]
    for _, folder, records in stages:
        write_jsonl(run / folder / "records.jsonl", records)
        (run / folder / "_SUCCESS").touch()
    (run / "run.json").write_text(json.dumps({
        "input": str(run), "recipe": "test", "recipe_source": "test", "overrides": [], "until": None,
        "stages": [{"name": name, "dir": folder} for name, folder, _ in stages]}))
    return run


def long_clip(real: Path, root: Path, seconds: float = 9.0) -> Path:
    """Several RAVDESS clips end to end: a clip longer than a short `max_audio_s`."""
    pieces, total = [], 0.0
    for row in ravdess_rows(real, ("neutral", "happiness", "fear", "disgust")):
        samples, rate = sf.read(real / "ravdess" / row["file"], dtype="float32", always_2d=True)
        pieces.append(soxr.resample(samples.mean(axis=1), rate, 16000))
        total += len(pieces[-1]) / 16000
        if total >= seconds:
            break
    path = root / "audio" / "long.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.concatenate(pieces), 16000, format="FLAC", subtype="PCM_16")
    return path


from cpqa.evaluate.judge import RATING_REMINDER  # noqa: E402


def scripted(body) -> str:
    """answerer: a fixed answer. judge: C → 2, DE → 4, DG first turn → 5, DG follow-up → no rating;
    the paralinguistic rubric rates everything 3."""
    if body["model"] != "judge":
        return "The speaker sounds happy."
    user = body["messages"][-1]["content"]
    if user == RATING_REMINDER:  # the follow-up after a reply without a final rating line
        return "I would rather not give a number."
    if "paralinguistic reasoning" in user:
        return "Fair.\nRating: 3"
    if "calm?" in user:
        return "The answer seems fine, I would rate it highly."
    if "feel?" in user:
        return "Mostly right.\nRating: 4"
    if "male or female?" in user:
        return "Exactly right.\n**Rating:** 5"
    return "Wrong content.\nRating: 2"


def endpoint(server, model: str) -> dict:
    return {"name": "openai", "model": model, "base_url": server.url, "api_key_env": None, "max_retries": 2,
            "backoff_base_s": 0.01, "backoff_max_s": 0.05}
