"""P-Tuning v2 (deep prompt tuning): trainable prefix keys/values at every layer.

Uses PEFT's prefix tuning for parameters and the saved format, and feeds its per-layer prefix
cache to the decoder stack directly (the label scoring never calls the LM head). Without the
reparameterisation MLP, the prefix starts from the real key/value cache of an instruction text:
PEFT's N(0, 1) start wrecks the frozen model at step 0 and learns slowly.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.methods.base import Method, decoder_of, register_method

_SEED_TEXT = (
    "Classify the sentiment or emotion of the sentence to one of the labels. "
    "Read the sentence carefully and answer with the label word only."
)


@register_method
class PTuningV2(Method):
    """PEFT prefix tuning with ``prompt_length`` virtual tokens at every layer."""

    name = "ptuning-v2"
    default_lr = 5e-3

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        from peft import PrefixTuningConfig, get_peft_model

        config = PrefixTuningConfig(
            num_virtual_tokens=self.cfg.prompt_length,
            prefix_projection=self.cfg.prefix_projection,
            encoder_hidden_size=self.cfg.projection_hidden,
            task_type="CAUSAL_LM",
        )
        seed = None if self.cfg.prefix_projection else _real_kv(model, tokenizer, self.cfg.prompt_length)
        wrapped = get_peft_model(model, config)
        if seed is not None:
            embedding: torch.Tensor = wrapped.prompt_encoder["default"].embedding.weight  # type: ignore[index,union-attr,assignment]
            with torch.no_grad():
                embedding.copy_(seed.to(embedding.dtype))
        return wrapped

    def hidden_states(self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = self.cfg.prompt_length
        batch = input_ids.shape[0]
        cache = wrapped.get_prompt(batch, max_cache_len=input_ids.shape[1] + n)  # type: ignore[operator]
        prefix_mask = torch.ones(batch, n, dtype=attention_mask.dtype, device=attention_mask.device)
        out = decoder_of(wrapped)(
            input_ids=input_ids,
            attention_mask=torch.cat([prefix_mask, attention_mask], dim=1),
            past_key_values=cache,
            use_cache=True,
        )
        return out.last_hidden_state


def _real_kv(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, length: int) -> torch.Tensor:
    """Key/value cache of a real text, laid out as PEFT's prefix embedding (length, layers*2*dim).

    PEFT views the embedding as (length, layers * 2, kv_heads, head_dim) with keys and values of
    a layer next to each other, so rows are built in that order.
    """
    ids = tokenizer(_SEED_TEXT, add_special_tokens=False).input_ids
    ids = (ids * (length // len(ids) + 1))[:length]
    with torch.no_grad():
        out = decoder_of(model)(input_ids=torch.tensor([ids]), use_cache=True)
    cache = out.past_key_values
    per_layer = []
    for layer in range(len(cache.layers)):
        keys, values = cache.layers[layer].keys, cache.layers[layer].values  # (1, heads, L, dim)
        for tensor in (keys, values):
            per_layer.append(tensor[0].permute(1, 0, 2).reshape(length, -1))  # (L, heads*dim)
    return torch.cat(per_layer, dim=-1)
