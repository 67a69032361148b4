"""Clusterings of unit-length speaker embeddings (registry 'clustering'): each gives a label
0..k-1 per embedding of at least two. `spectral` (Wang et al. 2018, Park et al. 2019) estimates the
speaker count from the affinity graph's eigengap; `ahc` cuts average-linkage clusters at a cosine
distance. `cpqa.audio.embedding_cluster` names one by its `clustering` option."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import require

if TYPE_CHECKING:
    from .embedding_cluster import EmbeddingClusterDiarizer

SPECTRAL_MAX_SPEAKERS = 10
"""Spectral clustering looks for the largest eigengap among at most this many speakers when
max_speakers is not set: the gaps far down the spectrum of a small graph are noise."""


def ahc_labels(embeddings: np.ndarray, config: EmbeddingClusterDiarizer.Config) -> np.ndarray:
    """Average-linkage clusters (0..k-1) of at least two embeddings, cut at `threshold` or a count."""
    hierarchy = require("scipy.cluster.hierarchy", "labels", "scipy")
    tree = hierarchy.linkage(embeddings, method="average", metric="cosine")
    if config.num_speakers:
        labels = hierarchy.fcluster(tree, t=config.num_speakers, criterion="maxclust")
    else:
        labels = hierarchy.fcluster(tree, t=config.threshold, criterion="distance")
        count = int(labels.max())
        bounded = min(max(count, config.min_speakers or 1), config.max_speakers or len(embeddings))
        if bounded != count:
            labels = hierarchy.fcluster(tree, t=bounded, criterion="maxclust")
    return labels - 1  # fcluster numbers clusters from 1


def spectral_labels(embeddings: np.ndarray, config: EmbeddingClusterDiarizer.Config) -> np.ndarray:
    """Spectral clusters (0..k-1) of at least two embeddings (Wang et al. 2018; Park et al. 2019):
    cosine affinities, each row pruned to its `neighbour_fraction` nearest windows and symmetrised;
    the speaker count is the largest eigengap of the normalised Laplacian (or the one given), and
    k-means groups the rows of its first k eigenvectors."""
    linalg = require("scipy.linalg", "labels", "scipy")
    cluster = require("sklearn.cluster", "labels", "scikit-learn")
    n = len(embeddings)
    affinity = np.maximum(embeddings @ embeddings.T, 0.0)  # graph weights cannot be negative
    np.fill_diagonal(affinity, 0.0)  # no window is its own neighbour
    low, high = config.min_speakers or 1, min(config.max_speakers or SPECTRAL_MAX_SPEAKERS, n)
    if config.num_speakers:
        low = high = min(config.num_speakers, n)
    if high == 1 or (low == 1 and affinity.sum() / (n * (n - 1)) >= config.one_speaker_similarity):
        return np.zeros(n, dtype=int)
    kept = max(1, int(np.ceil(config.neighbour_fraction * (n - 1))))
    nearest = np.argsort(-affinity, axis=1, kind="stable")[:, :kept]
    pruned = np.zeros_like(affinity)
    rows = np.arange(n)[:, None]
    pruned[rows, nearest] = affinity[rows, nearest]
    pruned = (pruned + pruned.T) / 2
    scale = 1 / np.sqrt(np.maximum(pruned.sum(axis=1), 1e-12))
    laplacian = np.eye(n) - scale[:, None] * pruned * scale[None, :]
    eigenvalues, eigenvectors = linalg.eigh(laplacian, subset_by_index=[0, min(high, n - 1)])
    gaps = np.diff(eigenvalues)  # gaps[k - 1]: between the k-th and (k+1)-th smallest
    count = low + int(np.argmax(gaps[low - 1:high])) if low < n else n
    if count == 1:
        return np.zeros(n, dtype=int)
    spectrum = eigenvectors[:, :count]
    spectrum /= np.maximum(np.linalg.norm(spectrum, axis=1, keepdims=True), 1e-12)
    return cluster.KMeans(count, n_init=10, random_state=0).fit_predict(spectrum)


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean embedding of each label 0..labels.max()."""
    sums = np.zeros((labels.max() + 1, embeddings.shape[1]))
    np.add.at(sums, labels, embeddings)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
