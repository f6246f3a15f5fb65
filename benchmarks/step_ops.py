"""Operators a training step and a prediction batch dispatch: emotune against the standard recipe.

    python benchmarks/step_ops.py        # writes benchmarks/results/step-ops.json

Every aten operator is counted as the dispatcher sees it (forward, backward and the optimizer
step; :class:`emotune.planning.measure.OperatorCount`). On a GPU each becomes one or more kernel
launches, and a step whose device work is small waits on those launches, so the count is the
host's share of a GPU step, measured here on the CPU where it is the same. The backbone is the
default's architecture (Gemma 3 270M) with random weights; every row of the batch fills the same
length, so both recipes see one shape.

The standard recipe is Hugging Face + PEFT LoRA with the full-vocabulary LM loss (what
``benchmarks/speed.py`` times); emotune is its Trainer's ``micro_step`` (label scoring).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emotune.bench.record import header
from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet
from emotune.models.precision import forward_context
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.planning.measure import OperatorCount
from emotune.training.trainer import Trainer
from synthetic import fill_text, preset_backbone

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
QV = ["q_proj", "v_proj"]  # PEFT's LoRA default for Gemma 3: the standard recipe's targets


def counted(fn: Callable[[], Any]) -> OperatorCount:
    """Runs ``fn`` once to warm up, then once under the counter."""
    fn()
    with OperatorCount() as ops:
        fn()
    return ops


def summary(ops: OperatorCount) -> dict[str, Any]:
    return {"operators": ops.total, "views": ops.views, "host_syncs": ops.host_syncs, "top": ops.top(12)}


def emotune_rows(folder: Path, targets: list[str], dtype: str, precision: str, batch: int, length: int) -> Any:
    cfg = RunConfig.from_dict(
        {
            "model": {"name": str(folder), "dtype": dtype},
            "method": {"name": "lora", "target_modules": targets},
            "runtime": {"precision": precision, "max_length": length, "device": "cpu"},
            "train": {"batch_size": batch},
        }
    ).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    examples = [Example(fill_text(length, i), i % 2) for i in range(batch)]
    trainer = Trainer(rec, examples, cfg.train)
    assert {len(r) for r in trainer.rows} == {length}
    rec.model.train()
    train = counted(lambda: trainer.micro_step(list(range(batch))))
    predict = counted(lambda: rec.probabilities(examples, batch))
    return {"train_step": summary(train), "predict_batch": summary(predict)}, rec


def standard_rows(folder: Path, rec: Recogniser, targets: list[str], autocast: bool, batch: int, length: int) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM", target_modules=targets)
    model = get_peft_model(model, config)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.tensor(rec.encode([Example(fill_text(length, i)) for i in range(batch)]))
    dtype = torch.bfloat16 if autocast else None
    label_ids = rec.head.flat_ids

    def step() -> None:
        model.train()
        with forward_context("cpu", dtype):
            loss = model(input_ids=ids, labels=ids).loss  # logits over the full 262k vocabulary
        loss.backward()
        optim.step()
        optim.zero_grad()

    @torch.no_grad()
    def predict() -> None:
        model.eval()
        with forward_context("cpu", dtype):
            logits = model(input_ids=ids).logits[:, -1]
        logits[:, label_ids].softmax(-1).cpu()

    return {"train_step": summary(counted(step)), "predict_batch": summary(counted(predict))}


def timed_training(folder: Path, compiled: bool, batch: int, length: int, batches: int) -> dict[str, Any]:
    """Training examples/s over ``batches`` batches of mixed lengths, after one untimed pass over
    the same batches (a compiled decoder compiles each bucket width there)."""
    import random
    import time

    from emotune.models.scoring import epoch_batches

    cfg = RunConfig.from_dict(
        {
            "model": {"name": str(folder), "dtype": "float32"},
            "runtime": {"precision": "fp32", "max_length": length, "device": "cpu", "compile": compiled},
            "train": {"batch_size": batch},
        }
    ).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    rnd = random.Random(0)
    examples = [Example(fill_text(rnd.randint(length // 4, length), i), i % 2) for i in range(batch * batches)]
    trainer = Trainer(rec, examples, cfg.train)
    order = epoch_batches([len(r) for r in trainer.rows], batch, 0)
    rec.model.train()
    started = time.perf_counter()
    for idx in order:
        trainer.micro_step(idx)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    for idx in order:
        trainer.micro_step(idx)
    seconds = time.perf_counter() - started
    return {
        "compiled": compiled,
        "first_pass_seconds": round(warm, 1),
        "train_examples_per_second": round(len(examples) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--time-batches", type=int, default=12, help="batches timed, eager against compiled")
    parser.add_argument("--out", default="benchmarks/results/step-ops.json")
    args = parser.parse_args()
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = preset_backbone(Path(tmp) / "gemma3-270m", "gemma3-270m")
        setups = {
            "emotune, all-linear LoRA (default), fp32": (["all-linear"], "float32", "fp32"),
            "emotune, all-linear LoRA, bf16 weights, no autocast": (["all-linear"], "bfloat16", "fp32"),
            "emotune, q/v LoRA, fp32": (QV, "float32", "fp32"),
            "emotune, all-linear LoRA, fp32 weights + bf16 autocast": (["all-linear"], "float32", "bf16"),
            "emotune, all-linear LoRA, bf16 weights": (["all-linear"], "bfloat16", "auto"),
        }
        rec = None
        for name, (targets, dtype, precision) in setups.items():
            rows[name], rec = emotune_rows(folder, targets, dtype, precision, args.batch, args.length)
            print(name, rows[name]["train_step"]["operators"], rows[name]["predict_batch"]["operators"])
        assert rec is not None
        for name, (targets, autocast) in {
            "standard recipe, q/v LoRA, fp32": (QV, False),
            "standard recipe, all-linear LoRA, fp32": ("all-linear", False),
            "standard recipe, q/v LoRA, fp32 weights + bf16 autocast": (QV, True),
            "standard recipe, all-linear LoRA, fp32 weights + bf16 autocast": ("all-linear", True),
        }.items():
            rows[name] = standard_rows(folder, rec, targets, autocast, args.batch, args.length)  # type: ignore[arg-type]
            print(name, rows[name]["train_step"]["operators"], rows[name]["predict_batch"]["operators"])
        timing = [timed_training(folder, c, 8, args.length, args.time_batches) for c in (False, True)]
        for t in timing:
            print(t)
    result = header(f"python benchmarks/step_ops.py --batch {args.batch} --length {args.length}") | {
        "torch": torch.__version__,
        "backbone": "gemma3-270m architecture, random weights",
        "batch": args.batch,
        "length": args.length,
        "rows": rows,
        "compile": {
            "rows": timing,
            "speedup": round(timing[1]["train_examples_per_second"] / timing[0]["train_examples_per_second"], 2),
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
