"""A run over several corpora at once (``data.dataset: sst5,friends,...``): one adapter, each
example prompted and scored with its own corpus's labels (`emotune.models.multi`), dev selection
on the mean of the corpora's macro-F1, one temperature fitted on every corpus's dev logits, and an
evaluation per corpus.

The run directory holds what a one-corpus run holds, for the first corpus (so ``predict`` and
``serve`` load it as they load any run), plus ``run.json``'s ``corpora`` (every label set:
``Predictor.load(run, corpus=NAME)``), ``corpora/NAME/`` (each corpus's metrics, predictions,
confusion matrix and reliability plot) and a top-level ``metrics.json`` with the mean and each
corpus's figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotune import rundir
from emotune.config import RunConfig
from emotune.data import Example, Selection
from emotune.data.card import dataset_card
from emotune.data.multi import Corpora, corpus_config, load_corpora, mixed_train
from emotune.distributed import is_main
from emotune.evaluate import MEAN_METRICS, evaluate, write_result
from emotune.models.multi import CorpusTask, MultiRecogniser, multi_recogniser
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.pipeline.one_corpus import training_figures
from emotune.storage import write_json
from emotune.training.calibrate import DevLogits
from emotune.training.objectives import get_objective
from emotune.training.trainer import TrainState

log = logging.getLogger(__name__)


class Mixture:
    """The `emotune.pipeline.Job` of a run over several corpora."""

    #: What dev selection compares: the mean over corpora of each one's macro-F1.
    headline = "macro_f1"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.corpora: Corpora | None = None

    @property
    def mix(self) -> Corpora:
        if self.corpora is None:
            raise RuntimeError("Mixture.load comes first")
        return self.corpora

    def load(self, folder: Path, resume: bool) -> Selection:
        """The training mix and every corpus's dev and evaluation examples (labels in the shared space)."""
        d, seed = self.cfg.data, self.cfg.train.seed
        self.corpora = corpora = load_corpora(d, seed)
        dev_limit = d.max_dev_samples if d.max_dev_samples is not None else d.max_eval_samples
        train = mixed_train(corpora, d.mix_temperature, d.max_per_corpus, seed)
        if d.max_train_samples is not None:
            train = train[: d.max_train_samples]
        counts = {n: sum(corpora.corpus_of(int(e.label)) == c for e in train) for c, n in enumerate(corpora.names)}  # type: ignore[arg-type]
        log.info("training mix: %s", ", ".join(f"{n} {k}" for n, k in counts.items()))
        dev = corpora.split("dev", dev_limit, seed)
        return Selection(train, dev, corpora.split(self.cfg.train.eval_split, d.max_eval_samples, seed))

    def build(self, folder: Path, resume: bool, adapter: Path | None = None) -> MultiRecogniser:
        """The backbone and a fresh adapter (or the saved ``adapter``), with a label head per corpus."""
        first = self.mix.datasets[0]
        rec = build_recogniser(self.cfg, first.labels, first.language, first.task, adapter_dir=adapter)
        return multi_recogniser(rec, tasks_of(self.mix), self.cfg.data.shuffle_labels, self.cfg.train.seed)

    def restore(self, folder: Path) -> MultiRecogniser:
        rec = self.build(folder, True, folder / "adapter")
        rec.temperature = rundir.RunMeta.load(folder).temperature
        return rec

    def calibration(self, rec: Recogniser) -> tuple[DevLogits, bool]:
        """Every corpus's label logits on its own examples (among its own labels), stacked: rows of
        a corpus with fewer labels are padded with minus infinity (labels it does not have). One
        temperature for every label set is what makes it label-independent: it also serves label
        sets given at call time (the shipped generalist's calibration), so vector scaling is not
        tried."""
        if not isinstance(rec, MultiRecogniser):
            raise TypeError("a mix is scored by a MultiRecogniser")

        def logits(examples: Sequence[Example]) -> tuple[np.ndarray, list[int]]:
            parts, gold = [], []
            for corpus, group in rec.local(examples).items():
                if group:
                    parts.append(rec.view(corpus).scores(group).float().numpy())
                    gold += [int(e.label) for e in group]  # type: ignore[arg-type]
            width = max(p.shape[1] for p in parts)
            padded = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-np.inf) for p in parts]
            return np.concatenate(padded), gold

        return logits, False

    def write(self, folder: Path, rec: Recogniser, recipe: dict[str, Any] | None = None) -> None:
        """config.yaml, run.json (the first corpus's labels, as a one-corpus run has them, and every
        corpus under ``corpora``) and a dataset card per corpus."""
        if not is_main():
            return
        cfg, mix = self.cfg, self.mix
        cfg.to_yaml(folder / "config.yaml")
        first = mix.datasets[0]
        rundir.RunMeta(
            dataset=cfg.data.dataset,
            language=first.language,
            task=first.task,
            labels=first.labels.to_dict(),
            headline_metric=first.headline_metric,
            corpora=[t.to_dict() for t in tasks_of(mix)],
            temperature=rec.temperature,
        ).save(folder)
        cards = [dataset_card(corpus_config(cfg.data, d.name), cfg.train.seed, d) for d in mix.corpora]
        card: dict[str, Any] = {
            "dataset": cfg.data.dataset,
            "corpora": cards,
            "context_turns": cards[0]["context_turns"],
        }
        if cfg.data.exclude_test_of:
            card["left_out_as_judged"] = {"judged": list(cfg.data.exclude_test_of), "removed": mix.removed}
        write_json(folder / "dataset_card.json", card | ({"training": recipe} if recipe else {}))

    def evaluate(self, rec: Recogniser, selection: Selection, folder: Path, state: TrainState) -> dict[str, Any]:
        """Each corpus scored on the evaluation split among its own labels (``corpora/NAME/``), and
        the mean (``metrics.json``)."""
        if not isinstance(rec, MultiRecogniser):
            raise TypeError("a mix is scored by a MultiRecogniser")
        cfg = self.cfg
        started = time.perf_counter()
        per = self._per_corpus(rec, selection.eval, folder)
        mean = {k: sum(m[k] for m in per.values()) / len(per) for k in MEAN_METRICS}
        metrics = mean | {
            "n": sum(int(m["n"]) for m in per.values()),
            "split": cfg.train.eval_split,
            "method": rec.method.name,
            "model": cfg.model.name,
            "dataset": cfg.data.dataset,
            "corpora": per,
            **training_figures(state, self.headline),
            "eval_seconds": round(time.perf_counter() - started, 2),
        }
        if is_main():
            write_json(folder / "metrics.json", metrics)
        log.info("%s mean over %d corpora: macro_f1=%.4f", cfg.train.eval_split, len(per), mean["macro_f1"])
        return metrics

    def _per_corpus(self, rec: MultiRecogniser, examples: list[Example], folder: Path) -> dict[str, dict[str, Any]]:
        objective = get_objective(self.cfg.train.objective)
        per: dict[str, dict[str, Any]] = {}
        for corpus, group in rec.local(examples).items():
            if not group:  # a reworded view of a corpus: its examples are the corpus's own
                continue
            name = rec.tasks[corpus].name
            result = evaluate(rec.view(corpus), group, objective)
            if is_main():
                extra = {"split": self.cfg.train.eval_split, "dataset": name}
                write_result(result, folder / "corpora" / name, extra)
            per[name] = {k: result.metrics[k] for k in (*MEAN_METRICS, "n")}
        return per


def tasks_of(corpora: Corpora) -> list[CorpusTask]:
    return [CorpusTask(d.name, d.labels, d.language, d.task, d.headline_metric) for d in corpora.datasets]
