"""Prior correction: per-label logit offsets added after training.

The trained counterpart of zero-shot calibration. A recogniser trained on skewed data keeps a
prior for the majority label; adding an offset per label moves the decision boundaries without
touching the adapter. The offsets are either fitted on dev to maximise the headline metric
(`fit_offsets`, never on test) or read off the training label frequencies
(`frequency_offsets`, which needs no dev split). They go into the label head's bias, which
``run.json`` stores and `Predictor` applies.

`emotune.training.calibrate` applies them after training, before temperature scaling.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)


def label_scores(gold: np.ndarray, pred: np.ndarray, k: int, metric: str) -> float:
    """``macro_f1``, ``weighted_f1``, ``ua`` (macro recall) or accuracy over ``k`` labels."""
    tp = np.bincount(gold[gold == pred], minlength=k).astype(float)
    support, predicted = np.bincount(gold, minlength=k).astype(float), np.bincount(pred, minlength=k).astype(float)
    if metric == "ua":
        return float(np.mean(np.divide(tp, support, out=np.zeros(k), where=support > 0)))
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(k), where=(support + predicted) > 0)
    if metric == "weighted_f1":
        return float((f1 * support).sum() / max(support.sum(), 1))
    if metric == "macro_f1":
        return float(f1.mean())
    return float((gold == pred).mean())


def fit_offsets(log_probs: np.ndarray, gold: Sequence[int], metric: str = "macro_f1", rounds: int = 3) -> np.ndarray:
    """Offsets (k,) added to ``log_probs`` (n, k) that maximise ``metric`` on these examples.

    Coordinate ascent over a grid of -3..3 per label, a few rounds; a change is kept only when it
    improves the score, so a well-calibrated model keeps offsets of zero.
    """
    y = np.asarray(gold)
    k = log_probs.shape[1]
    offsets = np.zeros(k)
    best = label_scores(y, (log_probs + offsets).argmax(1), k, metric)
    for _ in range(rounds):
        improved = False
        for j in range(k):
            for value in GRID:
                trial = offsets.copy()
                trial[j] = value
                score = label_scores(y, (log_probs + trial).argmax(1), k, metric)
                if score > best + 1e-9:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return offsets


def frequency_offsets(counts: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Logit adjustment (Menon et al., ICLR 2021): offsets of ``-strength * log`` of each label's
    training frequency (``counts`` per label, add-one smoothed), centred on zero.

    A model trained on skewed labels scores roughly ``log p(x|y) + log prior(y)``; subtracting the
    prior moves it towards the balanced-error rule (strength 1), so a rare label needs less evidence
    to win. Unlike `fit_offsets` it needs no dev examples, whose rare labels may number a handful.
    """
    smoothed = np.asarray(counts, dtype=float) + 1.0
    log_prior = np.log(smoothed / smoothed.sum())
    return -strength * (log_prior - log_prior.mean())
