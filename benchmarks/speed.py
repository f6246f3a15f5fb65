"""emotune vs the standard recipe, and both against the machine's own matmul peak; one process.

Same backbone (default gemma3-270m), same SST-2 train sentences, same batch size, same machine:

- standard recipe: PEFT LoRA r=8, causal-LM loss over the full vocabulary on "prompt + label word",
  every batch padded to a fixed 64 tokens, AdamW; prediction by greedy generation of the label
  word, then parsing it (the way peers classify with a generative LLM);
- emotune: its own Trainer step (label-restricted scoring, length-bucketed dynamic padding) and
  its Recogniser.probabilities for prediction;
- the limit: achieved FLOP/s of a large fp32 and bf16 matmul, measured in this run.

    python benchmarks/speed.py --data-dir ../shared/datasets/sst            # CPU -> speed.json, speed.md
    python benchmarks/speed.py --device cuda --batch-sizes 16,64,256 \
        --paper-matrix benchmarks/paper-full.yaml                             # GPU -> speed-gpu.json, .md

MFU is measured against the matmul peak of the precision the forward passes actually ran in
(bf16 under ``runtime.precision: auto`` on bf16-capable CPUs and GPUs, else fp32). With
``--paper-matrix`` the whole matrix is run (resumable, into ``--paper-out``) and its wall time
recorded as ``paper_matrix_minutes``. ``--rederive FILE`` recomputes the derived fields of a
saved result (ratios, MFU) without measuring again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emotune.config import RunConfig
from emotune.data import load_data, subsample
from emotune.methods.base import base_model_of
from emotune.models.backbones import load_backbone
from emotune.models.precision import autocast_dtype
from emotune.models.recogniser import build_recogniser
from emotune.models.scoring import epoch_batches
from emotune.training.trainer import Trainer

SST2_TRAIN = 6920
QKVO = "q_proj,k_proj,v_proj,o_proj"


def rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def sync(device: torch.device) -> None:
    """Waits for queued GPU work, so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_steps(trainer: Trainer, batches: list[list[int]], device: torch.device) -> float:
    """Seconds for one training micro-step per batch, queued GPU work included."""
    sync(device)
    start = time.perf_counter()
    for idx in batches:
        trainer.micro_step(idx)
    sync(device)
    return time.perf_counter() - start


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Achieved FLOP/s of an n x n x n matmul (best of ``reps``)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def param_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(decoder parameters without embeddings, output-projection parameters)."""
    base = base_model_of(model)
    head = base.get_output_embeddings().weight.numel()
    total = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    return total - head, head  # tied embeddings: the input lookup is free, the output projection is not


def train_flops(decoder: int, head: int, tokens: float, with_head: bool) -> float:
    """Forward 2*N*tokens, plus a backward through frozen weights (activation gradients only) of the same."""
    per_token = 2 * decoder + (2 * head if with_head else 0)
    return 2 * per_token * tokens


def emotune_recogniser(
    args: argparse.Namespace, batch_size: int, model: dict[str, Any] | None = None
) -> tuple[Any, Any, RunConfig]:
    """The recogniser timed here (default backbone unless ``model`` says otherwise), its data and config."""
    # fp32 weights unless --dtype says otherwise: the committed figures were measured that way.
    model = {"dtype": getattr(args, "dtype", "float32")} | (model or {})
    cfg = RunConfig.from_dict(
        {
            "model": model,
            "method": {"name": "lora", "rank": 8, "target_modules": lora_targets(args)},
            "data": {"dataset": "sst2", "data_dir": args.data_dir},
            "train": {"batch_size": batch_size, "lr": 2e-4, "checkpoint_every": 0, "log_every": 0},
            "runtime": {"device": args.device, "compile": bool(getattr(args, "compile", False))},
            "output": tempfile.mkdtemp(prefix="emotune-speed-"),
        }
    ).validate()
    dataset = load_data(cfg.data, cfg.train.seed)
    return build_recogniser(cfg, dataset.labels, dataset.language, dataset.task), dataset, cfg


def lora_targets(args: argparse.Namespace) -> list[str]:
    """The LoRA targets timed: by default the attention projections the earlier releases adapted,
    so the committed figures compare; ``--lora-targets all-linear`` times today's default."""
    return str(getattr(args, "lora_targets", QKVO)).split(",")


def emotune_side(args: argparse.Namespace, batch_size: int) -> dict[str, Any]:
    rec, dataset, cfg = emotune_recogniser(args, batch_size)
    device = rec.device
    test = subsample(dataset.split("test"), args.predict_examples, 0)
    rec.probabilities(test[:16], args.predict_batch)  # warm-up
    sync(device)
    start = time.perf_counter()
    rec.probabilities(test, args.predict_batch)
    sync(device)
    predict_s = time.perf_counter() - start
    predict_tokens = sum(len(r) for r in rec.encode(test))
    predict_rss = rss_mb()

    trainer = Trainer(rec, dataset.split("train"), cfg.train)
    lengths = [len(r) for r in trainer.rows]
    batches = epoch_batches(lengths, batch_size, seed=0)[: args.train_batches + 1]
    rec.model.train()
    started = time.perf_counter()
    trainer.micro_step(batches[0])  # warm-up, timed apart
    sync(device)
    warmup_s = time.perf_counter() - started
    train_s = timed_steps(trainer, batches[1:], device)
    # The same batches again: on a GPU the first pass pays for every sequence length seen for the
    # first time (kernel plans, allocator growth), which the standard recipe's one padded shape
    # pays once; the repeat is the steady state of later epochs. On a CPU the two agree.
    repeat_s = timed_steps(trainer, batches[1:], device)
    n = sum(len(b) for b in batches[1:])
    tokens = sum(lengths[i] for b in batches[1:] for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches[1:])
    decoder, head = param_counts(rec.model)
    dtype = trainer.rec.autocast_dtype()
    return {
        "batch_size": batch_size,
        "precision": "bf16 autocast" if dtype == torch.bfloat16 else "fp32",
        "train_examples": n,
        "train_seconds": train_s,
        "train_examples_per_second": n / train_s,
        "train_examples_per_second_repeat": n / repeat_s,
        "warmup_step_seconds": warmup_s,
        "train_tokens_per_second": tokens / train_s,
        "train_padded_tokens_per_example": padded / n,
        "train_flops_per_example": train_flops(decoder, head, padded / n, with_head=False),
        "predict_examples": len(test),
        "predict_batch": args.predict_batch,
        "predict_examples_per_second": len(test) / predict_s,
        "predict_tokens_per_second": predict_tokens / predict_s,
        "predict_flops_per_example": 2 * decoder * predict_tokens / len(test),
        "train_peak_rss_mb": rss_mb(),
        "predict_peak_rss_mb": predict_rss,
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() // 2**20 if device.type == "cuda" else None,
        "decoder_params": decoder,
        "output_projection_params": head,
    }


def standard_side(args: argparse.Namespace, prompts: list[str], answers: list[str], words: list[str]) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model, tok = load_backbone("gemma3-270m")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM"))
    model.to(device)  # type: ignore[arg-type]
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    tok.padding_side = "right"
    full = [p + a for p, a in zip(prompts, answers, strict=True)]
    model.train()

    def step(batch: list[str]) -> None:
        enc = tok(batch, padding="max_length", max_length=64, truncation=True, return_tensors="pt").to(device)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        loss = model(**enc, labels=labels).loss  # logits over the full 262k vocabulary
        loss.backward()
        optim.step()
        optim.zero_grad()

    bs = args.standard_batch_size
    started = time.perf_counter()
    step(full[:bs])  # warm-up, timed apart
    sync(device)
    warmup_s = time.perf_counter() - started
    start = time.perf_counter()
    steps = args.standard_train_batches
    for i in range(steps):  # the sentences cycle when a batch is larger than what is left
        step([full[j % len(full)] for j in range((i + 1) * bs, (i + 2) * bs)])
    sync(device)
    train_s = time.perf_counter() - start
    model.eval()
    tok.padding_side = "left"
    gen_prompts = prompts[: args.generate_examples]
    valid = 0
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(gen_prompts), args.predict_batch):
            enc = tok(gen_prompts[i : i + args.predict_batch], padding=True, return_tensors="pt").to(device)
            out = model.generate(**enc, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
            for text in tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True):
                valid += any(text.strip().lower().startswith(w) for w in words)
    sync(device)
    gen_s = time.perf_counter() - start
    return {
        "batch_size": bs,
        "warmup_step_seconds": warmup_s,
        "train_examples": steps * bs,
        "train_examples_per_second": steps * bs / train_s,
        "train_tokens_per_second": steps * bs * 64 / train_s,
        "predict_examples": len(gen_prompts),
        "predict_examples_per_second": len(gen_prompts) / gen_s,
        "generation_valid_rate": valid / len(gen_prompts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--batch-sizes", default="8", help="emotune training batch sizes to time (the first is compared)"
    )
    parser.add_argument("--train-batches", type=int, default=40, help="emotune batches timed (random, whole split)")
    parser.add_argument("--standard-train-batches", type=int, default=4)
    parser.add_argument("--predict-examples", type=int, default=256)
    parser.add_argument("--generate-examples", type=int, default=32)
    parser.add_argument("--predict-batch", type=int, default=None, help="default: 16 on a CPU, 256 on a GPU")
    parser.add_argument("--paper-matrix", help="also run this matrix (e.g. benchmarks/paper-full.yaml) and time it")
    parser.add_argument("--paper-out", default="benchmarks/results/paper-full")
    parser.add_argument("--rederive", help="recompute the derived fields of this saved result and exit")
    parser.add_argument(
        "--lora-targets",
        default=QKVO,
        help="emotune's LoRA targets, comma-separated (all-linear: the default of train)",
    )
    parser.add_argument(
        "--standard-batch-sizes", help="the standard recipe's batch sizes (default: the first of --batch-sizes)"
    )
    parser.add_argument("--dtype", default="float32", help="emotune's model.dtype (auto: bf16 weights on a GPU)")
    parser.add_argument("--compile", action="store_true", help="emotune with runtime.compile")
    parser.add_argument("--out", help="default: benchmarks/results/speed.json (cpu) or speed-gpu.json (cuda)")
    args = parser.parse_args()
    if args.rederive:
        result = derive(json.loads(Path(args.rederive).read_text()))
        return write(result, Path(args.rederive))
    device = torch.device(args.device)
    args.predict_batch = args.predict_batch or (256 if device.type == "cuda" else 16)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.standard_batch_size = sizes[0]
    # bf16 gets a smaller matrix on a CPU: without native bf16 a 2048^3 product takes minutes.
    peak32 = matmul_peak(torch.float32, device)
    peak16 = matmul_peak(torch.bfloat16, device, *((4096, 10) if device.type == "cuda" else (512, 2)))
    runs = [emotune_side(args, b) for b in sizes]
    standard_sizes = [int(b) for b in (args.standard_batch_sizes or str(sizes[0])).split(",")]
    by_size = {}
    for size in standard_sizes:  # the same batch sizes for both recipes: a fair GPU row
        args.standard_batch_size = size
        by_size[str(size)] = standard_side(args, *standard_inputs(args))
    standard = by_size[str(standard_sizes[0])]
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}",
        "backbone": f"gemma3-270m ({args.dtype} weights{', compiled' if args.compile else ''})",
        "lora_targets": args.lora_targets,
        "matmul_peak_gflops_fp32": peak32 / 1e9,
        "matmul_peak_gflops_bf16": peak16 / 1e9,
        "emotune": runs[0],
        "emotune_by_batch_size": {str(r["batch_size"]): r["train_examples_per_second"] for r in runs},
        "emotune_by_batch_size_repeat": {str(r["batch_size"]): r["train_examples_per_second_repeat"] for r in runs},
        "standard": standard,
        "standard_by_batch_size": {k: v["train_examples_per_second"] for k, v in by_size.items()},
        "paper_matrix_minutes": time_matrix(args) if args.paper_matrix else None,
    }
    write(derive(result), Path(args.out or f"benchmarks/results/speed{'-gpu' if device.type == 'cuda' else ''}.json"))


def standard_inputs(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    """Prompts, answers and label words of the standard recipe (the same SST-2 train sentences)."""
    from emotune.models.prompts import PromptBuilder

    dataset = load_data(RunConfig.from_dict({"data": {"dataset": "sst2", "data_dir": args.data_dir}}).data)
    head, tail = PromptBuilder(dataset.labels, "en", "sentiment").render()
    words = [w[0] for w in dataset.labels.words("en")]
    train_ex = dataset.split("train")
    prompts = [head + e.text + tail for e in train_ex[:400]]
    answers = [" " + words[int(e.label)] for e in train_ex[:400]]  # type: ignore[arg-type]
    return prompts, answers, words


def time_matrix(args: argparse.Namespace) -> float:
    """Runs a benchmark matrix on the device (finished cells are skipped) and returns its minutes."""
    from emotune.bench.harness import load_matrix, run_matrix

    matrix = load_matrix(args.paper_matrix)
    for cell in matrix.cells:
        cell.config.setdefault("runtime", {})["device"] = args.device
    start = time.perf_counter()
    run_matrix(matrix, Path(args.paper_out), Path("runs/paper-full"))
    return (time.perf_counter() - start) / 60


def derive(r: dict[str, Any]) -> dict[str, Any]:
    """Ratios, MFU against the peak of the precision used, and the projected epoch time."""
    ours, standard = r["emotune"], r["standard"]
    bf16 = ours.get("precision", "bf16 autocast" if autocast_dtype("auto", torch.device("cpu")) else "fp32")
    peak = r["matmul_peak_gflops_bf16"] if bf16.startswith("bf16") else r["matmul_peak_gflops_fp32"]
    achieved = ours["train_examples_per_second"] * ours["train_flops_per_example"] / 1e9
    return r | {
        "train_examples_per_second": ours["train_examples_per_second"],
        "predict_examples_per_second": ours["predict_examples_per_second"],
        "train_speedup_vs_standard": ours["train_examples_per_second"] / standard["train_examples_per_second"],
        "predict_speedup_vs_generation": ours["predict_examples_per_second"] / standard["predict_examples_per_second"],
        "train_precision": bf16,
        "train_achieved_gflops": achieved,
        "train_mfu": achieved / peak,
        "train_mfu_note": f"achieved GFLOP/s over the measured {bf16.split()[0]} matmul peak ({peak:.0f} GFLOP/s)",
        "sst2_lora_epoch_minutes": SST2_TRAIN / ours["train_examples_per_second"] / 60,
        "sst2_lora_epoch_minutes_note": f"projected from {ours['train_examples']} timed examples "
        "in random length-bucketed batches of the whole train split",
        "train_peak_rss_mb": ours["train_peak_rss_mb"],
        "predict_peak_rss_mb": ours["predict_peak_rss_mb"],
        "flops_note": "per example: 2*N*tokens forward + the same again for activation gradients through "
        "frozen weights (LoRA's own FLOPs are negligible); emotune never runs the output projection",
    }


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def repeat_row(r: dict[str, Any]) -> list[str]:
    """The training row for the same batches timed again (results from before it was measured lack it)."""
    repeat = r["emotune"].get("train_examples_per_second_repeat")
    if repeat is None:
        return []
    ratio = repeat / r["standard"]["train_examples_per_second"]
    return [f"| training examples/s, the same batches again | | {repeat:.2f} | {ratio:.1f}x |"]


def markdown(r: dict[str, Any]) -> str:
    e, s = r["emotune"], r["standard"]
    rows = [
        "| | standard recipe | emotune | ratio |",
        "|---|---|---|---|",
        f"| training examples/s | {s['train_examples_per_second']:.2f} | {e['train_examples_per_second']:.2f} | "
        f"{r['train_speedup_vs_standard']:.1f}x |",
        *repeat_row(r),
        f"| training tokens/s | {s['train_tokens_per_second']:.0f} (padded to 64) | "
        f"{e['train_tokens_per_second']:.0f} (real) | |",
        f"| prediction examples/s | {s['predict_examples_per_second']:.2f} (generation) | "
        f"{e['predict_examples_per_second']:.2f} | {r['predict_speedup_vs_generation']:.1f}x |",
        f"| training GFLOP/s ({r['train_precision']}), MFU | | "
        f"{r['train_achieved_gflops']:.0f} ({100 * r['train_mfu']:.0f}% of the {r['train_precision'].split()[0]} "
        "matmul peak) | |",
        f"| SST-2 LoRA epoch (6,920 sentences) | | {r['sst2_lora_epoch_minutes']:.1f} min | |",
        f"| peak RSS training / prediction | | {r['train_peak_rss_mb']} / {r['predict_peak_rss_mb']} MB | |",
    ]
    return (
        f"Measured {r['date']} on {r.get('device', 'cpu')} ({r['machine']}); matmul peaks fp32 "
        f"{r['matmul_peak_gflops_fp32']:.0f} / bf16 {r['matmul_peak_gflops_bf16']:.0f} GFLOP/s; "
        f"emotune's LoRA on {r.get('lora_targets', QKVO)}.\n"
        f"`{r['command']}`\n\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
