"""GoEmotions (Reddit comments): multi-label, 27 emotions + neutral, or its Ekman grouping (6 + neutral).

Files: ``{train,dev,test}.tsv`` with ``text<TAB>comma-separated label ids<TAB>comment id`` and
``labels.txt`` listing the label names in id order (the official release's layout).
"""

from __future__ import annotations

from pathlib import Path

from emotune.data.files import numbered_lines, require_dir
from emotune.data.registry import DataRequest, Variant, register_dataset, register_family
from emotune.data.schema import Dataset, Example, LabelSet, regroup
from emotune.errors import EmotuneError

FILES = "{train,dev,test}.tsv + labels.txt"


def read_label_names(path: Path) -> tuple[str, ...]:
    """Label names, one per line, in id order."""
    names = tuple(line.strip() for _, line in numbered_lines(path))
    if len(names) < 2:
        raise EmotuneError(f"{path}: expected at least two label names, one per line")
    return names


def read_multilabel_tsv(path: Path, num_labels: int, split: str) -> list[Example]:
    """Examples of one ``text<TAB>ids<TAB>id`` file; ``label`` is the first id, ``labels`` all of them."""
    examples = []
    for lineno, line in numbered_lines(path):
        fields = line.split("\t")
        if len(fields) < 2:
            raise EmotuneError(f"{path}:{lineno}: expected 'text<TAB>label ids<TAB>id'")
        ids = _label_ids(fields[1], num_labels, path, lineno)
        if not fields[0].strip():
            raise EmotuneError(f"{path}:{lineno}: empty text")
        uid = fields[2].strip() if len(fields) > 2 else f"{split}:{lineno}"
        examples.append(Example(fields[0].strip(), ids[0], uid=uid, labels=ids))
    if not examples:
        raise EmotuneError(f"{path}: no examples")
    return examples


def _label_ids(field: str, num_labels: int, path: Path, lineno: int) -> tuple[int, ...]:
    try:
        ids = tuple(sorted({int(x) for x in field.split(",")}))
    except ValueError:
        raise EmotuneError(f"{path}:{lineno}: label ids must be comma-separated integers, got '{field}'") from None
    if not ids or ids[0] < 0 or ids[-1] >= num_labels:
        raise EmotuneError(f"{path}:{lineno}: label id out of range 0..{num_labels - 1}: '{field}'")
    return ids


def _goemotions(request: DataRequest, subset: str, name: str) -> Dataset:
    """GoEmotions with its 28 labels (``subset`` original) or the Ekman grouping (ekman)."""
    root = require_dir(request.data_dir, name, FILES)
    # Accept the corpus root (with original/ and ekman/) or the subset folder itself.
    folder = root / subset if (root / subset).is_dir() else root
    names = read_label_names(folder / "labels.txt")
    labels = LabelSet(names, {"en": [[n] for n in names]})
    splits = {
        s: read_multilabel_tsv(folder / f"{s}.tsv", len(names), s) for s in ("train", "dev", "test") if request.wants(s)
    }
    return Dataset(name, labels, "en", "emotion", splits, multi_label=True)


register_family(
    _goemotions,
    [
        Variant(
            "goemotions",
            "GoEmotions Reddit, multi-label, 27 emotions + neutral (43410/5426/5427)",
            {"subset": "original"},
            files="original/" + FILES,
        ),
        Variant(
            "goemotions-ekman",
            "GoEmotions grouped into Ekman's 6 emotions + neutral, multi-label (43410/5426/5427)",
            {"subset": "ekman"},
            files="ekman/" + FILES,
        ),
    ],
    folder="goemotions",
    language="en",
    task="emotion",
)


#: GoEmotions' sentiment grouping (``sentiment_mapping.json`` of the release) by label name.
SENTIMENT_GROUPS = {
    "positive": [
        "amusement",
        "excitement",
        "joy",
        "love",
        "desire",
        "optimism",
        "caring",
        "pride",
        "admiration",
        "gratitude",
        "relief",
        "approval",
    ],
    "negative": [
        "fear",
        "nervousness",
        "remorse",
        "embarrassment",
        "disappointment",
        "sadness",
        "grief",
        "disgust",
        "anger",
        "annoyance",
        "disapproval",
    ],
    "ambiguous": ["realization", "surprise", "curiosity", "confusion"],
    "neutral": ["neutral"],
}
SENTIMENT = LabelSet(("negative", "neutral", "positive", "ambiguous"))


def to_sentiment(examples: list[Example], names: tuple[str, ...]) -> list[Example]:
    """Each comment whose labels fall in one sentiment group, labelled with it; the others left out."""
    group = {n: SENTIMENT.index(g) for g, members in SENTIMENT_GROUPS.items() for n in members}
    return regroup(examples, {i: group[n] for i, n in enumerate(names) if n in group})


@register_dataset("goemotions-sentiment", "en", "sentiment", folder="goemotions", files="original/" + FILES)
def load_goemotions_sentiment(request: DataRequest) -> Dataset:
    """GoEmotions grouped by sentiment: negative / neutral / positive / ambiguous (comments of one group).

    GoEmotions by the release's sentiment grouping, single-label.
    """
    full = _goemotions(request, "original", "goemotions")
    splits = {s: to_sentiment(v, full.labels.names) for s, v in full.splits.items()}
    return Dataset("goemotions-sentiment", SENTIMENT, "en", "sentiment", splits)
