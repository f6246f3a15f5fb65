"""DoRA: weight-decomposed LoRA (Liu et al. 2024): LoRA on the direction, a trained magnitude."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emotune.methods.base import register_method
from emotune.methods.lora import Lora, LoraOptions

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class DoraOptions(LoraOptions):
    """Options of DoRA: the same as LoRA's."""


@register_method("dora", DoraOptions)
class Dora(Lora):
    """PEFT LoRA with ``use_dora``: each adapted weight is split into magnitude and direction."""

    def peft_config(self, model: PreTrainedModel) -> Any:
        config = super().peft_config(model)
        config.use_dora = True
        return config
