"""A backbone's structure without its weights: its configuration, and the model built on the meta
device from it (accelerate's ``init_empty_weights``), so a plan for a 9B model loads nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError, first_line
from emotune.storage import quiet_hub_retries

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

PRESETS = Path(__file__).with_name("presets")


def preset_names() -> list[str]:
    """The model configurations shipped with emotune (``emotune plan --model NAME``)."""
    return sorted(p.stem for p in PRESETS.glob("*.json"))


def model_config(model: str, trust_remote_code: bool = False) -> PretrainedConfig:
    """The configuration of ``model``: a shipped preset, a ``config.json`` (or a folder holding one),
    a registered backbone already converted, or a Hub id (online).

    Raises:
        EmotuneError: For a file that is not a model configuration, or a name nothing provides.
    """
    path = Path(model).expanduser()
    if (PRESETS / f"{model}.json").is_file():
        return _from_file(PRESETS / f"{model}.json")
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise EmotuneError(f"{path}: config file not found")
        return _from_file(path)
    cached = _converted_backbone(model)
    if cached is not None:
        return _from_file(cached)
    return _from_hub(model, trust_remote_code)


def _from_file(path: Path) -> PretrainedConfig:
    from transformers import AutoConfig

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EmotuneError(f"{path}: not a model config (not JSON: {err})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise EmotuneError(f"{path}: not a model config (no model_type)")
    fields = {k: v for k, v in data.items() if not k.startswith("_")}
    try:
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    except (ValueError, KeyError) as err:
        raise EmotuneError(f"{path}: not a model config transformers knows ({str(err).splitlines()[0]})") from None


def _converted_backbone(name: str) -> Path | None:
    from emotune.models.backbones import BACKBONES, cache_dir

    config = cache_dir() / "backbones" / name / "config.json"
    return config if name in BACKBONES and config.is_file() else None


def _from_hub(model: str, trust_remote_code: bool) -> PretrainedConfig:
    from transformers import AutoConfig

    try:
        with quiet_hub_retries():
            return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        first = first_line(err)
        presets = ", ".join(preset_names())
        raise EmotuneError(
            f"no configuration for model '{model}' (not a preset [{presets}], config.json or folder, "
            f"and the Hugging Face Hub could not provide it; offline?): {first}"
        ) from None


def meta_model(config: PretrainedConfig, dtype: Any, trust_remote_code: bool = False) -> PreTrainedModel:
    """The causal LM of ``config`` with every parameter on the meta device, in ``dtype``."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    try:
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
    except ValueError as err:
        raise EmotuneError(f"model type '{config.model_type}' is not a causal LM: {str(err).splitlines()[0]}") from None
    model.tie_weights()  # under init_empty_weights the output head is left untied (counted twice)
    model.eval()
    model.requires_grad_(False)  # frozen, as every method leaves the backbone
    return model
