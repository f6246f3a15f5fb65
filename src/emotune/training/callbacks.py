"""The trainer's callbacks: progress logging, dev evaluation with early stopping and best-weight
keeping, and periodic checkpoints (the loop itself is `emotune.training.trainer`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from emotune import rundir
from emotune.data.schema import Example
from emotune.distributed import is_main
from emotune.evaluate import evaluate
from emotune.metrics import recall_by_label, tune_threshold
from emotune.models.recogniser import Recogniser
from emotune.training.trainer import Callback, Trainer, trainable_state

log = logging.getLogger(__name__)


class ProgressLog(Callback):
    """Logs mean loss, throughput and the time left every ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step_end(self, trainer: Trainer) -> None:
        s, t = trainer.state, trainer.settings
        if not self.every or s.step % self.every:
            return
        rate = s.examples_seen / max(s.train_seconds, 1e-9)
        left = (trainer.total_steps - s.step) * t.batch_size * t.grad_accum / rate
        loss = trainer.take_mean_loss()
        log.info("step %d/%d loss=%.4f %.1f ex/s eta %.0fs", s.step, trainer.total_steps, loss, rate, left)


MAX_EPOCH_EVALS = 10
#: The dev metrics kept for the chosen checkpoint.
DEV_METRICS = ("accuracy", "macro_f1", "weighted_f1", "ua")


class DevEvaluation(Callback):
    """Scores the headline metric on dev after each epoch (or every ``every`` steps), keeps the
    best weights, and stops training after ``patience`` evaluations without progress.

    Args:
        dev: Dev examples (none: the last weights are kept).
        headline: The metric that decides (macro-F1 unless the corpus reports another).
        every: Steps between evaluations; 0 evaluates at epoch ends (at most ``MAX_EPOCH_EVALS``
            times a run).
        patience: Evaluations without progress before stopping (never before ``min_steps``).
        on_best: Called with the new best weights (e.g. to write them to the run directory).
        best: Best weights known so far (from a resumed run).
    """

    def __init__(
        self,
        dev: Sequence[Example],
        headline: str,
        every: int,
        patience: int,
        on_best: Callable[[dict[str, torch.Tensor]], None] | None = None,
        best: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.dev, self.headline, self.every, self.patience = list(dev), headline, every, patience
        self.on_best = on_best
        self.best = best

    def on_step_end(self, trainer: Trainer) -> None:
        if self.every and trainer.state.step % self.every == 0:
            self.run(trainer)

    def on_epoch_end(self, trainer: Trainer) -> None:
        # Short epochs (a small set under a step floor) would mean an evaluation every few
        # steps: at most MAX_EPOCH_EVALS per run, spread over it.
        gap = trainer.total_steps // MAX_EPOCH_EVALS
        if not self.every and trainer.state.step - max(trainer.state.last_eval_step, 0) >= gap:
            self.run(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if trainer.state.last_eval_step != trainer.state.step:  # a budget that ends mid-epoch
            self.run(trainer)
        if self.best is None:
            self.best = trainable_state(trainer.rec)

    def run(self, trainer: Trainer) -> None:
        """One dev evaluation."""
        s, rec = trainer.state, trainer.rec
        s.last_eval_step = s.step
        if not self.dev:
            self.best = trainable_state(rec)  # no dev split: the last weights are used
            return
        tune_dev_threshold(rec, self.dev)
        metrics = evaluate(rec, self.dev, trainer.objective).metrics
        rec.model.train()
        log.info(
            "step %d dev %s=%.4f accuracy=%.4f", s.step, self.headline, metrics[self.headline], metrics["accuracy"]
        )
        if metrics[self.headline] > s.best_score:
            s.best_score, s.best_step, s.bad_evals = metrics[self.headline], s.step, 0
            s.best_dev = {k: float(metrics[k]) for k in DEV_METRICS if k in metrics}
            s.best_dev_recall = recall_by_label(metrics)
            self.best = trainable_state(rec)
            if self.on_best is not None:
                self.on_best(self.best)
            return
        s.bad_evals += 1
        # The step floor is a promise: no early stop before it (dev is noisy on small sets).
        s.stopped_early = s.bad_evals >= self.patience and s.step >= trainer.settings.min_steps
        if s.stopped_early:
            log.info("early stopping: no dev improvement in %d evaluations", s.bad_evals)


class Checkpointing(Callback):
    """Writes an atomic checkpoint every ``every`` steps (main process only)."""

    def __init__(self, run: Path, every: int) -> None:
        self.run, self.every = run, every

    def on_step_end(self, trainer: Trainer) -> None:
        if not self.every or trainer.state.step % self.every or not is_main():
            return
        trainer.flush_loss()  # the running loss is part of the saved state
        state = asdict(trainer.state)
        rundir.save_checkpoint(
            self.run, trainer.state.step, trainable_state(trainer.rec), trainer.optimizer, trainer.scheduler, state
        )


def tune_dev_threshold(rec: Recogniser, dev: Sequence[Example]) -> None:
    """Multi-label: sets the decision threshold that maximises dev macro-F1 (kept as is without dev)."""
    if rec.multi_label and dev:
        probs = rec.probabilities(dev).numpy()
        rec.threshold = tune_threshold(probs, [ex.gold_set() for ex in dev])
        log.info("multi-label threshold tuned on dev: %.2f", rec.threshold)
