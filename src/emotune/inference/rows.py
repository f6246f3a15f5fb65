"""The rows of a file to label, streamed: ``.txt`` (a text per line), ``.csv``/``.tsv`` or
``.jsonl`` with a text column.

A bad row (empty text, missing column) comes back with an ``error`` instead of stopping the
file. Runs trained with dialogue context get it in one of two ways: a JSONL row may carry
``context``, the earlier turns of its dialogue (oldest first), or a `DialogueColumns` names the
column that groups consecutive rows into dialogues, and each row gets the rows before it in its
dialogue.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from emotune.data.files import decoded, iter_records, python_codec
from emotune.data.schema import Turn
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.storage import check_encoding

log = logging.getLogger(__name__)


class Row(NamedTuple):
    """One input row: its number, its text (None for a bad row), why it is bad, its context, and
    (with `DialogueColumns`) its dialogue and speaker."""

    row: int
    text: str | None
    error: str | None
    context: tuple[str, ...] = ()
    dialogue: str | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class DialogueColumns:
    """Which columns place a row in its dialogue, so that it can get its earlier turns as context.

    Attributes:
        dialogue: The column whose value is the same for consecutive rows of one dialogue.
        speaker: An optional speaker column; context lines then read "speaker: text", as in training.
        turns: How many earlier rows of the dialogue each row gets (the run's ``context_turns``).
    """

    dialogue: str
    speaker: str | None = None
    turns: int = 2


def dialogue_columns(predictor: Predictor, dialogue: str | None, speaker: str | None) -> DialogueColumns | None:
    """The `DialogueColumns` for a run: as many turns as it was trained with.

    Raises:
        EmotuneError: For a speaker column without a dialogue column.
    """
    if dialogue is None:
        if speaker is not None:
            raise EmotuneError("speaker_column needs dialogue_column", settings=("speaker_column", "dialogue_column"))
        return None
    if predictor.context_turns == 0:
        log.warning("the model was trained without dialogue context; the dialogue column adds none")
    return DialogueColumns(dialogue, speaker, predictor.context_turns)


def iter_rows(
    path: Path, text_column: str, dialogue: DialogueColumns | None = None, encoding: str = "utf-8"
) -> Iterator[Row]:
    """Streams rows from ``.txt`` (a line each), ``.csv``/``.tsv`` or ``.jsonl`` in ``encoding``.

    ``row`` counts data rows from 1 in every format (a CSV header and blank lines are not rows);
    error messages name the file's line. A JSONL line that is not JSON, a CSV row with more
    fields than the header (an unquoted comma) or a row without text becomes an error row; a
    table without the text column (or the dialogue column) at all is an error for the whole file.

    Raises:
        EmotuneError: For a missing file, a missing column, ``dialogue`` on a ``.txt`` file, or
            bytes that are not ``encoding`` (raised when the reading reaches them).
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise EmotuneError(f"{path}: {'a folder, not a file' if path.is_dir() else 'file not found'}")
    check_encoding(encoding)
    if suffix == ".jsonl":
        lines = _jsonl_lines(path, text_column, dialogue, encoding)
    elif suffix in (".csv", ".tsv"):
        lines = _table_lines(path, text_column, dialogue, encoding)
    elif dialogue is not None:
        raise EmotuneError(f"{path}: a dialogue column needs a CSV, TSV or JSONL file")
    else:
        lines = _text_lines(path, encoding)
    if dialogue is not None:
        lines = _with_context(lines, dialogue.turns)
    for row_no, line in enumerate(lines, 1):
        yield line._replace(row=row_no)


def _text_lines(path: Path, encoding: str) -> Iterator[Row]:
    with path.open(encoding=python_codec(encoding)) as fh, decoded(path, encoding):
        yield from (Row(i, line.rstrip("\n"), None) for i, line in enumerate(fh, 1) if line.strip())


def _table_lines(path: Path, text_column: str, dialogue: DialogueColumns | None, encoding: str) -> Iterator[Row]:
    for row_no, (lineno, record) in enumerate(iter_records(path, encoding), 1):
        if row_no == 1:
            _check_columns(path, record, text_column, dialogue)
        if None in record:  # csv.DictReader's key for fields beyond the header
            yield Row(lineno, None, f"line {lineno}: more fields than the header (an unquoted comma?)")
            continue
        yield _place(_row(lineno, record.get(text_column), text_column), record, dialogue)


def _check_columns(path: Path, record: dict, text_column: str, dialogue: DialogueColumns | None) -> None:
    wanted = {text_column: "text_column"}
    if dialogue is not None:
        wanted[dialogue.dialogue] = "dialogue_column"
        if dialogue.speaker is not None:
            wanted[dialogue.speaker] = "speaker_column"
    for column, setting in wanted.items():
        if column not in record:
            present = ", ".join(str(c) for c in record if c is not None)
            raise EmotuneError(f"{path}: no column '{column}' (columns: {present}); set {setting}", settings=(setting,))


def _place(row: Row, record: dict, dialogue: DialogueColumns | None) -> Row:
    """The row with its dialogue and speaker values (None where the record lacks them)."""
    if dialogue is None:
        return row
    return row._replace(dialogue=_cell(record, dialogue.dialogue), speaker=_cell(record, dialogue.speaker))


def _cell(record: dict, column: str | None) -> str | None:
    value = None if column is None else record.get(column)
    return None if value is None or not str(value).strip() else str(value).strip()


def _with_context(rows: Iterator[Row], turns: int) -> Iterator[Row]:
    """Gives each row the last ``turns`` rows before it in its dialogue (consecutive rows with the
    same dialogue value; a row without one stands alone). Context a JSONL row carries wins."""
    history: deque[str] = deque(maxlen=turns)
    current: str | None = None
    for row in rows:
        if row.dialogue is None or row.dialogue != current:
            history.clear()
            current = row.dialogue
        if row.text is None:
            yield row
            continue
        yield row if row.context else row._replace(context=tuple(history))
        history.append(Turn(row.text, row.speaker).line)  # rendered as the training prompts render it


def _jsonl_lines(path: Path, text_column: str, dialogue: DialogueColumns | None, encoding: str) -> Iterator[Row]:
    with path.open(encoding=python_codec(encoding)) as fh, decoded(path, encoding):
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                yield Row(lineno, None, f"line {lineno}: not valid JSON")
                continue
            if not isinstance(record, dict):
                yield _row(lineno, None, text_column)
                continue
            context = record.get("context") or []
            if not isinstance(context, list) or not all(isinstance(turn, str) for turn in context):
                yield Row(lineno, None, f"line {lineno}: 'context' must be a list of earlier turns (strings)")
                continue
            row = _row(lineno, record.get(text_column), text_column)._replace(context=tuple(context))
            yield _place(row, record, dialogue)


def _row(lineno: int, text: object, text_column: str) -> Row:
    if not isinstance(text, str) or not text.strip():
        return Row(lineno, None, f"line {lineno}: no text in '{text_column}'")
    return Row(lineno, text, None)
