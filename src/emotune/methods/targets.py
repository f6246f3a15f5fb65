"""Which modules an adapter wraps: PEFT's per-model-type mapping, else every linear layer.

PEFT keeps a table from a model's ``model_type`` to the module names its authors chose (for
example ``q_proj, v_proj`` for Llama and Gemma 3, ``query_key_value`` for ChatGLM). A model type
the table lacks (transformers' GLM, for one) gets PEFT's ``all-linear`` (every linear layer but
the output head), which works for any architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ALL_LINEAR = "all-linear"


def default_targets(model: PreTrainedModel, mapping: Mapping[str, Sequence[str]]) -> list[str] | str:
    """PEFT's targets for the model's type, or ``all-linear`` when it has none."""
    model_type = getattr(model.config, "model_type", "")
    return list(mapping[model_type]) if model_type in mapping else ALL_LINEAR


def resolve_targets(
    override: Sequence[str] | None, model: PreTrainedModel, mapping: Mapping[str, Sequence[str]]
) -> list[str] | str:
    """The user's module names when given (``all-linear`` alone means every linear layer), else
    :func:`default_targets`."""
    if override and list(override) == [ALL_LINEAR]:
        return ALL_LINEAR
    return list(override) if override else default_targets(model, mapping)
