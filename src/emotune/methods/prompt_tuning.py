"""Prompt tuning (shallow soft prompt): trainable embeddings before the input only.

The ablation P-Tuning v2 improves on. The soft prompt starts from the embeddings of a real
instruction text, which trains faster than a random start.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.methods.base import Method, decoder_of, register_method
from emotune.methods.ptuning_v2 import _SEED_TEXT


@register_method
class PromptTuning(Method):
    """PEFT prompt tuning with ``prompt_length`` virtual tokens at the input layer."""

    name = "prompt-tuning"
    default_lr = 3e-3

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        from peft import PromptTuningConfig, get_peft_model

        n = self.cfg.prompt_length
        ids = tokenizer(_SEED_TEXT, add_special_tokens=False).input_ids
        ids = (ids * (n // len(ids) + 1))[:n]
        with torch.no_grad():
            seed = model.get_input_embeddings()(torch.tensor(ids)).detach()  # type: ignore[operator]
        wrapped = get_peft_model(model, PromptTuningConfig(num_virtual_tokens=n, task_type="CAUSAL_LM"))
        with torch.no_grad():
            wrapped.prompt_encoder["default"].embedding.weight.copy_(seed)  # type: ignore[index,union-attr,operator]
        return wrapped

    def hidden_states(self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = self.cfg.prompt_length
        decoder = decoder_of(wrapped)
        embeds = decoder.get_input_embeddings()(input_ids)  # type: ignore[operator]
        prompts = wrapped.get_prompt(batch_size=input_ids.shape[0]).to(embeds.dtype)  # type: ignore[operator]
        ones = torch.ones(input_ids.shape[0], n, dtype=attention_mask.dtype, device=attention_mask.device)
        out = decoder(
            inputs_embeds=torch.cat([prompts, embeds], dim=1),
            attention_mask=torch.cat([ones, attention_mask], dim=1),
            use_cache=False,
        )
        return out.last_hidden_state[:, n:]
