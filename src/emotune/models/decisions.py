"""From label probabilities to predicted labels: one rule for every backend (torch and ONNX)."""

from __future__ import annotations

from collections.abc import Sequence


def decide_labels(rows: Sequence[Sequence[float]], multi_label: bool, threshold: float) -> list[list[int]]:
    """Predicted label indices per row, best first.

    One label (the argmax) per text, or, for multi-label, every label whose probability reaches
    ``threshold``, falling back to the best one so no text goes unlabelled.
    """
    chosen = []
    for row in rows:
        order = sorted(range(len(row)), key=lambda k: -row[k])
        above = [k for k in order if row[k] >= threshold] if multi_label else []
        chosen.append(above or order[:1])
    return chosen
