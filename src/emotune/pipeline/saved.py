"""Scoring a saved run again (``emotune evaluate --run``), and what every evaluation reports
beside its metrics (labels never recalled, advice read off dev)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from emotune import rundir
from emotune.config import DataConfig, RunConfig
from emotune.data import load_data, select_splits
from emotune.distill.student import student_result
from emotune.distributed import is_main
from emotune.errors import EmotuneError
from emotune.evaluate import evaluate, write_result
from emotune.inference.predict import Predictor, trained_context_turns
from emotune.metrics import recall_by_label, unrecalled_labels
from emotune.models.recogniser import Recogniser
from emotune.models.text_pairs import is_student
from emotune.training.objectives import get_objective
from emotune.training.trainer import TrainState

log = logging.getLogger(__name__)


def trained_data(data: DataConfig, folder: Path) -> DataConfig:
    """The data of the run in ``folder``: left unset, ``context_turns`` is the one the run was
    trained with (its dataset card), so a corpus default that changed since (Mastodon's did)
    neither switches the context halfway through a resumed training nor changes an older run's
    scores."""
    if data.context_turns is not None:
        return data
    return replace(data, context_turns=trained_context_turns(folder))


def evaluate_saved(folder: Path, cfg: RunConfig, output: str | None = None) -> dict[str, Any]:
    """Evaluates a trained run directory on ``cfg.train.eval_split``.

    Results go to ``output`` (default ``RUN/eval-SPLIT``), never over the run's own metrics.

    Raises:
        EmotuneError: When ``output`` holds a run (the run's own folder, say), before anything is
            evaluated; for labels that differ from the dataset's, or an ONNX export.
    Left unset, ``data.context_turns`` is the one the run was trained with (``trained_data``).
    """
    target = Path(output) if output else folder / f"eval-{cfg.train.eval_split}"
    if (target / "run.json").is_file():  # a run's own metrics.json and predictions would be replaced
        raise EmotuneError(
            f"{target} holds a run whose own results this evaluation would replace; choose another output "
            f"(default: {folder / f'eval-{cfg.train.eval_split}'})",
            settings=("output",),
        )
    dataset = load_data(trained_data(cfg.data, folder), cfg.train.seed, {cfg.train.eval_split})
    rec = Predictor.load(folder).recogniser
    student = is_student(folder)
    if not student and not isinstance(rec, Recogniser):
        raise EmotuneError(f"{folder}: an ONNX export; evaluate the run it came from (or predict a file with it)")
    if rec.labels.names != dataset.labels.names:
        raise EmotuneError(
            f"the run's labels {list(rec.labels.names)} differ from the dataset's {list(dataset.labels.names)}"
        )
    examples = select_splits(dataset, cfg.data, cfg.train.seed, cfg.train.eval_split).eval
    if not isinstance(rec, Recogniser):  # a distilled encoder: no objective, the read-out is its head
        result, method, model = student_result(rec, examples), "distilled", rundir.RunMeta.load(folder).student
    else:
        result = evaluate(rec, examples, get_objective(cfg.train.objective))
        method, model = rec.method.name, cfg.model.name
    extra = {
        "split": cfg.train.eval_split,
        "method": method,
        "model": model,
        "run": str(folder),
        "unrecalled": warn_unrecalled(cfg.train.eval_split, result.metrics),
    }
    write_result(result, target, extra)
    return {**result.metrics, **extra}


def warn_unrecalled(split: str, metrics: dict[str, Any]) -> list[str]:
    """Logs the labels of ``split`` that were never predicted correctly and returns their names
    (``unrecalled`` in ``metrics.json``): accuracy hides a rare label that never wins."""
    recall = recall_by_label(metrics)
    names = unrecalled_labels(recall)
    if names and is_main():  # one report, not one per process
        counts = ", ".join(f"{name} ({int(recall[name]['support'])} examples)" for name in names)
        log.warning("%s: never predicted correctly: %s", split, counts)
    return names


def advise_on_dev(state: TrainState) -> None:
    """Names the dev labels the kept weights never got right, and the options that trade accuracy
    for them. It reads dev, not the evaluation split, so acting on it keeps test out of the choice."""
    names = unrecalled_labels(state.best_dev_recall)
    if names:
        log.warning(
            "dev: the kept weights never get %s right; --prior-correction train or --class-weights sqrt "
            "trade accuracy for rare labels (README, 'Small data')",
            ", ".join(names),
        )
