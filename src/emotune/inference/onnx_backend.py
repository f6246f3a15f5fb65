"""Prediction on ONNX Runtime: the exported label scorer, a tokenizer and numpy; no torch, no PEFT.

Loaded by :meth:`emotune.inference.predict.Predictor.load` for a folder written by ``emotune export
--format onnx``; it answers with the same :class:`Prediction` objects as the torch backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError
from emotune.models.batching import length_batches
from emotune.models.decisions import decide_labels
from emotune.models.prompts import PromptBuilder
from emotune.storage import read_json


class OnnxRecogniser:
    """Label probabilities from ``model.onnx`` (inputs: ids, mask, positions -> label logits)."""

    def __init__(self, session: Any, tokenizer: Any, labels: LabelSet, prompt: PromptBuilder, meta: dict[str, Any]):
        self.session, self.tokenizer, self.labels, self.prompt = session, tokenizer, labels, prompt
        self.max_length = int(meta["max_length"])
        self.multi_label = bool(meta["multi_label"])
        self.threshold = float(meta["threshold"])
        self.batch_size = 16
        self.method_name = "onnx"

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
        run, meta = read_json(folder / "run.json"), read_json(folder / "emotune.json")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            session = onnxruntime.InferenceSession(
                str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except Exception as err:  # onnxruntime and tokenizers raise many types for a damaged file
            raise EmotuneError(f"{folder}: cannot load the ONNX export ({str(err).strip().splitlines()[0]})") from None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        labels = LabelSet.from_dict(run["labels"])
        prompt = PromptBuilder(labels, run["language"], run["task"])
        return cls(session, tokenizer, labels, prompt, meta)

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> np.ndarray:
        """Label probabilities (n, num_labels) in the input order."""
        rows = [self.prompt.encode(self.tokenizer, ex, self.max_length) for ex in examples]
        probs = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        for idx in length_batches([len(r) for r in rows], batch_size or self.batch_size):
            probs[idx] = self._to_probabilities(self._logits([rows[i] for i in idx]))
        return probs

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
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def decide(self, probs: np.ndarray) -> list[list[int]]:
        """Predicted label indices per row, best first (see :func:`emotune.models.decisions.decide_labels`)."""
        return decide_labels(probs.tolist(), self.multi_label, self.threshold)
