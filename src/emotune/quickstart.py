"""The main job on the embedded default: zero-shot vs LoRA vs P-Tuning v2, offline, in minutes.

Uses the built-in hand-labelled corpus (4 emotions, 96 train / 64 test), prints a comparison
table and leaves ``OUTPUT/lora`` for ``emotune predict``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotune.config import RunConfig
from emotune.overrides import apply_override
from emotune.pipeline import run

# Settings per method for a ~100-example corpus, sized for a first run of about two minutes: a
# few epochs at a higher learning rate than the defaults, and no step floor (the default's 200
# steps would triple the wait on a laptop for a demonstration).
RECIPES: dict[str, dict[str, Any]] = {
    "zero-shot": {},
    "lora": {"train.epochs": 4, "train.lr": 1e-3, "train.min_steps": 0},
    "ptuning-v2": {"train.epochs": 4, "train.lr": 1e-2, "train.min_steps": 0},
    "prompt-tuning": {"train.epochs": 4, "train.lr": 1e-2, "train.min_steps": 0},
}


def quickstart_config(method: str, output: Path, model: str) -> RunConfig:
    """The config of one quickstart run."""
    cfg = RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method},
            "data": {"dataset": "quickstart"},
            # From scratch: the comparison is the paper's (zero-shot vs each method trained here).
            "train": {"batch_size": 8, "checkpoint_every": 0, "init_from": "none"},
            "output": str(output / method),
            "overwrite": True,
        }
    )
    for key, value in RECIPES.get(method, {}).items():
        apply_override(cfg, key, value)
    return cfg.validate()


def quickstart(
    output: Path,
    methods: Sequence[str] = ("zero-shot", "lora", "ptuning-v2"),
    model: str = "gemma3-270m",
) -> list[dict[str, Any]]:
    """Runs each method on the built-in corpus and prints a table; returns the rows."""
    rows = []
    for method in methods:
        started = time.perf_counter()
        metrics = run(quickstart_config(method, output, model))
        rows.append({"method": method, "seconds": time.perf_counter() - started, **metrics})
    print(format_table(rows))
    print(
        f"\nRun directories (metrics.json, predictions.jsonl, adapter/): {', '.join(str(output / m) for m in methods)}"
    )
    if "lora" in methods:
        print(f'\nTry it: emotune predict --run {output / "lora"} "I can\'t wait to see you tomorrow!"')
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of accuracy, macro-F1 and UA per method."""
    lines = ["| method | accuracy | macro-F1 | UA | wall time (s) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['ua']:.3f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)
