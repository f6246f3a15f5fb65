"""A run, start to end: prepare the run directory, select the data, build the recogniser,
train it when its method is trainable, evaluate, and write every run file.

Used by ``emotune train`` / ``evaluate``, the quickstart and the benchmark harness. The loop
itself lives in `emotune.training.trainer`; this module only wires it to a run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotune import rundir
from emotune.config import DataConfig, RunConfig, TrainConfig
from emotune.data import Dataset, Selection, load_data, select_splits
from emotune.data.card import dataset_card
from emotune.data.multi import is_multi_corpus
from emotune.distill.student import student_result
from emotune.distributed import is_main, resolve_device
from emotune.errors import EmotuneError
from emotune.evaluate import EvalResult, evaluate, write_result
from emotune.inference.predict import Predictor, trained_context_turns
from emotune.methods import get_method
from emotune.metrics import recall_by_label, unrecalled_labels
from emotune.models.precision import resolve_format
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.models.text_pairs import is_student
from emotune.storage import write_json
from emotune.training.callbacks import tune_dev_threshold
from emotune.training.losses import gold_targets, label_counts
from emotune.training.objectives import get_objective
from emotune.training.priors import fit_offsets, frequency_offsets, scale_temperature
from emotune.training.steps import finished_training, fit, open_run, seed_everything
from emotune.training.trainer import TrainState
from emotune.training.warm_start import check_init_from, warm_start

log = logging.getLogger(__name__)


def run(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Customises the backbone on the configured dataset (when the method trains) and evaluates it.

    Returns:
        The metrics on ``cfg.train.eval_split`` (also written to ``metrics.json``).
    """
    cfg.validate()
    if is_multi_corpus(cfg.data):
        from emotune.multicorpus import run_multi

        return run_multi(cfg, resume)
    # What the device or bitsandbytes cannot do is said before the run directory exists.
    resolve_format(cfg.model.dtype, cfg.model.quantization, resolve_device(cfg.runtime.device))
    init_from = check_init_from(cfg)
    seed_everything(cfg.train.seed)
    # An untrained method is only evaluated: it needs just the split it is scored on.
    needed = None if get_method(cfg.method).trainable or cfg.train.temperature else {cfg.train.eval_split}
    with open_run(cfg, resume) as folder:
        # A run that has started (it wrote its dataset card) resumes with the context it began with.
        started = resume and (folder / "dataset_card.json").is_file()
        data = trained_data(cfg.data, folder) if started else cfg.data
        finished = finished_training(folder, cfg) if resume else None
        if finished is not None:
            return evaluate_finished(cfg, folder, finished, data)
        dataset = load_data(data, cfg.train.seed, needed)
        selection = select_splits(dataset, cfg.data, cfg.train.seed, cfg.train.eval_split)
        # A resumed multi-label run keeps the label bias it started with (recalibrating would move it).
        saved = resume and dataset.multi_label and (folder / rundir.RUN_FILE).is_file()
        head_bias = rundir.RunMeta.load(folder).head_bias if saved else None
        rec = build_recogniser(
            cfg, dataset.labels, dataset.language, dataset.task, multi_label=dataset.multi_label, head_bias=head_bias
        )
        warm_start(rec, init_from)
        write_run_files(cfg, dataset, folder, rec)
        state = fit(cfg, rec, selection, folder, dataset.headline_metric, resume) if rec.method.trainable else None
        if dataset.multi_label:
            if cfg.train.prior_correction != "none":
                log.warning("train.prior_correction ignored: a multi-label run tunes its threshold on dev instead")
            tune_dev_threshold(rec, selection.dev)
        elif state is not None and cfg.train.prior_correction != "none":
            correct_priors(rec, selection, cfg.train, dataset.headline_metric)
        scale_temperature(rec, selection.dev, cfg.train.temperature, trained=state is not None)
        if state is not None and rec.temperature != 1.0:
            state.recipe["temperature"] = round(rec.temperature, 4)
        if state is not None or dataset.multi_label or rec.temperature != 1.0:
            # Records the tuned threshold or corrected label bias, and the recipe training used.
            write_run_files(cfg, dataset, folder, rec, state.recipe if state else None)
        if state is not None and is_main():
            rundir.write_trained(folder, asdict(state))
        return final_evaluation(cfg, dataset, rec, selection, folder, state or TrainState())


def trained_data(data: DataConfig, folder: Path) -> DataConfig:
    """The data of the run in ``folder``: left unset, ``context_turns`` is the one the run was
    trained with (its dataset card), so a corpus default that changed since (Mastodon's did)
    neither switches the context halfway through a resumed training nor changes an older run's
    scores."""
    if data.context_turns is not None:
        return data
    return replace(data, context_turns=trained_context_turns(folder))


def evaluate_finished(cfg: RunConfig, folder: Path, state: TrainState, data: DataConfig) -> dict[str, Any]:
    """Evaluates a run whose training finished earlier (it died while being evaluated): the saved
    adapter, label head and calibration are loaded instead of training again."""
    log.info("%s: training finished earlier (step %d); evaluating its saved weights", folder, state.step)
    dataset = load_data(data, cfg.train.seed)
    selection = select_splits(dataset, cfg.data, cfg.train.seed, cfg.train.eval_split)
    rec = Predictor.load(folder).recogniser
    if not isinstance(rec, Recogniser):
        raise EmotuneError(f"{folder}: not a trained run directory")
    return final_evaluation(cfg, dataset, rec, selection, folder, state)


def correct_priors(rec: Recogniser, selection: Selection, settings: TrainConfig, metric: str) -> None:
    """Moves the label head's bias by per-label offsets (see `emotune.training.priors`): fitted on dev,
    or read off the training label frequencies."""
    k = len(rec.labels.names)
    if settings.prior_correction == "train":
        counts = label_counts(gold_targets(selection.train, k, multi_label=False), k).numpy()
        offsets = frequency_offsets(counts, settings.prior_strength)
        source = f"from the training label frequencies (strength {settings.prior_strength})"
    elif selection.dev:
        probs = rec.probabilities(selection.dev).numpy()
        gold = gold_targets(selection.dev, k, multi_label=False).tolist()
        offsets = fit_offsets(np.log(probs + 1e-12), gold, metric)
        source = f"fitted on dev ({metric})"
    else:
        log.warning("prior correction 'dev' skipped: this dataset has no dev split")
        return
    rec.head.bias.sub_(torch.tensor(offsets, dtype=rec.head.bias.dtype, device=rec.head.bias.device))
    log.info("prior correction %s: %s", source, [round(float(o), 2) for o in offsets])


def write_run_files(
    cfg: RunConfig, dataset: Dataset, folder: Path, rec: Recogniser, recipe: dict[str, Any] | None = None
) -> None:
    """Resolved config and what a Predictor needs to rebuild the label scoring (main process only).

    ``recipe`` (what training resolved: steps, epochs, learning rate, class weighting) goes into
    the dataset card once training has run.
    """
    if not is_main():
        return
    cfg.to_yaml(folder / "config.yaml")
    meta = rundir.RunMeta(
        dataset=dataset.name,
        language=dataset.language,
        task=dataset.task,
        labels=dataset.labels.to_dict(),
        headline_metric=dataset.headline_metric,
        multi_label=dataset.multi_label,
        splits={k: len(v) for k, v in dataset.splits.items()},
        temperature=rec.temperature,
        threshold=rec.threshold,
    )
    if dataset.multi_label or (cfg.train.prior_correction != "none" and bool(rec.head.bias.abs().sum() > 0)):
        meta.head_bias = rec.head.bias.tolist()
    meta.save(folder)
    write_json(folder / "dataset_card.json", dataset_card(cfg, dataset) | ({"training": recipe} if recipe else {}))


def final_evaluation(
    cfg: RunConfig, dataset: Dataset, rec: Recogniser, selection: Selection, folder: Path, state: TrainState
) -> dict[str, Any]:
    """Evaluates on the configured split and writes metrics, predictions and confusion files."""
    started = time.perf_counter()
    result: EvalResult = evaluate(rec, selection.eval, get_objective(cfg.train.objective))
    seconds = time.perf_counter() - started
    trained = state.best_score >= 0
    extra = {
        "split": cfg.train.eval_split,
        "method": rec.method.name,
        "model": cfg.model.name,
        "dataset": dataset.name,
        "train_examples_seen": state.examples_seen,
        "train_seconds": round(state.train_seconds, 2),
        "train_examples_per_second": round(state.examples_seen / state.train_seconds, 2)
        if state.train_seconds
        else None,
        "headline_metric": dataset.headline_metric,
        f"best_dev_{dataset.headline_metric}": state.best_score if trained else None,
        "best_dev_score": state.best_score if trained else None,  # the headline metric on dev, any corpus
        "best_dev_step": state.best_step if trained else None,
        "best_dev": state.best_dev if trained else None,  # every dev metric of the kept weights
        "best_dev_recall": state.best_dev_recall if trained else None,  # and each label's dev recall
        "recipe": state.recipe or None,
        "eval_seconds": round(seconds, 2),
        "eval_examples_per_second": round(len(selection.eval) / seconds, 2),
        "unrecalled": warn_unrecalled(cfg.train.eval_split, result.metrics),
    }
    if is_main() and not dataset.multi_label and cfg.train.prior_correction == "none":
        advise_on_dev(state)
    if is_main():
        write_result(result, folder, extra)
    m = result.metrics
    log.info(
        "%s %s: accuracy=%.4f macro_f1=%.4f ua=%.4f (n=%d)",
        cfg.train.eval_split,
        rec.method.name,
        m["accuracy"],
        m["macro_f1"],
        m["ua"],
        m["n"],
    )
    return {**m, **extra}


def evaluate_saved(folder: Path, cfg: RunConfig, output: str | None = None) -> dict[str, Any]:
    """Evaluates a trained run directory on ``cfg.train.eval_split``.

    Results go to ``output`` (default ``RUN/eval-SPLIT``), never over the run's own metrics.
    Left unset, ``data.context_turns`` is the one the run was trained with (``trained_data``).
    """
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
    target = Path(output) if output else folder / f"eval-{cfg.train.eval_split}"
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
