"""A run over several corpora at once (``data.dataset: sst5,friends,...``): one adapter, each
example prompted and scored with its own corpus's labels (`emotune.models.multi`), dev selection
on the mean of the corpora's macro-F1, and a final evaluation per corpus.

The run directory holds what a one-corpus run holds, for the first corpus (so ``predict`` and
``serve`` load it as they load any run), plus ``run.json``'s ``corpora`` (every label set:
``Predictor.load(run, corpus=NAME)``), ``corpora/NAME/`` (each corpus's metrics, predictions
and confusion matrix) and a top-level ``metrics.json`` with the mean and each corpus's figures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emotune import rundir
from emotune.calibration import fit_temperature
from emotune.config import RunConfig
from emotune.data import Example, Selection
from emotune.data.card import dataset_card
from emotune.data.multi import Corpora, corpus_config, load_corpora, mixed_train
from emotune.distributed import is_main
from emotune.evaluate import MEAN_METRICS, evaluate, write_result
from emotune.models.multi import CorpusTask, MultiRecogniser, multi_recogniser
from emotune.models.recogniser import build_recogniser
from emotune.storage import write_json
from emotune.training.objectives import get_objective
from emotune.training.steps import finished_training, fit, open_run, seed_everything
from emotune.training.trainer import TrainState
from emotune.training.warm_start import check_init_from, warm_start

log = logging.getLogger(__name__)
#: What dev selection compares: the mean over corpora of each one's macro-F1.
HEADLINE = "macro_f1"


def run_multi(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Trains one adapter on every corpus of ``cfg.data.dataset`` and evaluates each corpus.

    Returns:
        The mean metrics over corpora on ``cfg.train.eval_split``, with each corpus's under
        ``corpora`` (also written to ``metrics.json``).
    """
    init_from = check_init_from(cfg)
    seed_everything(cfg.train.seed)
    with open_run(cfg, resume) as folder:
        corpora = load_corpora(cfg.data, cfg.train.seed)
        selection = select(corpora, cfg)
        # A training that finished earlier (it died in calibration or evaluation) is not redone.
        finished = finished_training(folder, cfg) if resume else None
        rec = build(cfg, corpora, folder / "adapter" if finished else None)
        if finished is None:
            warm_start(rec, init_from)
            write_files(cfg, corpora, folder)
        state = finished or fit(cfg, rec, selection, folder, HEADLINE, resume)
        if cfg.train.temperature is not False:
            state.recipe["temperature"] = round(calibrate(rec, selection.dev), 4)
        write_files(cfg, corpora, folder, state.recipe)
        if is_main():
            rundir.write_trained(folder, asdict(state))
        return final_evaluation(cfg, rec, selection, folder, state)


def select(corpora: Corpora, cfg: RunConfig) -> Selection:
    """The training mix and every corpus's dev and evaluation examples (labels in the shared space)."""
    d, seed = cfg.data, cfg.train.seed
    dev_limit = d.max_dev_samples if d.max_dev_samples is not None else d.max_eval_samples
    train = mixed_train(corpora, d.mix_temperature, d.max_per_corpus, seed)
    if d.max_train_samples is not None:
        train = train[: d.max_train_samples]
    counts = {n: sum(corpora.corpus_of(int(e.label)) == c for e in train) for c, n in enumerate(corpora.names)}  # type: ignore[arg-type]
    log.info("training mix: %s", ", ".join(f"{n} {k}" for n, k in counts.items()))
    return Selection(
        train, corpora.split("dev", dev_limit, seed), corpora.split(cfg.train.eval_split, d.max_eval_samples, seed)
    )


def pooled_logits(rec: MultiRecogniser, examples: list[Example]) -> tuple[np.ndarray, list[int]]:
    """Every corpus's label logits on its own examples (among its own labels), stacked: rows of a
    corpus with fewer labels are padded with minus infinity (labels it does not have)."""
    parts, gold = [], []
    for corpus, group in rec.local(examples).items():
        if group:
            parts.append(rec.view(corpus).scores(group).float().numpy())
            gold += [int(e.label) for e in group]  # type: ignore[arg-type]
    width = max(p.shape[1] for p in parts)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-np.inf) for p in parts]
    return np.concatenate(padded), gold


def calibrate(rec: MultiRecogniser, dev: list[Example]) -> float:
    """Fits one temperature for every corpus by NLL on their pooled dev logits and sets it.

    One scalar for all label sets is what makes it label-independent: it also serves label sets
    given at call time (the shipped generalist's calibration).
    """
    if not dev:
        return rec.temperature
    logits, gold = pooled_logits(rec, dev)
    rec.temperature = fit_temperature(logits, gold)
    log.info("temperature fitted on the pooled dev of %d corpora: %.3f", len(rec.tasks), rec.temperature)
    return rec.temperature


def tasks_of(corpora: Corpora) -> list[CorpusTask]:
    return [CorpusTask(d.name, d.labels, d.language, d.task, d.headline_metric) for d in corpora.datasets]


def build(cfg: RunConfig, corpora: Corpora, adapter: Path | None = None) -> MultiRecogniser:
    """The backbone and a fresh adapter (or the saved ``adapter``), with a label head per corpus."""
    first = corpora.datasets[0]
    rec = build_recogniser(cfg, first.labels, first.language, first.task, adapter_dir=adapter)
    return multi_recogniser(rec, tasks_of(corpora), cfg.data.shuffle_labels, cfg.train.seed)


def write_files(cfg: RunConfig, corpora: Corpora, folder: Path, recipe: dict[str, Any] | None = None) -> None:
    """config.yaml, run.json (the first corpus's labels, as a one-corpus run has them, and every
    corpus under ``corpora``) and a dataset card per corpus."""
    if not is_main():
        return
    cfg.to_yaml(folder / "config.yaml")
    first = corpora.datasets[0]
    rundir.RunMeta(
        dataset=cfg.data.dataset,
        language=first.language,
        task=first.task,
        labels=first.labels.to_dict(),
        headline_metric=first.headline_metric,
        corpora=[t.to_dict() for t in tasks_of(corpora)],
        temperature=float(recipe.get("temperature") or 1.0) if recipe else 1.0,
    ).save(folder)
    cards = [dataset_card(_corpus_run(cfg, d.name), d) for d in corpora.corpora]
    card: dict[str, Any] = {"dataset": cfg.data.dataset, "corpora": cards, "context_turns": cards[0]["context_turns"]}
    if cfg.data.exclude_test_of:
        card["left_out_as_judged"] = {"judged": list(cfg.data.exclude_test_of), "removed": corpora.removed}
    write_json(folder / "dataset_card.json", card | ({"training": recipe} if recipe else {}))


def _corpus_run(cfg: RunConfig, name: str) -> RunConfig:
    one = RunConfig.from_dict(cfg.to_dict())
    one.data = corpus_config(cfg.data, name)
    return one


def final_evaluation(
    cfg: RunConfig, rec: MultiRecogniser, selection: Selection, folder: Path, state: TrainState
) -> dict[str, Any]:
    """Each corpus scored on the evaluation split among its own labels (``corpora/NAME/``), and
    the mean (``metrics.json``)."""
    started = time.perf_counter()
    objective = get_objective(cfg.train.objective)
    per: dict[str, dict[str, Any]] = {}
    for corpus, examples in rec.local(selection.eval).items():
        if not examples:  # a reworded view of a corpus: its examples are the corpus's own
            continue
        name = rec.tasks[corpus].name
        result = evaluate(rec.view(corpus), examples, objective)
        if is_main():
            write_result(result, folder / "corpora" / name, {"split": cfg.train.eval_split, "dataset": name})
        per[name] = {k: result.metrics[k] for k in (*MEAN_METRICS, "n")}
    mean = {k: sum(m[k] for m in per.values()) / len(per) for k in MEAN_METRICS}
    trained = state.best_score >= 0
    metrics = mean | {
        "n": sum(int(m["n"]) for m in per.values()),
        "split": cfg.train.eval_split,
        "method": rec.method.name,
        "model": cfg.model.name,
        "dataset": cfg.data.dataset,
        "corpora": per,
        "headline_metric": HEADLINE,
        "best_dev_score": state.best_score if trained else None,
        "best_dev_step": state.best_step if trained else None,
        "best_dev": state.best_dev if trained else None,
        "train_examples_seen": state.examples_seen,
        "train_seconds": round(state.train_seconds, 2),
        "recipe": state.recipe or None,
        "eval_seconds": round(time.perf_counter() - started, 2),
    }
    if is_main():
        write_json(folder / "metrics.json", metrics)
    log.info("%s mean over %d corpora: macro_f1=%.4f", cfg.train.eval_split, len(per), mean["macro_f1"])
    return metrics
