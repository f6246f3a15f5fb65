"""Backbone load times: the one-time GGUF dequantise-and-cache, then loads from the cache.

    python benchmarks/load_times.py            # writes benchmarks/results/load-times.json

The first load runs in a fresh temporary cache so it measures the real conversion. For a
registered GGUF backbone it also times one parse of the GGUF's metadata by the ``gguf`` library
(``GGUFReader``), the step transformers repeats for the config, the weights and the tokenizer.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from emotune.bench.harness import machine


def timed_load(model: str) -> float:
    from emotune.models.backbones import load_backbone

    started = time.perf_counter()
    load_backbone(model)
    return time.perf_counter() - started


def timed_gguf_read(model: str) -> float | None:
    """Seconds for one ``gguf.GGUFReader`` over the backbone's GGUF file (None: not a GGUF backbone)."""
    import gguf

    from emotune.models.backbones import BACKBONES, cache_dir

    if model not in BACKBONES:
        return None
    path = BACKBONES[model].locate_gguf(cache_dir())
    started = time.perf_counter()
    gguf.GGUFReader(str(path))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--out", default="benchmarks/results/load-times.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EMOTUNE_CACHE"] = cache
        first = timed_load(args.model)
        cached = [timed_load(args.model) for _ in range(3)]
        read = timed_gguf_read(args.model)
    result = {
        "model": args.model,
        "first_load_seconds": round(first, 1),
        "cached_load_seconds": [round(c, 2) for c in cached],
        "gguf_metadata_read_seconds": None if read is None else round(read, 1),
        "date": datetime.date.today().isoformat(),
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "command": f"python benchmarks/load_times.py --model {args.model}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
