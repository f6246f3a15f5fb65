"""Prior correction fitted on dev: offsets that undo a majority-label prior, stored and applied."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotune.inference.predict import Predictor
from emotune.pipeline import run
from emotune.training.priors import fit_offsets, frequency_offsets, label_scores
from helpers import tiny_config


def test_offsets_undo_a_majority_prior() -> None:
    rng = np.random.default_rng(0)
    gold = np.array([0] * 60 + [1] * 25 + [2] * 15)
    signal = np.eye(3)[gold] * 1.0 + rng.normal(0, 0.4, (100, 3))
    skewed = signal + np.array([3.0, 0.0, 0.0])  # the model prefers label 0 whatever the input
    assert set(skewed.argmax(1)) == {0}
    offsets = fit_offsets(skewed, gold.tolist())
    before = label_scores(gold, skewed.argmax(1), 3, "macro_f1")
    after = label_scores(gold, (skewed + offsets).argmax(1), 3, "macro_f1")
    assert after > before + 0.3 and len(set((skewed + offsets).argmax(1))) == 3


def test_a_calibrated_model_keeps_zero_offsets() -> None:
    gold = [0, 1, 2, 0, 1, 2]
    perfect = np.log(np.eye(3)[gold] * 0.9 + 0.05)
    assert np.all(fit_offsets(perfect, gold) == 0)


@pytest.mark.parametrize(("metric", "expected"), [("macro_f1", 0.5), ("ua", 0.5), ("accuracy", 0.5)])
def test_label_scores_match_hand_computed_values(metric: str, expected: float) -> None:
    gold, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert label_scores(gold, pred, 2, metric) == pytest.approx(expected)


def test_prior_correction_is_stored_and_applied_by_the_predictor(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    out = tmp_path / "run"
    metrics = run(tiny_config(tiny_gemma, sentiment_files, str(out), epochs=1, prior_correction="dev"))
    meta = json.loads((out / "run.json").read_text())
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    preds = Predictor.load(out).predict([r["text"] for r in records])
    for record, pred in zip(records, preds, strict=True):
        assert pred.label == record["label"]
        assert all(abs(pred.scores[k] - v) < 1e-4 for k, v in record["scores"].items())
    assert metrics["n"] == 8 and ("head_bias" not in meta or len(meta["head_bias"]) == 2)
    assert "prior correction fitted on dev" in Path(out / "train.log").read_text()


def test_frequency_offsets_favour_rare_labels_by_their_log_frequency() -> None:
    offsets = frequency_offsets(np.array([59, 24, 14]))
    prior = np.array([60.0, 25.0, 15.0]) / 100  # add-one smoothed counts
    assert offsets[2] > offsets[1] > offsets[0] and offsets.sum() == pytest.approx(0.0)
    assert offsets[2] - offsets[0] == pytest.approx(np.log(prior[0] / prior[2]))
    assert np.allclose(frequency_offsets(np.array([1, 3]), strength=0.5), 0.5 * frequency_offsets(np.array([1, 3])))
    assert np.all(frequency_offsets(np.array([2, 2])) == 0)


def test_train_prior_correction_is_read_off_the_training_labels(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    rows = [json.loads(line) for line in Path(sentiment_files["train"]).read_text().splitlines()]
    skewed = [r for r in rows if r["label"] == "positive"] + [r for r in rows if r["label"] == "negative"][:2]
    Path(sentiment_files["train"]).write_text("".join(json.dumps(r) + "\n" for r in skewed))
    out = tmp_path / "run"
    run(tiny_config(tiny_gemma, sentiment_files, str(out), epochs=1, prior_correction="train", prior_strength=0.5))
    positives = sum(r["label"] == "positive" for r in skewed)
    expected = -frequency_offsets(np.array([2, positives]), strength=0.5)  # labels: negative, positive
    assert json.loads((out / "run.json").read_text())["head_bias"] == pytest.approx(expected.tolist(), abs=1e-6)
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p.label for p in Predictor.load(out).predict([r["text"] for r in records])] == [r["label"] for r in records]
    assert "prior correction from the training label frequencies (strength 0.5)" in (out / "train.log").read_text()
    assert json.loads((out / "dataset_card.json").read_text())["training"]["prior_correction"] == "train x0.5"
