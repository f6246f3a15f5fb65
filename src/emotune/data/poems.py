"""Poem Sentiment and EmoBank: sentiment of text that is neither a review nor a dialogue.

- Poem Sentiment (Sheng & Uthus 2020; CC BY 4.0): ``{train,dev,test}.tsv`` with
  ``id<TAB>verse<TAB>label``, label -1 negative, 0 no impact, 1 positive, 2 mixed.
- EmoBank (Buechel & Hahn, EACL 2017; CC BY-SA 4.0): ``emobank.csv`` with ``id,split,V,A,D,text``,
  valence on a 1..5 scale (3 neutral). Its polarity follows the CMU-MOSI rules on ``V - 3``:
  negative (< 0) vs non-negative, or negative / neutral (= 0) / positive. Share-alike makes it
  unfit for training a shipped adapter (the Gemma terms add use restrictions); it is a judge.
"""

from __future__ import annotations

from collections.abc import Callable

from emotune.data.corpora import polarity_variants
from emotune.data.files import numbered_lines, read_csv_rows, require_dir
from emotune.data.registry import DataRequest, register_dataset, register_family
from emotune.data.schema import Dataset, Example, LabelSet
from emotune.errors import EmotuneError

POEM_LABELS = LabelSet(
    ("negative", "no impact", "positive", "mixed"),
    {"en": [["negative"], ["neutral"], ["positive"], ["mixed"]]},
)
_POEM_IDS = {"-1": 0, "0": 1, "1": 2, "2": 3}
_EMOBANK_SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def read_poems(request: DataRequest, split: str) -> list[Example]:
    """One ``id<TAB>verse<TAB>label`` file of Poem Sentiment."""
    path = require_dir(request.data_dir, "poem-sentiment", "{train,dev,test}.tsv") / f"{split}.tsv"
    out = []
    for lineno, line in numbered_lines(path):
        fields = line.split("\t")
        if len(fields) != 3 or fields[2].strip() not in _POEM_IDS or not fields[1].strip():
            raise EmotuneError(f"{path}:{lineno}: expected 'id<TAB>verse<TAB>label' with label -1, 0, 1 or 2")
        out.append(Example(fields[1].strip(), _POEM_IDS[fields[2].strip()], uid=f"{split}:{fields[0]}"))
    return out


@register_dataset("poem-sentiment", "en", "sentiment", folder="poem_sentiment", files="{train,dev,test}.tsv")
def load_poem_sentiment(request: DataRequest) -> Dataset:
    """Poem Sentiment (Project Gutenberg verses): negative / no impact / positive / mixed (892/105/104)."""
    splits = {s: read_poems(request, s) for s in ("train", "dev", "test") if request.wants(s)}
    return Dataset("poem-sentiment", POEM_LABELS, "en", "sentiment", splits)


def _emobank(
    request: DataRequest, name: str, labels: LabelSet, to_label: Callable[[float, float, bool], int | None]
) -> Dataset:
    """EmoBank by valence (``V - 3``) with a MOSI rule (`polarity_variants`)."""
    path = require_dir(request.data_dir, name, "emobank.csv") / "emobank.csv"
    rows = read_csv_rows(path, ("id", "split", "V", "text"))
    splits: dict[str, list[Example]] = {s: [] for s in _EMOBANK_SPLITS.values() if request.wants(s)}
    for i, r in enumerate(rows):
        if r["split"] not in _EMOBANK_SPLITS:
            raise EmotuneError(f"{path}:{i + 2}: unknown split '{r['split']}' (train/dev/test)")
        split = _EMOBANK_SPLITS[r["split"]]
        if split not in splits or not r["text"].strip():
            continue
        try:
            valence = float(r["V"]) - 3.0
        except ValueError:
            raise EmotuneError(f"{path}:{i + 2}: valence '{r['V']}' is not a number") from None
        label = to_label(valence, request.neutral_band, request.drop_neutral)
        if label is not None:
            splits[split].append(Example(r["text"].strip(), label, uid=r["id"]))
    return Dataset(name, labels, "en", "sentiment", splits)


register_family(
    _emobank,
    polarity_variants(
        ("emobank", "EmoBank sentences by valence: negative (V < 3) vs non-negative (8062/1000/1000)"),
        ("emobank3", "EmoBank sentences by valence: negative (V < 3) / neutral (V = 3) / positive (8062/1000/1000)"),
    ),
    folder="emobank",
    language="en",
    task="sentiment",
    files="emobank.csv (id,split,V,A,D,text)",
)
