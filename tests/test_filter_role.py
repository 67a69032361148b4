"""The Filter role: a step keeps an item or drops it with a reason. Drops go to excluded.jsonl and
count as dropped/<reason>; failures stay Skips in skipped.jsonl; a resume treats both as done."""

from pathlib import Path

from cpqa.executors.local import LocalExecutor
from cpqa.manifest import iter_jsonl
from cpqa.reasons import AUDIO_UNREADABLE, TOO_SHORT
from cpqa.recipe import Recipe, StageSpec
from cpqa.records import Drop, Recording, Skip
from cpqa.stage import Filter, StageConfig
from cpqa.status import run_status
from test_executor import NumberSource


class LongEnough(Filter[Recording]):
    """Keeps recordings of 3 s or more; one of 13 s stands for a file it cannot read."""

    name = "long_enough"
    input_type = Recording
    output_type = Recording

    def keep(self, item):
        if item.duration == 13:
            return Skip(id=item.id, reason=AUDIO_UNREADABLE, detail="cannot read it")
        if item.duration < 3:
            return Drop(id=item.id, reason=TOO_SHORT, detail=f"{item.duration} s")
        return item


def build(input_path: Path, run: Path):
    recipe = Recipe(name="filter", documentation="", source="test", stages=[
        StageSpec("numbers", "numbers", NumberSource, StageConfig(batch_size=2)),
        StageSpec("long_enough", "long_enough", LongEnough, StageConfig(batch_size=2))])
    return LocalExecutor().build(input_path, run, recipe)


def test_drops_and_failures_are_written_apart_counted_and_resumed(tmp_path):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("1 5 2 13 8\n")
    result = build(numbers, tmp_path / "run")
    stage = result.stages[-1]
    assert [r["id"] for r in iter_jsonl(stage.dir / "records.jsonl")] == ["n5", "n8"]
    assert [(d["id"], d["reason"]) for d in iter_jsonl(stage.dir / "excluded.jsonl")] == [("n1", "too_short"),
                                                                                            ("n2", "too_short")]
    assert [(s["id"], s["reason"]) for s in iter_jsonl(stage.dir / "skipped.jsonl")] == [("n13", "audio_unreadable")]
    assert stage.stats["dropped"] == {"too_short": 2} and stage.stats["skipped"] == {"audio_unreadable": 1}
    assert stage.stats["counters"]["dropped/too_short"] == 2 and result.skipped_total == 1
    status = {s["name"]: s for s in run_status(tmp_path / "run")["stages"]}["long_enough"]
    assert (status["dropped"], status["skipped"]) == ({"too_short": 2}, {"audio_unreadable": 1})

    # An interrupted stage (no _SUCCESS) resumes: dropped and failed inputs are done, nothing is redone.
    (stage.dir / "_SUCCESS").unlink()
    partial = {s["name"]: s for s in run_status(tmp_path / "run")["stages"]}["long_enough"]
    assert partial["state"] == "partial"
    assert (partial["dropped"], partial["skipped"]) == ({"too_short": 2}, {"audio_unreadable": 1})
    again = build(numbers, tmp_path / "run").stages[-1]
    assert again.stats["processed_this_run"] == 0
    assert len(list(iter_jsonl(stage.dir / "excluded.jsonl"))) == 2 and again.stats["dropped"] == {"too_short": 2}
