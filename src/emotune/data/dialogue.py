"""Conversational corpora: Friends (EmotionLines), MELD, Mastodon and CPED.

Each utterance becomes an `Example` whose ``context`` holds every earlier turn of its
dialogue; `emotune.data.load_data` keeps the last ``data.context_turns`` of them (0 = the
paper's setting, no context; unset = the corpus's own default, 2 for Friends, else 0).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

from emotune.data.files import numbered_lines, read_csv_rows, require_dir
from emotune.data.registry import DataRequest, register_dataset
from emotune.data.schema import Dataset, Example, LabelSet, Turn
from emotune.errors import EmotuneError
from emotune.storage import read_json

EMOTIONS7 = ("neutral", "joy", "sadness", "fear", "anger", "surprise", "disgust")
FRIENDS7 = LabelSet(EMOTIONS7, {"en": [[n] for n in EMOTIONS7]})
FRIENDS8 = LabelSet((*EMOTIONS7, "non-neutral"), {"en": [*([n] for n in EMOTIONS7), ["mixed"]]})
MASTODON = LabelSet(("negative", "neutral", "positive"), {"en": [["negative"], ["neutral"], ["positive"]]})
CPED13 = LabelSet(
    (
        "neutral",
        "anger",
        "depress",
        "happy",
        "negative-other",
        "relaxed",
        "positive-other",
        "worried",
        "astonished",
        "fear",
        "sadness",
        "disgust",
        "grateful",
    ),
    {
        "zh": [
            [w]
            for w in (
                "中性",
                "愤怒",
                "沮丧",
                "高兴",
                "负面",
                "放松",
                "正面",
                "担心",
                "惊讶",
                "恐惧",
                "悲伤",
                "厌恶",
                "感激",
            )
        ]
    },
)
M3ED7 = LabelSet(
    ("neutral", "happy", "surprise", "sad", "disgust", "anger", "fear"),
    {"zh": [[w] for w in ("中性", "高兴", "惊讶", "悲伤", "厌恶", "愤怒", "恐惧")]},
)
# CPED's 13 emotions onto M3ED's 7; "negative-other" has no counterpart and is dropped.
CPED_TO_M3ED = {
    "neutral": "neutral",
    "anger": "anger",
    "depress": "sad",
    "happy": "happy",
    "relaxed": "happy",
    "positive-other": "happy",
    "worried": "fear",
    "astonished": "surprise",
    "fear": "fear",
    "sadness": "sad",
    "disgust": "disgust",
    "grateful": "happy",
}
_CP1252 = {chr(c): bytes([c]).decode("cp1252", errors="ignore") for c in range(0x80, 0xA0)}


def fix_cp1252(text: str) -> str:
    """Replaces C1 control characters that are really cp1252 bytes (``\\x92`` is ’)."""
    return "".join(_CP1252.get(ch, ch) for ch in text)


def dialogue_examples(turns: Iterable[tuple[str, str | None, int | None]], uid: str) -> list[Example]:
    """Examples for one dialogue's (text, speaker, label) turns; unlabelled turns stay as context."""
    history: list[Turn] = []
    examples = []
    for i, (text, speaker, label) in enumerate(turns):
        if label is not None:
            examples.append(Example(text, label, tuple(history), speaker, f"{uid}:{i}"))
        history.append(Turn(text, speaker))
    return examples


def _friends(request: DataRequest, labels: LabelSet, name: str) -> Dataset:
    folder = require_dir(request.data_dir, name, "friends_{train,dev,test}.json")
    splits = {}
    for split in [s for s in ("train", "dev", "test") if request.wants(s)]:
        path = folder / f"friends_{split}.json"
        data = read_json(path)
        examples: list[Example] = []
        for d, dialogue in enumerate(data if isinstance(data, list) else []):
            try:
                turns = [(fix_cp1252(u["utterance"]), u["speaker"], u["emotion"]) for u in dialogue]
            except (KeyError, TypeError):
                raise EmotuneError(f"{path}: dialogue {d} lacks utterance/speaker/emotion fields") from None
            labelled = [(t, s, _friends_label(e, labels, path)) for t, s, e in turns]
            examples.extend(dialogue_examples(labelled, f"friends-{split}-{d}"))
        if not examples:
            raise EmotuneError(f"{path}: no dialogues")
        splits[split] = examples
    return Dataset(name, labels, "en", "emotion", splits)


def _friends_label(emotion: str, labels: LabelSet, path: Path) -> int | None:
    """Label index; ``non-neutral`` outside the 7-class task stays in the dialogue as context only."""
    if emotion in labels.names:
        return labels.index(emotion)
    if emotion == "non-neutral":
        return None
    raise EmotuneError(f"{path}: unknown emotion '{emotion}'")


@register_dataset("friends", "en", "emotion", folder="friends", files="friends_{train,dev,test}.json")
def load_friends(request: DataRequest) -> Dataset:
    """EmotionLines Friends, 7 emotions (non-neutral dropped: 8544/964/2223), 2 context turns by default.

    EmotionLines (Friends) with the 7-class task of the paper.

    Runs put two earlier turns before each utterance unless ``data.context_turns`` says
    otherwise: chosen on dev at full budget (benchmarks/results/search/friends-full: +4.3 dev
    macro-F1 over three seeds against no context, the paper's setting).
    """
    dataset = _friends(request, FRIENDS7, "friends")
    dataset.context_turns = 2
    return dataset


@register_dataset("friends-8", "en", "emotion", folder="friends", files="friends_{train,dev,test}.json")
def load_friends8(request: DataRequest) -> Dataset:
    """EmotionLines Friends, 7 emotions + non-neutral (10561/1178/2764)."""
    return _friends(request, FRIENDS8, "friends-8")


@register_dataset("meld", "en", "emotion", folder="meld", files="{train,dev,test}_sent_emo.csv")
def load_meld(request: DataRequest) -> Dataset:
    """MELD text, 7 emotions, dialogue (9989/1109/2610), 2 context turns by default.

    MELD utterances with their dialogue context.

    Runs put two earlier turns before each utterance unless ``data.context_turns`` says
    otherwise: chosen on dev at 256 training examples (benchmarks/results/search/context-small:
    dev macro-F1 higher on each of three seeds, mean 39.02 against 35.77 without context).
    """
    folder = require_dir(request.data_dir, "meld", "{train,dev,test}_sent_emo.csv")
    splits = {}
    for split in [s for s in ("train", "dev", "test") if request.wants(s)]:
        path = folder / f"{split}_sent_emo.csv"
        rows = read_csv_rows(path, ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"))
        dialogues: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            dialogues.setdefault(row["Dialogue_ID"], []).append(row)
        examples = []
        for dia, turns in dialogues.items():
            turns.sort(key=lambda r: int(r["Utterance_ID"]))
            triples = [(fix_cp1252(r["Utterance"]), r["Speaker"], FRIENDS7.index(r["Emotion"])) for r in turns]
            examples.extend(dialogue_examples(triples, f"meld-{split}-{dia}"))
        splits[split] = examples
    return Dataset("meld", FRIENDS7, "en", "emotion", splits, context_turns=2)


def _mastodon_dialogues(path: Path) -> list[list[tuple[str, str | None, int | None]]]:
    symbols = {"-": 0, "*": 1, "+": 2}
    dialogues: list[list[tuple[str, str | None, int | None]]] = []
    for lineno, line in numbered_lines(path):
        index, tag, *words = line.split(" ")
        if not index.isdigit() or tag[:1] not in symbols:
            raise EmotuneError(f"{path}:{lineno}: expected '<index> <sentiment>_<act> <words>'")
        if index == "0" or not dialogues:
            dialogues.append([])
        dialogues[-1].append((" ".join(words).strip(), None, symbols[tag[0]]))
    return dialogues


@register_dataset("mastodon", "en", "sentiment", folder="mastodon", files="data{train,test}Joint.txt")
def load_mastodon(request: DataRequest) -> Dataset:
    """Mastodon dialogue sentiment, 3 classes (train 1063 incl. a seeded 10% dev by dialogue; test 1142), 2 context
    turns by default.

    Mastodon posts; the dev split is carved from train by dialogue (never from test).

    Runs put the two earlier posts of the thread before each post unless ``data.context_turns``
    says otherwise: chosen on dev at full budget (benchmarks/results/search/mastodon-context-full)
    and at 256 examples (benchmarks/results/search/mastodon-context-small).
    """
    folder = require_dir(request.data_dir, "mastodon", "data{train,test}Joint.txt")
    train = _mastodon_dialogues(folder / "datatrainJoint.txt")
    test = _mastodon_dialogues(folder / "datatestJoint.txt")
    order = list(range(len(train)))
    random.Random(request.seed).shuffle(order)
    dev_ids = set(order[: max(1, len(train) // 10)])
    pick = lambda ids, split: [e for i in ids for e in dialogue_examples(train[i], f"mastodon-{split}-{i}")]  # noqa: E731
    splits = {
        "train": pick([i for i in range(len(train)) if i not in dev_ids], "train"),
        "dev": pick(sorted(dev_ids), "dev"),
        "test": [e for i, d in enumerate(test) for e in dialogue_examples(d, f"mastodon-test-{i}")],
    }
    return Dataset("mastodon", MASTODON, "en", "sentiment", splits, context_turns=2)


# 42: the split every CPED figure in benchmarks/results was scored on.
CPED_SPLIT_SEED = 42


def _cped(request: DataRequest, labels: LabelSet, mapping: Callable[[str], str | None], name: str) -> Dataset:
    folder = require_dir(request.data_dir, name, "{valid,test}_split.csv")
    dialogues: dict[str, list[dict[str, str]]] = {}
    for part in ("valid", "test"):
        path = folder / f"{part}_split.csv"
        for row in read_csv_rows(path, ("Dialogue_ID", "Utterance_ID", "Speaker", "Emotion", "Utterance")):
            dialogues.setdefault(row["Dialogue_ID"], []).append(row)
    ids = sorted(dialogues)
    # Only valid and test are published here: re-split by dialogue, 80/10/10, with a seed of its
    # own so every run seed (and every method) is scored on the same test dialogues, and a run
    # evaluated later never meets its own training dialogues.
    random.Random(CPED_SPLIT_SEED).shuffle(ids)
    cut1, cut2 = int(0.8 * len(ids)), int(0.9 * len(ids))
    parts = {"train": ids[:cut1], "dev": ids[cut1:cut2], "test": ids[cut2:]}
    splits = {}
    for split, members in parts.items():
        examples = []
        for dia in sorted(members):
            turns = sorted(dialogues[dia], key=lambda r: r["Utterance_ID"])
            triples = [(r["Utterance"], r["Speaker"], _cped_label(r["Emotion"], labels, mapping)) for r in turns]
            examples.extend(dialogue_examples(triples, f"{name}-{dia}"))
        splits[split] = examples
    return Dataset(name, labels, "zh", "emotion", splits)


def _cped_label(emotion: str, labels: LabelSet, mapping: Callable[[str], str | None]) -> int | None:
    if emotion not in CPED13.names:
        raise EmotuneError(f"CPED: unknown emotion '{emotion}'")
    target = mapping(emotion)
    return None if target is None else labels.index(target)


@register_dataset("cped", "zh", "emotion", folder="cped", files="{valid,test}_split.csv")
def load_cped(request: DataRequest) -> Dataset:
    """CPED Chinese TV dialogues, 13 emotions; valid+test re-split 80/10/10 by dialogue (seeded)."""
    return _cped(request, CPED13, lambda e: e, "cped")


@register_dataset("cped-m3ed7", "zh", "emotion", folder="cped", files="{valid,test}_split.csv")
def load_cped_m3ed7(request: DataRequest) -> Dataset:
    """CPED mapped onto M3ED's 7 emotions (negative-other dropped), re-split by dialogue, 2 context turns by
    default.

    CPED with its emotions mapped onto M3ED's 7 (a stand-in for M3ED).

    Runs put two earlier turns before each utterance unless ``data.context_turns`` says
    otherwise: chosen on dev at 256 training examples (benchmarks/results/search/context-small:
    dev macro-F1 higher on each of three seeds, mean 20.83 against 20.53 without context).
    """
    dataset = _cped(request, M3ED7, CPED_TO_M3ED.get, "cped-m3ed7")
    dataset.context_turns = 2
    return dataset
