"""The Ray Data executor produces the records of the local executor, on a local Ray it starts."""

import pytest

from cpqa.run import build
from cpqa.testing.audio import write_bursts

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def stage_lines(run, name):
    path = next(run.glob(f"*-{name}-*")) / "records.jsonl"
    return path.read_text().replace(str(run), "RUN").splitlines()


@pytest.mark.timeout(300)
def test_ray_executor_matches_local_executor_and_resumes(tmp_path, local_ray):
    for i in range(4):
        write_bursts(tmp_path / "in" / f"rec{i}.wav", duration_s=9 + i, sample_rate=22050, seed=i)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF....nonsense")
    local = build(tmp_path / "in", tmp_path / "local", recipe="dummy", overrides=["segment.batch_size=2"])
    distributed = build(tmp_path / "in", tmp_path / "ray", recipe="dummy", executor="ray",
                        overrides=["segment.batch_size=2"])
    for name in ("ingest", "segment", "transcribe"):
        assert stage_lines(tmp_path / "ray", name) == stage_lines(tmp_path / "local", name)
    assert [s.stats["items_out"] for s in distributed.stages] == [s.stats["items_out"] for s in local.stages]
    assert distributed.stages[0].stats["skipped"] == {"undecodable": 1}
    again = build(tmp_path / "in", tmp_path / "ray", recipe="dummy", executor="ray", overrides=["segment.batch_size=2"])
    assert not again.did_work


@pytest.mark.timeout(120)
def test_the_driver_saves_the_fit_counters_once(tmp_path, local_ray, monkeypatch):
    import json
    import types

    from cpqa.executors.base import StageOutputs
    from cpqa.executors.ray import COUNTERS, DONE, FIT, OUT, RayExecutor
    from cpqa.records import Segment
    from cpqa.rundir import FIT_COUNTERS

    rows = []
    for batch in (["a"], ["b"]):  # two actors' batches, each opened by the same whole-input fit counters
        seg = Segment(id=batch[0], recording_id="r", start=0.0, end=1.0)
        rows += [{"kind": FIT, "payload": json.dumps({"kept": 2})}, {"kind": OUT, "payload": seg.model_dump_json()},
                 {"kind": COUNTERS, "payload": json.dumps({"n": 1})}, {"kind": DONE, "payload": json.dumps(batch)}]
    saved = []
    plan = types.SimpleNamespace(dir=tmp_path, spec=types.SimpleNamespace(name="fitting"))
    stage = types.SimpleNamespace(output_type=Segment)
    dataset = types.SimpleNamespace(iter_rows=lambda: iter(rows))
    outputs = StageOutputs(tmp_path)
    import cpqa.executors.ray as ray_executor

    real_save = ray_executor.save_fit_counters
    monkeypatch.setattr(ray_executor, "save_fit_counters", lambda *a: (saved.append(a), real_save(*a)))
    try:
        assert RayExecutor()._drain(plan, stage, dataset, outputs) == 2
    finally:
        outputs.close()
    assert len(saved) == 1 and json.loads((tmp_path / FIT_COUNTERS).read_text()) == {"kept": 2}
    assert (tmp_path / "records.jsonl").read_text().count('"id"') == 2
