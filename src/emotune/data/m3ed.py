"""M3ED (Chinese TV-series dialogues, 7 emotions) from the authors' ``annotation.json``.

The authors' release (RUCM3ED) holds ``annotation.json``, a mapping
``{movie: {dialogue: {"SpeakerInfo": {...}, "Dialog": {utterance_id: {"Speaker", "Text",
"EmoAnnotation": {"final_main_emo", ...}}}}}}``, and ``splitInfo/movie_list_{train,val,test}.txt``
(the official split is by TV series). The text is distributed on request only, so this loader is
tested on fixtures written in the published format; weighted F1 is the corpus's headline metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emotune.data.dialogue import M3ED7, dialogue_examples
from emotune.data.files import require_dir
from emotune.data.registry import DataRequest, register_dataset
from emotune.data.schema import Dataset, Example
from emotune.errors import EmotuneError
from emotune.storage import read_json

FILES = "annotation.json + splitInfo/movie_list_{train,val,test}.txt"
SPLITS = {"train": "train", "dev": "val", "test": "test"}


def read_movie_lists(folder: Path) -> dict[str, str]:
    """Maps each TV series to its split; the lists may sit in ``splitInfo/`` or beside annotation.json."""
    where = folder / "splitInfo" if (folder / "splitInfo").is_dir() else folder
    movie_split: dict[str, str] = {}
    for split, stem in SPLITS.items():
        path = where / f"movie_list_{stem}.txt"
        if not path.is_file():
            raise EmotuneError(f"{path}: file not found (M3ED needs {FILES})")
        for movie in path.read_text(encoding="utf-8").split():
            if movie_split.setdefault(movie, split) != split:
                raise EmotuneError(f"{path}: series '{movie}' is also listed in {movie_split[movie]}")
    return movie_split


def dialogue_turns(dialog: Any, where: str) -> list[tuple[str, str | None, int | None]]:
    """(text, speaker, label) per utterance, ordered by the utterance number at the end of its id."""
    if not isinstance(dialog, dict):
        raise EmotuneError(f"{where}: 'Dialog' must map utterance ids to utterances")
    turns: list[tuple[str, str | None, int | None]] = []
    for utt_id in sorted(dialog, key=_utterance_number):
        utt = dialog[utt_id]
        try:
            text, speaker, emotion = utt["Text"], utt.get("Speaker"), utt["EmoAnnotation"]["final_main_emo"]
        except (KeyError, TypeError):
            raise EmotuneError(f"{where}/{utt_id}: lacks Text or EmoAnnotation.final_main_emo") from None
        turns.append((str(text).strip(), speaker, _label(str(emotion), f"{where}/{utt_id}")))
    return turns


def _utterance_number(utt_id: str) -> int:
    tail = utt_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _label(emotion: str, where: str) -> int:
    name = emotion.strip().lower()
    if name not in M3ED7.names:
        raise EmotuneError(f"{where}: unknown emotion '{emotion}'; expected one of {list(M3ED7.names)}")
    return M3ED7.index(name)


@register_dataset("m3ed", "zh", "emotion", folder="m3ed", files=FILES)
def load_m3ed(request: DataRequest) -> Dataset:
    """M3ED Chinese TV dialogues, 7 emotions, split by series; weighted F1 headline (authors' files not available
    here: tested on fixtures).

    M3ED with the official series-level split and dialogue context.
    """
    folder = require_dir(request.data_dir, "m3ed", FILES)
    annotation = read_json(folder / "annotation.json")
    if not isinstance(annotation, dict):
        raise EmotuneError(f"{folder / 'annotation.json'}: expected a mapping of series to dialogues")
    movie_split = read_movie_lists(folder)
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for movie, dialogues in annotation.items():
        if movie not in movie_split:
            raise EmotuneError(f"{folder / 'annotation.json'}: series '{movie}' is in no split list")
        for dia_id, dia in (dialogues or {}).items():
            where = f"annotation.json:{movie}/{dia_id}"
            dialog = dia.get("Dialog") if isinstance(dia, dict) else None
            turns = dialogue_turns(dialog, where)
            splits[movie_split[movie]].extend(dialogue_examples(turns, f"m3ed-{dia_id}"))
    return Dataset("m3ed", M3ED7, "zh", "emotion", splits, headline_metric="weighted_f1")
