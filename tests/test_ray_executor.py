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
