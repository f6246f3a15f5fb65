"""Zero-shot: the frozen backbone with the paper's prompt, no training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emotune.methods.base import Method, MethodOptions, option, register_method

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class ZeroShotOptions(MethodOptions):
    """Options of the non-adapted LLM."""

    calibrate: bool = option(True, "subtract the label scores of a content-free input (contextual calibration)")


@register_method("zero-shot", ZeroShotOptions, trainable=False, needs_adapter=False)
class ZeroShot(Method[ZeroShotOptions]):
    """The non-adapted LLM; label scores may be calibrated on a content-free input."""

    @property
    def calibrates(self) -> bool:
        return self.options.calibrate

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        return model

    def load(self, model: PreTrainedModel, adapter_dir: Path) -> nn.Module:
        return model

    def save(self, wrapped: nn.Module, adapter_dir: Path) -> None:
        """Zero-shot has no adapter; the run directory's config is enough to rebuild it."""
