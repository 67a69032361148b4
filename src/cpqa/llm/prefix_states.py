"""Saved KV states of earlier prompts, found again by their longest common token prefix.

llama.cpp keeps only the sequence it evaluated last: a request that starts like that one reuses
its KV cache, any other re-reads its whole prompt. Requests about one clip alternate between a
few prompts (generation, its follow-ups, the text-only check, the judge), so this store keeps the
KV state of several of them; llama-cpp-python's `Llama` asks it (`Llama.cache`) before each
completion for the saved state sharing the longest prefix with the new prompt and loads it when
that beats what is already in the context. Least recently used states go first when the store
exceeds its size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SavedPrefix:
    """The KV state of one evaluated token sequence (`input_ids`, the name `Llama` reads)."""

    input_ids: np.ndarray
    kv: Any
    """The sequence's KV cells as llama.cpp serialised them (a ctypes byte array)."""
    size: int


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixStates:
    """An LRU store of `SavedPrefix` keyed by token sequence, at most `capacity_bytes` in all,
    looked up by longest common prefix (`store[tokens]`, KeyError when nothing shares one)."""

    def __init__(self, capacity_bytes: int, min_prefix: int = 16):
        self.capacity_bytes = capacity_bytes
        self.min_prefix = min_prefix
        """A shorter match (a chat template's first tokens) is not worth a state load."""
        self._states: OrderedDict[bytes, SavedPrefix] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.saves = 0
        self.evictions = 0

    def __bool__(self) -> bool:  # `Llama` tests `if self.cache:`; an empty store is still a store
        return True

    def __len__(self) -> int:
        return len(self._states)

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._states.values())

    def best(self, tokens: Sequence[int]) -> tuple[int, SavedPrefix | None]:
        """The saved state sharing the longest prefix with `tokens`, and that length."""
        query = np.asarray(tokens, dtype=np.intc)
        best_len, best_key = 0, None
        for key, state in self._states.items():
            n = common_prefix(state.input_ids, query)
            if n > best_len:
                best_len, best_key = n, key
        return best_len, (self._states[best_key] if best_key is not None else None)

    def __getitem__(self, tokens: Sequence[int]) -> SavedPrefix:
        self.lookups += 1
        length, state = self.best(tokens)
        if state is None or length < self.min_prefix:
            raise KeyError("no saved prefix")
        self.hits += 1
        self._states.move_to_end(state.input_ids.tobytes())
        return state

    def __setitem__(self, tokens: Sequence[int], state: SavedPrefix) -> None:
        """Keep `state`, keyed by the tokens it holds (`Llama` passes prompt + completion, of which
        the last sampled token never entered the KV cache). A state it extends is dropped."""
        if state.size > self.capacity_bytes:
            return
        key = state.input_ids.tobytes()
        for old_key, old in list(self._states.items()):
            if len(old.input_ids) <= len(state.input_ids) and common_prefix(old.input_ids, state.input_ids) == len(old.input_ids):
                del self._states[old_key]
        self._states[key] = state
        self.saves += 1
        while self.size_bytes > self.capacity_bytes:
            self._states.popitem(last=False)
            self.evictions += 1
