"""Which modules an adapter wraps: every linear layer by default, or PEFT's per-model table.

LoRA's default is PEFT's ``all-linear`` (every linear layer but the output head): it works for
any architecture and, measured on dev, beats attention-only targets at small budgets by a wide
margin (``benchmarks/results/search/small-data-256``, ``benchmarks/results/methods-256``).
``peft-default`` asks for the module names PEFT's authors chose per ``model_type`` (``q_proj,
v_proj`` for Llama and Gemma 3, ``query_key_value`` for ChatGLM), falling back to all-linear for a
model type the table lacks (transformers' GLM, for one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ALL_LINEAR = "all-linear"
PEFT_DEFAULT = "peft-default"


def default_targets(model: PreTrainedModel, mapping: Mapping[str, Sequence[str]]) -> list[str] | str:
    """PEFT's targets for the model's type, or ``all-linear`` when it has none."""
    model_type = getattr(model.config, "model_type", "")
    return list(mapping[model_type]) if model_type in mapping else ALL_LINEAR


def resolve_targets(
    override: Sequence[str] | None, model: PreTrainedModel, mapping: Mapping[str, Sequence[str]]
) -> list[str] | str:
    """The user's module names when given; ``all-linear`` (also the default) means every linear
    layer and ``peft-default`` means `default_targets`."""
    if not override or list(override) == [ALL_LINEAR]:
        return ALL_LINEAR
    if list(override) == [PEFT_DEFAULT]:
        return default_targets(model, mapping)
    return list(override)
