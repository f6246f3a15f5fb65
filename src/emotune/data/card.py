"""The dataset card written into every run directory: what data a run saw."""

from __future__ import annotations

from typing import Any

from emotune.config import DataConfig
from emotune.data.schema import Dataset


def dataset_card(data: DataConfig, seed: int, dataset: Dataset) -> dict[str, Any]:
    """What data a run saw: splits, label distribution, verbalisers, context and sampling
    (``data``'s sample caps, and the ``seed`` that drew the samples)."""
    names = dataset.labels.names
    return {
        "dataset": dataset.name,
        "language": dataset.language,
        "task": dataset.task,
        "split_sizes": {k: len(v) for k, v in dataset.splits.items()},
        "label_distribution": {
            split: {n: sum(k in e.gold_set() for e in examples) for k, n in enumerate(names)}
            for split, examples in dataset.splits.items()
        },
        "verbalisers": dict(zip(names, dataset.labels.words(dataset.language), strict=True)),
        "multi_label": dataset.multi_label,
        "headline_metric": dataset.headline_metric,
        "context_turns": dataset.context_turns,  # resolved: the config's, else the corpus's default
        "max_train_samples": data.max_train_samples,
        "max_eval_samples": data.max_eval_samples,
        "max_dev_samples": data.max_dev_samples,
        "seed": seed,
    }
