"""Prediction over files: stream rows in, write JSONL out atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from emotune.data.files import iter_records
from emotune.errors import EmotuneError
from emotune.predict import Predictor


def iter_texts(path: Path, text_column: str) -> Iterator[str]:
    """Streams texts from ``.txt`` (a line each), ``.csv``/``.tsv`` or ``.jsonl`` files."""
    if path.suffix.lower() not in (".csv", ".tsv", ".jsonl"):
        if not path.is_file():
            raise EmotuneError(f"{path}: file not found")
        with path.open(encoding="utf-8-sig") as fh:
            yield from (line.rstrip("\n") for line in fh if line.strip())
        return
    for lineno, row in iter_records(path):
        if text_column not in row:
            raise EmotuneError(f"{path}:{lineno}: no column '{text_column}' (columns: {sorted(row)})")
        yield row[text_column]


def predict_file(predictor: Predictor, source: Path, target: Path, text_column: str = "text", chunk: int = 256) -> int:
    """Classifies every text of ``source`` into ``target`` (JSONL), in bounded memory.

    The output appears only when complete (temporary file, then rename).

    Returns:
        The number of rows written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    written = 0
    texts = iter_texts(source, text_column)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, tqdm(unit="text", disable=None) as bar:
            while block := list(islice(texts, chunk)):
                for text, pred in zip(block, predictor.predict(block), strict=True):
                    out.write(json.dumps({"text": text, **pred.to_dict()}, ensure_ascii=False) + "\n")
                written += len(block)
                bar.update(len(block))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return written
