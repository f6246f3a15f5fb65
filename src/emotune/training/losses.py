"""Classification losses on label logits: cross-entropy or focal, with optional class weights;
their multi-label (one sigmoid per label) counterparts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from emotune.data.schema import Example


def gold_targets(examples: Sequence[Example], num_labels: int, multi_label: bool) -> torch.Tensor:
    """Label indices (n,) or, for multi-label, a 0/1 float matrix (n, num_labels)."""
    if not multi_label:
        return torch.tensor([ex.label for ex in examples])
    targets = torch.zeros(len(examples), num_labels)
    for i, ex in enumerate(examples):
        targets[i, list(ex.gold_set())] = 1.0
    return targets


# "auto" weights a single-label training set whose most frequent label is at least this many
# times as frequent as its rarest one (whole training splits: Friends and SMP2020-EWECT about 25x,
# MOSI-3 13x are weighted; SST-5 2x and Mastodon 1.6x are not).
SKEW_RATIO = 3.0


def imbalance_ratio(targets: torch.Tensor, num_labels: int) -> float:
    """Count of the most frequent label over that of the rarest (absent labels count as 1)."""
    counts = label_counts(targets, num_labels)
    return float(counts.max() / counts.clamp(min=1).min())


def label_counts(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Training examples per label (positives per label for a multi-label matrix)."""
    if targets.dim() == 2:
        return targets.sum(0)
    return torch.bincount(targets, minlength=num_labels).float()


def absent_labels(targets: torch.Tensor, names: Sequence[str]) -> list[str]:
    """The labels no training example has (a label set given with ``--labels`` may name one)."""
    counts = label_counts(targets, len(names))
    return [name for name, count in zip(names, counts.tolist(), strict=True) if count == 0]


def resolve_class_weights(targets: torch.Tensor, num_labels: int, mode: str) -> str:
    """The weighting ``mode`` stands for: "auto" becomes "sqrt" on a skewed single-label set,
    else "none"; the other modes are themselves."""
    if mode != "auto":
        return mode
    skewed = targets.dim() == 1 and imbalance_ratio(targets, num_labels) >= SKEW_RATIO
    return "sqrt" if skewed else "none"


def class_weights(targets: torch.Tensor, num_labels: int, mode: str) -> torch.Tensor | None:
    """Loss weights for ``mode`` ("balanced", "sqrt" or "auto"), or None for "none".

    Single-label: "balanced" is inverse class frequency, "sqrt" its square root (half-way in log
    space, so rare labels count without the majority label being given up). Multi-label: each
    label's negatives per positive (BCE's ``pos_weight``), capped at 100 so a label seen once does
    not dominate; "sqrt" takes its square root.
    """
    mode = resolve_class_weights(targets, num_labels, mode)
    if mode == "none":
        return None
    counts = label_counts(targets, num_labels)
    if targets.dim() == 2:
        weights = ((len(targets) - counts) / counts.clamp(min=1)).clamp(max=100.0)
    else:
        weights = counts.sum() / (num_labels * counts.clamp(min=1))
    return weights.sqrt() if mode == "sqrt" else weights


def focal_loss(logits: torch.Tensor, gold: torch.Tensor, weight: torch.Tensor | None, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_gold)^gamma.

    Down-weights examples the model already gets right, so rare classes are not drowned out by
    the majority class; ``weight`` (class weights) combines with it as in cross-entropy.
    """
    log_probs = logits.log_softmax(-1)
    gold_log_p = log_probs.gather(1, gold[:, None]).squeeze(1)
    per_example = -((1 - gold_log_p.exp()) ** gamma) * gold_log_p
    if weight is None:
        return per_example.mean()
    return (per_example * weight[gold]).sum() / weight[gold].sum()


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None, gamma: float
) -> torch.Tensor:
    """Per-label binary focal loss: BCE scaled by (1 - p_true)^gamma, averaged over labels and texts."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    p_true = torch.where(targets > 0, logits.sigmoid(), 1 - logits.sigmoid())
    return ((1 - p_true) ** gamma * bce).mean()


def label_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None,
    loss: str,
    gamma: float,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """The configured loss ("cross-entropy" or "focal"); multi-label when ``targets`` is a matrix.

    ``smoothing`` (cross-entropy only) spreads that share of each target over the labels; for
    multi-label it moves every 0/1 target that far towards 1/2.
    """
    if targets.dim() == 2:
        if loss == "focal":
            return sigmoid_focal_loss(logits, targets, weight, gamma)
        soft = targets * (1 - smoothing) + smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, soft, pos_weight=weight)
    if loss == "focal":
        return focal_loss(logits, targets, weight, gamma)
    return F.cross_entropy(logits, targets, weight=weight, label_smoothing=smoothing)
