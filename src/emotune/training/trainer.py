"""A lean training loop: AdamW, linear warmup/decay, gradient accumulation, length-bucketed
dynamic padding; dev evaluation, logging and checkpoints are callbacks.

The `Trainer` knows a recogniser, its training examples and `TrainConfig`;
the run directory, data selection and final evaluation belong to `emotune.pipeline`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from tqdm import tqdm

from emotune.config import TrainConfig, uses_checkpointing
from emotune.data.schema import Example
from emotune.distributed import my_share, world_size
from emotune.errors import EmotuneError
from emotune.methods.base import base_model_of
from emotune.models.precision import grad_scaler
from emotune.models.recogniser import Recogniser
from emotune.models.scoring import epoch_batches
from emotune.training.losses import (
    absent_labels,
    class_weights,
    gold_targets,
    imbalance_ratio,
    resolve_class_weights,
)
from emotune.training.objectives import MicroBatch, Objective, get_objective

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where training is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = -1.0
    best_step: int = 0
    #: Dev metrics of the kept weights: a recipe search compares candidates on these, never on test.
    best_dev: dict[str, float] = field(default_factory=dict)
    #: Each label's dev recall and support at the kept weights: whether a rare label was ever found.
    best_dev_recall: dict[str, dict[str, float]] = field(default_factory=dict)
    bad_evals: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    last_eval_step: int = -1
    loss_sum: float = 0.0
    loss_count: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Hooks the trainer calls; subclasses override the events they need."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After each optimiser step."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After the last batch of an epoch."""

    def on_train_end(self, trainer: Trainer) -> None:
        """When the step budget is spent or training stopped early."""


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the peak learning rate, then linear decay to zero."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


HEAD_ROWS = "label_head.rows"
# The label rows live at the output-embedding scale and Adam moves every element by about the
# learning rate per step: prompt-tuning rates (5e-2) would erase the verbaliser start in a few
# steps, so the rows train at LoRA's rate whatever the method's.
HEAD_LR = 2e-4


def head_parameters(rec: Recogniser) -> dict[str, torch.nn.Parameter]:
    """A trainable label head's rows under their checkpoint name; empty for the backbone's own."""
    return {} if rec.head.rows is None else {HEAD_ROWS: rec.head.rows}


def trainable_parameters(rec: Recogniser) -> dict[str, torch.nn.Parameter]:
    """The parameters training updates, by name: the method's, then a trainable label head's."""
    return {n: p for n, p in rec.model.named_parameters() if p.requires_grad} | head_parameters(rec)


def trainable_state(rec: Recogniser) -> dict[str, torch.Tensor]:
    """The trainable parameters by name (small: adapters only)."""
    return {n: p.detach().clone() for n, p in trainable_parameters(rec).items()}


def load_trainable(rec: Recogniser, state: dict[str, torch.Tensor]) -> None:
    """Copies saved trainable parameters back into the model (and label head)."""
    params = dict(rec.model.named_parameters()) | head_parameters(rec)
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def enable_gradient_checkpointing(rec: Recogniser) -> None:
    """Recomputes activations in backward: less memory for long prompts or big backbones."""
    base = base_model_of(rec.model)
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False


#: ``train.batch_size: auto`` in a config (read as 0), and where its search starts (CPU, GPU).
AUTO_BATCH = 0
AUTO_START = {False: 8, True: 256}


def _precision_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32") if dtype else "fp32"


def step_budget(settings: TrainConfig, batches_per_epoch: int) -> int:
    """Optimiser steps of a run: ``epochs`` over the data, but at least ``min_steps``.

    The floor is what keeps a small training set from stopping after a few dozen steps, before
    the adapter has moved past predicting the majority label.
    """
    from_epochs = math.ceil(settings.epochs * batches_per_epoch / settings.grad_accum)
    return max(1, from_epochs, settings.min_steps)


class Trainer:
    """Trains a recogniser's trainable parameters on labelled examples.

    Args:
        rec: The recogniser (backbone wrapped by a trainable method, label head).
        examples: Training examples.
        settings: Optimisation settings (``train`` section of the run config).
        callbacks: Called on step, epoch and training end, in order.
    """

    def __init__(
        self,
        rec: Recogniser,
        examples: Sequence[Example],
        settings: TrainConfig,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.rec, self.settings, self.callbacks = rec, settings, list(callbacks)
        self.objective: Objective = get_objective(settings.objective)
        if world_size() > 1 and not self.objective.scales_out:
            raise EmotuneError(f"train.objective '{self.objective.name}' runs in one process only; use 'classify'")
        self.rows = rec.encode(examples)
        self.gold = gold_targets(examples, len(rec.labels), rec.multi_label)
        if absent := absent_labels(self.gold, rec.labels.names):
            log.warning("no training example has the label(s) %s: training cannot teach them", ", ".join(absent))
        self.weights = class_weights(self.gold, len(rec.labels), settings.class_weights)
        self.params = list(trainable_parameters(rec).values())
        self.checkpointing = uses_checkpointing(settings.gradient_checkpointing, rec.weights.quantized)
        if self.checkpointing:
            enable_gradient_checkpointing(rec)
        # Accelerate wraps the scorer for DDP/FSDP under `accelerate launch`; alone it is a no-op.
        self.accelerator = Accelerator(cpu=rec.device.type == "cpu")
        self.engine = self.accelerator.prepare_model(rec.scorer)
        log.info("training on %d process(es), device %s", world_size(), rec.device)
        lr = settings.lr or rec.method.default_lr
        # Fused: one kernel for all parameters, and no host read of each parameter's step count
        # (the per-tensor default reads it 252 times a step for the default LoRA); on a CPU it is
        # as fast (benchmarks/results/step-ops.json).
        self.optimizer = torch.optim.AdamW(self.param_groups(lr), weight_decay=settings.weight_decay, fused=True)
        self.scaler = grad_scaler({rec.autocast_dtype(), getattr(torch, rec.weights.dtype)}, rec.device)
        if settings.batch_size == AUTO_BATCH:
            self.settings = settings = dataclasses.replace(settings, batch_size=self.largest_batch())
        self.batches_per_epoch = math.ceil(len(self.rows) / settings.batch_size)
        self.total_steps = step_budget(settings, self.batches_per_epoch)
        warmup = int(settings.warmup_ratio * self.total_steps)
        self.scheduler = linear_schedule(self.optimizer, warmup, self.total_steps)
        self.recipe = self.resolved_recipe(lr)
        log.info("recipe: %s", ", ".join(f"{k}={v}" for k, v in self.recipe.items()))
        self.state = TrainState(recipe=self.recipe)
        self._loss_total = torch.zeros((), device=rec.device)  # summed on device: no host sync per step

    def largest_batch(self) -> int:
        """``train.batch_size: auto``: the largest batch whose step fits the device, found by
        accelerate's executable-batch-size search (halving from ``AUTO_START`` on each
        out-of-memory error) over the longest training rows. A CPU starts at 8: its memory
        swaps rather than failing, so there is nothing to search."""
        from accelerate.utils import find_executable_batch_size

        if world_size() > 1:
            raise EmotuneError("train.batch_size auto runs in one process; give a number under accelerate launch")
        longest = sorted(range(len(self.rows)), key=lambda i: -len(self.rows[i]))

        @find_executable_batch_size(starting_batch_size=AUTO_START[self.rec.device.type == "cuda"])
        def probe(batch_size: int) -> int:
            self.optimizer.zero_grad(set_to_none=True)
            self.accelerator.backward(self.loss(longest[:batch_size]))
            self.optimizer.zero_grad(set_to_none=True)
            return batch_size

        found = min(int(probe()), len(self.rows))
        log.info("train.batch_size auto: %d", found)
        return found

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """One group at the method's learning rate, and the label head's rows at ``HEAD_LR``."""
        head = self.rec.head.rows
        groups: list[dict[str, Any]] = [{"params": [p for p in self.params if p is not head], "lr": lr}]
        if head is not None:
            groups.append({"params": [head], "lr": min(lr, HEAD_LR)})
        return groups

    def resolved_recipe(self, lr: float) -> dict[str, Any]:
        """What the settings came to for this data: steps, epochs, learning rate, class weighting, prior correction."""
        t, n = self.settings, len(self.rec.labels)
        return {
            "steps": self.total_steps,
            "batch_size": t.batch_size,
            "epochs": round(self.total_steps * t.grad_accum / self.batches_per_epoch, 2),
            "lr": lr,
            "class_weights": resolve_class_weights(self.gold, n, t.class_weights),
            **({"label_smoothing": t.label_smoothing} if t.label_smoothing else {}),
            "imbalance_ratio": round(imbalance_ratio(self.gold, n), 1),
            "label_head": t.label_head,
            "prior_correction": f"train x{t.prior_strength}" if t.prior_correction == "train" else t.prior_correction,
            # Where it ran, so a benchmark cell's wall time can be read against its hardware.
            "device": self.rec.device.type,
            "precision": _precision_name(self.rec.autocast_dtype()),
            "weights": self.rec.weights.describe(),
            **({"gradient_checkpointing": True} if self.checkpointing else {}),
        }

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continues from a checkpoint read by `emotune.rundir.latest_good_checkpoint`."""
        load_trainable(self.rec, checkpoint["trainable"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.state = TrainState(**{**checkpoint["trainer"], "recipe": self.recipe})
        torch.set_rng_state(checkpoint["rng"])
        s = self.state
        log.info("resumed at step %d (epoch %d, batch %d)", s.step, s.epoch, s.batch_in_epoch)

    def fit(self) -> TrainState:
        """Trains until the step budget is spent or a callback stops it; returns the final state."""
        t, s = self.settings, self.state
        total = self.total_steps * t.batch_size * t.grad_accum
        bar = tqdm(total=total, initial=s.examples_seen, unit="ex", desc="train", dynamic_ncols=True, disable=None)
        while s.step < self.total_steps and not s.stopped_early:
            batches = epoch_batches([len(r) for r in self.rows], t.batch_size, t.seed + s.epoch)
            self.rec.model.train()
            while s.batch_in_epoch < len(batches) and s.step < self.total_steps and not s.stopped_early:
                self.micro_step(batches[s.batch_in_epoch])
                bar.update(len(batches[s.batch_in_epoch - 1]))
            if s.batch_in_epoch >= len(batches):
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                self._emit(Callback.on_epoch_end)
        self._emit(Callback.on_train_end)
        bar.close()
        return s

    def loss(self, idx: list[int]) -> torch.Tensor:
        """The objective on one global micro-batch, computed on this process's share.

        Scaled so that the gradients DDP averages over processes equal those of the whole
        batch in one process; a process whose share is empty scores one example with weight 0,
        because every process must run the same forward/backward for the all-reduce.
        """
        mine = my_share(idx)
        scale = len(mine) * world_size() / len(idx)
        if not mine:
            mine, scale = idx[:1], 0.0
        batch = MicroBatch([self.rows[i] for i in mine], self.gold[mine], self.weights)
        return self.objective.loss(self.rec, self.engine, batch, self.settings) * scale

    def micro_step(self, idx: list[int]) -> None:
        """One micro-batch; an optimiser step every ``grad_accum`` micro-batches."""
        t, s = self.settings, self.state
        start = time.perf_counter()
        loss = self.loss(idx)
        scaled = loss / t.grad_accum
        self.accelerator.backward(self.scaler.scale(scaled) if self.scaler else scaled)
        self._loss_total += loss.detach()
        s.loss_count += 1
        s.batch_in_epoch += 1
        s.examples_seen += len(idx)
        if s.batch_in_epoch % t.grad_accum == 0 or s.batch_in_epoch == self.batches_per_epoch:
            self.optimizer_step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            s.step += 1
            self._emit(Callback.on_step_end)
        s.train_seconds += time.perf_counter() - start

    def optimizer_step(self) -> None:
        """Clips and applies the gradients; with fp16 weights, through the loss scaler, which skips
        a step whose gradients overflowed and lowers its scale."""
        if self.scaler is None:
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
            self.optimizer.step()
            return
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def flush_loss(self) -> None:
        """Moves the on-device loss sum into the state (one host sync)."""
        self.state.loss_sum += float(self._loss_total)
        self._loss_total.zero_()

    def take_mean_loss(self) -> float:
        """Mean loss since the last call, and a fresh count."""
        self.flush_loss()
        s = self.state
        mean = s.loss_sum / max(1, s.loss_count)
        s.loss_sum, s.loss_count = 0.0, 0
        return mean

    def _emit(self, event: Callable[[Callback, Trainer], None]) -> None:
        for callback in self.callbacks:
            getattr(callback, event.__name__)(self)
