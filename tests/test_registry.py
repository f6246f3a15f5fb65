"""Registries refuse a name twice (PEFT's register_peft_method does too)."""

from __future__ import annotations

import pytest

from emotune.errors import EmotuneError


def test_a_method_name_registers_once() -> None:
    from emotune.methods.base import register_method
    from emotune.methods.lora import Lora

    class Impostor(Lora):
        name = "lora"

    with pytest.raises(EmotuneError, match="'lora' is already registered"):
        register_method(Impostor)
