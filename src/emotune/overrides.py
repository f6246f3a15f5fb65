"""Dotted overrides of typed dataclass configs: ``section.key=value`` set on a config, the value
coerced to the field's declared type (a list from ``a,b`` or ``[a, b]``, a bool from yes/no, None
from none/null), an unknown key or a wrong type refused in one line."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import yaml

from emotune.errors import EmotuneError
from emotune.methods import default_options, method_name_of


def apply_override(cfg: Any, dotted: str, value: Any) -> None:
    """Sets ``section.key`` (or a top-level key) to ``value``, coerced to the field's type.

    Raises:
        EmotuneError: For an unknown key or a value of the wrong type.
    """
    if dotted == "method.name":
        cfg.method = default_options(str(value))
        return
    *parents, leaf = dotted.split(".")
    if parents == ["method"] and leaf not in _field_types(cfg.method):
        owned = ", ".join(_field_types(cfg.method)) or "none"
        raise EmotuneError(f"method '{method_name_of(cfg.method)}' has no option '{leaf}' (its options: {owned})")
    target: Any = cfg
    for part in parents:
        if not dataclasses.is_dataclass(target) or part not in _field_types(target):
            raise EmotuneError(f"unknown config key '{dotted}'")
        target = getattr(target, part)
    types_ = _field_types(target) if dataclasses.is_dataclass(target) else {}
    if leaf not in types_ or dataclasses.is_dataclass(getattr(target, leaf)):
        raise EmotuneError(f"unknown config key '{dotted}'")
    setattr(target, leaf, _coerce(value, types_[leaf], dotted))


def _field_types(obj: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


# Integer settings that also take the word "auto", stored as 0.
_AUTO_INTS = ("train.batch_size",)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if key in _AUTO_INTS and isinstance(value, str) and value.strip().lower() == "auto":
        return 0
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    origin = typing.get_origin(hint)
    if origin is list:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, list):
            raise EmotuneError(f"config key '{key}' expects a list")
        return [_coerce(v, args[0], key) for v in value] if args else value
    try:
        if hint is bool:
            return value if isinstance(value, bool) else _parse_bool(str(value))
        if hint in (int, float, str):
            return hint(value)
    except ValueError:
        raise EmotuneError(f"config key '{key}' expects {hint.__name__}, got '{value}'") from None
    return value


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)
