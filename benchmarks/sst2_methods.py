"""Zero-shot vs LoRA vs P-Tuning v2 on SST-2 (full train split, one epoch), default backbone.

Runs the shipped configs one after another and writes one JSON with every run's metrics,
timings and the machine, so the README's SST-2 numbers can be reproduced:

    python benchmarks/sst2_methods.py --data-dir ../shared/datasets/sst
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
from pathlib import Path

import torch

from emotune.config import RunConfig
from emotune.pipeline import run

CONFIGS = {
    "zero-shot": "configs/sst2-zero-shot.yaml",
    "lora": "configs/sst2-lora.yaml",
    "ptuning-v2": "configs/sst2-ptuning-v2.yaml",
}
KEYS = (
    "n",
    "accuracy",
    "macro_f1",
    "ua",
    "train_examples_seen",
    "train_seconds",
    "train_examples_per_second",
    "eval_examples_per_second",
    "best_dev_macro_f1",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--methods", default=",".join(CONFIGS))
    parser.add_argument("--runs", default="runs/bench-sst2")
    parser.add_argument("--out", default="benchmarks/results/sst2-methods.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for method in args.methods.split(","):
        cfg = RunConfig.from_yaml(CONFIGS[method])
        cfg.data.data_dir, cfg.output, cfg.overwrite = args.data_dir, f"{args.runs}/{method}", True
        metrics = run(cfg.validate())
        results[method] = {k: metrics.get(k) for k in KEYS} | {"config": CONFIGS[method]}
        results["_meta"] = {
            "date": datetime.date.today().isoformat(),
            "command": "python benchmarks/sst2_methods.py --data-dir " + args.data_dir,
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}",
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each method: survives a stop
        print(method, json.dumps(results[method]))


if __name__ == "__main__":
    main()
