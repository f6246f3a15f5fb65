"""A plain, readable training loop: AdamW, linear warmup/decay, gradient accumulation, early
stopping on dev macro-F1, length-bucketed dynamic padding, atomic checkpoints and ``--resume``."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm import tqdm

from emotune import rundir
from emotune.config import RunConfig
from emotune.data import Dataset, Example, load_data, subsample
from emotune.data.card import dataset_card
from emotune.data.files import read_json
from emotune.distributed import is_main, my_share, wait_for_everyone, world_size
from emotune.errors import EmotuneError
from emotune.evaluate import EvalResult, evaluate, write_result
from emotune.generative import lm_loss
from emotune.losses import class_weights, gold_targets, label_loss
from emotune.methods.base import base_model_of
from emotune.metrics import tune_threshold
from emotune.recogniser import Recogniser, build_recogniser
from emotune.scoring import epoch_batches

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where training is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = -1.0
    best_step: int = 0
    bad_evals: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    last_eval_step: int = -1
    loss_sum: float = 0.0
    loss_count: int = 0


def setup(cfg: RunConfig) -> None:
    """Seeds every RNG and sets CPU threads."""
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)


def attach_log_file(run: Path) -> logging.Handler:
    """Mirrors emotune's log into ``run/train.log``."""
    handler = logging.FileHandler(run / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("emotune")
    # Called from Python without logging configured, the logger would drop INFO lines.
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def enable_gradient_checkpointing(rec: Recogniser) -> None:
    """Recomputes activations in backward: less memory for long prompts or big backbones."""
    base = base_model_of(rec.model)
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the peak learning rate, then linear decay to zero."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def trainable_state(rec: Recogniser) -> dict[str, torch.Tensor]:
    """The trainable parameters by name (small: adapters only)."""
    return {n: p.detach().clone() for n, p in rec.model.named_parameters() if p.requires_grad}


def load_trainable(rec: Recogniser, state: dict[str, torch.Tensor]) -> None:
    """Copies saved trainable parameters back into the model."""
    params = dict(rec.model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


class Trainer:
    """Trains one run; see :func:`train`."""

    def __init__(self, cfg: RunConfig, dataset: Dataset, rec: Recogniser, run: Path) -> None:
        self.cfg, self.dataset, self.rec, self.run = cfg, dataset, rec, run
        t = cfg.train
        self.train_ex = subsample(dataset.split("train"), cfg.data.max_train_samples, t.seed)
        dev = dataset.splits.get("dev") or []
        self.dev_ex = subsample(dev, cfg.data.max_eval_samples, t.seed)
        self.rows = rec.encode(self.train_ex)
        self.gold = gold_targets(self.train_ex, len(dataset.labels), dataset.multi_label)
        self.weights = class_weights(self.gold, len(dataset.labels), t.class_weights)
        self.params = [p for p in rec.model.parameters() if p.requires_grad]
        if t.gradient_checkpointing:
            enable_gradient_checkpointing(rec)
        # Accelerate wraps the scorer for DDP/FSDP under `accelerate launch`; alone it is a no-op.
        self.accelerator = Accelerator(cpu=rec.device.type == "cpu")
        self.engine = self.accelerator.prepare_model(rec.scorer)
        if world_size() > 1 and t.objective == "generate":
            raise EmotuneError("train.objective 'generate' runs in one process only; use 'classify' to scale out")
        log.info("training on %d process(es), device %s", world_size(), rec.device)
        lr = t.lr or rec.method.default_lr
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=t.weight_decay)
        self.batches_per_epoch = math.ceil(len(self.rows) / t.batch_size)
        self.total_steps = max(1, math.ceil(t.epochs * self.batches_per_epoch / t.grad_accum))
        self.scheduler = linear_schedule(self.optimizer, int(t.warmup_ratio * self.total_steps), self.total_steps)
        self.state = TrainState()
        self.best: dict[str, torch.Tensor] = trainable_state(rec)

    def resume(self) -> bool:
        """Restores the newest good checkpoint; False if there is none."""
        ckpt = rundir.latest_good_checkpoint(self.run)
        if ckpt is None:
            return False
        load_trainable(self.rec, ckpt["trainable"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = TrainState(**ckpt["trainer"])
        torch.set_rng_state(ckpt["rng"])
        best = rundir.read_best(self.run)
        self.best = best if best is not None else trainable_state(self.rec)
        log.info(
            "resumed at step %d (epoch %d, batch %d)",
            self.state.step,
            self.state.epoch,
            self.state.batch_in_epoch,
        )
        return True

    def loss(self, idx: list[int]) -> torch.Tensor:
        """The configured objective on one global micro-batch, computed on this process's share.

        Scaled so that the gradients DDP averages over processes equal those of the whole
        batch in one process; a process whose share is empty scores one example with weight 0,
        because every process must run the same forward/backward for the all-reduce.
        """
        mine = my_share(idx)
        scale = len(mine) * world_size() / len(idx)
        if not mine:
            mine, scale = idx[:1], 0.0
        rows, gold = [self.rows[i] for i in mine], self.gold[mine]
        if self.cfg.train.objective == "generate":
            return lm_loss(self.rec, rows, gold.tolist())
        batch = self.rec.collate(rows)
        with self.rec.autocast():
            logits = self.engine(batch.input_ids, batch.attention_mask, batch.last_index).float()
        weight = None if self.weights is None else self.weights.to(logits.device)
        t = self.cfg.train
        return label_loss(logits, gold.to(logits.device), weight, t.loss, t.focal_gamma) * scale

    def run_epochs(self) -> None:
        """Trains until the step budget is spent or early stopping triggers."""
        t, s = self.cfg.train, self.state
        bar = tqdm(
            total=self.total_steps * t.batch_size * t.grad_accum,
            initial=s.examples_seen,
            unit="ex",
            desc="train",
            dynamic_ncols=True,
            disable=None,
        )
        while s.step < self.total_steps and not s.stopped_early:
            batches = epoch_batches([len(r) for r in self.rows], t.batch_size, t.seed + s.epoch)
            self.rec.model.train()
            while s.batch_in_epoch < len(batches) and s.step < self.total_steps:
                self.micro_step(batches[s.batch_in_epoch], bar)
                if s.stopped_early:
                    break
            if s.batch_in_epoch >= len(batches):
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                if not t.eval_every:
                    self.evaluate_dev()
        if s.last_eval_step != s.step:  # a budget that ends mid-epoch still gets its dev check
            self.evaluate_dev()
        bar.close()

    def micro_step(self, idx: list[int], bar: tqdm) -> None:
        """One micro-batch; an optimiser step every ``grad_accum`` micro-batches."""
        t, s = self.cfg.train, self.state
        start = time.perf_counter()
        loss = self.loss(idx)
        self.accelerator.backward(loss / t.grad_accum)
        s.loss_sum, s.loss_count = s.loss_sum + loss.item(), s.loss_count + 1
        s.batch_in_epoch += 1
        s.examples_seen += len(idx)
        if s.batch_in_epoch % t.grad_accum == 0 or s.batch_in_epoch == self.batches_per_epoch:
            torch.nn.utils.clip_grad_norm_(self.params, t.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            s.step += 1
            if t.log_every and s.step % t.log_every == 0:
                self.log_progress()
            if t.eval_every and s.step % t.eval_every == 0:
                self.evaluate_dev()
            if t.checkpoint_every and s.step % t.checkpoint_every == 0:
                self.checkpoint()
        s.train_seconds += time.perf_counter() - start
        bar.update(len(idx))

    def log_progress(self) -> None:
        """Logs mean loss since the last line, throughput and the time left."""
        s = self.state
        rate = s.examples_seen / max(s.train_seconds, 1e-9)
        left = (self.total_steps - s.step) * self.cfg.train.batch_size * self.cfg.train.grad_accum / rate
        log.info(
            "step %d/%d loss=%.4f %.1f ex/s eta %.0fs",
            s.step,
            self.total_steps,
            s.loss_sum / max(1, s.loss_count),
            rate,
            left,
        )
        s.loss_sum, s.loss_count = 0.0, 0

    def evaluate_dev(self) -> None:
        """Scores the dataset's headline metric on dev (macro-F1 unless the corpus reports another);
        keeps the best adapter; counts evaluations without progress."""
        s = self.state
        s.last_eval_step = s.step
        if not self.dev_ex:
            self.best = trainable_state(self.rec)  # no dev split: the last weights are used
            return
        tune_dev_threshold(self.rec, self.dev_ex)
        metrics = evaluate(self.rec, self.dev_ex, self.cfg.train.objective).metrics
        self.rec.model.train()
        headline = self.dataset.headline_metric
        log.info("step %d dev %s=%.4f accuracy=%.4f", s.step, headline, metrics[headline], metrics["accuracy"])
        if metrics[headline] > s.best_score:
            s.best_score, s.best_step, s.bad_evals = metrics[headline], s.step, 0
            self.best = trainable_state(self.rec)
            if is_main():
                rundir.write_best(self.run, self.best)
        else:
            s.bad_evals += 1
            s.stopped_early = s.bad_evals >= self.cfg.train.patience
            if s.stopped_early:
                log.info("early stopping: no dev improvement in %d evaluations", s.bad_evals)

    def checkpoint(self) -> None:
        """Writes an atomic checkpoint of everything needed to resume (main process only)."""
        if not is_main():
            return
        rundir.save_checkpoint(
            self.run,
            self.state.step,
            trainable_state(self.rec),
            self.optimizer,
            self.scheduler,
            asdict(self.state),
        )


def train(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Customises the backbone on the configured dataset and writes a run directory.

    Returns:
        The metrics on ``cfg.train.eval_split`` (also written to ``metrics.json``).
    """
    cfg.validate()
    setup(cfg)
    run = Path(cfg.output)
    if is_main():  # only the main process touches the run directory; the others wait for it
        rundir.prepare(run, overwrite=cfg.overwrite, resume=resume)
    wait_for_everyone()
    # A resumed multi-label run keeps the label bias it started with (recalibrating would move it).
    head_bias = read_json(run / "run.json").get("head_bias") if resume and (run / "run.json").is_file() else None
    handler = attach_log_file(run) if is_main() else None
    try:
        dataset = load_data(cfg.data, cfg.train.seed)
        rec = build_recogniser(
            cfg, dataset.labels, dataset.language, dataset.task, multi_label=dataset.multi_label, head_bias=head_bias
        )
        write_run_files(cfg, dataset, run, rec)
        state = TrainState()
        if rec.method.trainable:  # zero-shot has nothing to train: it is only evaluated
            trainer = Trainer(cfg, dataset, rec, run)
            if resume:
                trainer.resume()
            trainer.run_epochs()
            load_trainable(rec, trainer.best)
            if is_main():
                rec.method.save(rec.model, run / "adapter")
            state = trainer.state
        if dataset.multi_label:
            dev = subsample(dataset.splits.get("dev") or [], cfg.data.max_eval_samples, cfg.train.seed)
            tune_dev_threshold(rec, dev)
            write_run_files(cfg, dataset, run, rec)  # records the tuned threshold
        return final_evaluation(cfg, dataset, rec, run, state)
    finally:
        if handler is not None:
            logging.getLogger("emotune").removeHandler(handler)
            handler.close()


def tune_dev_threshold(rec: Recogniser, dev: list[Example]) -> None:
    """Multi-label: sets the decision threshold that maximises dev macro-F1 (kept as is without dev)."""
    if rec.multi_label and dev:
        probs = rec.probabilities(dev).numpy()
        rec.threshold = tune_threshold(probs, [ex.gold_set() for ex in dev])
        log.info("multi-label threshold tuned on dev: %.2f", rec.threshold)


def write_run_files(cfg: RunConfig, dataset: Dataset, run: Path, rec: Recogniser) -> None:
    """Resolved config and what a Predictor needs to rebuild the label scoring (main process only)."""
    if not is_main():
        return
    cfg.to_yaml(run / "config.yaml")
    meta: dict[str, Any] = {
        "dataset": dataset.name,
        "language": dataset.language,
        "task": dataset.task,
        "labels": dataset.labels.to_dict(),
        "splits": {k: len(v) for k, v in dataset.splits.items()},
        "headline_metric": dataset.headline_metric,
        "multi_label": dataset.multi_label,
    }
    if dataset.multi_label:
        meta |= {"threshold": rec.threshold, "head_bias": rec.head.bias.tolist()}
    rundir.write_json(run / "run.json", meta)
    rundir.write_json(run / "dataset_card.json", dataset_card(cfg, dataset))


def final_evaluation(cfg: RunConfig, dataset: Dataset, rec: Recogniser, run: Path, state: TrainState) -> dict[str, Any]:
    """Evaluates on the configured split and writes metrics, predictions and confusion files."""
    examples = subsample(dataset.split(cfg.train.eval_split), cfg.data.max_eval_samples, cfg.train.seed)
    started = time.perf_counter()
    result: EvalResult = evaluate(rec, examples, cfg.train.objective)
    seconds = time.perf_counter() - started
    extra = {
        "split": cfg.train.eval_split,
        "method": cfg.method.name,
        "model": cfg.model.name,
        "dataset": dataset.name,
        "train_examples_seen": state.examples_seen,
        "train_seconds": round(state.train_seconds, 2),
        "train_examples_per_second": round(state.examples_seen / state.train_seconds, 2)
        if state.train_seconds
        else None,
        "headline_metric": dataset.headline_metric,
        f"best_dev_{dataset.headline_metric}": state.best_score if state.best_score >= 0 else None,
        "best_dev_step": state.best_step if state.best_score >= 0 else None,
        "eval_seconds": round(seconds, 2),
        "eval_examples_per_second": round(len(examples) / seconds, 2),
    }
    if is_main():
        write_result(result, run, extra)
    log.info(
        "%s %s: accuracy=%.4f macro_f1=%.4f ua=%.4f (n=%d)",
        cfg.train.eval_split,
        cfg.method.name,
        result.metrics["accuracy"],
        result.metrics["macro_f1"],
        result.metrics["ua"],
        result.metrics["n"],
    )
    return {**result.metrics, **extra}
