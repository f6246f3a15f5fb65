"""What an export records for code that does not import emotune: ``emotune.json`` beside a merged
or ONNX export (`ExportMeta`), and the ``emotune`` block of a seq-cls export's ``config.json``
(`SeqClsBlock`). Each is written and read through its class, as ``run.json`` is through
`emotune.rundir.RunMeta`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotune.errors import EmotuneError
from emotune.storage import read_json, write_json

EXPORT_FILE = "emotune.json"


@dataclass
class ExportMeta:
    """``emotune.json``: how plain ``transformers`` (or ONNX Runtime) code reproduces the label
    logits of a merged or ONNX export; ``how`` says it in one sentence."""

    format: str
    labels: list[str]
    multi_label: bool
    threshold: float
    prompt_head: str
    prompt_tail: str
    add_bos: bool
    max_length: int
    # Later fields have defaults: an export written before they existed still loads.
    label_token_ids: list[list[int]] = field(default_factory=list)
    label_tokens: str = "first"
    label_word_ids: list[list[list[int]]] = field(default_factory=list)
    label_bias: list[float] = field(default_factory=list)
    temperature: float = 1.0
    #: A trained head's rows are not the output vocabulary's: only the ONNX graph has them.
    trained_label_head: bool = False
    how: str = ""

    def save(self, folder: Path) -> None:
        """Writes ``folder/emotune.json`` atomically."""
        write_json(folder / EXPORT_FILE, dataclasses.asdict(self))

    @classmethod
    def load(cls, folder: Path) -> ExportMeta:
        """``folder/emotune.json``.

        Raises:
            EmotuneError: If it is missing, damaged or lacks a field.
        """
        path = folder / EXPORT_FILE
        if not path.is_file():
            raise EmotuneError(f"{folder}: not an emotune export (no {EXPORT_FILE})")
        try:
            data = read_json(path)
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise EmotuneError(f"{path}: damaged ({type(err).__name__})") from None


@dataclass
class SeqClsBlock:
    """The ``emotune`` block of a seq-cls export's ``config.json``: the prompt (as text and as
    ids, for engines that take ids), the label bias its bias-free ``score`` layer cannot hold
    (prior correction and vector scaling's per-label bias, through the calibration), and the
    temperature or per-label scale folded into ``score``."""

    run: str
    method: str
    prompt_head: str
    prompt_tail: str
    prompt_head_ids: list[int]
    prompt_tail_ids: list[int]
    add_bos: bool
    max_length: int
    label_bias: list[float]
    temperature: float
    multi_label: bool
    temperature_folded_into_score: bool = True
    how: str = (
        "the exported tokenizer wraps raw text itself: tokenizer(text) gives [bos] + prompt_head_ids + "
        "the text's ids + prompt_tail_ids; engines that take ids build the same; "
        "label probabilities = softmax(logits - label_bias) (sigmoid for multi_label); "
        "label_bias is zero for a trained run without prior correction or vector scaling; the run's "
        "calibration (its temperature, or a scale per label) is folded into score"
    )

    def to_dict(self) -> dict[str, Any]:
        """The block as ``config.json`` holds it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqClsBlock:
        """The block read back from a loaded ``config.emotune``."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
