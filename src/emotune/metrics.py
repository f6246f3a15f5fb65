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


def write_confusion(metrics: dict[str, Any], folder: Path) -> None:
    """Writes ``confusion.csv`` and, when matplotlib is installed, ``confusion.png``."""
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
