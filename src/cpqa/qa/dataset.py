"""The `qa_dataset` stage: filters that need the whole QA set, after `qa`.

- Near-duplicates across clips: items are visited in id order (so the result does not depend on
  the order records were written), and an item is a duplicate when more than
  `max_near_duplicates` earlier kept items of other clips have questions within
  `duplicate_threshold` cosine similarity of its own. A few clips may share a phrasing; a stock
  question repeated over the dataset is thinned out.
- Type balance: at most `max_per_type[T]` passing items of type T; which ones is a stable
  pseudo-random choice (a hash of the id), so the cap samples the whole dataset, not its first clips.

Why a stage of its own with `needs_fit`: both rules need every item before deciding any, and
`fit()` reruns on every (re)start, so a resumed run decides exactly as an uninterrupted one. It
keeps one embedding and a few strings per item in memory. Its input is the items the `qa` stage
kept; the verdicts are added to `filters` as in `cpqa.qa.filters`, and an item that no longer
passes is dropped (excluded.jsonl, with the item).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, field_validator

from ..ordering import stable_hash
from ..reasons import DUPLICATE_IN_DATASET, TYPE_CAP
from ..records import Drop, QAItem, QAType
from ..stage import Filter, StageConfig
from .embeddings import EMBEDDED_MINILM, check_model_name, greedy_duplicates, load_embedder
from .filters import FilterAction, outcome, record, verdict_counts

logger = logging.getLogger(__name__)


class QADatasetConfig(StageConfig):
    duplicates: FilterAction = Field("drop", description="Near-duplicate questions across clips.")
    duplicate_threshold: float = Field(0.95, gt=0, le=1, description="Cosine similarity from which two questions are near-duplicates.")
    max_near_duplicates: int = Field(10, ge=0, description="Earlier kept near-duplicates (of other clips) an item may have.")
    embedding_model: str = Field(EMBEDDED_MINILM, description="Sentence-transformers model for near-duplicates.")
    type_cap: FilterAction = Field("drop", description="What items over a type's cap get.")
    max_per_type: dict[QAType, int] = Field(default_factory=dict, description="Cap on passing items per type (absent: no cap).")
    embed_batch_size: int = Field(64, ge=1, description="Questions per embedding call.")

    @field_validator("embedding_model")
    @classmethod
    def _known_embedder(cls, name: str) -> str:
        return check_model_name(name)

    non_semantic: ClassVar[frozenset[str]] = StageConfig.non_semantic | {"embed_batch_size"}


class QADatasetStage(Filter[QAItem]):
    """Dataset-level QA filters: near-duplicates across clips and a cap per type."""

    name = "qa_dataset"
    version = "1"
    Config = QADatasetConfig
    input_type = QAItem
    output_type = QAItem
    needs_fit = True
    config: QADatasetConfig

    def fit(self, items: Iterator[QAItem]) -> None:
        c = self.config
        passing = sorted((item.id, item.clip_id, item.type, " ".join(t.question for t in item.turns))
                         for item in items)
        self._verdicts: dict[str, list[tuple[str, str]]] = {}
        duplicates: set[str] = set()
        if c.duplicates != "off" and len(passing) > 1:
            embedder = load_embedder(c.embedding_model)
            vectors = embedder.encode([text for *_, text in passing], batch_size=c.embed_batch_size)
            found = greedy_duplicates(vectors, [clip for _, clip, _, _ in passing], c.duplicate_threshold,
                                      same_group=False, max_similar=c.max_near_duplicates)
            for i, j in found.items():
                detail = (f"near-duplicate of {passing[j][0]} (cosine {float(vectors[i] @ vectors[j]):.2f}), "
                          f"more than {c.max_near_duplicates} kept items of other clips alike")
                self._verdicts.setdefault(passing[i][0], []).append((DUPLICATE_IN_DATASET, detail))
            if c.duplicates == "drop":
                duplicates = {passing[i][0] for i in found}
        kept = [(qa_id, qa_type) for qa_id, _, qa_type, _ in passing if qa_id not in duplicates]
        for qa_type, cap in c.max_per_type.items():
            of_type = sorted((qa_id for qa_id, t in kept if t == qa_type), key=stable_hash)
            for qa_id in of_type[cap:]:
                self._verdicts.setdefault(qa_id, []).append(
                    (TYPE_CAP, f"over the cap of {cap} {qa_type} items ({len(of_type)} passed)"))
        logger.info("qa_dataset: %d of %d passing items get a verdict", len(self._verdicts), len(passing))

    def keep(self, item: QAItem) -> QAItem | Drop:
        actions = {DUPLICATE_IN_DATASET: self.config.duplicates, TYPE_CAP: self.config.type_cap}
        for reason, detail in self._verdicts.get(item.id, []):
            record(item, reason, actions[reason], detail)
        for key, n in verdict_counts([item]).items():
            self.count(key, n)
        return outcome(item)
