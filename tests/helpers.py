"""Helpers for building configs in tests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from emotune.config import RunConfig, RuntimeConfig
from emotune.inference.predict import Predictor
from emotune.methods import method_class

RUNTIME_KEYS = {f.name for f in dataclasses.fields(RuntimeConfig)}
# Small prompts and projections keep the prompt methods fast on tiny models.
TINY_METHOD_OPTIONS = {"prompt_length": 4, "projection_hidden": 16}


def tiny_config(model: str, files: dict[str, str], output: str, method: str = "lora", **settings: Any) -> RunConfig:
    """A config for a tiny model on the tiny sentiment files; ``settings`` are train or runtime keys."""
    owned = {f.name for f in dataclasses.fields(method_class(method).options_class)}
    runtime = {"precision": "fp32", **{k: v for k, v in settings.items() if k in RUNTIME_KEYS}}
    train = {k: v for k, v in settings.items() if k not in RUNTIME_KEYS}
    return RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method, **{k: v for k, v in TINY_METHOD_OPTIONS.items() if k in owned}},
            "data": {
                "dataset": "files",
                "train_file": files["train"],
                "dev_file": files["dev"],
                "test_file": files["test"],
                "labels": ["negative", "positive"],
            },
            # No step floor: a tiny task trains for exactly the epochs a test asks for.
            "train": {"batch_size": 4, "epochs": 2, "lr": 5e-3, "checkpoint_every": 0, "min_steps": 0, **train},
            "runtime": runtime,
            "output": output,
        }
    ).validate()


def run_records(folder: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``predictions.jsonl``."""
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def assert_same_predictions(records: list[dict[str, Any]], predictor: Predictor, tolerance: float) -> None:
    """``predictor`` gives each recorded text the recorded label, and scores within ``tolerance``."""
    preds = predictor.predict([str(r["text"]) for r in records])
    for record, pred in zip(records, preds, strict=True):
        assert pred.label == record["label"]
        assert all(abs(pred.scores[k] - v) <= tolerance for k, v in record["scores"].items())
