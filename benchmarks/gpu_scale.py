"""emotune at the paper's scale on one GPU: a 7-8B backbone trained through emotune's own code.

Speed and memory do not depend on weight values, so the backbone is the architecture of a shipped
plan preset (``qwen2.5-7b``, ``llama-3-8b``) with random bf16 weights, built on the GPU once and
saved as a model folder that every row loads through emotune's loader (``load_backbone``: bf16,
or 4-bit nf4 with bitsandbytes as a QLoRA user gets it). The tokenizer is a word-level one over
SST-2's vocabulary (its ids fit any of these vocabularies; the real tokenizers cannot be fetched).
Each example is real SST-2 sentences joined until the prompt fills ``--length`` tokens, so every
batch is ``--batch x --length`` (the paper's 16 x 128).

Rows run config -> ``build_recogniser`` -> ``Trainer.micro_step`` (forward, backward, clipping,
fused AdamW), each in its own process on a GPU (a fresh peak-memory counter, an out-of-memory
error or a hang costs that row only), with the first step and a few warm-up steps timed apart.
Per row: peak allocated memory against ``emotune plan`` for the same settings, examples/s,
tokens/s, model TFLOP/s and their share of the bf16 matmul peak measured in the same run; the
``standard`` rows are Hugging Face + PEFT LoRA with the full-vocabulary LM loss on the same
model, batch and precision (``standard_recipe.py``).

    python benchmarks/gpu_scale.py --device cuda --out $OUT/gpu-scale.json      # on a lent GPU
    python benchmarks/gpu_scale.py --device cpu --tiny                          # dry run, seconds

``--tiny`` builds the same architectures at a few layers of width 64: the dry run that keeps this
script from rotting between GPU loans (``tests/test_gpu_scale.py``). Quality at 7B is not
measured here: no 7B weights can be fetched.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from emotune.bench.record import header, versions
from emotune.bench.timing import matmul_peak, reset_peak, sync
from emotune.data.schema import Example
from synthetic import (  # this folder: run as `python benchmarks/gpu_scale.py`
    LABELS,
    backbone_name,
    build_backbone,
    filled_examples,
    sst_sentences,
    work_root,
)

GIB = 2**30


@dataclass(frozen=True)
class Row:
    """One measured setting. ``standard`` rows time the standard recipe instead of emotune."""

    name: str
    method: dict[str, Any] = field(default_factory=lambda: {"name": "lora", "rank": 8})
    quantization: str = "none"
    checkpointing: bool | None = False
    compile: bool = False
    batch: int | None = None  # None: --batch; 0: train.batch_size auto
    standard: bool = False
    #: Tokens each row gains in every linear layer (prompt tuning) or in attention only (a prefix).
    virtual_tokens: int = 0
    prefix_keys: int = 0


ROWS = {
    r.name: r
    for r in (
        Row("lora"),
        Row("standard", standard=True),
        Row("lora-ckpt", checkpointing=True),
        Row("ptuning-v2-32", {"name": "ptuning-v2", "prompt_length": 32}, checkpointing=True, prefix_keys=32),
        Row("ptuning-v2-128", {"name": "ptuning-v2", "prompt_length": 128}, checkpointing=True, prefix_keys=128),
        Row("prompt-tuning", {"name": "prompt-tuning", "prompt_length": 32}, virtual_tokens=32),
        Row("qlora-lora", quantization="4bit", checkpointing=None),
        Row(
            "qlora-ptuning-v2",
            {"name": "ptuning-v2", "prompt_length": 32},
            quantization="4bit",
            checkpointing=None,
            prefix_keys=32,
        ),
        Row("batch-auto", batch=0),
        Row("standard-qlora", quantization="4bit", checkpointing=True, standard=True),
        Row("lora-compile", compile=True),
    )
}
#: Not in a CPU dry run unless asked for: compiling takes minutes on a 2-core CPU.
GPU_ONLY = ("lora-compile",)


# ---------------------------------------------------------------- one row


def model_flops(folder: Path, row: Row, batch: int, length: int, trainable: int) -> dict[str, float]:
    """Model FLOPs of one training step (recomputation under checkpointing not counted, as MFU
    counts them): per token, 2 x the decoder's linear weights forward and as much again for the
    activation gradients through frozen weights; attention's two products forward (4 x keys x
    heads x head_dim a layer) and twice that backward; LoRA's own products (6 x its parameters);
    the standard recipe adds the output projection over the whole vocabulary, forward and backward."""
    from emotune.planning.backbone import meta_model, model_config

    config = model_config(str(folder))
    meta = meta_model(config, torch.bfloat16)
    head = meta.get_output_embeddings()
    linear = sum(m.weight.numel() for m in meta.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    heads = config.num_attention_heads
    attn_dim = heads * (getattr(config, "head_dim", None) or config.hidden_size // heads)
    tokens = batch * (length + row.virtual_tokens)
    keys = length + row.virtual_tokens + row.prefix_keys
    flops = 4 * linear * tokens + 12 * config.num_hidden_layers * attn_dim * keys * tokens
    if row.method["name"] == "lora" or row.standard:
        flops += 6 * trainable * tokens
    if row.standard:
        flops += 4 * head.weight.numel() * tokens
    return {"model_flops_per_step": float(flops), "decoder_linear_params": linear, "tokens_per_step": tokens}


def emotune_trainer(row: Row, folder: Path, args: argparse.Namespace, examples: list[Example]) -> Any:
    from emotune.config import RunConfig
    from emotune.models.recogniser import build_recogniser
    from emotune.training.trainer import Trainer

    batch = args.batch if row.batch is None else row.batch
    cfg = RunConfig.from_dict(
        {
            "model": {"name": str(folder), "dtype": "auto", "quantization": row.quantization},
            "method": row.method,
            "train": {"batch_size": batch, "gradient_checkpointing": row.checkpointing, "log_every": 0},
            "runtime": {"device": args.device, "max_length": args.length, "compile": row.compile},
        }
    ).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    started = time.perf_counter()
    trainer = Trainer(rec, examples, cfg.train)
    trainer.search_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    short = [len(r) for r in trainer.rows if len(r) != args.length]
    if short:
        raise SystemExit(f"{len(short)} rows are not {args.length} tokens long (e.g. {short[0]})")
    rec.model.train()
    return trainer


def standard_trainer(row: Row, folder: Path, args: argparse.Namespace, examples: list[Example]) -> Any:
    """The standard recipe over the same prompts, each with its label word after it."""
    from emotune.distributed import resolve_device
    from emotune.models.precision import autocast_dtype, resolve_format
    from emotune.models.prompts import PromptBuilder
    from standard_recipe import StandardRecipe  # this folder: run as `python benchmarks/gpu_scale.py`

    device = resolve_device(args.device)
    fmt = resolve_format("auto", row.quantization, device)
    autocast = autocast_dtype("auto", device, None if fmt.quantized else getattr(torch, fmt.dtype))
    recipe = StandardRecipe.build(
        str(folder), fmt, device, checkpointing=bool(row.checkpointing), autocast=autocast, max_length=args.length
    )
    prompt = PromptBuilder(LABELS, "en", "sentiment")
    rows = [prompt.encode(recipe.tokenizer, e, args.length) for e in examples]  # bos + 127, then the label word
    recipe.texts = [  # type: ignore[attr-defined]
        recipe.tokenizer.decode(r, skip_special_tokens=True) + " " + LABELS.names[int(e.label)]  # type: ignore[arg-type]
        for r, e in zip(rows, examples, strict=True)
    ]
    recipe.weights = fmt  # type: ignore[attr-defined]
    return recipe


def run_row(row: Row, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Builds the row's trainer, times its steps and sets its peak memory beside the plan."""
    from emotune.distributed import resolve_device

    device = resolve_device(args.device)
    examples = filled_examples(sst_sentences(args.data_dir), 512, args.length)
    started = time.perf_counter()
    trainer = (standard_trainer if row.standard else emotune_trainer)(row, folder, args, examples)
    load_s = time.perf_counter() - started
    batch = args.batch if row.standard or row.batch is None else trainer.settings.batch_size
    step = _stepper(trainer, row, batch)
    reset_peak(device)
    started = time.perf_counter()
    step(0)
    sync(device)
    first_s = time.perf_counter() - started
    for i in range(1, args.warmup):
        step(i)
    sync(device)
    started = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    sync(device)
    seconds = (time.perf_counter() - started) / args.steps
    result = {
        "load_and_build_seconds": round(load_s, 2),
        "trainer_setup_seconds": round(getattr(trainer, "search_seconds", 0.0), 2),
        "first_step_seconds": round(first_s, 3),
        "step_seconds": seconds,
        "batch": batch,
        "length": args.length,
        "examples_per_second": batch / seconds,
        "tokens_per_second": batch * args.length / seconds,
    }
    return result | _memory(trainer, row, folder, batch, args, device, step) | _flops(row, folder, batch, args, trainer)


def _stepper(trainer: Any, row: Row, batch: int) -> Any:
    n = len(trainer.texts) if row.standard else len(trainer.rows)

    def step(i: int) -> None:
        idx = [(i * batch + j) % n for j in range(batch)]
        if row.standard:
            trainer.step([trainer.texts[k] for k in idx])
        else:
            trainer.micro_step(idx)

    return step


def _memory(
    trainer: Any, row: Row, folder: Path, batch: int, args: argparse.Namespace, device: torch.device, step: Any
) -> dict[str, Any]:
    """Peak allocated memory of the steps (on a CPU: live tensors during one more step) and, for
    emotune's rows, the plan of the same run."""
    if device.type == "cuda":
        peak, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
    else:
        from emotune.planning.measure import PeakTensorMemory

        model = trainer.model if row.standard else trainer.rec.model
        with PeakTensorMemory([*model.parameters(), *model.buffers()]) as mem:
            step(0)
        peak, reserved = mem.peak, None
    out: dict[str, Any] = {"peak_allocated_bytes": peak, "peak_reserved_bytes": reserved}
    if row.standard:
        return out | {"weights": trainer.weights.describe(), "checkpointing": bool(row.checkpointing)}
    from emotune.planning.estimate import PlanRequest, estimate

    rec = trainer.rec
    request = PlanRequest(str(folder), rec.method.options, rec.weights.dtype, row.quantization, batch, args.length)
    plan = estimate(dataclasses.replace(request, gradient_checkpointing=trainer.checkpointing))
    return out | {
        "weights": rec.weights.describe(),
        "checkpointing": trainer.checkpointing,
        "plan_bytes": plan.total,
        "plan_over_measured": round(plan.total / peak, 3),
        "plan_parts": plan.to_dict()["bytes"],
        "trainable_parameters": plan.trainable,
    }


def _flops(row: Row, folder: Path, batch: int, args: argparse.Namespace, trainer: Any) -> dict[str, Any]:
    model = trainer.model if row.standard else trainer.rec.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model_flops(folder, row, batch, args.length, trainable)


# ---------------------------------------------------------------- the run


def gpu_identity(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {"device": "cpu"}
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        driver = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        driver = None
    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "memory_gib": round(props.total_memory / GIB, 1), "driver": driver}


def isolated(row: Row, model: str, folder: Path, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    """``run_row`` in a child process of its own, bounded by ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        command = [sys.executable, __file__, "--one", row.name, "--folder", str(folder), "--row-out", str(out)]
        command += _shared(args)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if out.is_file():
            return json.loads(out.read_text())
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _shared(args: argparse.Namespace) -> list[str]:
    """The child's flags: the settings a row reads."""
    keys = ("device", "data_dir", "batch", "length", "warmup", "steps")
    return [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys] + (["--tiny"] if args.tiny else [])


def in_process(row: Row, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return run_row(row, folder, args)
    except (Exception, SystemExit) as err:  # a row that breaks is a result, not the end of the run
        return {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"}


def measure_rows(args: argparse.Namespace, result: dict[str, Any], out: Path, deadline: float) -> None:
    device = torch.device(args.device)
    for model in args.models.split(","):
        folder = work_root(args) / backbone_name(model, args)
        result["backbones"][model] = build_backbone(model, folder, args)
        for name in args.rows.split(",") if args.rows else default_rows(device):
            left = deadline - time.perf_counter()
            if left < args.min_row_seconds:
                row_result: dict[str, Any] = {"skipped": f"{left:.0f} s of the run's budget left"}
            elif args.isolate:
                row_result = isolated(ROWS[name], model, folder, args, min(args.row_timeout, left))
            else:
                row_result = in_process(ROWS[name], folder, args)
            result["rows"].append({"model": model, "row": name, **asdict(ROWS[name])} | row_result)
            print(json.dumps(summary_line(result["rows"][-1])), flush=True)
            write(result, out)


def default_rows(device: torch.device) -> list[str]:
    return [n for n in ROWS if device.type == "cuda" or n not in GPU_ONLY]


def summary_line(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("model", "row", "examples_per_second", "tokens_per_second", "mfu", "peak_allocated_bytes")
    return {k: r[k] for k in (*keys, "plan_over_measured", "error", "skipped") if k in r}


def derive(result: dict[str, Any]) -> dict[str, Any]:
    """MFU per row, each emotune row beside its standard recipe, and the issue's targets."""
    peak = result["matmul_peak_tflops_bf16"] * 1e12
    rows = [r for r in result["rows"] if "step_seconds" in r]
    for r in rows:
        r["achieved_tflops"] = r["model_flops_per_step"] / r["step_seconds"] / 1e12
        r["mfu"] = r["achieved_tflops"] * 1e12 / peak
        r["peak_allocated_gib"] = round(r["peak_allocated_bytes"] / GIB, 2)
    by = {(r["model"], r["row"]): r for r in rows}
    for r in rows:
        std = by.get((r["model"], "standard-qlora" if r["quantization"] != "none" else "standard"))
        if not r["standard"] and std and r["batch"] == std["batch"]:
            r["tokens_per_second_vs_standard"] = r["tokens_per_second"] / std["tokens_per_second"]
    result["targets"] = targets(by, rows)
    return result


def targets(by: dict[tuple[str, str], dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, read off the rows (None where the row did not run)."""
    model = next((m for m, _ in by), None)
    lora, qlora = by.get((model, "lora")), by.get((model, "qlora-lora"))
    planned = [r for r in rows if "plan_over_measured" in r]
    return {
        "every_row_ran": all("step_seconds" in r for r in rows) and bool(rows),
        "plan_within_15_percent": {r["row"]: abs(r["plan_over_measured"] - 1) <= 0.15 for r in planned},
        "lora_tokens_per_second_vs_standard_at_least_1.1": lora and lora.get("tokens_per_second_vs_standard", 0) >= 1.1,
        "lora_mfu_at_least_35_percent": lora and lora["mfu"] >= 0.35,
        "qlora_peak_under_24_gib": qlora and qlora["peak_allocated_bytes"] < 24 * GIB,
    }


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(derive(result), indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--tiny", action="store_true", help="narrow 2-layer versions of the same architectures")
    parser.add_argument("--models", default="qwen2.5-7b", help="plan presets, comma-separated (e.g. ,llama-3-8b)")
    parser.add_argument("--rows", help=f"comma-separated, from {list(ROWS)} (default: all; no compile on a CPU)")
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing, the first timed apart")
    parser.add_argument("--steps", type=int, default=8, help="steps timed")
    parser.add_argument("--budget", type=float, default=1e9, help="seconds for the whole run; later rows are skipped")
    parser.add_argument("--row-timeout", type=float, default=240)
    parser.add_argument("--min-row-seconds", type=float, default=25, help="no row starts with less left")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None, help="default: on a GPU")
    parser.add_argument("--work-dir", help="where the random backbones are saved (default /dev/shm or temp)")
    parser.add_argument("--prepare-only", action="store_true", help="build and save the backbones, measure nothing")
    parser.add_argument("--out", help="default: benchmarks/results/gpu-scale.json (--tiny: the temp folder)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--row-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.isolate is None:
        args.isolate = args.device == "cuda"
    if args.out is None:  # a dry run never overwrites the measured results
        args.out = (
            Path(tempfile.gettempdir()) / "gpu-scale-tiny.json" if args.tiny else "benchmarks/results/gpu-scale.json"
        )
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:  # a child of `isolated`
        Path(args.row_out).write_text(json.dumps(run_row(ROWS[args.one], Path(args.folder), args)))
        return
    if args.prepare_only:  # e.g. in the background while the GPU tests run
        for model in args.models.split(","):
            print(json.dumps(build_backbone(model, work_root(args) / backbone_name(model, args), args)), flush=True)
        return
    deadline = time.perf_counter() + args.budget
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    result: dict[str, Any] = {
        **header("python benchmarks/gpu_scale.py " + " ".join(sys.argv[1:] if argv is None else argv)),
        **gpu_identity(device),
        "versions": versions("torch", "transformers", "peft", "accelerate", "bitsandbytes"),
        "matmul_peak_tflops_bf16": matmul_peak(torch.bfloat16, device, 8192 if on_gpu else 256, reps=10) / 1e12,
        "weights": "random (speed and memory do not depend on weight values); quality at this scale is not measured",
        "backbones": {},
        "rows": [],
    }
    if device.type == "cuda":
        torch.cuda.empty_cache()
    measure_rows(args, result, Path(args.out), deadline)


if __name__ == "__main__":
    main()
