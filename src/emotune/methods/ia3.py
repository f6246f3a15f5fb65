"""IA3 (Liu et al. 2022): learned per-channel scaling of keys, values and feed-forward activations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError
from emotune.methods.base import Method, MethodOptions, option, register_method

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class IA3Options(MethodOptions):
    """Options of IA3."""

    target_modules: list[str] | None = option(
        None, "modules whose outputs are scaled (default: PEFT's choice for the model type)"
    )
    feedforward_modules: list[str] | None = option(
        None, "the subset of target_modules scaled at their input (feed-forward layers)"
    )


# IA3 scales keys, values and the feed-forward output; these are those layers' names across the
# families PEFT's table leaves out (Phi-3's fused qkv_proj, GLM-4, ChatGLM's query_key_value).
_KV_NAMES = ("k_proj", "v_proj", "qkv_proj", "query_key_value", "Wqkv")
_FEEDFORWARD_NAMES = ("down_proj", "dense_4h_to_h", "fc2", "w2")


def structural_targets(model: PreTrainedModel) -> tuple[list[str], list[str]]:
    """IA3's targets read from the model's own linear layers, for a type PEFT has no defaults for:
    (key/value and feed-forward output names, feed-forward output names)."""
    from torch import nn

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    feedforward = [n for n in _FEEDFORWARD_NAMES if n in names]
    return [n for n in _KV_NAMES if n in names] + feedforward, feedforward


@register_method("ia3", IA3Options, mergeable=True, default_lr=3e-3)
class IA3(Method[IA3Options]):
    """PEFT IA3: a few thousand trainable scales, mergeable into the backbone."""

    def peft_config(self, model: PreTrainedModel) -> Any:
        from peft import IA3Config
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
        )
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
        )

        model_type = getattr(model.config, "model_type", "")
        found = structural_targets(model)
        targets = self.options.target_modules or TARGETS.get(model_type) or found[0]
        feedforward = self.options.feedforward_modules or FEEDFORWARD.get(model_type) or found[1]
        if not targets or not feedforward:
            raise EmotuneError(
                f"ia3: PEFT has no default modules for model type '{model_type}'; "
                "set method.target_modules and method.feedforward_modules"
            )
        return IA3Config(target_modules=list(targets), feedforward_modules=list(feedforward), task_type="CAUSAL_LM")
