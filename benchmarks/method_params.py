"""Trainable parameters of every registered method on a backbone (default: gemma3-270m).

python benchmarks/method_params.py  ->  benchmarks/results/method-params.json
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from emotune.config import RunConfig
from emotune.data.schema import LabelSet
from emotune.methods import get_method, method_names
from emotune.models.recogniser import build_recogniser

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})


def count(model_name: str, method: str) -> dict[str, object]:
    """Trainable and total parameters with ``method``'s default options."""
    cfg = RunConfig.from_dict({"model": {"name": model_name}, "method": {"name": method}}).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    trainable = sum(p.numel() for p in rec.model.parameters() if p.requires_grad) if rec.method.trainable else 0
    total = sum(p.numel() for p in rec.model.parameters())
    targets = getattr(getattr(rec.model, "peft_config", {}).get("default"), "target_modules", None)
    return {
        "trainable": trainable,
        "total": total,
        "options": cfg.method.to_dict(),
        "mergeable": get_method(cfg.method).mergeable,
        "target_modules": sorted(targets) if isinstance(targets, set | list) else targets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--out", default="benchmarks/results/method-params.json")
    args = parser.parse_args()
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/method_params.py",
        "model": args.model,
        "methods": {name: count(args.model, name) for name in method_names()},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, row in result["methods"].items():  # type: ignore[union-attr]
        print(f"{name:<14} {row['trainable']:>10,}")


if __name__ == "__main__":
    main()
