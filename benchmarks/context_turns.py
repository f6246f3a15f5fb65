"""Effect of dialogue context (``data.context_turns`` K) on a LoRA run, default backbone.

Same seed, same training examples, same steps and the same token budget for every K; only the
number of earlier turns in the prompt changes. Writes one JSON with every K's test metrics:

    python benchmarks/context_turns.py --data-dir ../shared/datasets/friends --turns 0,2,4 \
        --max-train-samples 2000
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
from pathlib import Path

import torch

from emotune.config import RunConfig
from emotune.pipeline import run

KEYS = ("n", "accuracy", "macro_f1", "weighted_f1", "ua", "train_seconds", "train_examples_per_second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/friends-lora.yaml")
    parser.add_argument("--data-dir", default="../shared/datasets/friends")
    parser.add_argument("--turns", default="0,2,4")
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--runs", default="runs/bench-context")
    parser.add_argument("--out", default="benchmarks/results/friends-context.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for k in (int(t) for t in args.turns.split(",")):
        cfg = RunConfig.from_yaml(args.config)
        cfg.data.data_dir, cfg.data.context_turns = args.data_dir, k
        cfg.data.max_train_samples = args.max_train_samples
        # The recipe friends-context.json was measured with (before auto class weights): context
        # is the only thing that varies here.
        cfg.train.class_weights = "none"
        cfg.output, cfg.overwrite = f"{args.runs}/k{k}", True
        metrics = run(cfg.validate())
        results[f"k{k}"] = {key: metrics.get(key) for key in KEYS} | {"context_turns": k}
        results["_meta"] = {
            "date": datetime.date.today().isoformat(),
            "command": "python " + " ".join(sys.argv),
            "config": args.config,
            "max_train_samples": args.max_train_samples,
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}",
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each K: survives a stop
        print(f"k={k}", json.dumps(results[f"k{k}"]), flush=True)


if __name__ == "__main__":
    main()
