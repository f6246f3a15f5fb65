"""Classification metrics (scikit-learn) and the confusion-matrix files of a run."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)


def classification_metrics(gold: Sequence[int], pred: Sequence[int | None], names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, UA (macro recall), per-class scores and the confusion matrix.

    A ``None`` prediction (an invalid generated answer) counts as wrong for every metric and
    is reported as ``invalid`` / ``invalid_rate``.
    """
    labels = list(range(len(names)))
    y_pred = [-1 if p is None else p for p in pred]
    invalid = sum(p is None for p in pred)
    p, r, f, s = precision_recall_fscore_support(gold, y_pred, labels=labels, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, y_pred)),
        "macro_f1": float(f1_score(gold, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, y_pred, labels=labels, average="weighted", zero_division=0)),
        "ua": float(recall_score(gold, y_pred, labels=labels, average="macro", zero_division=0)),
        "invalid": invalid,
        "invalid_rate": invalid / max(1, len(gold)),
        "per_class": {
            name: {
                "precision": float(p[k]),
                "recall": float(r[k]),
                "f1": float(f[k]),
                "support": int(s[k]),
            }
            for k, name in enumerate(names)
        },
        "labels": list(names),
        "confusion": confusion_matrix(gold, y_pred, labels=labels).tolist(),
    }


def multilabel_metrics(
    gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], names: Sequence[str]
) -> dict[str, Any]:
    """Micro/macro/weighted/samples F1, exact-match accuracy, UA and per-label scores."""
    y_true, y_pred = multi_hot(gold, len(names)), multi_hot(pred, len(names))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    average = {
        key: float(f1_score(y_true, y_pred, average=key.removesuffix("_f1"), zero_division=0))
        for key in ("micro_f1", "macro_f1", "weighted_f1", "samples_f1")
    }
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(y_true, y_pred)),  # exact match of the whole label set
        **average,
        "ua": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "invalid": 0,
        "invalid_rate": 0.0,
        "per_class": {
            name: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
            for k, name in enumerate(names)
        },
        "labels": list(names),
        "multi_label": True,
    }


def recall_by_label(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each label's recall and support from a metrics dict: what shows whether a rare label is
    ever predicted, kept small enough to store with every benchmark cell and checkpoint."""
    per_class = metrics.get("per_class") or {}
    return {name: {"recall": c["recall"], "support": c["support"]} for name, c in per_class.items()}


def unrecalled_labels(recall: dict[str, dict[str, float]]) -> list[str]:
    """Labels with examples in the scored split that were never predicted correctly (recall 0).

    That is how a skewed training set fails: accuracy hides a rare label that never wins, and
    macro-F1 only says that something is wrong, not which label (``recall``: from
    `recall_by_label`)."""
    return [name for name, c in recall.items() if c["support"] > 0 and c["recall"] == 0]


def multi_hot(sets: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
    """An (n, num_labels) 0/1 matrix from label index sets."""
    matrix = np.zeros((len(sets), num_labels), dtype=np.int64)
    for i, labels in enumerate(sets):
        matrix[i, list(labels)] = 1
    return matrix


def tune_threshold(probs: np.ndarray, gold: Sequence[Sequence[int]], metric: str = "macro_f1") -> float:
    """The probability threshold (0.05..0.95) that maximises ``metric`` on a dev split.

    One threshold for every label: per-label thresholds overfit the rare GoEmotions labels,
    which have a few dozen dev examples.
    """
    y_true = multi_hot(gold, probs.shape[1])
    average = metric.removesuffix("_f1")
    best, best_score = 0.5, -1.0
    for threshold in np.round(np.arange(0.05, 0.951, 0.05), 2):
        y_pred = (probs >= threshold).astype(np.int64)
        empty = y_pred.sum(1) == 0  # the same fallback as Recogniser.decide: the best label
        y_pred[empty, probs[empty].argmax(1)] = 1
        score = float(f1_score(y_true, y_pred, average=average, zero_division=0))
        if score > best_score:
            best, best_score = float(threshold), score
    return best


def write_confusion(metrics: dict[str, Any], folder: Path) -> None:
    """Writes ``confusion.csv`` and, when matplotlib is installed, ``confusion.png``.

    Multi-label results have no confusion matrix (a text may have several gold labels).
    """
    if "confusion" not in metrics:
        return
    names, matrix = metrics["labels"], metrics["confusion"]
    with (folder / "confusion.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["gold \\ predicted", *names])
        for name, row in zip(names, matrix, strict=True):
            writer.writerow([name, *row])
    _plot_confusion(np.array(matrix), names, folder / "confusion.png")


def _plot_confusion(matrix: np.ndarray, names: Sequence[str], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is an extra (emotune[plot]); the CSV is always written
        return
    size = 1.2 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="black" if value < matrix.max() / 2 else "white",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
