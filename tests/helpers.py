"""Helpers for building configs in tests."""

from __future__ import annotations

from typing import Any

from emotune.config import RunConfig


def tiny_config(model: str, files: dict[str, str], output: str, method: str = "lora", **train: Any) -> RunConfig:
    """A config for a tiny model on the tiny sentiment files."""
    return RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method, "prompt_length": 4, "projection_hidden": 16},
            "data": {
                "dataset": "files",
                "train_file": files["train"],
                "dev_file": files["dev"],
                "test_file": files["test"],
                "labels": ["negative", "positive"],
            },
            "train": {
                "batch_size": 4,
                "epochs": 2,
                "lr": 5e-3,
                "precision": "fp32",
                "checkpoint_every": 0,
                **train,
            },
            "output": output,
        }
    ).validate()
