"""Tiny random-weight causal LMs of nine architectures, built from transformers' configuration
classes (no download), for the architecture matrix and the checkpointing tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers

# Shared by every architecture: a few layers, grouped-query attention where the family has it.
COMMON: dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=2,
    num_key_value_heads=1,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    max_position_embeddings=512,
    initializer_range=0.2,
)


def _head(kw: dict[str, Any]) -> dict[str, Any]:
    """An explicit head width (16 unless overridden) for the families whose config takes one."""
    return {"head_dim": 16} | kw


def _llama(**kw: Any) -> Any:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**_head(kw), tie_word_embeddings=False))


def _qwen2(**kw: Any) -> Any:
    # transformers loads any tokenizer beside a Qwen2 config as Qwen2's byte-level BPE, which
    # reads the tests' word-level vocabulary as characters: the architecture is what this tests.
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**kw))


def _qwen3(**kw: Any) -> Any:
    return transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**_head(kw)))


def _mistral(**kw: Any) -> Any:
    return transformers.MistralForCausalLM(transformers.MistralConfig(**_head(kw), sliding_window=64))


def _phi3(**kw: Any) -> Any:
    return transformers.Phi3ForCausalLM(transformers.Phi3Config(**kw))


def _gemma2(**kw: Any) -> Any:
    config = transformers.Gemma2Config(**_head(kw), sliding_window=64, query_pre_attn_scalar=16)
    return transformers.Gemma2ForCausalLM(config)


def _gemma3(**kw: Any) -> Any:
    layers = ["sliding_attention", "full_attention"] * (kw["num_hidden_layers"] // 2)
    config = transformers.Gemma3TextConfig(**_head(kw), sliding_window=64, layer_types=layers)
    return transformers.Gemma3ForCausalLM(config)


def _gpt_neox(**kw: Any) -> Any:
    kw.pop("num_key_value_heads")  # GPT-NeoX has full multi-head attention only
    return transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**kw, rotary_pct=0.5))


def _glm4(**kw: Any) -> Any:
    return transformers.Glm4ForCausalLM(transformers.Glm4Config(**(_head(kw) | {"eos_token_id": [2]})))


ARCHITECTURES: dict[str, Callable[..., Any]] = {
    "llama": _llama,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "mistral": _mistral,
    "phi3": _phi3,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gpt_neox": _gpt_neox,
    "glm4": _glm4,
}


def build_arch(arch: str, folder: Path, vocab_size: int, layers: int = 2, **overrides: Any) -> None:
    """Saves a tiny random-weight model of ``arch`` into ``folder`` (seeded: the same every time)."""
    torch.manual_seed(0)
    model = ARCHITECTURES[arch](**(COMMON | {"vocab_size": vocab_size, "num_hidden_layers": layers} | overrides))
    model.save_pretrained(folder)
