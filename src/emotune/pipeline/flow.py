"""The one flow of a run: prepare → train → calibrate → write → evaluate, for any `Job`."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from emotune import rundir
from emotune.config import RunConfig
from emotune.data import Selection
from emotune.data.multi import is_multi_corpus
from emotune.distributed import is_main, resolve_device
from emotune.errors import EmotuneError
from emotune.models.precision import resolve_format
from emotune.models.recogniser import Recogniser
from emotune.training.calibrate import DevLogits, calibrate
from emotune.training.steps import fit, open_run, seed_everything
from emotune.training.trainer import TrainState
from emotune.training.warm_start import check_init_from, start_name, warm_start

log = logging.getLogger(__name__)


class Job(Protocol):
    """What a run's corpora decide; the steps and their order are `run`'s."""

    @property
    def headline(self) -> str:
        """The metric dev selection (and dev-fitted prior offsets) maximise."""

    def load(self, folder: Path, resume: bool) -> Selection:
        """Loads the corpora and selects the training, dev and evaluation examples."""

    def build(self, folder: Path, resume: bool) -> Recogniser:
        """The backbone with a fresh adapter (or the one ``train.init_from`` names) and label heads."""

    def restore(self, folder: Path) -> Recogniser:
        """The recogniser a finished training saved in ``folder``, calibrated as it was."""

    def calibration(self, rec: Recogniser) -> tuple[DevLogits, bool]:
        """What calibration fits on (dev logits and gold label ids), and whether vector scaling
        may be chosen (a fixed label set)."""

    def write(self, folder: Path, rec: Recogniser, recipe: dict[str, Any] | None = None) -> None:
        """config.yaml, run.json and the dataset card (main process only)."""

    def evaluate(self, rec: Recogniser, selection: Selection, folder: Path, state: TrainState) -> dict[str, Any]:
        """Scores the evaluation split, writes the metrics files and returns the metrics."""


def job_for(cfg: RunConfig) -> Job:
    """A mix when ``data.dataset`` names several corpora (``sst5,friends``), else one corpus."""
    if is_multi_corpus(cfg.data):
        from emotune.pipeline.mixture import Mixture

        return Mixture(cfg)
    from emotune.pipeline.one_corpus import OneCorpus

    return OneCorpus(cfg)


def run(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Customises the backbone on the configured corpora (when the method trains) and evaluates it.

    Returns:
        The metrics on ``cfg.train.eval_split`` (also written to ``metrics.json``); for a mix,
        the mean over corpora with each corpus's under ``corpora``.
    """
    cfg.validate()
    # What the device or bitsandbytes cannot do is said before the run directory exists.
    resolve_format(cfg.model.dtype, cfg.model.quantization, resolve_device(cfg.runtime.device))
    init_from = check_init_from(cfg.train.init_from, cfg.model.name, cfg.method)
    seed_everything(cfg.train.seed)
    job = job_for(cfg)
    with open_run(Path(cfg.output), cfg.overwrite, resume) as folder:
        selection = job.load(folder, resume)
        # A training that finished earlier (the run died in calibration or evaluation) is not redone.
        finished = finished_training(folder, cfg) if resume else None
        if finished is not None:
            log.info("%s: training finished earlier (step %d); evaluating its saved weights", folder, finished.step)
            return job.evaluate(job.restore(folder), selection, folder, finished)
        rec = job.build(folder, resume)
        warm_start(rec, init_from)
        job.write(folder, rec)
        if rec.method.trainable and not selection.train:
            raise EmotuneError(f"dataset '{cfg.data.dataset}' has no training examples (train split missing or empty)")
        state = fit(rec, selection, cfg.train, folder, job.headline, resume) if rec.method.trainable else None
        if state is not None:  # which adapter training started from ("auto" resolved)
            state.recipe["init_from"] = start_name(init_from)
        fitted = calibrate(rec, selection, cfg.train, job.headline, state is not None, *job.calibration(rec))
        if state is not None and rec.temperature != 1.0:
            state.recipe["temperature"] = round(rec.temperature, 4)
        if state is not None and "held_out_nll_vector" in fitted:  # what the held-out half of dev compared
            state.recipe["calibration"] = fitted
        # Records the calibration (temperature, label bias, threshold) and the recipe training used.
        job.write(folder, rec, state.recipe if state else None)
        if state is not None and is_main():
            rundir.write_trained(folder, asdict(state))
        return job.evaluate(rec, selection, folder, state or TrainState())


def finished_training(folder: Path, cfg: RunConfig) -> TrainState | None:
    """The state of a training of this very config that finished in ``folder``, else None.

    A changed config (say, more epochs on ``--resume``) is not finished: it goes on from the
    newest checkpoint as before.
    """
    state = rundir.read_trained(folder)
    saved = folder / "config.yaml"
    if state is None or not saved.is_file():
        return None
    if RunConfig.from_yaml(saved, saved=True).recipe() != cfg.recipe():
        log.info("%s: finished training of another config; not reused", folder)
        return None
    return TrainState(**{k: v for k, v in state.items() if k in TrainState.__dataclass_fields__})
