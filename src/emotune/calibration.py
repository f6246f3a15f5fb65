"""Whether a probability means what it says: calibration metrics, temperature scaling and
selective prediction (abstention).

- **Calibration**: top-label expected calibration error over 15 equal-width confidence bins
  (ECE, as Guo et al. 2017 report it), the largest bin gap (MCE), the Brier score and the
  negative log-likelihood of the gold label; for multi-label tasks, each label's own ECE. Beside
  ECE, its floor (`ece_floor`): what a perfectly calibrated model shows on as many texts, since
  ECE on a few hundred texts is noise as much as miscalibration.
- **Temperature scaling**: one temperature T divides a trained run's label logits, fitted on dev
  by NLL after the best weights are chosen. It changes how confident the probabilities are, never
  which label is highest: accuracy and every F1 stay exactly the same.
- **Vector scaling** (`ClassScaling`): one scale and one bias per label, for a run with a fixed
  label set whose labels are miscalibrated each their own way; `choose_scaling` keeps it only
  where it lowers the NLL of a held-out half of dev, with enough dev texts of every label.
  `calibrated` is the one function every backend applies either with.
- **Selective prediction**: accuracy on the most confident 50/80/90% of texts, and the
  risk-coverage curve (error rate against the share of texts answered).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BINS = 15
COVERAGES = (0.5, 0.8, 0.9)
#: The temperature is searched in [1/20, 20] (log scale); the bound is never the answer in practice.
T_RANGE = (math.log(0.05), math.log(20.0))
#: Vector scaling is tried only with at least this many dev texts of every label (2k parameters).
MIN_PER_CLASS = 20


@dataclass(frozen=True)
class ClassScaling:
    """Vector scaling (Guo et al. 2017): label k's logit becomes ``scale[k] * logit + bias[k]``."""

    scale: tuple[float, ...]
    bias: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"scale": list(self.scale), "bias": list(self.bias)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ClassScaling | None:
        if not data:
            return None
        return cls(tuple(float(v) for v in data["scale"]), tuple(float(v) for v in data["bias"]))


def calibrated(logits: Any, temperature: float = 1.0, per_class: ClassScaling | None = None) -> Any:
    """Calibrated label logits (a torch tensor or a numpy array, labels last): divided by the
    temperature, or scaled and shifted per label where the run chose vector scaling."""
    if per_class is None:
        return logits / temperature
    if hasattr(logits, "new_tensor"):  # torch, on the logits' device
        return logits * logits.new_tensor(per_class.scale) + logits.new_tensor(per_class.bias)
    return logits * np.asarray(per_class.scale, dtype=logits.dtype) + np.asarray(per_class.bias, dtype=logits.dtype)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """Per equal-width confidence bin: its range, count, mean confidence and accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table = []
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        table.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "n": n,
                "confidence": float(confidence[inside].mean()) if n else 0.0,
                "accuracy": float(correct[inside].mean()) if n else 0.0,
            }
        )
    return table


def ece_mce(table: Sequence[dict[str, float]]) -> tuple[float, float]:
    """Expected (count-weighted) and maximum calibration error of a reliability table."""
    total = sum(b["n"] for b in table)
    gaps = [(b["n"], abs(b["accuracy"] - b["confidence"])) for b in table if b["n"]]
    if not total:
        return 0.0, 0.0
    return sum(n * g for n, g in gaps) / total, max((g for _, g in gaps), default=0.0)


def calibration_metrics(probs: np.ndarray, gold: Sequence[int]) -> dict[str, Any]:
    """ECE, MCE, Brier score and NLL of single-label probabilities (n, k) against gold indices."""
    probs = np.asarray(probs, dtype=np.float64)
    gold_arr = np.asarray(gold, dtype=np.int64)
    if not len(gold_arr):
        return {}
    confidence, predicted = probs.max(-1), probs.argmax(-1)
    table = reliability(confidence, (predicted == gold_arr).astype(np.float64))
    ece, mce = ece_mce(table)
    onehot = np.eye(probs.shape[1])[gold_arr]
    picked = probs[np.arange(len(gold_arr)), gold_arr]
    return {
        "ece": ece,
        "mce": mce,
        "brier": float(((probs - onehot) ** 2).sum(-1).mean()),
        "nll": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "reliability": table,
    }


def ece_floor(probs: np.ndarray, draws: int = 200, seed: int = 0) -> dict[str, float]:
    """The ECE a perfectly calibrated model would still show with these top-label confidences on
    this many texts: each text's answer drawn right with the probability its confidence states
    (``draws`` times, seeded). An ECE below the 95th percentile is indistinguishable from perfect
    calibration at this size: on MOSI's 686 test texts it is 4 to 5% for trained runs' confidences
    (`benchmarks/results/calibration-vector.json`).

    Returns:
        ``ece_floor`` (the mean over draws) and ``ece_floor_p95``.
    """
    confidence = np.asarray(probs, dtype=np.float64).max(-1)
    if not len(confidence):
        return {}
    edges = np.linspace(0.0, 1.0, BINS + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, BINS - 1)
    rng = np.random.default_rng(seed)
    eces = np.empty(draws)
    for i in range(draws):  # one draw at a time: memory stays that of the texts, however many draws
        correct = rng.random(len(confidence)) < confidence
        # Count-weighted |accuracy - confidence| per bin is |sum of (correct - confidence)| / n.
        gaps = np.bincount(index, weights=correct - confidence, minlength=BINS)
        eces[i] = np.abs(gaps).sum() / len(confidence)
    return {"ece_floor": float(eces.mean()), "ece_floor_p95": float(np.quantile(eces, 0.95))}


def multilabel_calibration(probs: np.ndarray, gold: Sequence[Sequence[int]], names: Sequence[str]) -> dict[str, Any]:
    """Each label's sigmoid against its 0/1 outcome: per-label ECE, their mean, Brier and NLL."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.zeros_like(probs)
    for i, labels in enumerate(gold):
        truth[i, list(labels)] = 1.0
    per_label = {}
    for k, name in enumerate(names):
        # A label's own confidence is p when predicting it, 1 - p otherwise (top-label view of a binary task).
        conf = np.maximum(probs[:, k], 1 - probs[:, k])
        correct = ((probs[:, k] >= 0.5) == (truth[:, k] == 1)).astype(np.float64)
        per_label[name] = ece_mce(reliability(conf, correct))[0]
    clipped = np.clip(probs, 1e-12, 1 - 1e-12)
    nll = -(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)).mean()
    return {
        "ece": float(np.mean(list(per_label.values()))) if per_label else 0.0,
        "ece_per_label": per_label,
        "brier": float(((probs - truth) ** 2).mean()),
        "nll": float(nll),
    }


def _nll_at(logits: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(-1))
    return float((log_norm - z[np.arange(len(gold)), gold]).mean())


def fit_temperature(logits: np.ndarray, gold: Sequence[int] | np.ndarray, iterations: int = 60) -> float:
    """The temperature minimising the NLL of ``softmax(logits / T)`` (golden-section search on log T).

    Labels that never score (minus infinity) stay so; rows are single-label gold indices.
    """
    logits = np.where(np.isfinite(logits), np.asarray(logits, dtype=np.float64), -1e9)
    gold_arr = np.asarray(gold, dtype=np.int64)
    if len(gold_arr) == 0:
        return 1.0
    lo, hi = T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll_at(logits, gold_arr, math.exp(a)), _nll_at(logits, gold_arr, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll_at(logits, gold_arr, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll_at(logits, gold_arr, math.exp(b))
    return math.exp((lo + hi) / 2)


def _softmax_grad(z: np.ndarray, gold: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean NLL of softmax(z) at ``gold`` and its gradient with respect to z."""
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    rows = np.arange(len(gold))
    nll = float(-np.log(p[rows, gold] + 1e-300).mean())
    p[rows, gold] -= 1.0
    return nll, p / len(gold)


def class_nll(logits: np.ndarray, gold: Sequence[int], per_class: ClassScaling) -> float:
    """The NLL of ``gold`` under vector-scaled logits."""
    z = calibrated(np.asarray(logits, dtype=np.float64), per_class=per_class)
    return _softmax_grad(z, np.asarray(gold, dtype=np.int64))[0]


def fit_class_scaling(
    logits: np.ndarray, gold: Sequence[int] | np.ndarray, temperature: float = 1.0, steps: int = 1500, l2: float = 1e-3
) -> ClassScaling:
    """The per-label scale and bias minimising NLL (Adam from the temperature's solution, with a
    light pull toward it so a label that dev separates perfectly does not run off to infinity)."""
    z = np.asarray(logits, dtype=np.float64)
    gold_arr = np.asarray(gold, dtype=np.int64)
    start = np.concatenate([np.full(z.shape[1], 1.0 / temperature), np.zeros(z.shape[1])])
    theta, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    k = z.shape[1]
    for t in range(1, steps + 1):
        _, dz = _softmax_grad(z * theta[:k] + theta[k:], gold_arr)
        grad = np.concatenate([(dz * z).sum(0), dz.sum(0)]) + l2 * (theta - start)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return ClassScaling(tuple(theta[:k].tolist()), tuple(theta[k:].tolist()))


def held_out_halves(gold: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of two halves of dev, each label split evenly between them."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in np.unique(gold):
        rows = rng.permutation(np.flatnonzero(gold == label))
        first.append(rows[: len(rows) // 2])
        second.append(rows[len(rows) // 2 :])
    return np.concatenate(first), np.concatenate(second)


def choose_scaling(
    logits: np.ndarray, gold: Sequence[int], seed: int = 0
) -> tuple[float, ClassScaling | None, dict[str, Any]]:
    """The temperature fitted on all of dev, and vector scaling where it earns its parameters.

    Vector scaling is fitted on one half of dev and compared with a temperature fitted on the same
    half by NLL on the other half; it is kept (refitted on all of dev) only where it is lower, and
    tried only with `MIN_PER_CLASS` dev texts of every label.

    Returns:
        The temperature, the vector scaling or None, and what was compared (for the run's recipe).
    """
    z = np.asarray(logits, dtype=np.float64)
    gold_arr = np.asarray(gold, dtype=np.int64)
    temperature = fit_temperature(z, gold_arr)
    counts = np.bincount(gold_arr, minlength=z.shape[1])
    if not np.isfinite(z).all() or counts.min() < MIN_PER_CLASS:
        return temperature, None, {"calibration": "temperature", "fewest_dev_texts_of_a_label": int(counts.min())}
    fit, held = held_out_halves(gold_arr, seed)
    t_half = fit_temperature(z[fit], gold_arr[fit])
    vector_half = fit_class_scaling(z[fit], gold_arr[fit], t_half)
    nll_t, nll_v = _nll_at(z[held], gold_arr[held], t_half), class_nll(z[held], gold_arr[held], vector_half)
    record = {"held_out_nll_temperature": round(nll_t, 4), "held_out_nll_vector": round(nll_v, 4)}
    if nll_v >= nll_t:
        return temperature, None, {"calibration": "temperature"} | record
    return temperature, fit_class_scaling(z, gold_arr, temperature), {"calibration": "vector"} | record


def selective(probs: np.ndarray, gold: Sequence[int], points: int = 20) -> dict[str, Any]:
    """Accuracy when only the most confident texts are answered, and the risk-coverage curve.

    ``accuracy_at_coverage`` keys are "0.5", "0.8", "0.9" (and "1.0"); the curve has ``points``
    (coverage, risk) pairs, risk being the error rate among the answered texts.
    """
    probs = np.asarray(probs, dtype=np.float64)
    gold_arr = np.asarray(gold, dtype=np.int64)
    if not len(gold_arr):
        return {}
    order = np.argsort(-probs.max(-1), kind="stable")
    correct = (probs.argmax(-1) == gold_arr)[order].astype(np.float64)
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)

    def at(coverage: float) -> float:
        return float(running[max(1, math.ceil(coverage * len(correct))) - 1])

    curve = [(c, 1 - at(c)) for c in np.linspace(1 / points, 1.0, points)]
    return {
        "accuracy_at_coverage": {str(c): at(c) for c in (*COVERAGES, 1.0)},
        "risk_coverage": [[round(float(c), 4), round(r, 6)] for c, r in curve],
        "aurc": float(np.mean([r for _, r in curve])),
    }


def calibration_summary(
    probs: np.ndarray, gold: Sequence[int], temperature: float = 1.0, per_class: ClassScaling | None = None
) -> dict[str, Any]:
    """What an evaluation adds to ``metrics.json``: ECE, MCE, Brier and NLL at the run's
    calibration (top level), the reliability table, selective prediction and, for a run with a
    temperature, the same figures before it (the probabilities at T = 1 are recovered exactly:
    ``softmax(z) = normalise(softmax(z / T) ** T)``; after vector scaling they cannot be, and the
    run's recipe holds what its held-out half of dev compared instead)."""
    probs = np.asarray(probs, dtype=np.float64)
    after = calibration_metrics(probs, gold)
    if not after:
        return {}
    out: dict[str, Any] = {k: after[k] for k in ("ece", "mce", "brier", "nll")} | ece_floor(probs)
    out |= {"temperature": temperature, "calibration": after, "selective": selective(probs, gold)}
    if per_class is not None:
        out["class_scaling"] = per_class.to_dict()
    out["accuracy_at_80_coverage"] = out["selective"]["accuracy_at_coverage"]["0.8"]
    if temperature != 1.0 and per_class is None:
        raw = np.power(np.clip(probs, 1e-300, 1.0), temperature)
        before = calibration_metrics(raw / raw.sum(-1, keepdims=True), gold)
        out |= {"ece_before_temperature": before["ece"], "nll_before_temperature": before["nll"]}
        out["calibration_before_temperature"] = before
    return out


def plot_reliability(before: Sequence[dict[str, float]], after: Sequence[dict[str, float]] | None, path: Path) -> None:
    """``reliability.png``: accuracy against confidence per bin (before and after temperature)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is an extra (emotune[plot])
        return
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--", label="calibrated")
    for table, name in ((before, "raw"), (after, "temperature-scaled")):
        if table:
            pts = [(b["confidence"], b["accuracy"]) for b in table if b["n"]]
            ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
