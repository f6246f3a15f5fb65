"""The steps every run shares, whatever it trains on: seeding, the run directory's lifetime,
and training with dev evaluation, logging, checkpoints and the best weights kept
(`emotune.pipeline`, for one corpus and for a mix of several)."""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from emotune import rundir
from emotune.config import TrainConfig
from emotune.data import Selection
from emotune.distributed import is_main, wait_for_everyone
from emotune.models.recogniser import Recogniser
from emotune.training.callbacks import Checkpointing, DevEvaluation, ProgressLog
from emotune.training.trainer import Trainer, TrainState, load_trainable

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seeds Python's and torch's RNGs."""
    random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def open_run(folder: Path, overwrite: bool, resume: bool) -> Iterator[Path]:
    """The run directory ``folder`` (``output``), with ``train.log`` attached, for the length of
    the block; ``overwrite`` replaces an earlier run's, ``resume`` goes on with it.

    A run that fails with neither a checkpoint nor a finished training removes the directory it
    created, so the retry starts clean; otherwise the directory stays for ``--resume``.
    """
    existed = folder.exists()
    fresh = not existed or not any(folder.iterdir()) or (overwrite and not resume)
    if is_main():  # only the main process touches the run directory; the others wait for it
        rundir.prepare(folder, overwrite=overwrite, resume=resume)
    wait_for_everyone()
    handler = rundir.attach_log(folder) if is_main() else None
    if resume and fresh and is_main():  # said, so a mistyped --output is not taken for a resume
        log.info("%s: nothing to resume there; training starts fresh", folder)
    try:
        yield folder
    except BaseException:
        if handler is not None:
            rundir.detach_log(handler)
            handler = None
        if fresh and is_main() and not rundir.has_progress(folder):
            shutil.rmtree(folder, ignore_errors=True)
            if existed:  # an empty folder the user made stays, empty
                folder.mkdir(parents=True, exist_ok=True)
        raise
    finally:
        if handler is not None:
            rundir.detach_log(handler)


def fit(
    rec: Recogniser, selection: Selection, settings: TrainConfig, folder: Path, headline: str, resume: bool
) -> TrainState:
    """Trains with dev evaluation, logging and checkpoints; leaves the best weights in ``rec``
    and saves them as the run's adapter (the pipeline has checked there are training examples)."""
    t = settings
    dev = DevEvaluation(selection.dev, headline, t.eval_every, t.patience, on_best=_best_writer(folder))
    callbacks = [ProgressLog(t.log_every), dev, Checkpointing(folder, t.checkpoint_every)]
    trainer = Trainer(rec, selection.train, t, callbacks)
    checkpoint = rundir.latest_good_checkpoint(folder) if resume else None
    if checkpoint is not None:
        trainer.restore(checkpoint)
        dev.best = rundir.read_best(folder)
    state = trainer.fit()
    if dev.best is not None:
        load_trainable(rec, dev.best)
    if is_main():
        rec.method.save(rec.model, folder / "adapter")
        if rec.head.rows is not None:
            rundir.write_label_head(folder, rec.head.rows)
    return state


def _best_writer(folder: Path) -> Callable[[dict[str, torch.Tensor]], None]:
    def write(weights: dict[str, torch.Tensor]) -> None:
        if is_main():
            rundir.write_best(folder, weights)

    return write
