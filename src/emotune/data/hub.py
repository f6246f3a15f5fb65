"""Registered corpora from their Hugging Face Hub copies (``--dataset sst2`` without ``--data-dir``).

Needs the ``hf`` extra (``datasets``); the mapping onto the corpus's labels and splits is tested
on ``save_to_disk`` folders, which ``--hf-name`` accepts in place of the Hub id.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from emotune.data.registry import DataRequest, dataset_info
from emotune.data.schema import Dataset, Example, LabelSet
from emotune.data.sources import HubCopy
from emotune.errors import EmotuneError, first_line
from emotune.storage import quiet_hub_retries

logger = logging.getLogger(__name__)
_SPLIT_NAMES = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}


def load_hub_copy(name: str, hub: HubCopy, request: DataRequest) -> Dataset:
    """Loads corpus ``name`` from its Hub copy (or ``request.hf_name``: another id or a local folder).

    Raises:
        EmotuneError: Without the ``hf`` extra, or when the Hub cannot be reached (one line naming
            both ways to get the data).
    """
    where = request.hf_name or hub.repo
    info = dataset_info(name)
    offline_hint = f"dataset '{name}' needs data_dir (a folder with {info.files}) or, online, its Hub copy {where}"
    try:
        import datasets
    except ImportError:
        raise EmotuneError(
            f"{offline_hint}: pip install 'emotune[hf]' for the Hub copy", settings=("data_dir",)
        ) from None
    try:
        local = Path(where).exists()
        if not local:  # offline, the Hub client retries for half a minute before it gives up
            logger.info("dataset '%s': no data_dir given, loading its Hub copy %s", name, where)
        with quiet_hub_retries():
            data = datasets.load_from_disk(where) if local else datasets.load_dataset(where, hub.config)
    except Exception as err:  # offline, missing, or a changed repo: datasets raises many types
        first = first_line(err)
        raise EmotuneError(f"{offline_hint} ({first})", settings=("data_dir",)) from None
    return _to_dataset(name, hub, data, where)


def _to_dataset(name: str, hub: HubCopy, data: Any, where: str) -> Dataset:
    info = dataset_info(name)
    labels = hub.labels or _labels_from_features(data, hub)
    splits: dict[str, list[Example]] = {}
    for split in data:
        if split not in _SPLIT_NAMES:
            continue
        table = data[split]
        for column in (hub.text_column, hub.label_column):
            if column not in table.column_names:
                raise EmotuneError(f"{where}[{split}]: no column '{column}' (columns: {table.column_names})")
        splits[_SPLIT_NAMES[split]] = [
            _example(row, hub, len(labels), f"{where}[{split}]:{i}") for i, row in enumerate(table)
        ]
    return Dataset(name, labels, info.language, info.task, splits, multi_label=hub.multi_label)


def _labels_from_features(data: Any, hub: HubCopy) -> LabelSet:
    feature = data[next(iter(data))].features[hub.label_column]
    names = getattr(getattr(feature, "feature", feature), "names", None)
    if not names:
        raise EmotuneError(f"{hub.repo}: column '{hub.label_column}' has no label names")
    return LabelSet(tuple(names), {"en": [[n] for n in names]})


def _example(row: dict[str, Any], hub: HubCopy, num_labels: int, uid: str) -> Example:
    text = str(row[hub.text_column] or "").strip()
    raw = row[hub.label_column]
    ids = tuple(sorted({int(v) for v in raw})) if hub.multi_label else (int(raw),)
    if not text or not ids or ids[0] < 0 or ids[-1] >= num_labels:
        raise EmotuneError(f"{uid}: empty text or label out of range 0..{num_labels - 1}")
    return Example(text, ids[0], uid=uid, labels=ids if hub.multi_label else ())
