"""Where one training step's time goes on a GPU, and what each loop setting changes.

Speed does not depend on weight values, so the default backbone's architecture is built with
random weights from its ``config.json`` and tokenizer files: no 253 MB GGUF to carry to a GPU
machine, one short device call. LoRA r=8 on q/k/v/o as in ``speed.py``, SST-2 train sentences,
emotune's own Trainer. For each variant and batch size it times the first ``--batches``
length-bucketed batches of an epoch twice: **cold** (most batches bring a sequence length not
seen before, as early in training) and **warm** (the same batches again, as later epochs).

Variants: emotune as it is; cuDNN attention allowed again (what ran before
``recogniser.GPU_ATTENTION``); bf16 weights (``model.dtype: bfloat16``) instead of fp32 weights
under bf16 autocast; plain copies instead of pinned memory. ``--profile`` adds an operator
profile of warm steps (host vs device time, kernel launches).

    python benchmarks/gpu_step_probe.py --device cuda --profile \
        --out benchmarks/results/gpu-step-probe-<gpu>.json

``--tok-dir`` holds ``config.json``, ``tokenizer_config.json``, ``generation_config.json`` and
``tokenizer.json.xz`` (xz of the file in ``$EMOTUNE_CACHE/backbones/gemma3-270m``).
``benchmarks/results/gpu-step-probe-h200.log`` is the first version's output (2026-11-26).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch.nn.attention import SDPBackend

import emotune.models.recogniser as recogniser
from emotune.models.scoring import Batch, epoch_batches
from emotune.training.trainer import Trainer
from speed import emotune_recogniser, timed_steps  # this folder: run as `python benchmarks/gpu_step_probe.py`
from synthetic import backbone_from_config


def trainer(args: argparse.Namespace, dtype: str) -> Trainer:
    """emotune's Trainer over ``speed.py``'s recogniser, on the random backbone in ``dtype``."""
    rec, dataset, cfg = emotune_recogniser(args, 16, model={"name": str(args.model_dir), "dtype": dtype})
    rec.model.train()
    return Trainer(rec, dataset.split("train"), cfg.train)


def ms_per_step(tr: Trainer, batches: list[list[int]], device: str) -> float:
    return 1000 * timed_steps(tr, batches, torch.device(device)) / len(batches)


def cudnn_attention_allowed() -> Callable[[], None]:
    """Puts cuDNN back among the attention kernels; returns the undo."""
    before = recogniser.GPU_ATTENTION
    recogniser.GPU_ATTENTION = [SDPBackend.CUDNN_ATTENTION, *before]

    def undo() -> None:
        recogniser.GPU_ATTENTION = before

    return undo


def plain_copies() -> Callable[[], None]:
    """Moves batches with plain copies instead of pinned memory; returns the undo."""
    before = Batch.to
    Batch.to = lambda self, device: Batch(  # type: ignore[method-assign]
        self.input_ids.to(device), self.attention_mask.to(device), self.last_index.to(device)
    )

    def undo() -> None:
        Batch.to = before  # type: ignore[method-assign]

    return undo


VARIANTS: dict[str, tuple[str, Callable[[], Callable[[], None]] | None]] = {
    "emotune": ("float32", None),
    "cudnn attention allowed": ("float32", cudnn_attention_allowed),
    "bf16 weights": ("bfloat16", None),
    "plain copies": ("float32", plain_copies),
}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name, (dtype, patch) in VARIANTS.items():
        tr = trainer(args, dtype)
        undo = patch() if patch else None
        lengths = [len(r) for r in tr.rows]
        for bs in args.batch_sizes:
            batches = epoch_batches(lengths, bs, seed=0)[: args.batches]
            cold, warm = ms_per_step(tr, batches, args.device), ms_per_step(tr, batches, args.device)
            row = {"variant": name, "batch_size": bs, "cold_ms_per_step": cold, "warm_ms_per_step": warm}
            rows.append(
                row | {"cold_examples_per_second": bs * 1000 / cold, "warm_examples_per_second": bs * 1000 / warm}
            )
            print(f"{name:>24} bs {bs:>3}: cold {cold:7.1f} ms/step, warm {warm:7.1f} ms/step", flush=True)
        if undo:
            undo()
        del tr
    return rows


def profile_table(args: argparse.Namespace) -> str:
    """Operator profile of three warm batch-16 steps of emotune as it is."""
    from torch.profiler import ProfilerActivity, profile

    tr = trainer(args, "float32")
    batches = epoch_batches([len(r) for r in tr.rows], 16, seed=0)[:3]
    ms_per_step(tr, batches, args.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with profile(activities=activities) as prof:
        ms_per_step(tr, batches, args.device)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=50)
    print(table)
    return str(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--batches", type=int, default=20, help="batches timed per pass")
    parser.add_argument("--batch-sizes", default="16,64", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--tok-dir", type=Path, default=Path(".gpu/tok"))
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "emotune-random-gemma3")
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args()
    backbone_from_config(args.model_dir, args.tok_dir)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    result = {"date": date.today().isoformat(), "device": gpu, "torch": torch.__version__, "rows": measure(args)}
    if args.profile:
        result["profile"] = profile_table(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
