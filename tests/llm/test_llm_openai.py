"""The OpenAI-compatible backend against a local server that injects faults per request."""

import asyncio
import json
import logging
import re
import time
from email.utils import formatdate

import httpx
import pytest

from cpqa.errors import CPQAError
from cpqa.llm import LLMRequest, RequestCache
from cpqa.llm.openai_compatible import OpenAIBackend, OpenAIConfig, _retry_after_s
from cpqa.llm.testserver import Drop, Fail, Garble, OpenAITestServer, Reply, Stall

pytestmark = pytest.mark.timeout(120)

SCHEMA = {
    "type": "object",
    "properties": {"item": {"type": "integer"}, "answer": {"type": "string"}},
    "required": ["item", "answer"],
}


def item_of(body) -> int:
    return int(re.search(r"item-(\d+)", body["messages"][0]["content"]).group(1))


def answer(body) -> str:
    return json.dumps({"item": item_of(body), "answer": f"answer {item_of(body)}"})


def requests_for(n: int, **params) -> list[LLMRequest]:
    return [LLMRequest(messages=[{"role": "user", "content": f"write QA for item-{i}"}], json_schema=SCHEMA, **params)
            for i in range(n)]


def backend(server, tmp_path=None, **options) -> OpenAIBackend:
    config = {"model": "test-model", "base_url": server.url, "api_key_env": None, "timeout_s": 0.5,
              "max_retries": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.2, "concurrency": 8,
              **options}
    if tmp_path is not None:
        config["cache_path"] = str(tmp_path / "llm-cache.sqlite")
    return OpenAIBackend(OpenAIConfig(**config))


# Per item (by id mod 8): what the server does on attempts 1, 2, 3, ...; past the list it replies.
FAULTS = {
    0: [],
    1: [Fail(429, retry_after=0.15)],
    2: [Fail(500), Fail(502)],
    3: [Stall(3.0)],
    4: [Drop()],
    5: [Garble()],
    6: [Fail(503)] * 10,  # never recovers: recorded failure
    7: [Fail(400, body='{"error": {"message": "prompt too long"}}')],  # not retryable
}
EXPECTED_RETRIES = {0: 0, 1: 1, 2: 2, 3: 1, 4: 1, 5: 1, 6: 3, 7: 0}


def fault_script(body, attempt):
    faults = FAULTS[item_of(body) % 8]
    return faults[attempt - 1] if attempt <= len(faults) else Reply()


def test_batch_with_injected_faults_completes_with_results_or_reasons(tmp_path):
    n = 24
    with OpenAITestServer(fault_script, responder=answer) as server:
        llm = backend(server, tmp_path)
        results = llm.generate_many_sync(requests_for(n))
        calls = len(server.received)
        received = list(server.received)

    assert len(results) == n
    for i, result in enumerate(results):
        kind = i % 8
        if kind == 6:
            assert (result.skip_reason, result.attempts) == ("http_503", 4)
            assert "gave up after 4 attempts" in result.error
        elif kind == 7:
            assert (result.skip_reason, result.attempts) == ("http_400", 1)
            assert "prompt too long" in result.error
        else:
            assert result.ok, result.error
            assert result.parsed == {"item": i, "answer": f"answer {i}"}
            assert result.attempts == 1 + EXPECTED_RETRIES[kind]
            assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.model == "test-model"
    # nothing duplicated, nothing lost: every success is its own item, once
    assert [r.parsed["item"] for r in results if r.ok] == [i for i in range(n) if i % 8 not in (6, 7)]

    per_item = n // 8
    assert llm.stats.retries == per_item * sum(EXPECTED_RETRIES.values())
    assert llm.stats.calls == calls == per_item * sum(1 + r for r in EXPECTED_RETRIES.values())
    assert llm.stats.failed == 2 * per_item
    assert dict(llm.stats.failures) == {"http_503": per_item, "http_400": per_item}
    stats = llm.stats.as_dict()
    assert stats["llm_requests"] == n and stats["llm_failed_http_503"] == per_item

    # Retry-After respected: the retry of a 429 came no sooner than the server asked
    for i in range(1, n, 8):
        times = [r.at for r in received if item_of(r.body) == i]
        assert times[1] - times[0] >= 0.15

    # Rerun: finished work comes from the cache; only the failures go back to the server.
    with OpenAITestServer(responder=answer) as server:
        again = backend(server, tmp_path).generate_many_sync(requests_for(n))
        resent = sorted(item_of(r.body) for r in server.received)
    assert resent == [i for i in range(n) if i % 8 in (6, 7)]
    assert all(r.ok for r in again)
    assert [r.cached for r in again] == [i % 8 not in (6, 7) for i in range(n)]
    assert [r.parsed for r in again if r.cached] == [r.parsed for r in results if r.ok]


def test_rerun_of_finished_work_makes_zero_calls(tmp_path):
    with OpenAITestServer(responder=answer) as server:
        first = backend(server, tmp_path)
        results = first.generate_many_sync(requests_for(10))
        assert len(server.received) == 10 and all(r.ok for r in results)
        second = backend(server, tmp_path)
        again = second.generate_many_sync(requests_for(10))
        assert len(server.received) == 10
    assert second.stats.calls == 0 and second.stats.cache_hits == 10
    assert [r.parsed for r in again] == [r.parsed for r in results] and all(r.cached for r in again)


def test_identical_requests_in_a_batch_are_sent_once():
    with OpenAITestServer(responder=answer) as server:
        results = backend(server).generate_many_sync(requests_for(3) + requests_for(3))
        assert len(server.received) == 3
    assert [r.parsed["item"] for r in results] == [0, 1, 2, 0, 1, 2]
    results[0].parsed = None  # results are distinct objects
    assert results[3].parsed is not None


def test_invalid_output_is_repaired_or_retried_then_recorded_with_raw_text():
    def responder(body):
        item = item_of(body)
        corrected = len(body["messages"]) > 1  # the retry carries the bad reply and the error
        if item == 0:
            return f"Here you go:\n```json\n{answer(body)}\n```"
        if item == 1:
            return answer(body) if corrected else '{"item": "one"}'
        return "I'd rather not."

    with OpenAITestServer(responder=responder) as server:
        llm = backend(server)
        fenced, retried, hopeless = llm.generate_many_sync(requests_for(3))
        retry_bodies = [r.body for r in server.received if len(r.body["messages"]) > 1]

    assert fenced.ok and fenced.repaired and fenced.attempts == 1 and fenced.parsed["item"] == 0
    assert retried.ok and retried.attempts == 2 and retried.parsed == {"item": 1, "answer": "answer 1"}
    assert hopeless.skip_reason == "invalid_output" and hopeless.attempts == 2
    assert hopeless.text == "I'd rather not." and "not JSON" in hopeless.error
    assert llm.stats.repaired == 1 and llm.stats.retries == 2 and llm.stats.failures == {"invalid_output": 1}
    feedback = retry_bodies[0]["messages"]
    assert [m["role"] for m in feedback] == ["user", "assistant", "user"] and "not valid" in feedback[2]["content"]


def test_request_body_carries_schema_and_sampling_parameters():
    with OpenAITestServer(responder=answer) as server:
        backend(server).generate_many_sync(requests_for(1, temperature=0.3, max_tokens=77, seed=5, stop=["END"]))
        backend(server, json_mode="none", extra_body={"top_p": 0.9}).generate_many_sync(requests_for(2)[1:])
        first, second = (r.body for r in server.received)
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    assert (first["temperature"], first["max_tokens"], first["seed"], first["stop"]) == (0.3, 77, 5, ["END"])
    assert "response_format" not in second and second["top_p"] == 0.9 and "seed" not in second


@pytest.mark.parametrize("concurrency", [3, 20])  # 20: more workers than one connection pool holds
def test_concurrency_is_bounded_and_reached(concurrency):
    n = 3 * concurrency
    with OpenAITestServer(latency_s=0.2) as server:
        results = backend(server, concurrency=concurrency).generate_many_sync(
            [LLMRequest(messages=[{"role": "user", "content": f"r{i}"}]) for i in range(n)])
        assert server.max_in_flight == concurrency
    assert [r.text for r in results] == [f"r{i}" for i in range(n)] and all(r.parsed is None for r in results)


def test_endpoint_down_is_a_recorded_failure_for_every_item():
    with OpenAITestServer() as server:
        url = server.url
    llm = OpenAIBackend(OpenAIConfig(model="m", base_url=url, api_key_env=None, max_retries=1, backoff_base_s=0.01))
    results = llm.generate_many_sync(requests_for(3))
    assert [r.skip_reason for r in results] == ["connection"] * 3


SECRET = "sk-test-DO-NOT-LOG-0123456789"


def test_api_key_is_sent_but_never_logged_or_recorded(monkeypatch, caplog):
    monkeypatch.setenv("CPQA_TEST_KEY", SECRET)

    def leaky(body, attempt):  # a server that echoes the key back in its error bodies
        if item_of(body) == 0:
            return Fail(400, body=json.dumps({"error": f"bad request from key {SECRET}"}))
        return Fail(500, body=json.dumps({"error": f"overloaded, key {SECRET}"})) if attempt == 1 else Reply()

    caplog.set_level(logging.DEBUG)
    with OpenAITestServer(leaky, responder=answer) as server:
        llm = backend(server, api_key_env="CPQA_TEST_KEY")
        results = llm.generate_many_sync(requests_for(2))
        headers = [r.headers for r in server.received]
    assert all(h["authorization"] == f"Bearer {SECRET}" for h in headers)
    assert results[0].skip_reason == "http_400" and "***" in results[0].error
    assert results[1].ok
    assert SECRET not in caplog.text
    assert all(SECRET not in json.dumps(r.to_dict()) for r in results)
    assert SECRET not in repr(llm.config) and SECRET not in json.dumps(llm.identity())


def test_rejected_key_fails_fast_with_a_redacted_message(monkeypatch, caplog):
    monkeypatch.setenv("CPQA_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)

    def reject(body, attempt):
        return Fail(401, body=json.dumps({"error": f"Incorrect API key provided: {SECRET}"}))

    with OpenAITestServer(reject) as server:
        llm = backend(server, api_key_env="CPQA_TEST_KEY", api_key_header="api-key")
        with pytest.raises(CPQAError, match=r"HTTP 401.*CPQA_TEST_KEY") as info:
            llm.generate_many_sync(requests_for(4))
        assert server.received[0].headers["api-key"] == SECRET
    assert SECRET not in str(info.value) and "***" in str(info.value)
    assert SECRET not in caplog.text


def test_sync_wrapper_works_inside_a_running_event_loop():
    async def caller(llm):
        return llm.generate_many_sync(requests_for(2))

    with OpenAITestServer(responder=answer) as server:
        results = asyncio.run(caller(backend(server)))
    assert [r.parsed["item"] for r in results] == [0, 1]


def test_shared_cache_object_can_be_attached(tmp_path):
    cache = RequestCache(tmp_path / "shared.sqlite")
    with OpenAITestServer(responder=answer) as server:
        for _ in range(2):
            llm = backend(server)
            llm.cache = cache
            llm.generate_many_sync(requests_for(2))
        assert len(server.received) == 2


def test_retry_after_forms_and_backoff_bounds():
    assert _retry_after_s(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert _retry_after_s(httpx.Headers({"retry-after-ms": "250", "Retry-After": "1"})) == 0.25
    assert 8 <= _retry_after_s(httpx.Headers({"Retry-After": formatdate(time.time() + 10)})) <= 10
    assert _retry_after_s(httpx.Headers({"Retry-After": "soon"})) is None
    assert _retry_after_s(httpx.Headers({})) is None

    llm = OpenAIBackend(OpenAIConfig(model="m", api_key_env=None, backoff_base_s=1.0, backoff_max_s=5.0))
    for attempt, (low, high) in {1: (0.5, 1.0), 2: (1.0, 2.0), 3: (2.0, 4.0), 6: (2.5, 5.0)}.items():
        assert all(low <= llm._backoff_s(attempt, None) <= high for _ in range(50))
    assert 2.0 <= llm._backoff_s(1, 2.0) <= 2.2 and llm._backoff_s(1, 100.0) == 5.0
