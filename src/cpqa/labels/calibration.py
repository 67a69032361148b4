"""Calibration of a probe head on held-out speakers: what the head's posteriors mean, and when it
should say it cannot tell.

Every number is fitted on out-of-fold predictions (each speaker group predicted by a head trained
without it), never on the windows a head was trained on:

- **temperature scaling** (Guo et al. 2017): one T for the logits, chosen by out-of-fold NLL;
- **class-prior correction**: the head is trained with balanced class weights (a uniform prior);
  `prior` shifts its logits to the class prior expected where it is used;
- **out-of-distribution check**: how far a window lies from the training windows, on their
  principal axes (whitened) and off them (residual energy); the threshold is a high quantile of
  held-out speakers' distances, so audio unlike anything in training (noise, tones, another
  channel or recording condition) abstains;
- **reject option** (Chow 1970): the minimum posterior for a class, the highest that costs at most
  `max_ua_loss` of held-out UA (abstentions counted as errors), so the head abstains on the windows
  it most often gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heads import ProbeHead, softmax

OOD_COMPONENTS = 32
OOD_QUANTILE = 0.995
TEMPERATURES = tuple(np.round(np.arange(0.5, 5.01, 0.1), 2))
CONFIDENCES = tuple(np.round(np.arange(0.2, 0.91, 0.02), 2))


@dataclass
class OutOfFold:
    """Raw (uncalibrated) logits and OOD distances of every window, each from a head and statistics
    fitted without its speaker group."""

    logits: np.ndarray
    distance: np.ndarray
    labels: np.ndarray
    """True class index of each window."""
    classes: list[str]


def fit_ood(head: ProbeHead, z: np.ndarray, components: int = OOD_COMPONENTS) -> None:
    """Give `head` the out-of-distribution statistics of its standardised training features `z`
    (in place): their mean, principal axes and spread, and the mean energy off those axes."""
    mean = z.mean(axis=0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    k = min(components, len(s))
    head.ood_mean, head.ood_axes = mean, vt[:k]
    head.ood_std = np.maximum(s[:k] / np.sqrt(max(1, len(z) - 1)), 1e-6)
    head.meta.pop("ood_residual_scale", None)
    if k < z.shape[1]:  # features with room off the axes
        centred = z - mean
        off = (centred ** 2).sum(axis=1) - ((centred @ vt[:k].T) ** 2).sum(axis=1)
        head.meta["ood_residual_scale"] = float(max(off.mean(), 1e-9))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T of TEMPERATURES with the lowest negative log-likelihood of `softmax(logits / T)`."""
    nll = [-np.log(softmax(logits / t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(nll))])


def prior_shift(classes: list[str], prior: dict[str, float] | None) -> np.ndarray | None:
    """Log target prior minus log training prior (uniform: balanced class weights); None for no shift."""
    if not prior:
        return None
    p = np.array([prior.get(c, 0.0) for c in classes], dtype=np.float64)
    if np.any(p <= 0):
        raise ValueError(f"prior must give every class a positive share: {classes}")
    p = p / p.sum()
    return np.log(p) - np.log(1.0 / len(classes))


def unweighted_accuracy(probs: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Mean per-class recall where a row whose top posterior is below `threshold` abstains, and an
    abstention counts as an error."""
    right = (probs.argmax(axis=1) == labels) & (probs.max(axis=1) >= threshold)
    return float(np.mean([right[labels == k].mean() for k in np.unique(labels)]))


def min_confidence_for(probs: np.ndarray, labels: np.ndarray, max_ua_loss: float) -> float:
    """The highest threshold of CONFIDENCES that costs at most `max_ua_loss` of out-of-fold UA
    (abstentions counted as errors) against never abstaining: the head abstains on the windows it
    gets wrong most, at a bounded price in what it gets right."""
    floor = unweighted_accuracy(probs, labels, 0.0) - max_ua_loss
    allowed = [t for t in CONFIDENCES if unweighted_accuracy(probs, labels, t) >= floor]
    return float(max(allowed)) if allowed else float(CONFIDENCES[0])


def calibrate(head: ProbeHead, z_train: np.ndarray, oof: OutOfFold, prior: dict[str, float] | None,
              max_ua_loss: float) -> dict:
    """Fill `head` with its calibration (in place) and return the fitted numbers for its meta."""
    temperature = fit_temperature(oof.logits, oof.labels)
    shift = prior_shift(oof.classes, prior)
    logits = oof.logits / temperature + (0 if shift is None else shift)
    probs = softmax(logits)
    threshold = min_confidence_for(probs, oof.labels, max_ua_loss)
    fit_ood(head, z_train)
    head.prior_shift = shift
    fitted = {"temperature": temperature, "min_confidence": threshold,
              "ood_threshold": float(np.quantile(oof.distance, OOD_QUANTILE)),
              "calibration": {"method": "out-of-fold (held-out speakers)", "prior": prior, "max_ua_loss": max_ua_loss,
                              "ood_quantile": OOD_QUANTILE, "ood_components": int(head.ood_axes.shape[0])}}
    head.meta.update(fitted)
    return fitted
