"""The scoring backends a `Predictor` loads from a folder: the torch `Recogniser` of a run or a
merged export (torch imported only here), or a distilled student (its ONNX file where
ONNX Runtime is installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from emotune.calibration import ClassScaling
from emotune.config import RunConfig
from emotune.data.schema import LabelSet
from emotune.errors import EmotuneError
from emotune.methods import get_method
from emotune.models.text_pairs import HEAD_FILE, STUDENT_DIR
from emotune.rundir import load_run, read_label_head
from emotune.storage import read_json

#: ``model.name`` of an exported folder: the backbone is the folder itself.
SAME_FOLDER = "."


def trained_context_turns(folder: Path) -> int:
    """The dialogue turns a run put before each utterance (0 for a run or export without a card)."""
    card = folder / "dataset_card.json"
    data = read_json(card) if card.is_file() else {}
    turns = data.get("context_turns") if isinstance(data, dict) else None
    return turns if isinstance(turns, int) and turns > 0 else 0


def student_backend(folder: Path) -> Any:
    """A distilled student: its ONNX file on ONNX Runtime where both exist (it starts in a fraction
    of a second: no torch, no transformers), else its torch weights."""
    student = folder / STUDENT_DIR
    onnx = (student / "model.onnx").is_file()
    if onnx and importlib.util.find_spec("onnxruntime") is not None:
        from emotune.inference.onnx_backend import OnnxEncoderRecogniser

        return OnnxEncoderRecogniser.load(folder)
    if not (student / HEAD_FILE).is_file():
        extra = " (its model.onnx needs: pip install 'emotune[onnx]')" if onnx else ""
        raise EmotuneError(f"{student}: no student weights{extra}")
    from emotune.models.encoder import EncoderRecogniser

    return EncoderRecogniser.load(folder)


def torch_recogniser(folder: Path, dequantize: bool = False, corpus: str | None = None) -> Any:
    """The torch Recogniser of a run directory or merged export (torch is imported here, not at
    module import, so an ONNX export predicts without it)."""
    from emotune.models.recogniser import build_recogniser

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True).validate()
    if cfg.model.name == SAME_FOLDER:  # a merged export carries its own weights
        cfg.model.name = str(folder)
    if dequantize:
        cfg.model.quantization = "none"
    run = load_run(folder)
    meta = run.meta.corpus(corpus)
    rec = build_recogniser(
        cfg,
        LabelSet.from_dict(meta.labels),
        meta.language,
        meta.task,
        adapter_dir=run.adapter(needed=get_method(cfg.method).needs_adapter),
        multi_label=meta.multi_label,
        head_bias=meta.head_bias,
        head_rows=read_label_head(folder),
        threshold=meta.threshold,
    )
    rec.temperature = run.meta.temperature  # a run over several corpora fits one for all
    rec.class_scaling = ClassScaling.from_dict(run.meta.class_scaling)
    return rec
