"""Run directories: their layout, their metadata (`RunMeta`, `load_run`) and their lifetime.

`RunMeta` owns ``run.json`` as PEFT's config class owns ``adapter_config.json``: every writer
saves it and every reader loads it through the class, and `load_run` gives every caller the same
one-line errors. Checkpoints, best weights and the finished-training record are in
`emotune.rundir.checkpoints` (re-exported here). Nothing here imports torch at import time, so
a run's labels are read before any weights load.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotune.errors import EmotuneError
from emotune.rundir.checkpoints import (
    CHECKPOINTS,
    KEEP_CHECKPOINTS,
    LABEL_HEAD,
    TRAINED,
    has_progress,
    latest_good_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_best,
    read_label_head,
    read_trained,
    save_checkpoint,
    write_best,
    write_label_head,
    write_trained,
)
from emotune.rundir.exports import EXPORT_FILE, ExportMeta, SeqClsBlock
from emotune.storage import make_dirs, read_json, write_json

__all__ = [
    "ADAPTER_DIR",
    "CHECKPOINTS",
    "CONFIG_FILE",
    "EXPORT_FILE",
    "KEEP_CHECKPOINTS",
    "LABEL_HEAD",
    "RUN_FILE",
    "RUN_FORMAT",
    "RUN_LAYOUT",
    "TRAINED",
    "ExportMeta",
    "Run",
    "RunMeta",
    "SeqClsBlock",
    "attach_log",
    "detach_log",
    "has_progress",
    "latest_good_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_run",
    "prepare",
    "read_best",
    "read_label_head",
    "read_trained",
    "save_checkpoint",
    "write_best",
    "write_label_head",
    "write_trained",
]

log = logging.getLogger(__name__)

#: What a run directory holds (the docs' run-directory page is generated from it; a test checks
#: a real run against it). Entries ending in "(when ...)" appear only then.
RUN_LAYOUT = (
    ("config.yaml", "the resolved config; `--resume` and `emotune evaluate --run` start from it"),
    ("run.json", "labels and their verbalisers, language, task, split sizes, the headline metric"),
    ("dataset_card.json", "where the data came from, its label counts, dialogue context, the training recipe"),
    ("train.log", "the run's log"),
    ("adapter/", "the trained adapter in PEFT's format (safetensors; plain `peft` loads it) (when trained)"),
    ("best.safetensors", "the best dev weights so far (when training with a dev split)"),
    (
        f"{CHECKPOINTS}/step-N/",
        "safetensors + JSON every `train.checkpoint_every` steps; nothing is unpickled (when enabled)",
    ),
    ("trained.json", "training's final state: steps, the kept checkpoint's dev metrics and recall (when trained)"),
    (
        "metrics.json",
        "metrics on the evaluation split: accuracy, macro/weighted F1, UA, per-label scores, calibration "
        "(ECE, MCE, Brier, NLL, before and after the temperature) and selective accuracy",
    ),
    ("predictions.jsonl", "one line per evaluated example: text, gold, label, a probability per label"),
    ("confusion.csv", "the confusion matrix (`confusion.png` too with matplotlib installed)"),
    ("reliability.png", "the reliability diagram, before and after the temperature (when matplotlib is installed)"),
    ("corpora/NAME/", "each corpus's metrics, predictions and confusion matrix (when trained on several corpora)"),
)


RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
ADAPTER_DIR = "adapter"
#: The run.json format this emotune writes and reads; a newer one is refused in one line.
RUN_FORMAT = 2


@dataclass
class RunMeta:
    """What a run's ``run.json`` records: what `Predictor` needs to rebuild its label scoring.

    Attributes:
        labels: The label set as `emotune.data.schema.LabelSet.to_dict` writes it.
        corpora: Every corpus's labels, language and task, for a run over several corpora.
        temperature: Divides the label logits (1: none fitted).
        class_scaling: Vector scaling (``scale`` and ``bias`` per label), where the run chose it
            over the temperature (`emotune.calibration.choose_scaling`).
        threshold: A multi-label run's decision threshold.
        head_bias: A label bias the run applies (prior correction, multi-label calibration).
        teacher: The run a distilled student learned from; ``student`` its encoder.
        exported_from: The run and method an export was written from.
        extra: Keys this emotune does not know (kept on save).
    """

    dataset: str
    language: str
    task: str
    labels: dict[str, Any]
    headline_metric: str = "macro_f1"
    multi_label: bool = False
    splits: dict[str, int] = field(default_factory=dict)
    temperature: float = 1.0
    threshold: float = 0.5
    head_bias: list[float] | None = None
    class_scaling: dict[str, list[float]] | None = None
    corpora: list[dict[str, Any]] | None = None
    teacher: str | None = None
    student: str | None = None
    exported_from: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = RUN_FILE) -> RunMeta:
        """Reads a ``run.json`` mapping, older ones included (a missing temperature is 1).

        Raises:
            EmotuneError: For a newer format, or a mapping without a label set.
        """
        if int(data.get("format", 1)) > RUN_FORMAT:
            raise EmotuneError(f"{where}: written by a newer emotune (format {data['format']}); upgrade emotune")
        if not isinstance(data.get("labels"), dict):
            raise EmotuneError(f"{where}: not a classifier run (no label set)")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        temperature = data.get("temperature")
        known["temperature"] = float(temperature) if isinstance(temperature, int | float) and temperature > 0 else 1.0
        known["threshold"] = float(data.get("threshold", 0.5))
        known.setdefault("dataset", "")
        known.setdefault("language", "en")
        known.setdefault("task", "sentiment")
        extra = {k: v for k, v in data.items() if k not in names and k != "format"}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The ``run.json`` mapping: unset optional entries left out."""
        # Format 2 only where vector scaling is set: an older emotune, which would ignore it and
        # score differently, refuses such a run; every other run stays readable by it.
        out: dict[str, Any] = {"format": RUN_FORMAT if self.class_scaling else 1}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None and not (f.name == "temperature" and value == 1.0):
                out[f.name] = value
        if not self.multi_label:
            out.pop("threshold")
        return out | self.extra

    @classmethod
    def load(cls, folder: Path) -> RunMeta:
        """``folder/run.json``.

        Raises:
            EmotuneError: If it is missing, damaged, newer than this emotune, or has no label set.
        """
        path = folder / RUN_FILE
        if not path.is_file():
            raise EmotuneError(f"{folder}: not a run directory (no {RUN_FILE})")
        try:
            data = read_json(path)
        except (OSError, ValueError) as err:
            raise EmotuneError(f"{path}: damaged ({type(err).__name__})") from None
        if not isinstance(data, dict):
            raise EmotuneError(f"{path}: damaged (not a mapping)")
        return cls.from_dict(data, str(path))

    def save(self, folder: Path) -> None:
        """Writes ``folder/run.json`` atomically."""
        write_json(folder / RUN_FILE, self.to_dict())

    def corpus(self, name: str | None) -> RunMeta:
        """One corpus's labels, language and task (the run's own without ``name``).

        Raises:
            EmotuneError: For a corpus the run was not trained on.
        """
        if name is None:
            return self
        corpora = {c["name"]: c for c in self.corpora or [{"name": self.dataset, **self.to_dict()}]}
        if name not in corpora:
            raise EmotuneError(f"the run was not trained on corpus '{name}'; it knows {sorted(corpora)}")
        chosen = corpora[name]
        return dataclasses.replace(self, labels=chosen["labels"], language=chosen["language"], task=chosen["task"])


@dataclass(frozen=True)
class Run:
    """A run directory (or an export of one) that `load_run` has checked."""

    folder: Path
    meta: RunMeta

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_FILE

    def adapter(self, needed: bool) -> Path:
        """The adapter folder.

        Raises:
            EmotuneError: When ``needed`` and training never saved one.
        """
        path = self.folder / ADAPTER_DIR
        if needed and not path.is_dir():
            raise EmotuneError(f"{self.folder}: run has no {ADAPTER_DIR}/ (training did not finish?)")
        return path


def load_run(folder: str | Path) -> Run:
    """A run directory with its metadata: the one check every reader of a run makes.

    Raises:
        EmotuneError: One line for a missing folder, a folder that is not a run (no config.yaml
            or run.json), a damaged run.json, or one written by a newer emotune.
    """
    path = Path(folder)
    if not path.is_dir():
        raise EmotuneError(f"{path}: not a run directory (no such folder)")
    if not (path / CONFIG_FILE).is_file():
        raise EmotuneError(f"{path}: not a run directory (no {CONFIG_FILE})")
    return Run(path, RunMeta.load(path))


#: Files only emotune writes at the top of a folder (runs, exports, distillations, their logs).
OWN_FILES = (CONFIG_FILE, RUN_FILE, "emotune.json", "distill.yaml", "train.log")


def check_replaceable(path: Path) -> None:
    """Refuses to let ``overwrite`` delete a folder emotune did not write: a user's own files.

    Replaceable are an empty folder and one holding a run, an export (a sequence-classification
    export: a ``config.json`` with an ``emotune`` block) or a distillation.

    Raises:
        EmotuneError: For a non-empty folder with none of those.
    """
    if not path.is_dir() or not any(path.iterdir()) or any((path / name).exists() for name in OWN_FILES):
        return
    try:
        if "emotune" in json.loads((path / "config.json").read_text(encoding="utf-8")):
            return
    except (OSError, ValueError, TypeError):
        pass  # no config.json, or not emotune's: the folder is the user's
    names = sorted(p.name for p in path.iterdir())
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    raise EmotuneError(
        f"{path}: holds files emotune did not write ({shown}); overwrite replaces only runs and "
        "exports: choose another output",
        settings=("overwrite", "output"),
    )


def prepare(path: Path, *, overwrite: bool, resume: bool) -> Path:
    """Creates a run directory, refusing to clobber an existing one without ``overwrite`` (and a
    folder emotune did not write even with it)."""
    if path.exists() and any(path.iterdir()) and not resume:
        check_replaceable(path)
        if not overwrite:
            raise EmotuneError(
                f"{path}: run directory exists; pass overwrite or resume", settings=("overwrite", "resume")
            )
        shutil.rmtree(path)
    return make_dirs(path)


def attach_log(folder: Path, name: str = "train.log") -> logging.Handler:
    """Mirrors emotune's log into ``folder/name`` until :func:`detach_log`."""
    handler = logging.FileHandler(folder / name, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("emotune")
    # Called from Python without logging configured, the logger would drop INFO lines.
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def detach_log(handler: logging.Handler) -> None:
    """Stops mirroring the log into the handler's file."""
    logging.getLogger("emotune").removeHandler(handler)
    handler.close()
