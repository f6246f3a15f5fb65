"""How closely a merged export reproduces its run, per precision.

    python benchmarks/merged_check.py --run runs/methods-256/sst2__lora__s42
        -> benchmarks/results/merged-export.json

Exports the run as a merged folder under runtime.precision auto (bf16 autocast where the hardware
has it) and fp32, predicts SST-2 test sentences with run and export, and records the largest
score difference and the label agreement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
from pathlib import Path

import yaml

from emotune.config import DataConfig
from emotune.data import load_data
from emotune.inference.export import export
from emotune.inference.predict import Predictor


def compare(run: Path, texts: list[str], precision: str, work: Path) -> dict[str, object]:
    copy = work / f"run-{precision}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "eval-*"))
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg.setdefault("runtime", {})["precision"] = precision
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    export(copy, "merged", work / f"merged-{precision}")
    ours = Predictor.load(copy).predict(texts)
    merged = Predictor.load(work / f"merged-{precision}").predict(texts)
    diff = max(abs(a.scores[k] - b.scores[k]) for a, b in zip(ours, merged, strict=True) for k in a.scores)
    same = sum(a.label == b.label for a, b in zip(ours, merged, strict=True))
    return {"max_abs_score_difference": diff, "same_label": same, "texts": len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True)
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/merged-export.json")
    args = parser.parse_args()
    test = load_data(DataConfig(dataset="sst2", data_dir=args.data_dir), splits={"test"}).split("test")
    texts = [e.text for e in test[: args.texts]]
    work = Path(tempfile.mkdtemp(prefix="emotune-merged-"))
    try:
        results = {p: compare(Path(args.run), texts, p, work) for p in ("auto", "fp32")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"date": datetime.date.today().isoformat(), "command": "python benchmarks/merged_check.py --run " + args.run}
    out |= {"run": args.run, "by_precision": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
