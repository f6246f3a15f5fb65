"""The method interface, its options base class and the registry (methods register by name).

A method is one file: an options dataclass (its settings, each with help text, validated by
itself) and a `Method` subclass that says how to wrap a frozen backbone and what the
method is (trainable, needs a saved adapter, mergeable, calibrates). Nothing outside
``methods/`` tests a method's name: it asks the method.

This module and the method files import torch and PEFT only inside the functions that use them,
so the config layer and the CLI's argument parser (built from the options) load without them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from emotune.errors import EmotuneError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def option(default: Any, help: str) -> Any:
    """A dataclass field with its help text (shown by ``emotune train --help``)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class MethodOptions:
    """Settings of a method; each method subclasses this with its own fields."""

    def validate(self) -> None:
        """Raises EmotuneError for an invalid setting; subclasses add their own checks."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the method's name first (the YAML form)."""
        return {"name": method_name_of(self), **dataclasses.asdict(self)}


OptionsT = TypeVar("OptionsT", bound=MethodOptions)


class Method(Generic[OptionsT]):
    """A way to customise a frozen backbone.

    Subclasses wrap the backbone in `attach` (training) or `load` (from a saved
    adapter) and say how to run the decoder in `hidden_states`; the label scoring on top
    is shared by all methods.

    Attributes (`register_method` sets them):
        name: The registered name (``--method``).
        options_class: The method's options dataclass.
        trainable: Has parameters to train (zero-shot has none).
        needs_adapter: A trained run stores an ``adapter/`` folder to load.
        mergeable: The adapter can be folded into the backbone's weights.
        default_lr: Peak learning rate when ``train.lr`` is not set.
    """

    name: ClassVar[str]
    options_class: ClassVar[type[MethodOptions]] = MethodOptions
    trainable: ClassVar[bool] = True
    needs_adapter: ClassVar[bool] = True
    mergeable: ClassVar[bool] = False
    default_lr: ClassVar[float] = 2e-4
    #: Whether `continue_states` can extend a prompt from its key/value cache (False for methods
    #: that feed the decoder their own prefix, whose cache `hidden_states` builds per call).
    caches_prompts: ClassVar[bool] = True

    def __init__(self, options: OptionsT) -> None:
        self.options = options

    @property
    def calibrates(self) -> bool:
        """Whether label scores are calibrated on a content-free input before use."""
        return False

    def peft_config(self, model: PreTrainedModel) -> Any:
        """The PEFT config this method attaches to ``model``; None for a method without one.

        It needs only the model's structure, so ``emotune plan`` calls it on a model built on the
        meta device (no weights) to count the trainable parameters a run would have.
        """
        return None

    def attach(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        """Returns the backbone wrapped with fresh trainable parameters: PEFT's model for `peft_config`.

        Raises:
            EmotuneError: When PEFT refuses the config (e.g. target modules the model lacks).
        """
        from peft import get_peft_model

        config = self.peft_config(model)
        if config is None:  # a method of its own making, not PEFT's, attaches itself
            raise NotImplementedError(f"method '{self.name}' has no PEFT config: it overrides attach")
        try:
            return get_peft_model(model, config)
        except ValueError as err:
            hint = " (method.target_modules)" if hasattr(self.options, "target_modules") else ""
            raise EmotuneError(f"{self.name}: {first_line(err)}{hint}") from None

    def load(self, model: PreTrainedModel, adapter_dir: Path) -> nn.Module:
        """Returns the backbone wrapped with the adapter saved in ``adapter_dir`` (PEFT format)."""
        from peft import PeftModel

        if not (adapter_dir / "adapter_config.json").is_file():
            raise EmotuneError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter)")
        try:
            return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except Exception as err:  # PEFT raises many types for a damaged file
            raise EmotuneError(f"{adapter_dir}: cannot load adapter ({first_line(err)})") from None

    def warm_start(self, wrapped: nn.Module, adapter_dir: Path) -> None:
        """Copies a trained adapter's weights into the fresh ones of ``wrapped`` (``train.init_from``).

        Raises:
            EmotuneError: When the saved adapter is missing or its parameters do not fit these
                (another rank, other target modules, another prompt length).
        """
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        file = adapter_dir / "adapter_model.safetensors"
        if not file.is_file():
            raise EmotuneError(f"{adapter_dir}: no adapter_model.safetensors to start from")
        state = load_file(str(file))
        try:
            result = set_peft_model_state_dict(wrapped, state)
        except (RuntimeError, ValueError, KeyError) as err:
            raise EmotuneError(
                f"{adapter_dir}: its adapter does not fit this run's (rank, target modules or prompt length "
                f"differ): {first_line(err)}"
            ) from None
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected or not state:
            raise EmotuneError(f"{adapter_dir}: its adapter does not fit this run's (e.g. {unexpected[:1]})")

    def save(self, wrapped: nn.Module, adapter_dir: Path) -> None:
        """Saves the adapter in PEFT format (safetensors)."""
        wrapped.save_pretrained(str(adapter_dir), safe_serialization=True)  # type: ignore[operator]

    def hidden_states(
        self, wrapped: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Final hidden states (batch, seq, hidden) aligned with ``input_ids``.

        Calls the decoder stack directly, not the LM head, so no vocabulary logits are made.
        ``attention_mask`` None means causal attention alone (right-padded rows, see
        `emotune.models.recogniser.causal_only`).
        """
        out = decoder_of(wrapped)(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state

    def cached_states(self, wrapped: nn.Module, input_ids: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Final hidden states of right-padded prompts (causal attention alone) and their key/value cache."""
        out = decoder_of(wrapped)(input_ids=input_ids, use_cache=True)
        return out.last_hidden_state, out.past_key_values

    def continue_states(
        self,
        wrapped: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
    ) -> torch.Tensor:
        """Final hidden states of ``input_ids`` appended to the prompts held in ``cache``.

        Args:
            input_ids: The new tokens (rows, span), one row per cached prompt.
            attention_mask: Over the cached positions and the new ones (rows, cached + span): the
                prompts' padding is masked so the new tokens read only each prompt's real tokens.
            position_ids: Each new token's position (rows, span): right after its prompt's last
                real token, not after the padded width.
            cache: The prompts' key/value cache (`cached_states`), one row per ``input_ids`` row.
        """
        decoder = decoder_of(wrapped)
        out = decoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **{cache_argument(decoder): cache},
        )
        return out.last_hidden_state


def cache_argument(decoder: nn.Module) -> str:
    """The decoder's name for a key/value cache input: ``cache`` in recent transformers (which warn
    on ``past_key_values`` and map it over), ``past_key_values`` before that."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


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


_REGISTRY: dict[str, type[Method[Any]]] = {}
_TRAITS = ("trainable", "needs_adapter", "mergeable", "default_lr", "caches_prompts")


MethodT = TypeVar("MethodT", bound=type[Method[Any]])


def register_method(name: str, options: type[MethodOptions], **traits: bool | float) -> Callable[[MethodT], MethodT]:
    """Class decorator registering a method under ``name`` with its options dataclass, as PEFT's
    ``register_peft_method`` takes a name and a config class.

    Args:
        name: The method's name (``--method``, ``method.name``).
        options: Its options dataclass.
        **traits: `Method` class attributes that differ from the defaults (``mergeable=True``,
            ``default_lr=3e-3``); a subclass inherits its parent's.

    Raises:
        EmotuneError: When another class already holds the name (as PEFT's own registry refuses) or
            a trait is not a `Method` attribute.
    """

    def register(cls: MethodT) -> MethodT:
        held = _REGISTRY.get(name)
        if held is not None and held.__qualname__ != cls.__qualname__:
            raise EmotuneError(f"method '{name}' is already registered by {held.__module__}.{held.__qualname__}")
        unknown = sorted(set(traits) - set(_TRAITS))
        if unknown:
            raise EmotuneError(f"method '{name}': unknown traits {unknown}; known: {', '.join(_TRAITS)}")
        cls.name, cls.options_class = name, options
        for trait, value in traits.items():
            setattr(cls, trait, value)
        _REGISTRY[name] = cls
        return cls

    return register


def method_names() -> list[str]:
    """Registered method names."""
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    """The registered method called ``name``.

    Raises:
        EmotuneError: For an unknown name.
    """
    if name not in _REGISTRY:
        raise EmotuneError(f"unknown method '{name}'; registered: {', '.join(method_names())}")
    return _REGISTRY[name]


def method_name_of(options: MethodOptions) -> str:
    """The name of the method whose options these are."""
    for name, cls in _REGISTRY.items():
        if type(options) is cls.options_class:
            return name
    raise EmotuneError(f"{type(options).__name__} belongs to no registered method")


def default_options(name: str) -> MethodOptions:
    """Fresh default options of method ``name``."""
    return method_class(name).options_class()


def get_method(options: MethodOptions) -> Method:
    """The method that owns ``options``, configured with them."""
    return _REGISTRY[method_name_of(options)](options)
