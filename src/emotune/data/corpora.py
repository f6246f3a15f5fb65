"""Single-text sentiment and emotion corpora: CMU-MOSI, CH-SIMS, ChnSentiCorp, SMP2020-EWECT."""

from __future__ import annotations

from collections.abc import Callable

from emotune.data.files import read_csv_rows, require_dir
from emotune.data.registry import DataRequest, Variant, register_dataset, register_family
from emotune.data.schema import Dataset, Example, LabelSet
from emotune.errors import EmotuneError
from emotune.storage import read_json

MOSI2 = LabelSet(("negative", "non-negative"), {"en": [["negative"], ["positive"]]})
MOSI3 = LabelSet(("negative", "neutral", "positive"), {"en": [["negative"], ["neutral"], ["positive"]]})
ZH_BINARY = LabelSet(("negative", "positive"), {"zh": [["消极"], ["积极"]]})
CHSIMS2 = LabelSet(("negative", "non-negative"), {"zh": [["消极"], ["积极"]]})
SMP6 = LabelSet(
    ("happy", "angry", "sad", "fear", "surprise", "neutral"),
    {"zh": [["高兴"], ["愤怒"], ["悲伤"], ["恐惧"], ["惊讶"], ["中性"]]},
)


def _score(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise EmotuneError(f"{where}: score '{value}' is not a number") from None


def binary_label(score: float, band: float = 0.0, drop_neutral: bool = False) -> int | None:
    """Negative (< 0) vs non-negative (>= 0): the MOSI-2 / CH-SIMS rule of the paper.

    With ``drop_neutral`` (``data.drop_neutral``) scores within ``band`` of 0 are left out,
    the other common MOSI-2 convention (negative vs positive, "Acc-2 non-0").
    """
    if drop_neutral and abs(score) <= band:
        return None
    return 0 if score < 0 else 1


def ternary_label(score: float, band: float = 0.0, drop_neutral: bool = False) -> int | None:
    """Negative, neutral (within ``band`` of 0; the paper: exactly 0) or positive: the MOSI-3 rule."""
    if abs(score) <= band:
        return None if drop_neutral else 1
    return 0 if score < 0 else 2


def _mosi(
    request: DataRequest, name: str, labels: LabelSet, to_label: Callable[[float, float, bool], int | None]
) -> Dataset:
    folder = require_dir(request.data_dir, name, "mosi_{train,valid,test}.csv")
    splits = {}
    for split, file in (("train", "train"), ("dev", "valid"), ("test", "test")):
        if not request.wants(split):
            continue
        path = folder / f"mosi_{file}.csv"
        rows = read_csv_rows(path, ("video_id", "clip_id", "text", "label"))
        # One published segment has an empty transcript; it is kept so counts match the folds.
        labelled = [
            (r, to_label(_score(r["label"], f"{path}:{i + 2}"), request.neutral_band, request.drop_neutral))
            for i, r in enumerate(rows)
        ]
        splits[split] = [
            Example(r["text"].strip(), label, uid=f"{r['video_id']}_{r['clip_id']}")
            for r, label in labelled
            if label is not None
        ]
    return Dataset(name, labels, "en", "sentiment", splits)


def polarity_variants(two: tuple[str, str], three: tuple[str, str]) -> list[Variant]:
    """A corpus scored on a signed scale as two datasets, ``(name, description)`` each: negative vs
    non-negative (the MOSI-2 rule) and negative / neutral / positive (the MOSI-3 rule).

    The family loader takes ``labels`` and ``to_label`` (`binary_label` or `ternary_label`).
    """
    return [
        Variant(*two, {"labels": MOSI2, "to_label": binary_label}),
        Variant(*three, {"labels": MOSI3, "to_label": ternary_label}),
    ]


register_family(
    _mosi,
    polarity_variants(
        ("mosi2", "CMU-MOSI text, negative (<0) vs non-negative (1284/229/686)"),
        ("mosi3", "CMU-MOSI text, negative / neutral (=0) / positive (1284/229/686)"),
    ),
    folder="mosi",
    language="en",
    task="sentiment",
    files="mosi_{train,valid,test}.csv",
)


@register_dataset("chnsenticorp", "zh", "sentiment", folder="chnsenticorp", files="{train,validation,test}.csv")
def load_chnsenticorp(request: DataRequest) -> Dataset:
    """ChnSentiCorp, binary Chinese sentiment; stand-in for CH-SIMS (9600/1200/1200).

    ChnSentiCorp (``label,text``; 0 negative, 1 positive).
    """
    folder = require_dir(request.data_dir, "chnsenticorp", "{train,validation,test}.csv")
    splits = {}
    for split, file in (("train", "train"), ("dev", "validation"), ("test", "test")):
        if not request.wants(split):
            continue
        path = folder / f"{file}.csv"
        rows = read_csv_rows(path, ("label", "text"))
        if any(r["label"] not in ("0", "1") for r in rows):
            raise EmotuneError(f"{path}: labels must be 0 or 1")
        splits[split] = [Example(r["text"].strip(), int(r["label"]), uid=f"{file}:{i + 2}") for i, r in enumerate(rows)]
    return Dataset("chnsenticorp", ZH_BINARY, "zh", "sentiment", splits)


def _smp(request: DataRequest, name: str, files: dict[str, str]) -> Dataset:
    folder = require_dir(request.data_dir, name, ", ".join(files.values()))
    splits = {}
    for split, file in files.items():
        path = folder / file
        rows = read_json(path)
        if not isinstance(rows, list):
            raise EmotuneError(f"{path}: expected a JSON list of {{id, content, label}}")
        try:
            splits[split] = [
                Example(str(r["content"]).strip(), SMP6.index(r["label"]), uid=f"{file}:{r['id']}") for r in rows
            ]
        except (KeyError, TypeError):
            raise EmotuneError(f"{path}: expected a JSON list of {{id, content, label}}") from None
    return Dataset(name, SMP6, "zh", "emotion", splits)


_VIRUS = {"train": "virus_train.txt", "dev": "virus_eval_labeled.txt", "test": "virus_test_labeled.txt"}
_USUAL = {"dev": "usual_eval_labeled.txt", "test": "usual_test_labeled.txt"}
register_family(
    _smp,
    [
        Variant(
            "smp2020-ewect",
            "SMP2020-EWECT Weibo, 6 emotions, 'virus' subset; stand-in for M3ED (8606/2000/3000)",
            {"files": _VIRUS},
            files=", ".join(_VIRUS.values()),
        ),
        # The usual subset's train file is not in the shared copy.
        Variant(
            "smp2020-ewect-usual",
            "SMP2020-EWECT Weibo, 6 emotions, 'usual' subset; no train split here (eval 2000, test 5000)",
            {"files": _USUAL},
            files=", ".join(_USUAL.values()),
        ),
    ],
    folder="smp2020_ewect",
    language="zh",
    task="emotion",
)


@register_dataset(
    "chsims", "zh", "sentiment", folder="chsims", files="label.csv (video_id, clip_id, text, label_T, mode)"
)
def load_chsims(request: DataRequest) -> Dataset:
    """CH-SIMS text, negative (<0) vs non-negative on label_T; authors' label.csv (not available here).

    CH-SIMS from the authors' ``label.csv``: binary on the text-only label ``label_T``.
    """
    path = require_dir(request.data_dir, "chsims", "label.csv") / "label.csv"
    rows = read_csv_rows(path, ("video_id", "clip_id", "text", "label_T", "mode"))
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    modes = {"train": "train", "valid": "dev", "test": "test"}
    for i, r in enumerate(rows):
        if r["mode"] not in modes:
            raise EmotuneError(f"{path}:{i + 2}: unknown mode '{r['mode']}' (train/valid/test)")
        label = binary_label(_score(r["label_T"], f"{path}:{i + 2}"), request.neutral_band, request.drop_neutral)
        if label is not None:
            splits[modes[r["mode"]]].append(Example(r["text"].strip(), label, uid=f"{r['video_id']}_{r['clip_id']}"))
    return Dataset("chsims", CHSIMS2, "zh", "sentiment", splits)
