import multiprocessing
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from cpqa.llm import LLMRequest, LLMResult, RequestCache, request_key

IDENTITY = {"backend": "openai", "model": "m"}


def _request(text: str, **params) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], **params)


def test_key_depends_on_everything_that_changes_the_output():
    base = request_key(IDENTITY, _request("a"))
    assert base == request_key(dict(IDENTITY), _request("a"))
    others = {
        request_key({**IDENTITY, "model": "other"}, _request("a")),
        request_key({**IDENTITY, "backend": "vllm"}, _request("a")),
        request_key(IDENTITY, _request("b")),
        request_key(IDENTITY, _request("a", temperature=0.7)),
        request_key(IDENTITY, _request("a", seed=1)),
        request_key(IDENTITY, _request("a", max_tokens=10)),
        request_key(IDENTITY, _request("a", stop=["\n"])),
        request_key(IDENTITY, _request("a", json_schema={"type": "object"})),
    }
    assert base not in others and len(others) == 8


def test_roundtrip_keeps_only_successes(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    good = LLMResult(text='{"a": 1}', parsed={"a": 1}, model="m", prompt_tokens=3, completion_tokens=4, latency_s=2.0)
    bad = LLMResult.failure("timeout", "no response")
    cache.put_many([("k1", good), ("k2", bad)])
    found = cache.get_many(["k1", "k2", "k3"])
    assert list(found) == ["k1"]
    hit = found["k1"]
    assert hit.cached and hit.parsed == {"a": 1} and hit.prompt_tokens == 3 and hit.latency_s == 0.0
    assert len(cache) == 1
    mode = sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _writer(path: str, worker: int) -> None:
    cache = RequestCache(path)
    for i in range(50):
        cache.put_many([(f"{worker}-{i}", LLMResult(text=str(i), model="m"))])


def test_threads_and_processes_share_one_file(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    RequestCache(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(2)]
    for p in procs:
        p.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda w: _writer(path, w), range(2, 6)))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = RequestCache(path)
    assert len(cache) == 6 * 50
    assert cache.get_many(["5-49"])["5-49"].text == "49"
