"""The default recipe on a small, skewed task: it must not collapse to the majority label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from emotune.config import RunConfig
from emotune.pipeline import run
from emotune.training.losses import class_weights, imbalance_ratio, resolve_class_weights

# A three-label task where "neutral" is 80% of the training set: the shape of Friends or MELD.
NEUTRAL = ["the film", "a movie", "the story", "the sentence", "a film", "the movie", "one story", "a story"]
POSITIVE = ["a wonderful film", "great acting and a good story", "i loved it", "joy from start to end"]
NEGATIVE = ["a terrible film", "bad acting and a dull story", "i hated it", "boring from start to end"]


LR = 1e-2


@pytest.fixture
def skewed_files(tmp_path: Path) -> dict[str, str]:
    """Train: 32 neutral, 4 positive, 4 negative; dev and test: every text once."""
    rows = lambda texts, label: [{"text": t, "label": label} for t in texts]  # noqa: E731
    train = rows(NEUTRAL * 4, "neutral") + rows(POSITIVE, "positive") + rows(NEGATIVE, "negative")
    everything = rows(NEUTRAL, "neutral") + rows(POSITIVE, "positive") + rows(NEGATIVE, "negative")
    paths = {}
    for split, subset in (("train", train), ("dev", everything), ("test", everything)):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in subset))
        paths[split] = str(path)
    return paths


def skewed_config(
    model: str, files: dict[str, str], output: str, lr: float, train: Any = None, targets: Any = None
) -> RunConfig:
    """``emotune train`` with its defaults on the skewed files, but for ``lr`` (and the ``train``
    settings and LoRA ``targets`` given)."""
    method = {"name": "lora"} | ({"target_modules": targets} if targets else {})
    return RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": method,
            "data": {
                "dataset": "files",
                **{f"{split}_file": path for split, path in files.items()},
                "labels": ["negative", "neutral", "positive"],
            },
            "train": {"checkpoint_every": 0, "lr": lr, **(train or {})},
            "runtime": {"precision": "fp32"},
            "output": output,
        }
    ).validate()


def predicted_labels(run_dir: Path) -> set[str]:
    return {json.loads(line)["label"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()}


def test_default_recipe_does_not_collapse_where_one_epoch_did(
    tiny_gemma: str, skewed_files: dict[str, str], tmp_path: Path
) -> None:
    old = tmp_path / "old"
    # A random tiny model needs a larger step than the real backbone's default: the same for both.
    old_recipe = {"epochs": 1, "min_steps": 0}
    collapsed = run(
        skewed_config(tiny_gemma, skewed_files, str(old), lr=LR, train=old_recipe, targets=["peft-default"])
    )
    assert predicted_labels(old) == {"neutral"}  # one epoch, 5 steps: the majority label only
    # The collapse is named, not just visible in a low macro-F1: in metrics.json and the log, with
    # the options that trade accuracy for rare labels suggested from dev.
    assert collapsed["unrecalled"] == ["negative", "positive"]
    assert json.loads((old / "metrics.json").read_text())["unrecalled"] == ["negative", "positive"]
    logged = (old / "train.log").read_text()
    assert "test: never predicted correctly: negative (4 examples), positive (4 examples)" in logged
    assert "dev: the kept weights never get negative, positive right; --prior-correction train" in logged
    new = tmp_path / "new"
    metrics = run(skewed_config(tiny_gemma, skewed_files, str(new), lr=LR))  # the defaults otherwise
    assert predicted_labels(new) == {"negative", "neutral", "positive"}
    assert min(c["recall"] for c in metrics["per_class"].values()) > 0
    assert metrics["unrecalled"] == [] and "never" not in (new / "train.log").read_text()
    card = json.loads((new / "dataset_card.json").read_text())
    assert card["training"]["class_weights"] == "none" and card["training"]["imbalance_ratio"] == 8.0
    assert card["training"]["steps"] == RunConfig().train.min_steps == 200  # 40 examples: 5 steps an epoch
    evaluations = [line for line in (new / "train.log").read_text().splitlines() if " dev macro_f1=" in line]
    assert len(evaluations) <= 11 and "step 200 dev" in evaluations[-1]  # spread out, and no stop before the floor


def test_auto_class_weights_switch_on_only_for_skewed_sets() -> None:
    skewed = torch.tensor([0] * 30 + [1] * 5 + [2] * 5)
    even = torch.tensor([0] * 12 + [1] * 10 + [2] * 8)
    assert imbalance_ratio(skewed, 3) == 6.0
    assert resolve_class_weights(skewed, 3, "auto") == "sqrt"
    assert resolve_class_weights(even, 3, "auto") == "none" and class_weights(even, 3, "auto") is None
    weights = class_weights(skewed, 3, "auto")
    assert weights is not None
    torch.testing.assert_close(weights, class_weights(skewed, 3, "balanced").sqrt())  # type: ignore[union-attr]
    assert weights[1] > weights[0]  # the rare labels weigh more
    multi = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert resolve_class_weights(multi, 2, "auto") == "none"  # multi-label keeps its own weighting


def test_step_floor_sets_the_budget_of_small_sets() -> None:
    from emotune.config import TrainConfig
    from emotune.training.trainer import step_budget

    assert step_budget(TrainConfig(epochs=1, batch_size=8, min_steps=200), batches_per_epoch=32) == 200
    assert step_budget(TrainConfig(epochs=1, batch_size=8, min_steps=200), batches_per_epoch=250) == 250
    assert step_budget(TrainConfig(epochs=2, batch_size=8, min_steps=0), batches_per_epoch=5) == 10
    assert step_budget(TrainConfig(epochs=1, grad_accum=2, min_steps=0), batches_per_epoch=7) == 4
    # The defaults: the floor decides for small sets, three epochs for larger ones.
    assert step_budget(TrainConfig(), batches_per_epoch=32) == 200  # 256 examples at batch 8
    assert step_budget(TrainConfig(), batches_per_epoch=125) == 375  # 1,000 examples at batch 8


def test_an_older_saved_run_keeps_the_recipe_it_was_trained_with() -> None:
    old = {"method": {"name": "lora", "rank": 8, "target_modules": None}, "train": {"epochs": 1}}
    cfg = RunConfig.from_dict(old, saved=True)
    assert cfg.train.min_steps == 0 and cfg.method.target_modules == ["peft-default"]  # type: ignore[attr-defined]
    ia3 = RunConfig.from_dict({"method": {"name": "ia3", "target_modules": None}, "train": {}}, saved=True)
    assert ia3.method.target_modules is None  # type: ignore[attr-defined]
    fresh = RunConfig.from_dict({"method": {"name": "lora"}})
    assert fresh.train.min_steps == 200 and fresh.train.class_weights == "none"
    assert fresh.method.target_modules == ["all-linear"]  # type: ignore[attr-defined]


def test_dev_can_be_capped_apart_from_the_evaluation_split() -> None:
    from emotune.config import DataConfig
    from emotune.data import Dataset, Example, LabelSet, select_splits

    labels = LabelSet(("a", "b"), {"en": [["a"], ["b"]]})
    make = lambda n, split: [Example(f"{split} {i}", i % 2, uid=f"{split}-{i}") for i in range(n)]  # noqa: E731
    splits = {"train": make(50, "train"), "dev": make(40, "dev"), "test": make(30, "test")}
    dataset = Dataset("toy", labels, "en", "emotion", splits)
    chosen = select_splits(dataset, DataConfig(max_train_samples=20, max_dev_samples=10), seed=1, eval_split="test")
    assert (len(chosen.train), len(chosen.dev), len(chosen.eval)) == (20, 10, 30)
    both = select_splits(dataset, DataConfig(max_eval_samples=12), seed=1, eval_split="test")
    assert (len(both.dev), len(both.eval)) == (12, 12)  # without max_dev_samples, max_eval_samples caps dev too
