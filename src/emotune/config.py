"""Typed, self-validating run configuration; YAML is its serialised form.

The CLI builds a :class:`RunConfig` from ``--config file.yaml``, then applies its flags and any
``--set section.key=value`` overrides through :func:`apply_override`, then calls ``validate``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emotune.errors import EmotuneError

OBJECTIVES = ("classify", "generate")
PRECISIONS = ("auto", "fp32", "bf16")
CLASS_WEIGHTS = ("none", "balanced")
LOSSES = ("cross-entropy", "focal")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelConfig:
    """Which backbone to load and how."""

    name: str = "gemma3-270m"
    dtype: str = "float32"
    trust_remote_code: bool = False

    def validate(self) -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise EmotuneError(f"model.dtype must be float32 or bfloat16, got '{self.dtype}'")


@dataclass
class MethodConfig:
    """The customisation method (registered in :mod:`emotune.methods`) and its settings."""

    name: str = "lora"
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    prompt_length: int = 32
    prefix_projection: bool = False
    projection_hidden: int = 512
    calibrate: bool = True

    def validate(self) -> None:
        from emotune.methods import method_names

        if self.name not in method_names():
            raise EmotuneError(f"unknown method '{self.name}'; registered: {', '.join(method_names())}")
        for key in ("rank", "alpha", "prompt_length", "projection_hidden"):
            if getattr(self, key) < 1:
                raise EmotuneError(f"method.{key} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise EmotuneError("method.dropout must be in [0, 1)")


@dataclass
class DataConfig:
    """Which dataset, where, and how it becomes a prompt."""

    dataset: str = "sst2"
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] = field(default_factory=list)
    hf_name: str | None = None
    language: str | None = None
    task_word: str | None = None
    verbalisers: list[list[str]] | None = None
    template: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    context_turns: int = 0
    neutral_band: float = 0.0
    drop_neutral: bool = False

    def validate(self) -> None:
        if self.neutral_band < 0:
            raise EmotuneError("data.neutral_band must be >= 0")
        if self.context_turns < 0:
            raise EmotuneError("data.context_turns must be >= 0")
        for key in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise EmotuneError(f"data.{key} must be >= 1")
        if self.template is not None and "{text}" not in self.template:
            raise EmotuneError("data.template must contain '{text}'")


@dataclass
class TrainConfig:
    """Optimisation, evaluation and checkpointing."""

    objective: str = "classify"
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    lr: float | None = None
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 42
    class_weights: str = "none"
    loss: str = "cross-entropy"
    focal_gamma: float = 2.0
    eval_split: str = "test"
    eval_every: int = 0
    patience: int = 3
    checkpoint_every: int = 100
    log_every: int = 20
    precision: str = "auto"
    threads: int = 0
    device: str = "auto"
    gradient_checkpointing: bool = False

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise EmotuneError(f"train.objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if self.precision not in PRECISIONS:
            raise EmotuneError(f"train.precision must be one of {PRECISIONS}")
        if self.loss not in LOSSES:
            raise EmotuneError(f"train.loss must be one of {LOSSES}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise EmotuneError(f"train.class_weights must be one of {CLASS_WEIGHTS}")
        if self.epochs <= 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise EmotuneError("train.epochs, train.batch_size and train.grad_accum must be positive")
        if self.max_length < 8:
            raise EmotuneError("train.max_length must be >= 8")
        if self.lr is not None and self.lr <= 0:
            raise EmotuneError("train.lr must be positive")
        if self.device not in DEVICES:
            raise EmotuneError(f"train.device must be one of {DEVICES}, got '{self.device}'")


@dataclass
class RunConfig:
    """A whole run: model, method, data, training and where the run directory goes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: str = "runs/latest"
    overwrite: bool = False

    def validate(self) -> RunConfig:
        """Validates every section; returns ``self`` for chaining."""
        for section in (self.model, self.method, self.data, self.train):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self, path: Path) -> None:
        """Writes the resolved config as YAML."""
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Builds a config from nested plain data, rejecting unknown keys."""
        cfg = cls()
        for key, value in _flatten(data):
            apply_override(cfg, key, value)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """Reads a YAML config file."""
        file = Path(path)
        if not file.is_file():
            raise EmotuneError(f"{file}: config file not found")
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as err:
            raise EmotuneError(f"{file}: invalid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise EmotuneError(f"{file}: expected a mapping at the top level")
        return cls.from_dict(data)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted in ("model", "method", "data", "train"):
            items.extend(_flatten(value, dotted + "."))
        else:
            items.append((dotted, value))
    return items


def apply_override(cfg: RunConfig, dotted: str, value: Any) -> None:
    """Sets ``section.key`` (or a top-level key) to ``value``, coerced to the field's type.

    Raises:
        EmotuneError: For an unknown key or a value of the wrong type.
    """
    *parents, leaf = dotted.split(".")
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
    return typing.get_type_hints(type(obj))


def _coerce(value: Any, hint: Any, key: str) -> Any:
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
