"""Zero-shot: the frozen backbone with the paper's prompt, no training."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.methods.base import Method, register_method


@register_method
class ZeroShot(Method):
    """The non-adapted LLM; label scores may be calibrated on a content-free input."""

    name = "zero-shot"
    trainable = False

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        return model

    def load(self, model: PreTrainedModel, adapter_dir: Path) -> nn.Module:
        return model

    def save(self, wrapped: nn.Module, adapter_dir: Path) -> None:
        """Zero-shot has no adapter; the run directory's config is enough to rebuild it."""
