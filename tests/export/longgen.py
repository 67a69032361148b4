"""A demo-like run with clips longer than Qwen2-Audio's 30-s window, laid out as `cpqa build` lays it
out now: clip audio inside the run, named relative to it. RAVDESS speech end to end (cut or padded
to the exact length); each word is a distinct made-up token so an evidence phrase names one moment.

    long-clip0000  45.8 s (the demo's length): windows 0-30 s and 15.8-45.8 s
    long-clip0001  58.0 s: windows 0-30 s and 28-58 s
    short-clip0000 20.0 s: heard whole

Items of each long clip (id suffix → evidence):
    early   words at 3 s                 split: window 0    drop: kept
    late    words at 40 s (58-s: 50 s)   split: window 1    drop: evidence_beyond_window
    edge    words across 30 s            split: window 1 (45.8 s) / 0 (58 s: 28.5-29.9 s); drop: beyond / kept
    vague   "the speaker's calm voice"   evidence_not_placed
    none    no evidence                  evidence_not_placed
The short clip's items (one with no evidence) are all heard whole.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import soundfile as sf
from exportgen import load_16k, manifest_rows, write_run

from cpqa.records import Clip, ClipWord, QAItem, Turn

CLIPS = {"long-clip0000": ("long", 45.8, {"early": 3.0, "late": 40.0, "edge": 29.6}),
         "long-clip0001": ("long", 58.0, {"early": 3.0, "late": 50.0, "edge": 28.6}),
         "short-clip0000": ("short", 20.0, {"early": 3.0, "late": 15.0})}
WORD_S = 0.4
EXPECTED = {"split": {"items_whole": 4, "items_in_windows": 6, "clips_split": 2, "windows_written": 4,
                      "dropped": {"evidence_not_placed": 4}},
            "drop": {"items_whole": 4, "items_in_windows": 3, "clips_split": 2, "windows_written": 2,
                     "dropped": {"evidence_beyond_window": 3, "evidence_not_placed": 4}}}
"""What an export with a 30-s window keeps and drops (the short clip's 4 items are heard whole)."""


def tokens():
    syllables = ["ba", "do", "ki", "lu", "me", "no", "pa", "ri", "so", "tu"]
    for a, b, c in itertools.product(syllables, repeat=3):
        yield a + b + c


def build_long_run(real: Path, root: Path) -> Path:
    rows = [r for rows in manifest_rows(real).values() for r in rows]
    speech = np.concatenate([load_16k(real / "ravdess" / r["file"]) for r in rows[:20]])
    run = root / "run"
    names = tokens()
    clips, items = [], []
    for cid, (rec, duration, moments) in CLIPS.items():
        samples = np.resize(speech, round(duration * 16000)).astype(np.float32)
        audio = run / "05-clips-a" / "audio" / f"{cid}.flac"
        audio.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio, samples, 16000, format="FLAC", subtype="PCM_16")
        words = [ClipWord(word=next(names), start=round(t, 3), end=round(t + WORD_S * 0.9, 3), emotion="neutral",
                          gender="female", speaker="A1") for t in np.arange(0.0, duration - WORD_S, WORD_S)]
        clips.append(Clip(id=cid, recording_id=rec, start=0.0, end=duration, words=words,
                          audio=audio.relative_to(run).as_posix(), tagged_transcript=" ".join(w.word for w in words)))
        for name, at in moments.items():
            said = [w.word for w in words if at <= w.start < at + 1.2]
            items.append(item(cid, name, f"when she says '{' '.join(said)}'"))
        items += [item(cid, "vague", "the speaker's calm voice"), item(cid, "none", None)]
    return write_run(run, clips, items)


def item(cid: str, name: str, evidence: str | None) -> QAItem:
    return QAItem(id=f"{cid}-{name}", clip_id=cid, type="C", evidence=evidence,
                  filters={"passed": True, "reasons": [], "flags": [], "details": {}},
                  turns=[Turn(question=f"What does she say ({name})?", answer="Some made-up words.")])
