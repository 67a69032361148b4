"""The local executor: outputs, stats, markers, signatures and item-level resume."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from cpqa.errors import CPQAError
from cpqa.executors.local import LocalExecutor
from cpqa.manifest import iter_jsonl
from cpqa.recipe import Recipe, StageSpec
from cpqa.records import Recording, Segment, Skip
from cpqa.stage import SourceStage, Stage, StageConfig


class Item(BaseModel):
    id: str
    value: int


class NumberSource(SourceStage[Item, Recording]):
    """Reads one integer per line; negative numbers are skipped."""

    name = "numbers"
    input_type = Item
    output_type = Recording

    def discover(self, input_path: Path):
        for line in input_path.read_text().split():
            yield Item(id=f"n{line}", value=int(line))

    def process_batch(self, items):
        for item in items:
            if item.value < 0:
                yield Skip(id=item.id, reason="negative", detail=str(item.value))
            else:
                yield Recording(id=item.id, audio="-", duration=float(item.value), sample_rate=16000, channels=1)


class Splitter(Stage[Recording, Segment]):
    """Cuts each recording into `pieces` segments; counts setups and batches."""

    name = "split"
    input_type = Recording
    output_type = Segment
    setups = 0
    batches = 0
    crash_at_batch: int | None = None

    class Config(StageConfig):
        pieces: int = 2

    def setup(self):
        type(self).setups += 1

    def process_batch(self, items):
        type(self).batches += 1
        for rec in items:
            self.count("segments", self.config.pieces)
            for n in range(self.config.pieces):
                yield Segment(id=Segment.make_id(rec.id, n), recording_id=rec.id, start=float(n), end=n + 1.0)
                if type(self).crash_at_batch == type(self).batches and n == 0:
                    raise KeyboardInterrupt("simulated kill in the middle of a batch")


def make_recipe(pieces: int = 2, batch_size: int = 3) -> Recipe:
    return Recipe(name="test", documentation="", source="test", stages=[
        StageSpec("numbers", "numbers", NumberSource, StageConfig(batch_size=batch_size)),
        StageSpec("split", "split", Splitter, Splitter.Config(pieces=pieces, batch_size=batch_size)),
    ])


@pytest.fixture(autouse=True)
def reset_counters():
    Splitter.setups = Splitter.batches = 0
    Splitter.crash_at_batch = None


@pytest.fixture
def numbers(tmp_path) -> Path:
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(str(i) for i in [3, 1, -4, 1 + 4, 9, 2, 6, -5, 7, 8, 10]))
    return path


def segments_of(run: Path, result) -> list[dict]:
    return list(iter_jsonl(result.stages[-1].dir / "records.jsonl"))


def test_build_writes_records_stats_and_markers(tmp_path, numbers):
    run = tmp_path / "run"
    result = LocalExecutor().build(numbers, run, make_recipe())
    first, second = result.stages
    assert first.stats["items_in"] == 11 and first.stats["items_out"] == 9
    assert first.stats["skipped"] == {"negative": 2}
    assert second.stats["items_out"] == 18
    for s in result.stages:
        assert (s.dir / "_SUCCESS").exists() and (s.dir / "stats.json").exists() and (s.dir / "log").exists()
    assert s.dir.name.startswith("01-split-")
    assert (run / "run.json").exists() and (run / "logs" / "cpqa.log").exists()
    assert len({r["id"] for r in segments_of(run, result)}) == 18


def test_rerun_of_finished_build_does_no_work(tmp_path, numbers):
    run = tmp_path / "run"
    LocalExecutor().build(numbers, run, make_recipe())
    setups = Splitter.setups
    again = LocalExecutor().build(numbers, run, make_recipe())
    assert not again.did_work
    assert all(s.already_done for s in again.stages)
    assert Splitter.setups == setups  # models are never loaded for finished stages


def test_changed_parameter_reruns_that_stage_only(tmp_path, numbers):
    run = tmp_path / "run"
    before = LocalExecutor().build(numbers, run, make_recipe(pieces=2))
    after = LocalExecutor().build(numbers, run, make_recipe(pieces=3))
    assert after.stages[0].already_done and not after.stages[1].already_done
    assert after.stages[0].dir == before.stages[0].dir
    assert after.stages[1].dir != before.stages[1].dir
    assert after.stages[1].stats["items_out"] == 27


def test_batch_size_is_not_semantic(tmp_path, numbers):
    run = tmp_path / "run"
    before = LocalExecutor().build(numbers, run, make_recipe(batch_size=3))
    after = LocalExecutor().build(numbers, run, make_recipe(batch_size=5))
    assert [s.dir for s in before.stages] == [s.dir for s in after.stages]
    assert not after.did_work


def test_interrupted_stage_resumes_without_loss_or_duplicates(tmp_path, numbers):
    reference = segments_of(tmp_path / "ref", LocalExecutor().build(numbers, tmp_path / "ref", make_recipe()))

    run = tmp_path / "run"
    Splitter.batches = 0
    Splitter.crash_at_batch = 2
    with pytest.raises(KeyboardInterrupt):
        LocalExecutor().build(numbers, run, make_recipe())
    stage_dir = next(run.glob("01-split-*"))
    assert not (stage_dir / "_SUCCESS").exists()
    done_before = (stage_dir / "done.ids").read_text().split()
    assert len(done_before) == 3  # the first batch is durable, the one in flight is not

    Splitter.crash_at_batch = None
    result = LocalExecutor().build(numbers, run, make_recipe())
    assert result.stages[0].already_done
    assert result.stages[1].stats["processed_this_run"] == 9 - 3
    assert result.stages[1].stats["counters"] == {"segments": 18}  # counters of the killed run are kept
    resumed = segments_of(run, result)
    assert sorted(r["id"] for r in resumed) == sorted(r["id"] for r in reference)
    assert sorted(resumed, key=lambda r: r["id"]) == sorted(reference, key=lambda r: r["id"])


def test_duplicate_input_ids_are_an_error(tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("1\n2\n1\n")
    with pytest.raises(CPQAError, match="appears twice"):
        LocalExecutor().build(path, tmp_path / "run", make_recipe())


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(CPQAError, match="does not exist"):
        LocalExecutor().build(tmp_path / "nope", tmp_path / "run", make_recipe())


class Tagger(Stage[Recording, Recording]):
    """Adds metadata to each recording, as diarization adds speaker turns."""

    name = "tag"
    input_type = Recording
    output_type = Recording

    def process_batch(self, items):
        return [rec.model_copy(update={"metadata": {**rec.metadata, "tagged": True}}) for rec in items]


class RecordingReader(Stage[Segment, Segment]):
    """Copies what `context.recording()` says about each segment's recording onto the segment."""

    name = "read-recording"
    input_type = Segment
    output_type = Segment

    def process_batch(self, items):
        return [seg.model_copy(update={"metadata": dict(self.context.recording(seg.recording_id).metadata)})
                for seg in items]


def test_later_stages_see_the_recordings_of_the_latest_stage_that_wrote_them(tmp_path, numbers):
    recipe = Recipe(name="test", documentation="", source="test", stages=[
        StageSpec("numbers", "numbers", NumberSource, StageConfig()),
        StageSpec("tag", "tag", Tagger, StageConfig()),
        StageSpec("split", "split", Splitter, Splitter.Config()),
        StageSpec("read", "read-recording", RecordingReader, StageConfig()),
    ])
    result = LocalExecutor().build(numbers, tmp_path / "run", recipe)
    segments = segments_of(tmp_path / "run", result)
    assert len(segments) == 18 and all(seg["metadata"] == {"tagged": True} for seg in segments)


class WholeRecordings(Stage[Segment, Segment]):
    """Records which recordings each batch held."""

    name = "whole-recordings"
    input_type = Segment
    output_type = Segment
    batch_by = "recording_id"
    batches: list[list[str]] = []

    def process_batch(self, items):
        type(self).batches.append([seg.recording_id for seg in items])
        return items


def test_batch_by_never_splits_a_recording_across_batches(tmp_path, numbers):
    WholeRecordings.batches = []
    recipe = Recipe(name="test", documentation="", source="test", stages=[
        StageSpec("numbers", "numbers", NumberSource, StageConfig()),
        StageSpec("split", "split", Splitter, Splitter.Config(pieces=3)),
        StageSpec("whole", "whole-recordings", WholeRecordings, StageConfig(batch_size=2)),
    ])
    result = LocalExecutor().build(numbers, tmp_path / "run", recipe)
    assert len(segments_of(tmp_path / "run", result)) == 27
    seen = [rid for batch in WholeRecordings.batches for rid in dict.fromkeys(batch)]
    assert len(seen) == len(set(seen)) == 9  # each recording in exactly one batch
    assert all(len(batch) == 3 for batch in WholeRecordings.batches)  # batch_size 2 grows to the recording's 3


def test_the_executor_is_chosen_by_registered_name(tmp_path):
    from cpqa.run import build

    with pytest.raises(CPQAError, match="unknown executor 'nope'. Known: local, ray"):
        build(tmp_path, tmp_path / "run", recipe="dummy", executor="nope")
    with pytest.raises(CPQAError, match="--address names a Ray cluster"):
        build(tmp_path, tmp_path / "run", recipe="dummy", address="head:6379")
