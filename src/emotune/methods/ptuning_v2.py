"""P-Tuning v2 (deep prompt tuning): trainable prefix keys/values at every layer.

Uses PEFT's prefix tuning for parameters and the saved format, and feeds its per-layer prefix
cache to the decoder stack directly (the label scoring never calls the LM head). Without the
reparameterisation MLP, the prefix starts from the real key/value cache of an instruction text:
PEFT's N(0, 1) start wrecks the frozen model at step 0 and learns slowly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError
from emotune.methods.base import Method, MethodOptions, cache_argument, decoder_of, option, register_method
from emotune.methods.seeding import seed_ids, seed_prompt_encoder, with_virtual_tokens

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class PTuningV2Options(MethodOptions):
    """Options of P-Tuning v2."""

    # 64 beat the paper's 32 on dev at 256 training examples (two seeds, three corpora: mean macro-F1
    # +2.1, Friends +5.6; benchmarks/results/search/ptuning-v2-256). The paper-layout matrices pin 32.
    prompt_length: int = option(64, "virtual tokens per layer (paper: 32)")
    prefix_projection: bool = option(False, "reparameterise the prefix through an MLP (P-Tuning v2's option)")
    projection_hidden: int = option(512, "hidden size of that MLP")

    def validate(self) -> None:
        if self.prompt_length < 1 or self.projection_hidden < 1:
            raise EmotuneError("method.prompt_length and method.projection_hidden must be >= 1")


# default_lr: a dev probe at 256 examples (benchmarks/results/search/ptuning-v2-256) found 5e-2 beat
# the earlier 5e-3 on Friends, Mastodon and SMP2020-EWECT (dev macro-F1 +14.8 on average); 1e-3 was worse.
@register_method("ptuning-v2", PTuningV2Options, caches_prompts=False, default_lr=5e-2)
class PTuningV2(Method[PTuningV2Options]):
    """PEFT prefix tuning with ``prompt_length`` virtual tokens at every layer."""

    def peft_config(self, model: PreTrainedModel) -> Any:
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(
            num_virtual_tokens=self.options.prompt_length,
            prefix_projection=self.options.prefix_projection,
            encoder_hidden_size=self.options.projection_hidden,
            task_type="CAUSAL_LM",
        )

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        seed = None if self.options.prefix_projection else real_kv(model, tokenizer, self.options.prompt_length)
        wrapped = super().attach(model, tokenizer)
        keep_prefix_under_checkpointing(wrapped)
        if seed is not None:
            seed_prompt_encoder(wrapped, seed)
        return wrapped

    def hidden_states(
        self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        n = self.options.prompt_length
        cache = read_only(wrapped.get_prompt(input_ids.shape[0], max_cache_len=input_ids.shape[1] + n))  # type: ignore[operator]
        decoder = decoder_of(wrapped)
        mask = with_virtual_tokens(attention_mask, n)  # the prefix is visible to every position
        out = decoder(input_ids=input_ids, attention_mask=mask, use_cache=True, **{cache_argument(decoder): cache})
        return out.last_hidden_state

    def load(self, model: PreTrainedModel, adapter_dir: Path) -> nn.Module:
        wrapped = super().load(model, adapter_dir)
        keep_prefix_under_checkpointing(wrapped)
        return wrapped


def read_only(cache: Any) -> Any:
    """The prefix cache with each layer's ``update`` returning prefix + new states without storing them.

    The decoder appends every forward's keys and values to the cache it is given. Gradient
    checkpointing replays each layer in backward, which would append them a second time; with
    nothing stored, the replay reads the same prefix the forward did. The cache is built anew for
    each forward, so nothing needs the appended states.
    """
    import torch

    for layer in cache.layers:

        def update(keys: torch.Tensor, values: torch.Tensor, *_: Any, _layer: Any = layer, **__: Any) -> Any:
            return torch.cat([_layer.keys, keys], dim=-2), torch.cat([_layer.values, values], dim=-2)

        layer.update = update
    return cache


def keep_prefix_under_checkpointing(wrapped: nn.Module) -> None:
    """Lets each decoder layer keep its cache argument under gradient checkpointing.

    transformers drops a layer's cache when it checkpoints the layer, because a layer that writes
    to the cache would write twice; P-Tuning v2's prefix *is* that cache, so without this the
    prefix would vanish (PEFT refuses the pair for this reason, PEFT #869). The prefix cache is
    `read_only`, so the replay is safe.
    """
    for module in decoder_of(wrapped).modules():
        if hasattr(type(module), "_can_checkpoint_with_cache"):
            setattr(module, "_can_checkpoint_with_cache", True)  # noqa: B010  (a class flag, set per instance)


def real_kv(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, length: int) -> torch.Tensor:
    """Key/value cache of a real text, laid out as PEFT's prefix embedding (length, layers*2*dim).

    PEFT views the embedding as (length, layers * 2, kv_heads, head_dim) with keys and values of
    a layer next to each other, so rows are built in that order. The ids go to the model's own
    device (a CPU tensor against a CUDA model fails in the embedding lookup).
    """
    import torch

    ids = torch.tensor([seed_ids(tokenizer, length)], device=model.device)
    with torch.no_grad():
        out = decoder_of(model)(input_ids=ids, use_cache=True)
    cache = out.cache if "cache" in type(out).__dataclass_fields__ else out.past_key_values
    per_layer = []
    for layer in range(len(cache.layers)):
        keys, values = cache.layers[layer].keys, cache.layers[layer].values  # (1, heads, L, dim)
        for tensor in (keys, values):
            per_layer.append(tensor[0].permute(1, 0, 2).reshape(length, -1))  # (L, heads*dim)
    return torch.cat(per_layer, dim=-1)
