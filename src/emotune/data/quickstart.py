"""The quickstart corpus shipped inside emotune: 160 hand-written, hand-labelled sentences.

Four emotions (joy, sadness, anger, fear), 40 each, split 24/16 per label into train/test, so
``emotune quickstart`` runs offline on a fresh machine without any downloaded dataset.
"""

from __future__ import annotations

import json
from importlib import resources

from emotune.data.registry import DataRequest, register_dataset
from emotune.data.schema import Dataset, Example, LabelSet

QUICKSTART_LABELS = LabelSet(
    ("joy", "sadness", "anger", "fear"),
    {"en": [["joy", "happiness"], ["sadness", "grief"], ["anger", "rage"], ["fear", "terror"]]},
)


@register_dataset("quickstart", "en", "emotion", files="(built in)")
def load_quickstart(request: DataRequest) -> Dataset:
    """160 hand-labelled English sentences, 4 emotions, shipped with emotune (96/0/64).

    Loads the built-in corpus (``request`` is ignored: nothing to locate).
    """
    text = resources.files("emotune").joinpath("resources/quickstart_emotions.jsonl").read_text("utf-8")
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    for i, line in enumerate(text.splitlines(), 1):
        row = json.loads(line)
        label = QUICKSTART_LABELS.index(row["label"])
        splits[row["split"]].append(Example(row["text"], label, uid=f"quickstart:{i}"))
    return Dataset("quickstart", QUICKSTART_LABELS, "en", "emotion", splits)
