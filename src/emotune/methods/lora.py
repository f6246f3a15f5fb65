"""LoRA: trainable low-rank updates beside frozen weights (PEFT), paper default rank 8."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError
from emotune.methods.base import Method, MethodOptions, option, register_method
from emotune.methods.targets import ALL_LINEAR, resolve_targets

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class LoraOptions(MethodOptions):
    """Options of LoRA (and of its variants)."""

    rank: int = option(8, "LoRA rank (paper: 8)")
    alpha: int = option(16, "LoRA scaling numerator (the update is scaled by alpha / rank)")
    dropout: float = option(0.05, "dropout on the LoRA input")
    target_modules: list[str] | None = option(
        [ALL_LINEAR], "modules to adapt, comma-separated: all-linear (default), peft-default (PEFT's table) or names"
    )

    def validate(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise EmotuneError("method.rank and method.alpha must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise EmotuneError("method.dropout must be in [0, 1)")


@register_method("lora", LoraOptions, mergeable=True, default_lr=2e-4)
class Lora(Method[LoraOptions]):
    """PEFT LoRA on the configured target modules (every linear layer by default)."""

    def peft_config(self, model: PreTrainedModel) -> Any:
        """The PEFT ``LoraConfig`` for ``model``."""
        from peft import LoraConfig
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

        return LoraConfig(
            r=self.options.rank,
            lora_alpha=self.options.alpha,
            lora_dropout=self.options.dropout,
            target_modules=resolve_targets(self.options.target_modules, model, TARGETS),
            task_type="CAUSAL_LM",
        )
