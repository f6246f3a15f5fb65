"""Datasets: one schema (`Example`, `LabelSet`) and a loader per corpus family."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from emotune.data import (  # noqa: F401  (registers the loaders)
    corpora,
    dialogue,
    goemotions,
    m3ed,
    poems,
    quickstart,
    sst,
    tabular,
    xed,
)
from emotune.data.hub import load_hub_copy
from emotune.data.registry import DataRequest, dataset_info, dataset_names, load_dataset
from emotune.data.schema import Dataset, Example, LabelSet, Turn
from emotune.data.sources import source_of
from emotune.errors import EmotuneError

if TYPE_CHECKING:
    from emotune.config import DataConfig

__all__ = [
    "DataRequest",
    "Dataset",
    "Example",
    "LabelSet",
    "Selection",
    "Turn",
    "dataset_info",
    "dataset_names",
    "load_data",
    "select_splits",
    "subsample",
]


def load_data(cfg: DataConfig, seed: int = 0, splits: Collection[str] | None = None) -> Dataset:
    """Loads the configured dataset and applies language, task word and verbaliser overrides.

    Args:
        cfg: The data section of a run config.
        seed: The run seed, for corpora whose dev split is carved from train at load time
            (Mastodon); test splits never depend on it.
        splits: The splits the caller needs (None: all); loaders with a file per split skip the
            others, so evaluating the test split needs no training file.
    """
    # A request carries the data settings of the same name; what a loader is not told stays here.
    same_name = {f.name: getattr(cfg, f.name) for f in fields(DataRequest) if hasattr(cfg, f.name)}
    request = DataRequest(
        **same_name
        | {"labels": tuple(cfg.labels), "seed": seed, "splits": None if splits is None else frozenset(splits)}
    )
    dataset = _load(cfg.dataset, request)
    if cfg.context_turns is not None:
        dataset.context_turns = cfg.context_turns
    keep_context(dataset, dataset.context_turns)
    if cfg.language:
        dataset.language = cfg.language
    if cfg.task_word:
        dataset.task = cfg.task_word
    if cfg.verbalisers:
        dataset.labels = dataset.labels.with_verbalisers(dataset.language, cfg.verbalisers)
    return dataset


def _load(name: str, request: DataRequest) -> Dataset:
    """A corpus from ``--data-dir``, else from its Hub copy, else a one-line error saying where to get it."""
    info, source = dataset_info(name), source_of(name)
    if not info.folder or request.data_dir:
        return load_dataset(name, request)
    if source is not None and source.hub is not None:
        return load_hub_copy(name, source.hub, request)
    where = f"; get it from {source.url} ({source.licence})" if source else ""
    raise EmotuneError(f"dataset '{name}' needs data_dir (a folder with {info.files}){where}", settings=("data_dir",))


def subsample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of at most ``limit`` examples (order kept); all if no limit."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


@dataclass(frozen=True)
class Selection:
    """The examples a run uses: its (subsampled) train and dev sets and the split it is scored on."""

    train: list[Example]
    dev: list[Example]
    eval: list[Example]


def select_splits(dataset: Dataset, cfg: DataConfig, seed: int, eval_split: str) -> Selection:
    """The one place where a run's examples are chosen: seeded subsets of train, dev and the
    evaluation split (``max_train_samples``, ``max_dev_samples`` (default ``max_eval_samples``),
    ``max_eval_samples``).

    Train and dev may be absent (empty); the evaluation split must exist.

    Raises:
        EmotuneError: Before any training, when the evaluation split is missing (your own files
            without a test file, say), naming how to give or choose one.
    """

    def pick(split: str, limit: int | None) -> list[Example]:
        return subsample(dataset.splits.get(split) or [], limit, seed)

    if eval_split not in dataset.splits:
        other = "evaluate on another split (eval_split)"
        raise EmotuneError(
            f"the final evaluation needs a '{eval_split}' split, and dataset '{dataset.name}' has only "
            f"{sorted(dataset.splits)}: " + (f"give test_file, or {other}" if eval_split == "test" else other),
            settings=("test_file", "eval_split") if eval_split == "test" else ("eval_split",),
        )

    return Selection(
        train=pick("train", cfg.max_train_samples),
        dev=pick("dev", cfg.max_dev_samples if cfg.max_dev_samples is not None else cfg.max_eval_samples),
        eval=subsample(dataset.split(eval_split), cfg.max_eval_samples, seed),
    )


def keep_context(dataset: Dataset, turns: int) -> None:
    """Keeps only the last ``turns`` earlier utterances of each example (0 = none, the paper's setting)."""
    for name, examples in dataset.splits.items():
        dataset.splits[name] = [
            replace(ex, context=ex.context[len(ex.context) - turns :] if turns else ()) for ex in examples
        ]
