"""Builds whose records must not change under refactoring, reduced to comparable snapshots.

Regenerate the committed snapshots (from the code on PYTHONPATH) with
    python tests/golden/records.py [dummy|local|qa ...]
They are made with the code of 9438b64 (`git worktree add --detach /tmp/golden-base 9438b64`, then
`PYTHONPATH=/tmp/golden-base/src`). A shipped model that changes (a head in labels/heads/) changes
the local records by design: copy the new file into that worktree and rebuild `local`. The local
snapshot has the emotion-short head of 5c82e72. In the qa snapshot, the text-only check of each
direct item (DE, DG, DS) carries the rating by rule it has had since the check reads the labels of
a direct answer (`judge: rules`, applied to the 9438b64 snapshot with `answerability.stated_labels`;
no verdict changed). In the local snapshot, "I was" of the AMI excerpt's "I was thinking on the same
lines" is the second speaker's, and "When they're..." the third's, since speaker changes snap
back to a sentence end across segments (`annotate._with_recording_turns`): the records were taken
from a build with that code, the skip lists kept as 9438b64 wrote them.
A snapshot is, per stage, its kept records (run paths as RUN without stage signatures, the input's as TMP, sorted by id,
floats rounded) and its excluded and skipped inputs as (id, reason)."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
RAVDESS = ("03-01-01-01-01-01-09.wav", "03-01-05-01-01-01-10.wav", "03-01-03-01-01-01-13.wav",
           "03-01-04-01-02-02-12.wav")


def _round(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _lines(path: Path, run: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text().replace(str(run), "RUN").replace(str(run.parent), "TMP")  # TMP: the input's folder
    text = re.sub(r"\b(\d\d-[a-z_]+)-[0-9a-f]{10}/", r"\1/", text)  # a stage's signature is no record content
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def snapshot(run: Path) -> dict[str, dict]:
    """Each stage of the run's last build: records, and the (id, reason) of its excluded and skipped inputs."""
    info = json.loads((run / "run.json").read_text())
    out = {}
    for stage in info["stages"]:
        d = run / stage["dir"]
        out[stage["name"]] = {
            "records": sorted((_round(r) for r in _lines(d / "records.jsonl", run)), key=lambda r: r["id"]),
            "excluded": sorted([r["id"], r["reason"]] for r in _lines(d / "excluded.jsonl", run)),
            "skipped": sorted([r["id"], r["reason"]] for r in _lines(d / "skipped.jsonl", run)),
        }
    return out


def build(input_path: Path, run: Path, recipe: str, *args: str) -> dict[str, dict]:
    subprocess.run([sys.executable, "-m", "cpqa.cli", "build", str(input_path), "-o", str(run), "--recipe", recipe,
                    *args], check=True, capture_output=True)
    return snapshot(run)


def dummy_input(folder: Path) -> Path:
    """Deterministic bursts at two rates, an empty file, a text file and a silent one."""
    from cpqa.testing.audio import write_bursts

    for i in range(3):
        write_bursts(folder / f"rec{i}.wav", duration_s=8 + 2 * i, sample_rate=(16000, 44100)[i % 2], seed=i)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    sf.write(folder / "silent.wav", np.zeros(16000 * 3, dtype=np.float32), 16000, subtype="PCM_16")
    return folder


def local_input(folder: Path) -> Path:
    """The AMI excerpt and four RAVDESS sentences at 16 kHz."""
    import soxr

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ami.flac").write_bytes((REPO / "examples/ami_excerpt/ami_meeting_excerpt.flac").read_bytes())
    for name in RAVDESS:
        samples, rate = sf.read(REAL / "ravdess" / "wav" / name, dtype="float32")
        sf.write(folder / name, soxr.resample(samples, rate, 16000), 16000)
    return folder


def build_dummy(tmp: Path) -> dict[str, dict]:
    (tmp / "audio").mkdir(parents=True)
    return build(dummy_input(tmp / "audio"), tmp / "run", "dummy")


def build_local(tmp: Path) -> dict[str, dict]:
    return build(local_input(tmp / "audio"), tmp / "run", "local", "--until", "clips", *LOCAL_DROPS)


def build_qa(tmp: Path) -> dict[str, dict]:
    """qa and qa_dataset over synthetic clips against the scripted OpenAI-compatible test server."""
    sys.path.insert(0, str(REPO / "tests" / "qa"))
    from qa_synth import ARGUMENT, GOOD_NEWS, INJECTION, ClipSource, make_clip, responder, write_clips

    try:
        from cpqa.executors.local import LocalExecutor
    except ImportError:  # the snapshot's commit, 9438b64, had it in cpqa.run
        from cpqa.run import LocalExecutor
    from cpqa.llm.testserver import OpenAITestServer
    from cpqa.qa.dataset import QADatasetStage
    from cpqa.qa.generate import QAStage
    from cpqa.recipe import Recipe, StageSpec
    from cpqa.stage import StageConfig

    clips = [make_clip(f"rec{k}-clip0000", s, context={"before": "So, what happened?", "after": ""})
             for k, s in enumerate([ARGUMENT, GOOD_NEWS, ARGUMENT, INJECTION])]
    clips_file = write_clips(tmp / "clips.jsonl", clips)
    with OpenAITestServer(responder=responder) as server:
        llm = {"name": "openai", "model": "test-model", "base_url": server.url, "api_key_env": None}
        # v1 prompts pinned: the snapshot was made with them (v2 is the default since)
        qa = QAStage.Config.model_validate({"llm": llm, "batch_size": 2, "prompt_version": "v1",
                                            "filters": {"text_only": {"action": "drop"}}})
        dataset = QADatasetStage.Config.model_validate({"max_per_type": {"EMP": 1}, "max_near_duplicates": 0})
        recipe = Recipe(name="golden-qa", documentation="", source="golden", stages=[
            StageSpec("clips", "clip_source", ClipSource, StageConfig(batch_size=4)),
            StageSpec("qa", "qa", QAStage, qa), StageSpec("qa_dataset", "qa_dataset", QADatasetStage, dataset)])
        LocalExecutor().build(clips_file, tmp / "run", recipe)
    return snapshot(tmp / "run")


LOCAL_DROPS = ("--set", "condense.min_segment_duration_s=2.2", "--set", "condense.min_snr_db=30",
               "--set", "condense.max_per_recording=3", "--set", "clips.max_clips=2")
"""Settings under which condensation and the clip budget drop some of the local input."""

BUILDS = {"dummy": build_dummy, "local": build_local, "qa": build_qa}


def path_of(part: str) -> Path:
    return HERE / f"{part}.json.gz"


def load(part: str) -> dict[str, dict]:
    return json.loads(gzip.decompress(path_of(part).read_bytes()))


def save(part: str, snap: dict[str, dict]) -> None:
    text = json.dumps(snap, indent=1, sort_keys=True).encode()
    path_of(part).write_bytes(gzip.compress(text, mtime=0))


if __name__ == "__main__":
    import tempfile

    import cpqa

    print(f"building with {cpqa.__file__}", file=sys.stderr)
    for part in sys.argv[1:] or list(BUILDS):
        with tempfile.TemporaryDirectory() as tmp:
            save(part, BUILDS[part](Path(tmp)))
        print(f"{part}: {path_of(part)} ({path_of(part).stat().st_size} bytes)", file=sys.stderr)
