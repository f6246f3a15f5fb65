"""Labelling a file, in one process or split between several (``accelerate launch``,
``torchrun``), without importing torch when there is one process: an ONNX export or a distilled
student labels a file on ONNX Runtime alone."""

from __future__ import annotations

import os
from pathlib import Path

from emotune.inference.predict import Predictor
from emotune.inference.predict_files import DialogueColumns, FileResult, predict_file


def launched_processes() -> int:
    """How many processes ``accelerate launch`` or ``torchrun`` started (1 without them): read
    from the environment they set, so one process never imports torch for it."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True in the process that reports (rank 0, or the only one)."""
    return os.environ.get("RANK", "0") in ("", "0")


def label_file(
    predictor: Predictor,
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk: int = 256,
    dialogue: DialogueColumns | None = None,
) -> FileResult:
    """Labels ``source`` into ``target`` in this process, or split between the launched
    processes (`emotune.inference.sharded`)."""
    if launched_processes() == 1:
        return predict_file(predictor, source, target, text_column, chunk, dialogue)
    from emotune.inference.sharded import predict_file_sharded

    return predict_file_sharded(predictor, source, target, text_column, chunk, dialogue)
