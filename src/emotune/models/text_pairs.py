"""Encoder inputs for a distilled student: the utterance, then its dialogue context (torch-free).

The torch student and its ONNX export tokenise with this one class, through the ``tokenizers``
library and the student's ``tokenizer.json`` alone: importing ``transformers`` costs about 3 s on a
laptop CPU, more than a whole student prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.storage import read_json

#: The student's folder inside a run directory or export, and its description file.
STUDENT_DIR = "student"
STUDENT_FILE = "student.json"
HEAD_FILE = "head.safetensors"


def is_student(run: Path) -> bool:
    """Whether ``run`` holds a distilled student (a run or its export)."""
    return (run / STUDENT_DIR).is_dir()


@dataclass(frozen=True)
class StudentSpec:
    """What a saved student needs besides its weights (``student/student.json``).

    Attributes:
        encoder: Where the encoder came from (a package name, folder or hub id).
        max_length: Tokens per input, utterance and context together.
        pad_id: The tokenizer's padding id.
        type_ids: Whether the encoder takes ``token_type_ids`` (BERT-style segment ids).
    """

    encoder: str
    max_length: int
    pad_id: int
    type_ids: bool

    @classmethod
    def read(cls, folder: Path) -> StudentSpec:
        """Reads ``folder/student.json``.

        Raises:
            EmotuneError: For a missing or incomplete file.
        """
        data = read_json(folder / STUDENT_FILE)
        try:
            return cls(str(data["encoder"]), int(data["max_length"]), int(data["pad_id"]), bool(data["type_ids"]))
        except (KeyError, TypeError, ValueError):
            raise EmotuneError(f"{folder / STUDENT_FILE}: incomplete student description") from None


def context_text(example: Example) -> str | None:
    """The earlier turns as one segment, oldest first ("speaker: text" lines), or None."""
    return " ".join(turn.line for turn in example.context) or None


class PairEncoder:
    """Token ids for an utterance (first segment) and its context (second), padded per batch.

    The utterance comes first so that truncation (longest segment first) trims a long context
    before it reaches the words being classified.
    """

    def __init__(self, tokenizer: Any, spec: StudentSpec) -> None:
        self.tokenizer, self.spec = tokenizer, spec
        tokenizer.enable_truncation(spec.max_length)
        tokenizer.no_padding()

    @classmethod
    def load(cls, folder: Path) -> PairEncoder:
        """The encoder of a student folder (``tokenizer.json`` and ``student.json``).

        Raises:
            EmotuneError: For a missing or unreadable tokenizer.
        """
        from tokenizers import Tokenizer

        spec = StudentSpec.read(folder)
        try:
            return cls(Tokenizer.from_file(str(folder / "tokenizer.json")), spec)
        except Exception as err:  # tokenizers raises its own exception types for a damaged file
            raise EmotuneError(f"{folder}: cannot read tokenizer.json ({str(err).splitlines()[0]})") from None

    def rows(self, examples: Sequence[Example]) -> list[Any]:
        """One tokenizers ``Encoding`` per example, unpadded."""
        pairs = [(ex.text, ctx) if (ctx := context_text(ex)) else ex.text for ex in examples]
        return list(self.tokenizer.encode_batch(pairs))

    def pad(self, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        """``input_ids``, ``attention_mask`` (and ``token_type_ids``) as int64 arrays, right-padded."""
        width = max(len(r.ids) for r in rows)
        ids = np.full((len(rows), width), self.spec.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            n = len(row.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = row.ids, 1, row.type_ids
        batch = {"input_ids": ids, "attention_mask": mask}
        return batch | {"token_type_ids": types} if self.spec.type_ids else batch


def to_probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Softmax over labels, or one sigmoid per label."""
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)
