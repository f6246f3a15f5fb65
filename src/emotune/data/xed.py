"""XED (Öhman et al., COLING 2020): film and TV subtitles annotated with Plutchik's eight emotions.

Files (the ``AnnotatedData`` and ``Projections`` folders of the release): ``en-annotated.tsv``
with ``text<TAB>ids`` (1 anger, 2 anticipation, 3 disgust, 4 fear, 5 joy, 6 sadness, 7 surprise,
8 trust; comma-separated, multi-label), ``neu_en.txt`` with ``9<TAB>text`` (neutral lines) and
``{zh,cn,tw}-projections.tsv`` (lines projected onto Chinese subtitles, no neutral file).

XED has no official split. emotune splits each file 80/10/10 after shuffling its lines with the
fixed seed `SPLIT_SEED` (never the run seed), so every run and every user gets the same test lines.
Licence: CC BY 4.0 (the dataset card); cite Öhman et al. 2020.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from emotune.data.files import numbered_lines, require_dir
from emotune.data.registry import DataRequest, Variant, register_family
from emotune.data.schema import Dataset, Example, LabelSet, regroup
from emotune.errors import EmotuneError

#: The seed of XED's stated split (80% train, 10% dev, 10% test of each file's lines).
SPLIT_SEED = 2020
PLUTCHIK = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
ZH_WORDS = [["愤怒"], ["期待"], ["厌恶"], ["恐惧"], ["喜悦"], ["悲伤"], ["惊讶"], ["信任"]]
XED9 = LabelSet((*PLUTCHIK, "neutral"))
XED_ZH = LabelSet(PLUTCHIK, {"zh": ZH_WORDS})
POLARITY = LabelSet(("negative", "neutral", "positive"))
_ZH_POLARITY = LabelSet(("negative", "positive"), {"zh": [["消极"], ["积极"]]})
#: Plutchik's emotions by polarity; anticipation and surprise are neither, so their lines are left out.
_POLE = {"anger": 0, "disgust": 0, "fear": 0, "sadness": 0, "joy": 2, "trust": 2, "neutral": 1}
FILES = "en-annotated.tsv, neu_en.txt, {zh,cn,tw}-projections.tsv"
log = logging.getLogger(__name__)


def read_xed(path: Path, neutral: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """``(text, label ids 0..8)`` of one XED file (ids 0..7 Plutchik, 8 neutral).

    The released files hold a few broken lines (a projected line cut by a newline, stray
    alignment records); those are skipped and counted in a warning. A file with no line or
    mostly broken lines is an error naming it.
    """
    rows, broken = [], 0
    lines = [line for _, line in numbered_lines(path)]
    for line in lines:
        fields = line.rstrip("\r").split("\t")
        text, ids = (fields[1:2], fields[0]) if neutral else (fields[:1], fields[1] if len(fields) > 1 else "")
        parsed = _ids(ids)
        if parsed is None or not text or not text[0].strip() or any(f.strip() for f in fields[2:]):
            broken += 1
            continue
        rows.append((text[0].strip(), parsed))
    if not rows or broken > len(lines) // 10:
        form = "'9<TAB>text'" if neutral else "'text<TAB>ids'"
        raise EmotuneError(f"{path}: {broken} of {len(lines)} lines are not {form}")
    if broken:
        log.warning("%s: %d broken lines skipped", path, broken)
    return rows


def _ids(field: str) -> tuple[int, ...] | None:
    try:
        ids = sorted({int(x) - 1 for x in field.split(",")})
    except ValueError:
        return None
    return tuple(ids) if ids and ids[0] >= 0 and ids[-1] <= 8 else None


def split_rows(rows: list[tuple[str, tuple[int, ...]]], tag: str) -> dict[str, list[Example]]:
    """The stated split: lines shuffled with `SPLIT_SEED`, 80% train, 10% dev, 10% test."""
    order = list(range(len(rows)))
    random.Random(SPLIT_SEED).shuffle(order)
    cut1, cut2 = int(len(rows) * 0.8), int(len(rows) * 0.9)
    parts = {"train": order[:cut1], "dev": order[cut1:cut2], "test": order[cut2:]}
    return {
        split: [Example(rows[i][0], rows[i][1][0], uid=f"{tag}:{i + 1}", labels=rows[i][1]) for i in sorted(idx)]
        for split, idx in parts.items()
    }


def _merge(parts: list[dict[str, list[Example]]]) -> dict[str, list[Example]]:
    return {s: [e for p in parts for e in p[s]] for s in ("train", "dev", "test")}


def _lines(request: DataRequest, language: str) -> dict[str, list[Example]]:
    folder = require_dir(request.data_dir, "xed", FILES)
    if language == "zh":
        files = [f"{k}-projections.tsv" for k in ("zh", "cn", "tw")]
        return _merge([split_rows(read_xed(folder / f), f) for f in files])
    annotated = split_rows(read_xed(folder / f"{language}-annotated.tsv"), f"{language}-annotated")
    neutral = split_rows(read_xed(folder / f"neu_{language}.txt", neutral=True), f"neu_{language}")
    return _merge([annotated, neutral])


def to_polarity(examples: list[Example]) -> list[Example]:
    """Each line whose emotions share one polarity, labelled with it (`POLARITY`); others left out."""
    pole_of = {i: _POLE[name] for i, name in enumerate(XED9.names) if name in _POLE}
    return regroup(examples, pole_of)


def _xed(request: DataRequest, name: str, language: str, polarity: bool) -> Dataset:
    """XED's English lines (with the neutral ones) or its Chinese projections, by emotion or polarity."""
    splits = {s: v for s, v in _lines(request, language).items() if request.wants(s)}
    if not polarity:
        return Dataset(name, XED9 if language == "en" else XED_ZH, language, "emotion", splits, multi_label=True)
    splits = {s: to_polarity(v) for s, v in splits.items()}
    if language == "zh":  # no neutral lines exist for the projections: negative (0) / positive (2 -> 1)
        splits = {s: [Example(e.text, int(e.label or 0) // 2, uid=e.uid) for e in v] for s, v in splits.items()}
        return Dataset(name, _ZH_POLARITY, "zh", "sentiment", splits)
    return Dataset(name, POLARITY, "en", "sentiment", splits)


register_family(
    _xed,
    [
        Variant(
            "xed",
            "XED English subtitles, Plutchik's 8 emotions + neutral, multi-label; seeded 80/10/10 split",
            {"language": "en", "polarity": False},
        ),
        Variant(
            "xed-zh",
            "XED lines projected onto Chinese subtitles (zh, cn, tw), Plutchik's 8 emotions, multi-label",
            {"language": "zh", "polarity": False},
            language="zh",
        ),
        Variant(
            "xed-polarity",
            "XED English as negative / neutral / positive (lines of one polarity; anticipation, surprise out)",
            {"language": "en", "polarity": True},
            task="sentiment",
        ),
        Variant(
            "xed-zh-polarity",
            "XED's Chinese projections as negative / positive (lines of one polarity)",
            {"language": "zh", "polarity": True},
            language="zh",
            task="sentiment",
        ),
    ],
    folder="xed",
    language="en",
    task="emotion",
    files=FILES,
)
