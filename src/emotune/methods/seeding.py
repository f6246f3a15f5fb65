"""What the soft-prompt methods share: the instruction text their virtual tokens start from (a real
text trains faster than a random start) and the attention mask that lets every position see them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

SEED_TEXT = (
    "Classify the sentiment or emotion of the sentence to one of the labels. "
    "Read the sentence carefully and answer with the label word only."
)


def seed_ids(tokenizer: PreTrainedTokenizerBase, length: int) -> list[int]:
    """Token ids of `SEED_TEXT`, repeated or cut to ``length``."""
    ids: list[int] = tokenizer(SEED_TEXT, add_special_tokens=False).input_ids
    return (ids * (length // len(ids) + 1))[:length]


def seed_prompt_encoder(wrapped: nn.Module, seed: torch.Tensor) -> None:
    """Copies ``seed`` (virtual tokens, or prefix keys and values) into a PEFT prompt encoder."""
    import torch

    embedding: torch.Tensor = wrapped.prompt_encoder["default"].embedding.weight  # type: ignore[index,union-attr,assignment]
    with torch.no_grad():
        embedding.copy_(seed.to(embedding.device, embedding.dtype))


def with_virtual_tokens(attention_mask: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """``attention_mask`` with ``n`` visible positions in front, for the virtual tokens."""
    if attention_mask is None:
        return None
    import torch

    return torch.cat([attention_mask.new_ones(attention_mask.shape[0], n), attention_mask], dim=1)
