"""IA3 (Liu et al. 2022): learned per-channel scaling of keys, values and feed-forward activations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from emotune.errors import EmotuneError
from emotune.methods.base import Method, MethodOptions, option, register_method

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class IA3Options(MethodOptions):
    """Options of IA3."""

    target_modules: list[str] | None = option(
        None, "modules whose outputs are scaled (default: PEFT's choice for the model type)"
    )
    feedforward_modules: list[str] | None = option(
        None, "the subset of target_modules scaled at their input (feed-forward layers)"
    )


@register_method
class IA3(Method):
    """PEFT IA3: a few thousand trainable scales, mergeable into the backbone."""

    name = "ia3"
    options_class = IA3Options
    mergeable = True
    default_lr = 3e-3
    options: IA3Options

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        from peft import IA3Config, get_peft_model
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
        )
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
        )

        model_type = getattr(model.config, "model_type", "")
        targets = self.options.target_modules or TARGETS.get(model_type)
        feedforward = self.options.feedforward_modules or FEEDFORWARD.get(model_type)
        if not targets or feedforward is None:
            raise EmotuneError(
                f"ia3: PEFT has no default modules for model type '{model_type}'; "
                "set method.target_modules and method.feedforward_modules"
            )
        config = IA3Config(target_modules=list(targets), feedforward_modules=list(feedforward), task_type="CAUSAL_LM")
        try:
            return get_peft_model(model, config)
        except ValueError as err:
            raise EmotuneError(f"ia3: {str(err).splitlines()[0]} (method.target_modules)") from None
