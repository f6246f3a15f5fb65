"""Customisation methods, each a small module registered by name (like PEFT's tuners)."""

from emotune.methods import lora, prompt_tuning, ptuning_v2, zero_shot  # noqa: F401  (registers)
from emotune.methods.base import Method, get_method, method_names, register_method

__all__ = ["Method", "get_method", "method_names", "register_method"]
