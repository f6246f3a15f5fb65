"""Prompt tuning (shallow soft prompt): trainable embeddings before the input only.

The ablation P-Tuning v2 improves on. The soft prompt starts from the embeddings of a real
instruction text, which trains faster than a random start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError
from emotune.methods.base import Method, MethodOptions, decoder_of, option, register_method
from emotune.methods.seeding import seed_ids, seed_prompt_encoder, with_virtual_tokens

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class PromptTuningOptions(MethodOptions):
    """Options of shallow prompt tuning."""

    prompt_length: int = option(32, "virtual tokens (paper: 32)")

    def validate(self) -> None:
        if self.prompt_length < 1:
            raise EmotuneError("method.prompt_length must be >= 1")


@register_method("prompt-tuning", PromptTuningOptions, caches_prompts=False, default_lr=3e-3)
class PromptTuning(Method[PromptTuningOptions]):
    """PEFT prompt tuning with ``prompt_length`` virtual tokens at the input layer."""

    def peft_config(self, model: PreTrainedModel) -> Any:
        from peft import PromptTuningConfig

        return PromptTuningConfig(num_virtual_tokens=self.options.prompt_length, task_type="CAUSAL_LM")

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        import torch

        ids = torch.tensor(seed_ids(tokenizer, self.options.prompt_length), device=model.device)
        with torch.no_grad():
            seed = model.get_input_embeddings()(ids).detach()  # type: ignore[operator]
        wrapped = super().attach(model, tokenizer)
        seed_prompt_encoder(wrapped, seed)
        return wrapped

    def hidden_states(
        self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        import torch

        n = self.options.prompt_length
        decoder = decoder_of(wrapped)
        embeds = decoder.get_input_embeddings()(input_ids)  # type: ignore[operator]
        prompts = wrapped.get_prompt(batch_size=input_ids.shape[0]).to(embeds.dtype)  # type: ignore[operator]
        mask = with_virtual_tokens(attention_mask, n)
        out = decoder(inputs_embeds=torch.cat([prompts, embeds], dim=1), attention_mask=mask, use_cache=False)
        return out.last_hidden_state[:, n:]
