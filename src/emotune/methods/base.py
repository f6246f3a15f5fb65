"""The method interface and its registry."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.config import MethodConfig
from emotune.errors import EmotuneError

_REGISTRY: dict[str, type[Method]] = {}


class Method:
    """A way to customise a frozen backbone.

    Subclasses wrap the backbone in :meth:`attach` (training) or :meth:`load` (from a saved
    adapter) and say how to run the decoder in :meth:`hidden_states`; the label scoring on top
    is shared by all methods.
    """

    name: ClassVar[str]
    trainable: ClassVar[bool] = True
    default_lr: ClassVar[float] = 2e-4

    def __init__(self, cfg: MethodConfig) -> None:
        self.cfg = cfg

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        """Returns the backbone wrapped with fresh trainable parameters."""
        raise NotImplementedError

    def load(self, model: PreTrainedModel, adapter_dir: Path) -> nn.Module:
        """Returns the backbone wrapped with the adapter saved in ``adapter_dir`` (PEFT format)."""
        from peft import PeftModel

        if not (adapter_dir / "adapter_config.json").is_file():
            raise EmotuneError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter)")
        try:
            return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except Exception as err:  # PEFT raises many types for a damaged file
            raise EmotuneError(f"{adapter_dir}: cannot load adapter ({_first_line(err)})") from None

    def save(self, wrapped: nn.Module, adapter_dir: Path) -> None:
        """Saves the adapter in PEFT format (safetensors)."""
        wrapped.save_pretrained(str(adapter_dir), safe_serialization=True)  # type: ignore[operator]

    def hidden_states(self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states (batch, seq, hidden) aligned with ``input_ids``.

        Calls the decoder stack directly, not the LM head, so no vocabulary logits are made.
        """
        out = decoder_of(wrapped)(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state


def base_model_of(wrapped: nn.Module) -> PreTrainedModel:
    """The underlying causal LM of a PEFT-wrapped or plain model."""
    get_base = getattr(wrapped, "get_base_model", None)
    return get_base() if callable(get_base) else wrapped  # type: ignore[return-value]


def decoder_of(wrapped: nn.Module) -> nn.Module:
    """The decoder stack (embeddings + layers + final norm) of a causal LM."""
    base = base_model_of(wrapped)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    decoder = decoder or getattr(base, "model", None) or getattr(base, "transformer", None)
    if decoder is None:
        raise EmotuneError(f"cannot find the decoder stack of {type(base).__name__}")
    return decoder


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator registering a method under its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """Registered method names."""
    return sorted(_REGISTRY)


def get_method(cfg: MethodConfig) -> Method:
    """Instantiates the method named by ``cfg.name``."""
    if cfg.name not in _REGISTRY:
        raise EmotuneError(f"unknown method '{cfg.name}'; registered: {', '.join(method_names())}")
    return _REGISTRY[cfg.name](cfg)
