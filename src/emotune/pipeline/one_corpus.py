"""A run on one corpus: its labels, language and task word, its splits, and one set of metrics
files (``metrics.json``, ``predictions.jsonl``, the confusion matrix and reliability plot)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from emotune import rundir
from emotune.config import RunConfig
from emotune.data import Dataset, Selection, load_data, select_splits
from emotune.data.card import dataset_card
from emotune.distributed import is_main
from emotune.errors import EmotuneError
from emotune.evaluate import evaluate, write_result
from emotune.inference.predict import Predictor
from emotune.methods import get_method
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.pipeline.saved import advise_on_dev, trained_data, warn_unrecalled
from emotune.storage import write_json
from emotune.training.calibrate import DevLogits, own_logits
from emotune.training.objectives import get_objective
from emotune.training.trainer import TrainState

log = logging.getLogger(__name__)


class OneCorpus:
    """The `emotune.pipeline.Job` of a run on one corpus."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.dataset: Dataset | None = None

    @property
    def headline(self) -> str:
        return self.corpus.headline_metric

    @property
    def corpus(self) -> Dataset:
        if self.dataset is None:
            raise RuntimeError("OneCorpus.load comes first")
        return self.dataset

    def load(self, folder: Path, resume: bool) -> Selection:
        cfg = self.cfg
        # An untrained method is only evaluated: it needs just the split it is scored on.
        fits = get_method(cfg.method).trainable or cfg.train.temperature
        needed = None if fits else {cfg.train.eval_split}
        # A run that has started (it wrote its dataset card) resumes with the context it began with.
        started = resume and (folder / "dataset_card.json").is_file()
        self.dataset = load_data(trained_data(cfg.data, folder) if started else cfg.data, cfg.train.seed, needed)
        return select_splits(self.dataset, cfg.data, cfg.train.seed, cfg.train.eval_split)

    def build(self, folder: Path, resume: bool) -> Recogniser:
        d = self.corpus
        # A resumed multi-label run keeps the label bias it started with (recalibrating would move it).
        saved = resume and d.multi_label and (folder / rundir.RUN_FILE).is_file()
        head_bias = rundir.RunMeta.load(folder).head_bias if saved else None
        return build_recogniser(self.cfg, d.labels, d.language, d.task, multi_label=d.multi_label, head_bias=head_bias)

    def restore(self, folder: Path) -> Recogniser:
        rec = Predictor.load(folder).recogniser
        if not isinstance(rec, Recogniser):
            raise EmotuneError(f"{folder}: not a trained run directory")
        return rec

    def calibration(self, rec: Recogniser) -> tuple[DevLogits, bool]:
        return own_logits(rec), True

    def write(self, folder: Path, rec: Recogniser, recipe: dict[str, Any] | None = None) -> None:
        """Resolved config and what a Predictor needs to rebuild the label scoring; ``recipe``
        (what training resolved: steps, epochs, learning rate, class weighting) goes into the
        dataset card once training has run."""
        if not is_main():
            return
        cfg, d = self.cfg, self.corpus
        cfg.to_yaml(folder / "config.yaml")
        meta = rundir.RunMeta(
            dataset=d.name,
            language=d.language,
            task=d.task,
            labels=d.labels.to_dict(),
            headline_metric=d.headline_metric,
            multi_label=d.multi_label,
            splits={k: len(v) for k, v in d.splits.items()},
            temperature=rec.temperature,
            threshold=rec.threshold,
            class_scaling=rec.class_scaling.to_dict() if rec.class_scaling else None,
        )
        if d.multi_label or (cfg.train.prior_correction != "none" and bool(rec.head.bias.abs().sum() > 0)):
            meta.head_bias = rec.head.bias.tolist()
        meta.save(folder)
        write_json(
            folder / "dataset_card.json",
            dataset_card(cfg.data, cfg.train.seed, d) | ({"training": recipe} if recipe else {}),
        )

    def evaluate(self, rec: Recogniser, selection: Selection, folder: Path, state: TrainState) -> dict[str, Any]:
        """Evaluates on the configured split and writes metrics, predictions and confusion files."""
        cfg, d = self.cfg, self.corpus
        started = time.perf_counter()
        result = evaluate(rec, selection.eval, get_objective(cfg.train.objective))
        seconds = time.perf_counter() - started
        extra = {
            "split": cfg.train.eval_split,
            "method": rec.method.name,
            "model": cfg.model.name,
            "dataset": d.name,
            **training_figures(state, d.headline_metric),
            "eval_seconds": round(seconds, 2),
            "eval_examples_per_second": round(len(selection.eval) / seconds, 2),
            "unrecalled": warn_unrecalled(cfg.train.eval_split, result.metrics),
        }
        if is_main() and not d.multi_label and cfg.train.prior_correction == "none":
            advise_on_dev(state)
        if is_main():
            write_result(result, folder, extra)
        m = result.metrics
        log.info(
            "%s %s: accuracy=%.4f macro_f1=%.4f ua=%.4f (n=%d)",
            *(cfg.train.eval_split, rec.method.name, m["accuracy"], m["macro_f1"], m["ua"], m["n"]),
        )
        return {**m, **extra}


def training_figures(state: TrainState, headline: str) -> dict[str, Any]:
    """What training did, for ``metrics.json``: examples, time, and the kept weights' dev scores."""
    trained = state.best_score >= 0
    return {
        "train_examples_seen": state.examples_seen,
        "train_seconds": round(state.train_seconds, 2),
        "train_examples_per_second": round(state.examples_seen / state.train_seconds, 2)
        if state.train_seconds
        else None,
        "headline_metric": headline,
        f"best_dev_{headline}": state.best_score if trained else None,
        "best_dev_score": state.best_score if trained else None,  # the headline metric on dev, any corpus
        "best_dev_step": state.best_step if trained else None,
        "best_dev": state.best_dev if trained else None,  # every dev metric of the kept weights
        "best_dev_recall": state.best_dev_recall if trained else None,  # and each label's dev recall
        "recipe": state.recipe or None,
    }
