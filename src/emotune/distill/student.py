"""The student's side: an encoder with a head learns the teacher's soft labels (and the gold ones).

Per text, the loss is ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, gold)``
where a gold label exists, and the KL term alone where it does not (``_T``: at temperature T, so
the teacher's ranking of the wrong labels carries through). Multi-label teachers give one sigmoid
target per label and the loss is binary cross-entropy against it. After every epoch the student is
scored on dev with the corpus's headline metric; the best epoch is the one kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from emotune.calibration import calibration_summary
from emotune.data.schema import Example
from emotune.distill.config import DistillConfig
from emotune.errors import EmotuneError
from emotune.evaluate import EvalResult
from emotune.metrics import classification_metrics, multilabel_metrics
from emotune.models.encoder import EncoderClassifier, EncoderRecogniser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One training text: the teacher's probabilities and the gold labels where there are any."""

    example: Example
    soft: Sequence[float]
    gold: tuple[int, ...] = ()


def soft_loss(logits: torch.Tensor, soft: torch.Tensor, gold: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """Mean single-label distillation loss; ``gold`` is -1 for texts without a label."""
    t = cfg.temperature
    # The teacher's logits are its log-probabilities up to a constant: tempering them is a power.
    target = soft.clamp_min(1e-8).pow(1.0 / t)
    target = target / target.sum(-1, keepdim=True)
    kl = (target * (target.log() - (logits / t).log_softmax(-1))).sum(-1) * t * t
    ce = nn.functional.cross_entropy(logits, gold.clamp_min(0), reduction="none")
    labelled = gold >= 0
    return torch.where(labelled, cfg.alpha * kl + (1 - cfg.alpha) * ce, kl).mean()


def soft_loss_multilabel(
    logits: torch.Tensor, soft: torch.Tensor, gold: torch.Tensor, labelled: torch.Tensor, cfg: DistillConfig
) -> torch.Tensor:
    """Mean multi-label loss: BCE to the teacher's sigmoids, mixed with BCE to the gold labels."""
    bce = nn.functional.binary_cross_entropy_with_logits
    teacher = bce(logits, soft, reduction="none").mean(-1)
    gold_term = bce(logits, gold, reduction="none").mean(-1)
    return torch.where(labelled, cfg.alpha * teacher + (1 - cfg.alpha) * gold_term, teacher).mean()


class StudentTrainer:
    """Fits a student on `Target` rows and keeps the epoch with the best dev score."""

    def __init__(self, rec: EncoderRecogniser, cfg: DistillConfig, headline: str) -> None:
        self.rec, self.cfg, self.headline = rec, cfg, headline
        groups: list[dict[str, Any]] = [
            {"params": list(rec.model.encoder.parameters())},
            {"params": list(rec.model.head.parameters()), "lr": cfg.head_lr},
        ]
        self.optim = torch.optim.AdamW(groups, lr=cfg.lr)

    def fit(self, targets: Sequence[Target], dev: Sequence[Example]) -> dict[str, object]:
        """Trains for ``cfg.epochs``; returns the dev score per epoch and the epoch kept."""
        steps = self.cfg.epochs * math.ceil(len(targets) / self.cfg.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(self.optim, _warmup_decay(steps, max(1, steps // 16)))
        best: tuple[float, int, dict[str, torch.Tensor] | None] = (-1.0, 0, None)
        history = []
        for epoch in range(1, self.cfg.epochs + 1):
            loss = self._epoch(targets, epoch, schedule)
            score = self.dev_score(dev) if dev else float(epoch)  # without dev the last epoch is kept
            history.append({"epoch": epoch, "loss": round(loss, 5), f"dev_{self.headline}": round(score, 5)})
            log.info("student epoch %d: loss %.4f, dev %s %.4f", epoch, loss, self.headline, score)
            if score > best[0]:
                state = {k: v.detach().clone() for k, v in self.rec.model.state_dict().items()}
                best = (score, epoch, state)
        if best[2] is not None:
            self.rec.model.load_state_dict(best[2])
        return {"epochs": history, "kept_epoch": best[1]}

    def _epoch(self, targets: Sequence[Target], epoch: int, schedule: torch.optim.lr_scheduler.LRScheduler) -> float:
        model = self.rec.model.train()
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(self.cfg.seed + epoch)).tolist()
        total, batches = 0.0, 0
        for start in range(0, len(order), self.cfg.batch_size):
            batch = [targets[i] for i in order[start : start + self.cfg.batch_size]]
            loss = self._loss(model, batch)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            self.optim.step()
            schedule.step()
            self.optim.zero_grad(set_to_none=True)
            total, batches = total + float(loss.detach()), batches + 1
        return total / max(1, batches)

    def _loss(self, model: EncoderClassifier, batch: Sequence[Target]) -> torch.Tensor:
        inputs = self.rec.inputs.pad(self.rec.inputs.rows([t.example for t in batch]))
        logits = self.rec.logits(inputs).float()
        soft = torch.tensor([list(t.soft) for t in batch], dtype=torch.float32)
        if self.rec.multi_label:
            gold = torch.zeros_like(soft)
            for i, t in enumerate(batch):
                gold[i, list(t.gold)] = 1.0
            labelled = torch.tensor([bool(t.gold) for t in batch])
            return soft_loss_multilabel(logits, soft, gold, labelled, self.cfg)
        gold_index = torch.tensor([t.gold[0] if t.gold else -1 for t in batch])
        return soft_loss(logits, soft, gold_index, self.cfg)

    def dev_score(self, dev: Sequence[Example]) -> float:
        """The headline metric of the current weights on ``dev``."""
        return float(score_examples(self.rec, dev)[self.headline])


def score_examples(rec: Any, examples: Sequence[Example], probs: Any = None) -> dict[str, Any]:
    """Metrics of a student (torch or ONNX) on labelled examples (single- or multi-label)."""
    probs = rec.probabilities(examples) if probs is None else probs
    names = rec.labels.names
    if rec.multi_label:
        return multilabel_metrics([ex.gold_set() for ex in examples], rec.decide(probs), names)
    return classification_metrics([int(ex.label) for ex in examples], probs.argmax(-1).tolist(), names)  # type: ignore[arg-type]


def targets_for(examples: Sequence[Example], scores: Sequence[Sequence[float]]) -> list[Target]:
    """Pairs each example with its teacher scores and its gold labels (none for unlabelled texts)."""
    return [Target(ex, row, ex.gold_set()) for ex, row in zip(examples, scores, strict=True)]


def _warmup_decay(total: int, warmup: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def student_result(rec: Any, examples: Sequence[Example]) -> EvalResult:
    """Predictions and metrics of a student on labelled examples, in the layout of any run's."""
    if any(not ex.gold_set() for ex in examples):
        raise EmotuneError("evaluation needs labelled examples")
    names = rec.labels.names
    probs = rec.probabilities(examples)
    chosen = rec.decide(probs)
    records = []
    for ex, picks, row in zip(examples, chosen, probs.tolist(), strict=True):
        gold = [names[k] for k in ex.gold_set()]
        record = {"uid": ex.uid, "text": ex.text, "gold": gold if rec.multi_label else gold[0]}
        labels = [names[k] for k in picks]
        record |= {"labels": labels} if rec.multi_label else {"label": labels[0]}
        records.append(record | {"scores": {n: round(v, 6) for n, v in zip(names, row, strict=True)}})
    metrics = score_examples(rec, examples, probs)
    if not rec.multi_label:
        gold_ids = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
        metrics |= calibration_summary(
            np.asarray(probs, dtype=np.float64), gold_ids, rec.temperature, rec.class_scaling
        )
    return EvalResult(metrics | {"objective": "distilled"}, records)
