"""A distilled student as ONNX: the encoder and its head traced into ``student/model.onnx``.

The distillation writes an fp32 ``model.onnx`` beside the torch weights; ``emotune export --format
onnx [--int8]`` writes a folder with only the ONNX student (optionally with dynamic int8 weights)
and the run files, which `Predictor` loads like the run itself.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emotune.errors import EmotuneError
from emotune.inference.onnx_backend import quantize_onnx
from emotune.inference.onnx_trace import trace_to_onnx
from emotune.models.encoder import EncoderRecogniser
from emotune.models.text_pairs import STUDENT_DIR, STUDENT_FILE
from emotune.storage import atomic_dir

#: What a student export holds besides the student folder.
STUDENT_RUN_FILES = ("config.yaml", "run.json", "dataset_card.json", "distill.yaml")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def onnx_available() -> bool:
    """Whether the onnx extra (exporter and runtime) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime", "onnxscript"))


class _Logits(nn.Module):
    """The student's forward with positional inputs, as the ONNX exporter traces it."""

    def __init__(self, rec: EncoderRecogniser) -> None:
        super().__init__()
        self.model, self.type_ids = rec.model, rec.inputs.spec.type_ids

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.model(input_ids, attention_mask, **extra).float()


def export_student_onnx(rec: EncoderRecogniser, path: Path) -> None:
    """Traces the student (batch and length dynamic) into ``path``."""
    from emotune.data.schema import Example

    batch = rec.inputs.pad(rec.inputs.rows([Example("an example text"), Example("another one, longer than that")]))
    names = list(batch)
    args = tuple(torch.from_numpy(batch[n]) for n in names)
    b, s = torch.export.Dim("batch"), torch.export.Dim("seq")
    dims: dict[str, Any] = {"input_ids": {0: b, 1: s}, "attention_mask": {0: b, 1: s}}
    if rec.inputs.spec.type_ids:
        dims["token_type_ids"] = {0: b, 1: s}
    trace_to_onnx(_Logits(rec).eval(), args, path, names, dims)


def export_student(run: Path, output: Path, quantize: bool) -> str:
    """Writes the ONNX student of ``run`` and its run files into ``output``; returns a note.

    Raises:
        EmotuneError: Without the onnx extra.
    """
    if not onnx_available():
        raise EmotuneError("an ONNX export needs the onnx extra: pip install 'emotune[onnx]'")
    rec = EncoderRecogniser.load(run)
    with atomic_dir(output) as tmp:
        student = tmp / STUDENT_DIR
        student.mkdir()
        export_student_onnx(rec, student / "model.onnx")
        if quantize:
            quantize_onnx(student / "model.onnx")
        for name in (STUDENT_FILE, *TOKENIZER_FILES):
            if (run / STUDENT_DIR / name).is_file():
                shutil.copy2(run / STUDENT_DIR / name, student / name)
        for name in STUDENT_RUN_FILES:
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / name)
    return "distilled student as ONNX" + (" with dynamic int8 weights" if quantize else " (fp32)")
