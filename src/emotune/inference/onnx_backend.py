"""Prediction on ONNX Runtime: the exported label scorer, a tokenizer and numpy; no torch, no PEFT.

Loaded by `emotune.inference.predict.Predictor.load` for a folder written by ``emotune export
--format onnx``; it answers with the same `Prediction` objects as the torch backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotune.calibration import ClassScaling, calibrated
from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError, first_line
from emotune.models.batching import length_batches
from emotune.models.decisions import decide_labels
from emotune.models.prompts import PromptBuilder
from emotune.rundir import ExportMeta, RunMeta


class OnnxRecogniser:
    """Label probabilities from ``model.onnx`` (inputs: ids, mask, positions -> label logits)."""

    def __init__(self, session: Any, tokenizer: Any, labels: LabelSet, prompt: PromptBuilder, meta: ExportMeta):
        self.session, self.tokenizer, self.labels, self.prompt = session, tokenizer, labels, prompt
        self.max_length = int(meta.max_length)
        self.multi_label = bool(meta.multi_label)
        self.threshold = float(meta.threshold)
        self.batch_size = 16
        self.method_name = "onnx"
        self.temperature = 1.0
        self.class_scaling: ClassScaling | None = None

    @classmethod
    def load(cls, folder: Path, threads: int = 0) -> OnnxRecogniser:
        """Opens an ONNX export folder.

        Raises:
            EmotuneError: Without onnxruntime, or for a damaged export.
        """
        try:
            import onnxruntime
            from transformers import AutoTokenizer
        except ImportError as err:
            raise EmotuneError(
                f"an ONNX export needs the onnx extra: pip install 'emotune[onnx]' ({err.name})"
            ) from None
        run, meta = RunMeta.load(folder), ExportMeta.load(folder)
        try:
            session = _session(onnxruntime, folder / "model.onnx", threads)
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except Exception as err:  # onnxruntime and tokenizers raise many types for a damaged file
            raise EmotuneError(f"{folder}: cannot load the ONNX export ({first_line(err)})") from None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        labels = LabelSet.from_dict(run.labels)
        prompt = PromptBuilder(labels, run.language, run.task)
        onnx = cls(session, tokenizer, labels, prompt, meta)
        onnx.temperature = run.temperature
        onnx.class_scaling = ClassScaling.from_dict(run.class_scaling)
        return onnx

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> np.ndarray:
        """Label probabilities (n, num_labels) in the input order."""
        return self._to_probabilities(self.scores(examples, batch_size))

    def scores(self, examples: Sequence[Example], batch_size: int | None = None) -> np.ndarray:
        """Label logits (n, num_labels) before the temperature, in the input order."""
        rows = [self.prompt.encode(self.tokenizer, ex, self.max_length) for ex in examples]
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        for idx in length_batches([len(r) for r in rows], batch_size or self.batch_size):
            out[idx] = self._logits([rows[i] for i in idx])
        return out

    def _logits(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
        positions = np.array([len(r) - 1 for r in rows], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "positions": positions}
        return np.asarray(self.session.run(["label_logits"], feed)[0], dtype=np.float32)

    def _to_probabilities(self, logits: np.ndarray) -> np.ndarray:
        logits = calibrated(logits, self.temperature, self.class_scaling)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def decide(self, probs: np.ndarray) -> list[list[int]]:
        """Predicted label indices per row, best first (see `emotune.models.decisions.decide_labels`)."""
        return decide_labels(probs.tolist(), self.multi_label, self.threshold)


class OnnxEncoderRecogniser:
    """Label probabilities from a distilled student's ``student/model.onnx``: ONNX Runtime,
    ``tokenizers`` and numpy, so a student starts without torch or transformers."""

    method_name = "distilled"

    def __init__(self, session: Any, inputs: Any, labels: LabelSet, multi_label: bool, threshold: float) -> None:
        self.session, self.inputs, self.labels = session, inputs, labels
        self.multi_label, self.threshold = multi_label, threshold
        self.batch_size = 64
        self.temperature = 1.0
        self.class_scaling: ClassScaling | None = None

    @classmethod
    def load(cls, run: Path, threads: int = 0) -> OnnxEncoderRecogniser:
        """Opens the ONNX student of a distilled run or of its export.

        Raises:
            EmotuneError: Without onnxruntime, or for a damaged file.
        """
        from emotune.models.text_pairs import STUDENT_DIR, PairEncoder

        onnxruntime = _onnxruntime()
        folder = run / STUDENT_DIR
        meta = RunMeta.load(run)
        try:
            session = _session(onnxruntime, folder / "model.onnx", threads)
        except Exception as err:  # onnxruntime raises many types for a damaged file
            raise EmotuneError(f"{folder}: cannot load model.onnx ({first_line(err)})") from None
        labels = LabelSet.from_dict(meta.labels)
        student = cls(session, PairEncoder.load(folder), labels, meta.multi_label, meta.threshold)
        student.temperature = meta.temperature
        student.class_scaling = ClassScaling.from_dict(meta.class_scaling)
        return student

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> np.ndarray:
        """Label probabilities (n, num_labels) in the input order."""
        from emotune.models.text_pairs import to_probabilities

        logits = calibrated(self.scores(examples, batch_size), self.temperature, self.class_scaling)
        return to_probabilities(logits, self.multi_label)

    def scores(self, examples: Sequence[Example], batch_size: int | None = None) -> np.ndarray:
        """Label logits (n, num_labels) before the temperature, in the input order."""
        rows = self.inputs.rows(examples)
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        for idx in length_batches([len(r.ids) for r in rows], batch_size or self.batch_size):
            feed = self.inputs.pad([rows[i] for i in idx])
            out[idx] = np.asarray(self.session.run(["label_logits"], feed)[0], dtype=np.float32)
        return out

    def decide(self, probs: np.ndarray) -> list[list[int]]:
        """Predicted label indices per row, best first."""
        return decide_labels(probs.tolist(), self.multi_label, self.threshold)


def _session(onnxruntime: Any, model: Path, threads: int) -> Any:
    """A CPU inference session on ``model`` (``threads`` 0: onnxruntime's default)."""
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise EmotuneError("an ONNX model needs the onnx extra: pip install 'emotune[onnx]'") from None
    return onnxruntime


def quantize_onnx(path: Path) -> None:
    """Dynamic int8 weights (activations stay fp32, quantised per call): smaller and faster on CPUs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name("model.int8.onnx")
    # Per output channel: one scale per row keeps the few large-magnitude rows of an LLM from
    # flattening the rest (per-tensor scales cost a point of SST-2 accuracy on the default backbone).
    # 7-bit weights (reduce_range): on CPUs without VNNI (AVX2, plain AVX-512) the uint8 x int8
    # products of 8-bit weights saturate; on an AVX2 machine they flipped 7 of a tiny run's 16
    # predictions, 7-bit weights flip none. An export may be served on either kind of CPU.
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    quantized.replace(path)
