"""Customisation methods, one file each, registered by name (like PEFT's tuners).

To add one: write ``methods/NAME.py`` with an options dataclass and a `Method` subclass
decorated with ``@register_method("NAME", NameOptions, ...traits)``, and import it below.
"""

from emotune.methods import dora, ia3, lora, prompt_tuning, ptuning_v2, zero_shot  # noqa: F401  (registers)
from emotune.methods.base import (
    Method,
    MethodOptions,
    default_options,
    get_method,
    method_class,
    method_name_of,
    method_names,
    register_method,
)
from emotune.methods.zero_shot import ZeroShot

#: The method a fresh, untrained evaluation uses when none is named.
UNTRAINED = ZeroShot.name

__all__ = [
    "UNTRAINED",
    "Method",
    "MethodOptions",
    "default_options",
    "get_method",
    "method_class",
    "method_name_of",
    "method_names",
    "register_method",
]
