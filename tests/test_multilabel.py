"""Multi-label (GoEmotions format): loader, metrics, threshold tuning, training and prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import NEGATIVE, POSITIVE, SHARED
from emotune.config import DataConfig, RunConfig
from emotune.data import load_data
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.metrics import multilabel_metrics, tune_threshold
from emotune.pipeline import run

LABELS = ["joy", "sadness", "anger"]


def _goemotions(folder: Path) -> Path:
    """A GoEmotions-format corpus: positive texts joy; negative sadness; the harshest also anger."""
    rows = [f"{t}\t0\tp{i}" for i, t in enumerate(POSITIVE)]
    rows += [f"{t}\t{'1,2' if 'awful' in t or 'hated' in t else '1'}\tn{i}" for i, t in enumerate(NEGATIVE)]
    sub = folder / "original"
    sub.mkdir(parents=True)
    (sub / "labels.txt").write_text("\n".join(LABELS) + "\n")
    for split in ("train", "dev", "test"):
        (sub / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_goemotions_loader_reads_every_label(tmp_path: Path) -> None:
    data = load_data(DataConfig(dataset="goemotions", data_dir=str(_goemotions(tmp_path))))
    assert data.multi_label and data.labels.names == tuple(LABELS)
    hated = next(e for e in data.split("train") if e.text == "i hated it")
    assert hated.gold_set() == (1, 2) and hated.label == 1 and hated.uid.startswith("n")


@pytest.mark.parametrize(
    ("line", "message"),
    [("text only", "expected 'text<TAB>label ids"), ("hi\t7\tx", "out of range"), ("hi\tjoy\tx", "integers")],
)
def test_goemotions_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    _goemotions(tmp_path)
    (tmp_path / "original" / "dev.tsv").write_text(line + "\n")
    with pytest.raises(EmotuneError, match=message):
        load_data(DataConfig(dataset="goemotions", data_dir=str(tmp_path)))


def test_multilabel_metrics_and_threshold() -> None:
    metrics = multilabel_metrics([(0,), (1, 2), (2,)], [(0,), (1,), (2, 0)], LABELS)
    assert metrics["accuracy"] == pytest.approx(1 / 3)  # exact set match
    assert metrics["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert metrics["per_class"]["anger"]["recall"] == pytest.approx(0.5)
    assert "confusion" not in metrics
    probs = np.array([[0.9, 0.2, 0.1], [0.1, 0.7, 0.35], [0.3, 0.1, 0.4]])
    threshold = tune_threshold(probs, [(0,), (1, 2), (2,)])
    assert 0.3 < threshold <= 0.35  # the only cut that keeps 0.35 and 0.4 but drops 0.3


@pytest.mark.skipif(not (SHARED / "goemotions").is_dir(), reason="../shared/datasets not present")
@pytest.mark.parametrize(("name", "num_labels"), [("goemotions", 28), ("goemotions-ekman", 7)])
def test_real_goemotions_counts(name: str, num_labels: int) -> None:
    data = load_data(DataConfig(dataset=name, data_dir=str(SHARED / "goemotions")))
    assert tuple(len(data.split(s)) for s in ("train", "dev", "test")) == (43410, 5426, 5427)
    assert len(data.labels) == num_labels
    assert any(len(e.gold_set()) > 1 for e in data.split("train"))


def test_multilabel_training_tunes_a_threshold_and_predicts_label_sets(tiny_gemma: str, tmp_path: Path) -> None:
    cfg = RunConfig.from_dict(
        {
            "model": {"name": tiny_gemma},
            "method": {"name": "lora"},
            "data": {"dataset": "goemotions", "data_dir": str(_goemotions(tmp_path / "data"))},
            # A prior correction is for single-label tasks: ignored here, with a warning.
            "train": {"batch_size": 4, "epochs": 12, "min_steps": 0, "lr": 2e-2, "checkpoint_every": 0}
            | {"prior_correction": "train"},
            "runtime": {"precision": "fp32"},
            "output": str(tmp_path / "run"),
        }
    ).validate()
    metrics = run(cfg)
    assert "train.prior_correction ignored" in (tmp_path / "run" / "train.log").read_text()
    assert metrics["multi_label"] and metrics["micro_f1"] >= 0.8
    assert 0.05 <= metrics["threshold"] <= 0.95
    predictor = Predictor.load(tmp_path / "run")
    assert predictor.recogniser.threshold == metrics["threshold"]
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    preds = predictor.predict([r["text"] for r in records])
    for pred, record in zip(preds, records, strict=True):
        assert pred.labels and set(pred.labels) <= set(LABELS) and pred.label == pred.labels[0]
        assert all(0.0 <= p <= 1.0 for p in pred.scores.values())
        assert all(pred.scores[n] >= metrics["threshold"] for n in pred.labels[1:])
        assert sorted(pred.labels) == sorted(record["labels"])  # Predictor and evaluation agree
    assert sum(sorted(r["labels"]) == sorted(r["gold"]) for r in records) >= 12
