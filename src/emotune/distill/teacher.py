"""The teacher's side of a distillation: a trained run scores texts into per-label probabilities.

Scores stream to ``RUN/teacher-scores/NAME.jsonl.partial`` chunk by chunk (flushed and synced),
one ``{"uid", "scores"}`` line per text, so a killed distillation goes on from the last complete
chunk and a finished one never asks the teacher again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from emotune.config import RunConfig
from emotune.data.schema import Example, Turn
from emotune.errors import EmotuneError
from emotune.inference.labelling import finished_rows
from emotune.inference.predict import Predictor
from emotune.inference.rows import iter_rows
from emotune.rundir import RunMeta, load_run

log = logging.getLogger(__name__)
SCORES_DIR = "teacher-scores"


def check_teacher(run: Path) -> tuple[RunConfig, RunMeta]:
    """The teacher's config and run metadata: it must be a recogniser with a label set.

    Raises:
        EmotuneError: If ``run`` is not an emotune run (or export) that classifies.
    """
    try:
        teacher = load_run(run)
    except EmotuneError as err:
        raise EmotuneError(f"the teacher is not a classifier run: {err}") from None
    return RunConfig.from_yaml(teacher.config_file, saved=True), teacher.meta


def read_unlabelled(path: Path, text_column: str, limit: int | None, encoding: str = "utf-8") -> list[Example]:
    """The texts of a ``.txt``, ``.csv``/``.tsv`` or ``.jsonl`` file (JSONL rows may carry ``context``).

    Rows without text are skipped with one warning.

    Raises:
        EmotuneError: For a missing file, a missing column, or a file with no text at all.
    """
    examples, bad = [], 0
    for row in islice(iter_rows(path, text_column, encoding=encoding), limit):
        if row.text is None:
            bad += 1
            continue
        context = tuple(Turn(t) for t in row.context)
        examples.append(Example(row.text.strip(), context=context, uid=f"{path.name}:{row.row}"))
    if not examples:
        raise EmotuneError(f"{path}: no texts to distil on (empty file, or no text in '{text_column}')")
    if bad:
        log.warning("%s: skipped %d rows without text", path, bad)
    return examples


def score(predictor: Predictor, examples: Sequence[Example], target: Path, chunk: int = 256) -> None:
    """Writes the teacher's probabilities for ``examples`` (one line each) to ``target``, going on
    from a ``.partial`` file that an interrupted call left."""
    partial = target.with_name(target.name + ".partial")
    done = finished_rows(partial)
    if done:
        log.info("%s: %d of %d texts were scored before; going on", target.name, done, len(examples))
    target.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("a", encoding="utf-8") as out, tqdm(total=len(examples), initial=done, disable=None) as bar:
        for start in range(done, len(examples), chunk):
            out.write(_score_lines(predictor, examples[start : start + chunk]))
            out.flush()
            os.fsync(out.fileno())  # a kill after this point never loses the chunk
            bar.update(min(chunk, len(examples) - start))
    os.replace(partial, target)


def _score_lines(predictor: Predictor, block: Sequence[Example]) -> str:
    probs = predictor.recogniser.probabilities(block, predictor.batch_size)
    rows = probs.tolist()
    return "".join(
        json.dumps({"uid": _key(ex), "scores": [round(v, 7) for v in row]}) + "\n"
        for ex, row in zip(block, rows, strict=True)
    )


def read_scores(target: Path, examples: Sequence[Example]) -> list[list[float]]:
    """The scores in ``target``, one row per example.

    Raises:
        EmotuneError: If ``target`` holds the scores of other texts (a changed data set).
    """
    with target.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    uids = [r["uid"] for r in records]
    if uids != [_key(ex) for ex in examples]:
        raise EmotuneError(
            f"{target}: scores of other texts; distil into a new output or pass overwrite",
            settings=("output", "overwrite"),
        )
    return [r["scores"] for r in records]


def _key(example: Example) -> str:
    """What identifies a scored text: its uid (loaders give file and line), else the text."""
    return example.uid or example.text
