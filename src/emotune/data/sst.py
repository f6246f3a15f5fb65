"""Stanford Sentiment Treebank in the published ``stsa.{binary,fine}.{split}`` format."""

from __future__ import annotations

from pathlib import Path

from emotune.data.files import numbered_lines, require_dir
from emotune.data.registry import DataRequest, Variant, register_family
from emotune.data.schema import Dataset, Example, LabelSet
from emotune.errors import EmotuneError

SST2_LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
SST5_LABELS = LabelSet(
    ("very negative", "negative", "neutral", "positive", "very positive"),
    {"en": [["terrible"], ["bad"], ["neutral"], ["good"], ["great"]]},
)
_SPLITS = ("train", "dev", "test")


def read_stsa(path: Path, num_labels: int) -> list[Example]:
    """Reads one stsa file: ``<label> <sentence>`` per line, latin-1 (some bytes are not UTF-8).

    Raises:
        EmotuneError: If the file is missing, empty, or a line is malformed.
    """
    examples = []
    for lineno, line in numbered_lines(path, "latin-1"):
        head, _, text = line.partition(" ")
        if not head.isdigit() or int(head) >= num_labels or not text.strip():
            raise EmotuneError(f"{path}:{lineno}: expected '<label 0..{num_labels - 1}> <sentence>'")
        examples.append(Example(text=text.strip(), label=int(head), uid=f"{path.name}:{lineno}"))
    if not examples:
        raise EmotuneError(f"{path}: no examples")
    return examples


def _load(request: DataRequest, name: str, variant: str, labels: LabelSet) -> Dataset:
    """SST-2 (``variant`` binary) or SST-5 (fine) from ``request.data_dir``."""
    folder = require_dir(request.data_dir, name, f"stsa.{variant}.*")
    splits = {s: read_stsa(folder / f"stsa.{variant}.{s}", len(labels)) for s in _SPLITS if request.wants(s)}
    return Dataset(name=name, labels=labels, language="en", task="sentiment", splits=splits)


_SST2 = Variant(
    "sst2",
    "SST-2, binary sentence sentiment (6920/872/1821)",
    {"variant": "binary", "labels": SST2_LABELS},
    files="stsa.binary.{train,dev,test}",
)
_SST5 = Variant(
    "sst5",
    "SST-5, five-way sentence sentiment (8544/1101/2210)",
    {"variant": "fine", "labels": SST5_LABELS},
    files="stsa.fine.{train,dev,test}",
)
register_family(_load, [_SST2, _SST5], folder="sst", language="en", task="sentiment")
