"""The emotion generalist on corpora it never saw, and as a start for small and full training.

    emotune train --config configs/generalist-eight-corpora.yaml                      # runs/generalist
    python benchmarks/generalist.py                                     # -> benchmarks/results/generalist/

Parts (resumable: a finished part is a cell file under ``benchmarks/results/generalist/``):

1. **Held-out zero-shot** on MELD, Mastodon, MOSI-2 and MOSI-3 (the generalist never trained on
   them), test split, no dialogue context: the base backbone's calibrated zero-shot and the
   generalist's adapter, both through the labels-at-call-time path
   (``Predictor.zero_shot(labels[, adapter])``); whether the generalist's label scores are
   calibrated on a content-free input is chosen on dev macro-F1 (dev only). Beside them TF-IDF +
   LR trained on 256 examples of the same corpus (seeds 42-44).
2. **Full budget from the generalist**: MOSI-2 and MOSI-3, whole training split, the default
   recipe with ``--init-from runs/generalist`` (seed 42).
3. **256 examples**: the cells of ``benchmarks/generalist.yaml`` (the default recipe started from
   the generalist, SetFit, the classification-head recipe) beside today's default and TF-IDF + LR
   from the small-data matrix (``benchmarks/results/small-data``).
4. **The build**: ``build.json`` copies the generalist's own test scores per training corpus, its
   training and evaluation time and its recipe from ``runs/generalist/metrics.json``.
5. **Labels at call time from the shell**: wall seconds of ``emotune predict --labels ... TEXT``
   (three fresh processes).

``summary.json`` holds every figure with the machine, commit and command of the cell it comes
from, and the targets checked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from emotune.bench.record import header
from emotune.bench.timing import wall_seconds

OUT = Path("benchmarks/results/generalist")
SHARED = Path("../shared/datasets")
HELD_OUT = {
    "meld": ("meld", "meld"),
    "mastodon": ("mastodon", "mastodon"),
    "mosi2": ("mosi2", "mosi"),
    "mosi3": ("mosi3", "mosi"),
}
# The paper's zero-shot column (ChatGLM2-6B) and today's full-budget default (paper-full cells).
PAPER_ZERO_SHOT = {"mastodon": ("macro_f1", 55.45), "mosi2": ("accuracy", 84.12), "mosi3": ("macro_f1", 58.19)}
PAPER_BEST = {"mosi2": {"accuracy": 87.02}, "mosi3": {"macro_f1": 61.03}}
PAPER_FULL = Path("benchmarks/results/paper-full/summary.json")
SMALL_DATA = Path("benchmarks/results/small-data/cells")
TRANSFER = OUT / "transfer" / "cells"
CALL_TIME = ["emotune", "predict", "--labels", "joy,anger,sadness,fear,surprise,neutral", "I can't stop smiling today"]


def data_config(name: str, **extra: Any) -> Any:
    from emotune.config import DataConfig

    dataset, folder = HELD_OUT[name]
    return DataConfig(dataset=dataset, data_dir=str(SHARED / folder), context_turns=0, **extra)


def scored(predictor: Any, examples: list[Any]) -> dict[str, Any]:
    """emotune's evaluation of ``predictor`` on ``examples`` (metrics, calibration included)."""
    from emotune.evaluate import evaluate

    keep = ("n", "accuracy", "macro_f1", "weighted_f1", "ua", "ece", "nll", "accuracy_at_80_coverage")
    return {k: v for k, v in evaluate(predictor.recogniser, examples).metrics.items() if k in keep}


def held_out_cell(name: str, generalist: Path, dev_limit: int) -> dict[str, Any]:
    """Base zero-shot, generalist (calibration chosen on dev) and TF-IDF+LR at 256 on one corpus."""
    from emotune.calibration import fit_temperature
    from emotune.config import RunConfig
    from emotune.data import load_data, subsample
    from emotune.inference.predict import Predictor

    dataset = load_data(data_config(name), 42)
    labels = list(dataset.labels.names)
    test, dev = dataset.split("test"), subsample(dataset.splits.get("dev") or [], dev_limit, 42)
    started = time.perf_counter()
    frozen = Predictor.zero_shot(labels, task=dataset.task)
    base = scored(frozen, test)
    base_s = time.perf_counter() - started
    # Temperature scaling as a measured option for zero-shot: one T fitted on dev by NLL.
    frozen.recogniser.temperature = fit_temperature(frozen.recogniser.scores(dev).numpy(), [int(e.label) for e in dev])
    base_t = scored(frozen, test) | {"temperature": frozen.recogniser.temperature}
    options = {
        c: Predictor.zero_shot(labels, adapter=generalist, task=dataset.task, calibrate=c) for c in (False, True)
    }
    dev_scores = {c: scored(p, dev)["macro_f1"] for c, p in options.items()}
    chosen = max(dev_scores, key=lambda c: dev_scores[c])
    result = {
        "corpus": name,
        "labels": labels,
        "base_zero_shot": base,
        "base_zero_shot_with_temperature": base_t,
        "base_seconds": round(base_s, 1),
        "generalist": scored(options[chosen], test),
        "generalist_calibrated": chosen,
        "generalist_dev_macro_f1": dev_scores,
        "tfidf_lr_256": tfidf(name, RunConfig),
    }
    return result


def tfidf(name: str, run_config: Any) -> dict[str, Any]:
    """TF-IDF + LR on 256 training examples, seeds 42-44: mean and each seed's scores."""
    import tempfile

    from emotune.bench.baselines import run_baseline

    seeds = []
    for seed in (42, 43, 44):
        cfg = run_config()
        cfg.data = data_config(name, max_train_samples=256, max_dev_samples=500)
        cfg.train.seed = seed
        with tempfile.TemporaryDirectory() as tmp:
            seeds.append(run_baseline("tfidf-lr", cfg, Path(tmp)))
    keys = ("accuracy", "macro_f1", "weighted_f1", "ua")
    return {k: statistics.mean(s[k] for s in seeds) for k in keys} | {"seeds": [{k: s[k] for k in keys} for s in seeds]}


def full_budget_cell(name: str, generalist: Path) -> dict[str, Any]:
    """The default recipe on the whole training split, started from the generalist."""
    from emotune.config import RunConfig
    from emotune.pipeline import run

    cfg = RunConfig()
    cfg.data = data_config(name)
    cfg.train.init_from, cfg.train.checkpoint_every = str(generalist), 0
    cfg.output, cfg.overwrite = f"runs/generalist-full/{name}", True
    metrics = run(cfg.validate())
    keep = ("n", "accuracy", "macro_f1", "weighted_f1", "ua", "ece", "ece_before_temperature", "temperature")
    keep += ("nll", "nll_before_temperature", "accuracy_at_80_coverage")
    return {"corpus": name, "from_generalist": {k: metrics.get(k) for k in keep}, "recipe": metrics.get("recipe")}


def call_time_seconds() -> dict[str, Any]:
    walls, _ = wall_seconds(CALL_TIME)
    return {"command": " ".join(CALL_TIME), "wall_seconds": walls, "median": statistics.median(walls)}


def build_cell(generalist: Path) -> dict[str, Any]:
    """What building the generalist cost and scored, from its run's metrics."""
    m = json.loads((generalist / "metrics.json").read_text())
    per = {name: {k: c.get(k) for k in ("n", "accuracy", "macro_f1", "ece")} for name, c in m["corpora"].items()}
    return {
        "command": "emotune train --config configs/generalist-eight-corpora.yaml",
        "corpora": per,
        "mean_macro_f1": m["macro_f1"],
        "train_seconds": m["train_seconds"],
        "eval_seconds": m.get("eval_seconds"),
        "train_examples_seen": m["train_examples_seen"],
        "recipe": m["recipe"],
    }


def cell(path: Path, build: Any, command: str) -> dict[str, Any]:
    """A cell file: built once, read afterwards."""
    if path.is_file():
        return dict(json.loads(path.read_text()))
    result = build() | {"header": header(command)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generalist", default="runs/generalist")
    parser.add_argument("--parts", default="held-out,full,timing", help="comma-separated: held-out, full, timing")
    parser.add_argument("--dev-limit", type=int, default=300)
    args = parser.parse_args()
    generalist = Path(args.generalist)
    parts = args.parts.split(",")
    command = "python " + " ".join(sys.argv)
    if "held-out" in parts:
        for name in HELD_OUT:
            cell(
                OUT / "held-out" / f"{name}.json", lambda n=name: held_out_cell(n, generalist, args.dev_limit), command
            )
    if "full" in parts:
        for name in ("mosi2", "mosi3"):
            cell(OUT / "full" / f"{name}.json", lambda n=name: full_budget_cell(n, generalist), command)
    if (generalist / "metrics.json").is_file():
        cell(OUT / "build.json", lambda: build_cell(generalist), command)
    if "timing" in parts:
        cell(OUT / "call-time.json", call_time_seconds, command)
    summary = summarise(generalist)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["targets"], indent=1))


def _cells(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def machine_of(c: dict[str, Any]) -> str:
    """A cell's machine; the older small-data cells name theirs in their matrix's README instead."""
    return str(c.get("machine") or f"see {SMALL_DATA.parent / 'README.md'}")


def transfer_rows() -> dict[str, dict[str, Any]]:
    """Per small-data corpus at 256: mean macro-F1 (and seeds) of each recipe."""
    rows: dict[str, dict[str, Any]] = {}
    sources = [
        (SMALL_DATA, ("lora-256", "tfidf-lr-256")),
        (TRANSFER, ("generalist-256", "setfit-256", "seq-cls-lora-256")),
    ]
    for folder, methods in sources:
        for c in _cells(folder).values():
            if c["method"] in methods:
                entry = rows.setdefault(c["dataset"], {}).setdefault(c["method"], {"seeds": []})
                entry["seeds"].append(
                    {"seed": c["seed"], "macro_f1": c["macro_f1"], "accuracy": c["accuracy"], "machine": machine_of(c)}
                )
    for per in rows.values():
        for entry in per.values():
            entry["macro_f1"] = statistics.mean(s["macro_f1"] for s in entry["seeds"])
            entry["accuracy"] = statistics.mean(s["accuracy"] for s in entry["seeds"])
    return rows


def summarise(generalist: Path) -> dict[str, Any]:
    held = _cells(OUT / "held-out")
    full = _cells(OUT / "full")
    transfer = transfer_rows()
    timing = json.loads((OUT / "call-time.json").read_text()) if (OUT / "call-time.json").is_file() else None
    today = json.loads(PAPER_FULL.read_text()) if PAPER_FULL.is_file() else {}
    for name, c in full.items():
        if f"{name}/lora" in today:
            t = today[f"{name}/lora"]
            c["today_default"] = {k: t[k] for k in ("seeds", "accuracy", "macro_f1", "weighted_f1", "ua")}
    build = OUT / "build.json"
    return {
        "generalist": str(generalist),
        "build": json.loads(build.read_text()) if build.is_file() else None,
        "held_out": held,
        "full_budget": full,
        "transfer_256": transfer,
        "call_time": timing,
        "targets": targets(held, full, transfer, timing),
    }


def targets(held: dict[str, Any], full: dict[str, Any], transfer: dict[str, Any], timing: Any) -> list[dict[str, Any]]:
    out = []
    for name, c in held.items():
        g, b, t = c["generalist"]["macro_f1"], c["base_zero_shot"]["macro_f1"], c["tfidf_lr_256"]["macro_f1"]
        out.append(_t(name, "generalist zero-shot >= base calibrated zero-shot + 15 (macro-F1)", g - b, g >= b + 0.15))
        out.append(_t(name, "generalist zero-shot >= TF-IDF+LR at 256 (macro-F1)", g - t, g >= t))
        if name in PAPER_ZERO_SHOT:
            metric, paper = PAPER_ZERO_SHOT[name]
            mine = 100 * c["generalist"][metric]
            out.append(
                _t(name, f"generalist zero-shot >= paper's zero-shot ({metric} {paper})", mine - paper, mine >= paper)
            )
        setfit = transfer.get(name, {}).get("setfit-256")
        if setfit:
            out.append(
                _t(
                    name,
                    "stretch: generalist zero-shot >= SetFit at 256",
                    g - setfit["macro_f1"],
                    g >= setfit["macro_f1"],
                )
            )
    held_names = [n for n in ("meld", "mastodon", "mosi3") if "generalist-256" in transfer.get(n, {})]
    if held_names:
        gain = statistics.mean(
            transfer[n]["generalist-256"]["macro_f1"] - transfer[n]["lora-256"]["macro_f1"] for n in held_names
        )
        out.append(
            _t(
                ",".join(held_names),
                "256 from the generalist >= today's default + 3 (mean macro-F1)",
                gain,
                gain >= 0.03,
            )
        )
    for name, per in transfer.items():
        if "generalist-256" not in per:
            continue
        for peer in ("setfit-256", "seq-cls-lora-256"):
            if peer in per:
                diff = per["generalist-256"]["macro_f1"] - per[peer]["macro_f1"]
                out.append(_t(name, f"256 from the generalist ahead of {peer}", diff, diff > 0))
    for name, c in full.items():
        for metric in ("accuracy", "macro_f1"):
            if "today_default" in c:
                diff = 100 * (c["from_generalist"][metric] - c["today_default"][metric])
                out.append(_t(name, f"full budget from the generalist vs today's default ({metric})", diff, diff >= 0))
        for metric, paper in PAPER_BEST[name].items():
            mine = 100 * c["from_generalist"][metric]
            out.append(
                _t(
                    name,
                    f"full budget from the generalist vs the paper's best {metric} {paper}",
                    mine - paper,
                    mine >= paper,
                )
            )
    if timing:
        out.append(_t("-", "emotune predict --labels, one text <= 10 s", timing["median"], timing["median"] <= 10))
    return out


def _t(corpus: str, target: str, value: float, met: bool) -> dict[str, Any]:
    return {"corpus": corpus, "target": target, "value": round(value, 4), "met": bool(met)}


if __name__ == "__main__":
    main()
