import gzip
import json

from cpqa.manifest import IdLog, RecordWriter, iter_jsonl, read_records, write_jsonl
from cpqa.records import Recording


def rec(i: int) -> Recording:
    return Recording(id=f"r{i}", audio=f"/a/{i}.flac", duration=1.0 + i, sample_rate=16000, channels=1)


def test_writer_appends_and_skips_existing_ids(tmp_path):
    path = tmp_path / "records.jsonl"
    with RecordWriter(path) as w:
        assert w.write(rec(1)) and w.write(rec(2))
        assert not w.write(rec(1))
    with RecordWriter(path) as w:
        assert not w.write(rec(2))
        assert w.write(rec(3))
    ids = [r.id for r in read_records(path, Recording)]
    assert ids == ["r1", "r2", "r3"]


def test_torn_last_line_is_cut_on_reopen(tmp_path):
    path = tmp_path / "records.jsonl"
    with RecordWriter(path) as w:
        w.write(rec(1))
    with open(path, "a") as f:  # a kill in the middle of a write
        f.write('{"id": "r2", "audio": "/a/2.fl')
    assert [o["id"] for o in iter_jsonl(path)] == ["r1"]
    with RecordWriter(path) as w:
        assert w.write(rec(2))
    assert [o["id"] for o in iter_jsonl(path)] == ["r1", "r2"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_write_jsonl_gz_roundtrip_is_atomic(tmp_path):
    path = tmp_path / "out.jsonl.gz"
    assert write_jsonl(path, (rec(i) for i in range(5))) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]
    with gzip.open(path, "rt") as f:
        assert len(f.readlines()) == 5
    assert [r.duration for r in read_records(path, Recording)] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_idlog_is_durable_and_deduplicated(tmp_path):
    log = IdLog(tmp_path / "done.ids")
    log.add_all(["a", "b", "a"])
    log.close()
    again = IdLog(tmp_path / "done.ids")
    again.add_all(["b", "c"])
    again.close()
    assert (tmp_path / "done.ids").read_text().split() == ["a", "b", "c"]
