"""Metrics come from scikit-learn; invalid generated answers count as wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotune.metrics import classification_metrics, recall_by_label, unrecalled_labels, write_confusion


def test_known_values() -> None:
    m = classification_metrics([0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 2, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["per_class"]["b"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["invalid"] == 0


def test_invalid_predictions_are_wrong_and_counted() -> None:
    m = classification_metrics([0, 1, 1, 0], [0, None, 1, None], ["a", "b"])
    assert m["accuracy"] == 0.5
    assert m["invalid"] == 2
    assert m["invalid_rate"] == 0.5
    assert sum(map(sum, m["confusion"])) == 2  # invalid answers are in no predicted column


def test_unrecalled_labels_are_those_with_examples_never_right() -> None:
    # "b" is predicted but never correctly, "c" is right once, "d" has no example to recall.
    m = classification_metrics([0, 0, 1, 2, 2], [0, 1, 0, 2, 0], ["a", "b", "c", "d"])
    assert unrecalled_labels(recall_by_label(m)) == ["b"]
    assert unrecalled_labels({}) == []


def test_confusion_files(tmp_path: Path) -> None:
    m = classification_metrics([0, 1], [0, 0], ["neg", "pos"])
    write_confusion(m, tmp_path)
    assert (tmp_path / "confusion.csv").read_text().splitlines() == [
        "gold \\ predicted,neg,pos",
        "neg,1,0",
        "pos,1,0",
    ]
    assert (tmp_path / "confusion.png").stat().st_size > 1000
