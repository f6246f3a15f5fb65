"""LoRA: trainable low-rank updates beside frozen weights (PEFT), paper default rank 8."""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.errors import EmotuneError
from emotune.methods.base import Method, register_method


@register_method
class Lora(Method):
    """PEFT LoRA on the configured target modules."""

    name = "lora"
    default_lr = 2e-4

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.cfg.rank,
            lora_alpha=self.cfg.alpha,
            lora_dropout=self.cfg.dropout,
            target_modules=list(self.cfg.target_modules),
            task_type="CAUSAL_LM",
        )
        try:
            return get_peft_model(model, config)
        except ValueError as err:
            raise EmotuneError(f"LoRA: {str(err).splitlines()[0]} (method.target_modules)") from None
