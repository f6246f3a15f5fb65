"""``emotune datasets --check``: load every corpus found under a root and count it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from emotune.config import DataConfig
from emotune.data import dataset_info, dataset_names, load_data
from emotune.errors import EmotuneError


def check_datasets(root: Path) -> str:
    """Loads each registered dataset whose folder exists under ``root``; one block per dataset."""
    if not root.is_dir():
        raise EmotuneError(f"{root}: datasets folder not found")
    lines = []
    for name in dataset_names():
        info = dataset_info(name)
        if not info.folder or not (root / info.folder).is_dir():
            continue
        try:
            data = load_data(DataConfig(dataset=name, data_dir=str(root / info.folder)))
        except EmotuneError as err:
            lines.append(f"{name}: ERROR {err}")
            continue
        sizes = " / ".join(f"{split} {len(ex)}" for split, ex in data.splits.items())
        lines.append(f"{name} ({root / info.folder}): {sizes}")
        for split, examples in data.splits.items():
            counts = Counter(data.labels.names[k] for e in examples for k in e.gold_set())
            lines.append(f"  {split}: " + ", ".join(f"{label} {counts[label]}" for label in data.labels.names))
    return "\n".join(lines) if lines else f"no known dataset folders under {root}"
