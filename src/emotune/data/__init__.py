"""Datasets: one schema (:class:`Example`, :class:`LabelSet`) and a loader per corpus family."""

from __future__ import annotations

import random
from dataclasses import replace

from emotune.config import DataConfig
from emotune.data import corpora, dialogue, goemotions, m3ed, quickstart, sst, tabular  # noqa: F401  (registers the loaders)
from emotune.data.registry import DataRequest, dataset_info, dataset_names, load_dataset
from emotune.data.schema import Dataset, Example, LabelSet, Turn

__all__ = [
    "DataRequest",
    "Dataset",
    "Example",
    "LabelSet",
    "Turn",
    "dataset_info",
    "dataset_names",
    "load_data",
    "subsample",
]


def load_data(cfg: DataConfig, seed: int = 0) -> Dataset:
    """Loads the configured dataset and applies language, task word and verbaliser overrides."""
    request = DataRequest(
        data_dir=cfg.data_dir,
        train_file=cfg.train_file,
        dev_file=cfg.dev_file,
        test_file=cfg.test_file,
        text_column=cfg.text_column,
        label_column=cfg.label_column,
        labels=tuple(cfg.labels),
        language=cfg.language or "en",
        hf_name=cfg.hf_name,
        seed=seed,
        neutral_band=cfg.neutral_band,
        drop_neutral=cfg.drop_neutral,
    )
    dataset = load_dataset(cfg.dataset, request)
    keep_context(dataset, cfg.context_turns)
    if cfg.language:
        dataset.language = cfg.language
    if cfg.task_word:
        dataset.task = cfg.task_word
    if cfg.verbalisers:
        dataset.labels = dataset.labels.with_verbalisers(dataset.language, cfg.verbalisers)
    return dataset


def subsample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of at most ``limit`` examples (order kept); all if no limit."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def keep_context(dataset: Dataset, turns: int) -> None:
    """Keeps only the last ``turns`` earlier utterances of each example (0 = none, the paper's setting)."""
    for name, examples in dataset.splits.items():
        dataset.splits[name] = [
            replace(ex, context=ex.context[len(ex.context) - turns :] if turns else ()) for ex in examples
        ]
