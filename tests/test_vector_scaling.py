"""Vector scaling: one scale and bias per label, kept over the temperature only where a held-out
half of dev prefers it, stored once in run.json and applied by every backend and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emotune.calibration import ClassScaling, calibrated, choose_scaling
from emotune.inference.export import export
from emotune.inference.predict import Predictor
from emotune.pipeline import run
from emotune.rundir import RunMeta
from helpers import assert_same_predictions, run_records, tiny_config


def _logits(n: int, skewed: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of 4 labels whose gold label leads by 1.5: scaled by 3 (one temperature fixes it),
    or with label 0 four times too sharp and label 2 shifted up (only a scale per label does)."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, n)
    z = rng.normal(0, 1, (n, 4))
    z[np.arange(n), gold] += 1.5
    if skewed:
        z[:, 0] *= 4
        z[:, 2] += 1.0
    else:
        z *= 3
    return z, gold


def test_vector_scaling_is_kept_only_where_held_out_dev_prefers_it() -> None:
    z, gold = _logits(500, skewed=True, seed=0)
    temperature, vector, record = choose_scaling(z, gold.tolist())
    assert vector is not None and record["calibration"] == "vector"
    assert record["held_out_nll_vector"] < record["held_out_nll_temperature"]
    z, gold = _logits(500, skewed=False, seed=1)
    temperature, vector, record = choose_scaling(z, gold.tolist())
    assert vector is None and record["calibration"] == "temperature" and temperature > 1.5  # too sharp
    # Too few dev texts of a label for 2k parameters: the temperature, and why.
    z, gold = _logits(60, skewed=True, seed=2)
    _, vector, record = choose_scaling(z, gold.tolist())
    assert vector is None and record["fewest_dev_texts_of_a_label"] < 20


def test_the_log_says_which_calibration_was_kept_and_why() -> None:
    from emotune.training.calibrate import kept

    record = {"calibration": "vector", "held_out_nll_temperature": 0.52, "held_out_nll_vector": 0.41}
    assert kept(record) == "vector scaling (NLL on the held-out half of dev 0.41 against the temperature's 0.52)"
    record = {"calibration": "temperature", "held_out_nll_temperature": 0.41, "held_out_nll_vector": 0.43}
    assert kept(record) == "the temperature (NLL on the held-out half of dev 0.41 against vector scaling's 0.43)"
    record = {"calibration": "temperature", "fewest_dev_texts_of_a_label": 7}
    assert kept(record).endswith("needs 20 dev texts of every label; the rarest has 7)")


def test_calibrated_logits_are_the_same_in_torch_and_numpy() -> None:
    z = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    vector = ClassScaling((0.5, 2.0, 1.0), (0.1, -0.3, 0.0))
    assert np.allclose(calibrated(torch.from_numpy(z), 2.0, vector).numpy(), calibrated(z, 2.0, vector))
    assert np.allclose(calibrated(z, 2.0), z / 2.0)
    assert np.allclose(calibrated(z, 2.0, vector), z * [0.5, 2.0, 1.0] + [0.1, -0.3, 0.0])


@pytest.fixture(scope="module")
def vector_run(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LoRA run with prior correction whose calibration step chose vector scaling (forced:
    its dev split is far below the 20 texts per label the rule asks for)."""
    import emotune.training.calibrate as step
    from conftest import NEGATIVE, POSITIVE

    folder = tmp_path_factory.mktemp("vector")
    rows = [{"text": t, "label": "positive"} for t in POSITIVE] + [{"text": t, "label": "negative"} for t in NEGATIVE]
    files = {}
    for split, subset in (("train", rows), ("dev", rows[::2]), ("test", rows[1::2])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in subset))
        files[split] = str(folder / f"{split}.jsonl")
    chosen = ClassScaling((0.5, 2.0), (0.4, -0.3))

    def forced(logits: Any, gold: Any, seed: int = 0) -> tuple[float, ClassScaling, dict[str, Any]]:
        return 1.7, chosen, {"calibration": "vector", "held_out_nll_temperature": 0.7, "held_out_nll_vector": 0.6}

    patch = pytest.MonkeyPatch()
    patch.setattr(step, "choose_scaling", forced)
    try:
        run(tiny_config(tiny_gemma, files, str(folder / "run"), epochs=2, prior_correction="train"))
    finally:
        patch.undo()
    return folder / "run"


def test_a_vector_scaled_run_stores_it_once_and_predicts_with_it(vector_run: Path) -> None:
    saved = json.loads((vector_run / "run.json").read_text())
    # Format 2: an older emotune, which would ignore the scaling, refuses the run instead.
    assert saved["format"] == 2 and saved["class_scaling"] == {"scale": [0.5, 2.0], "bias": [0.4, -0.3]}
    assert RunMeta.load(vector_run).class_scaling == saved["class_scaling"]
    predictor = Predictor.load(vector_run)
    rec = predictor.recogniser
    assert rec.class_scaling == ClassScaling((0.5, 2.0), (0.4, -0.3))
    assert_same_predictions(run_records(vector_run), predictor, 1e-5)
    recipe = json.loads((vector_run / "metrics.json").read_text())["recipe"]
    assert recipe["calibration"]["calibration"] == "vector"


def test_every_export_applies_the_runs_vector_scaling(vector_run: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    records = run_records(vector_run)
    export(vector_run, "onnx", tmp_path / "onnx")
    assert_same_predictions(records, Predictor.load(tmp_path / "onnx"), 1e-4)
    export(vector_run, "merged", tmp_path / "merged")
    assert_same_predictions(records, Predictor.load(tmp_path / "merged"), 1e-4)
    # seq-cls: the scales are folded into `score`; the label bias through the calibration and the
    # per-label bias are what a consumer subtracts (config.json's emotune.label_bias).
    export(vector_run, "seq-cls", tmp_path / "seq")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "seq")
    tok = AutoTokenizer.from_pretrained(tmp_path / "seq")
    offsets = torch.tensor(model.config.emotune["label_bias"])
    for record in records:
        with torch.no_grad():
            logits = model(**tok(str(record["text"]), return_tensors="pt")).logits[0] - offsets
        probs = dict(zip(model.config.id2label.values(), logits.softmax(-1).tolist(), strict=True))
        assert probs == pytest.approx(record["scores"], abs=1e-4)


def test_labels_at_call_time_never_use_a_vector_fitted_for_other_labels(vector_run: Path) -> None:
    predictor = Predictor.load(vector_run)
    text = "a wonderful film"
    swapped = predictor.predict(text, labels=["positive", "negative"])[0].scores
    # The run's own labels in another order: scored afresh, without the run's per-label scaling.
    own = predictor.predict(text)[0].scores
    assert swapped != pytest.approx(own, abs=1e-3)
