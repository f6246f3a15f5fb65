"""Datasets registered by name; each corpus family's loader registers itself here."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from emotune.data.schema import Dataset
from emotune.errors import EmotuneError


@dataclass(frozen=True)
class DataRequest:
    """What a loader is asked for; built from `emotune.config.DataConfig`."""

    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] = ()
    #: The prompt language; None: the loader decides (a user's own files: their texts').
    language: str | None = None
    hf_name: str | None = None
    seed: int = 0
    neutral_band: float = 0.0
    drop_neutral: bool = False
    splits: frozenset[str] | None = None
    encoding: str = "utf-8"

    def wants(self, split: str) -> bool:
        """Whether the caller needs ``split`` (None: every split); loaders skip the files of the others."""
        return self.splits is None or split in self.splits


Loader = Callable[[DataRequest], Dataset]


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: a loader plus what ``emotune datasets`` shows about it."""

    name: str
    loader: Loader
    language: str
    task: str
    description: str
    files: str
    folder: str


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str, language: str, task: str, *, files: str, folder: str = ""
) -> Callable[[Loader], Loader]:
    """Decorator registering a loader under ``name``; the first paragraph of the loader's docstring
    is what ``emotune datasets`` says of it (its closing full stop left out).

    ``folder`` is the corpus's usual folder name under a datasets root (``emotune datasets --check``).
    """

    def wrap(loader: Loader) -> Loader:
        _add(DatasetInfo(name, loader, language, task, summary(loader), files, folder))
        return loader

    return wrap


def summary(loader: Loader) -> str:
    """The first paragraph of ``loader``'s docstring on one line, without its closing full stop.

    Raises:
        EmotuneError: When the loader has no docstring to describe it.
    """
    doc = inspect.getdoc(loader)
    if not doc:
        raise EmotuneError(f"dataset loader {getattr(loader, '__name__', loader)} has no docstring to describe it")
    return " ".join(doc.split("\n\n")[0].split()).removesuffix(".")


@dataclass(frozen=True)
class Variant:
    """One dataset of a corpus family: its name, what ``emotune datasets`` says, the family loader's options.

    ``files``, ``language`` and ``task`` left empty take the family's (`register_family`).
    """

    name: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    files: str = ""
    language: str = ""
    task: str = ""


def register_family(
    family: Callable[..., Dataset],
    variants: Sequence[Variant],
    *,
    folder: str,
    language: str,
    task: str,
    files: str = "",
) -> None:
    """Registers each variant of a corpus as ``family(request, name=variant.name, **variant.options)``.

    One corpus often yields several datasets (SST-2 and SST-5, MOSI with two or three classes);
    a table of variants says what differs, so the loader and its registration are written once.
    """
    for v in variants:
        loader: Loader = partial(family, name=v.name, **v.options)
        _add(
            DatasetInfo(v.name, loader, v.language or language, v.task or task, v.description, v.files or files, folder)
        )


def _add(info: DatasetInfo) -> None:
    # A second corpus under a taken name would silently replace the first (a plugin shadowing sst2).
    if info.name in _REGISTRY:
        raise EmotuneError(f"dataset '{info.name}' is already registered")
    _REGISTRY[info.name] = info


def dataset_names() -> list[str]:
    """Returns the registered dataset names, sorted."""
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """Returns a registry entry, with a clear error for an unknown name."""
    if name not in _REGISTRY:
        raise EmotuneError(f"unknown dataset '{name}'; registered: {', '.join(dataset_names())}")
    return _REGISTRY[name]


def load_dataset(name: str, request: DataRequest) -> Dataset:
    """Loads a registered dataset."""
    dataset = dataset_info(name).loader(request)
    if not any(dataset.splits.values()):
        raise EmotuneError(f"dataset '{name}' loaded no examples")
    return dataset
