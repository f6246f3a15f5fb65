"""emotune vs the standard recipe, and both against the machine's own matmul peak; one process.

Same backbone (default gemma3-270m), same SST-2 train sentences, same batch size, same machine:

- standard recipe: PEFT LoRA r=8, causal-LM loss over the full vocabulary on "prompt + label word",
  every batch padded to a fixed 64 tokens, AdamW; prediction by greedy generation of the label
  word, then parsing it (the way peers classify with a generative LLM);
- emotune: its own Trainer step (label-restricted scoring, length-bucketed dynamic padding) and
  its Recogniser.probabilities for prediction;
- the limit: achieved FLOP/s of a large fp32 and bf16 matmul, measured in this run.

    python benchmarks/speed.py --data-dir ../shared/datasets/sst

Writes ``benchmarks/results/speed.json`` and ``benchmarks/results/speed.md``.
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

from emotune.backbones import load_backbone
from emotune.config import RunConfig
from emotune.data import load_data, subsample
from emotune.methods.base import base_model_of
from emotune.recogniser import build_recogniser
from emotune.scoring import epoch_batches
from emotune.train import Trainer

SST2_TRAIN = 6920


def rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Achieved FLOP/s of an n x n x n matmul (best of ``reps``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
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


def emotune_side(args: argparse.Namespace) -> dict[str, Any]:
    cfg = RunConfig.from_dict(
        {
            # The attention projections the earlier releases adapted by default, so figures compare.
            "method": {"name": "lora", "rank": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
            "data": {"dataset": "sst2", "data_dir": args.data_dir},
            "train": {"batch_size": args.batch_size, "lr": 2e-4, "checkpoint_every": 0, "log_every": 0},
            "output": tempfile.mkdtemp(prefix="emotune-speed-"),
        }
    ).validate()
    dataset = load_data(cfg.data, cfg.train.seed)
    rec = build_recogniser(cfg, dataset.labels, dataset.language, dataset.task)
    test = subsample(dataset.split("test"), args.predict_examples, 0)
    rec.probabilities(test[:16], args.predict_batch)  # warm-up
    start = time.perf_counter()
    rec.probabilities(test, args.predict_batch)
    predict_s = time.perf_counter() - start
    predict_tokens = sum(len(r) for r in rec.encode(test))
    predict_rss = rss_mb()

    trainer = Trainer(rec, dataset.split("train"), cfg.train)
    lengths = [len(r) for r in trainer.rows]
    batches = epoch_batches(lengths, args.batch_size, seed=0)[: args.train_batches + 1]
    rec.model.train()
    trainer.micro_step(batches[0])  # warm-up
    start = time.perf_counter()
    for idx in batches[1:]:
        trainer.micro_step(idx)
    train_s = time.perf_counter() - start
    n = sum(len(b) for b in batches[1:])
    tokens = sum(lengths[i] for b in batches[1:] for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches[1:])
    decoder, head = param_counts(rec.model)
    return {
        "train_examples": n,
        "train_seconds": train_s,
        "train_examples_per_second": n / train_s,
        "train_tokens_per_second": tokens / train_s,
        "train_padded_tokens_per_example": padded / n,
        "train_flops_per_example": train_flops(decoder, head, padded / n, with_head=False),
        "predict_examples": len(test),
        "predict_examples_per_second": len(test) / predict_s,
        "predict_tokens_per_second": predict_tokens / predict_s,
        "predict_flops_per_example": 2 * decoder * predict_tokens / len(test),
        "train_peak_rss_mb": rss_mb(),
        "predict_peak_rss_mb": predict_rss,
        "decoder_params": decoder,
        "output_projection_params": head,
    }


def standard_side(args: argparse.Namespace, prompts: list[str], answers: list[str], words: list[str]) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    model, tok = load_backbone("gemma3-270m")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM"))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    tok.padding_side = "right"
    full = [p + a for p, a in zip(prompts, answers, strict=True)]
    model.train()

    def step(batch: list[str]) -> None:
        enc = tok(batch, padding="max_length", max_length=64, truncation=True, return_tensors="pt")
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        loss = model(**enc, labels=labels).loss  # logits over the full 262k vocabulary
        loss.backward()
        optim.step()
        optim.zero_grad()

    bs = args.batch_size
    step(full[:bs])  # warm-up
    start = time.perf_counter()
    steps = args.standard_train_batches
    for i in range(steps):
        step(full[(i + 1) * bs : (i + 2) * bs])
    train_s = time.perf_counter() - start
    model.eval()
    tok.padding_side = "left"
    gen_prompts = prompts[: args.generate_examples]
    valid = 0
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(gen_prompts), args.predict_batch):
            enc = tok(gen_prompts[i : i + args.predict_batch], padding=True, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
            for text in tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True):
                valid += any(text.strip().lower().startswith(w) for w in words)
    gen_s = time.perf_counter() - start
    return {
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
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--train-batches", type=int, default=40, help="emotune batches timed (random, whole split)")
    parser.add_argument("--standard-train-batches", type=int, default=4)
    parser.add_argument("--predict-examples", type=int, default=256)
    parser.add_argument("--generate-examples", type=int, default=32)
    parser.add_argument("--predict-batch", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    args = parser.parse_args()
    # bf16 gets a smaller matrix: on CPUs without native bf16 a 2048^3 product takes minutes.
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16, n=512, reps=2)
    ours = emotune_side(args)
    dataset = load_data(RunConfig.from_dict({"data": {"dataset": "sst2", "data_dir": args.data_dir}}).data)
    from emotune.prompts import PromptBuilder

    builder = PromptBuilder(dataset.labels, "en", "sentiment")
    head, tail = builder.render()
    words = [w[0] for w in dataset.labels.words("en")]
    train_ex = dataset.split("train")
    prompts = [head + e.text + tail for e in train_ex[:400]]
    answers = [" " + words[int(e.label)] for e in train_ex[:400]]  # type: ignore[arg-type]
    standard = standard_side(args, prompts, answers, words)
    mfu = ours["train_examples_per_second"] * ours["train_flops_per_example"] / peak32
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}",
        "backbone": "gemma3-270m (fp32)",
        "matmul_peak_gflops_fp32": peak32 / 1e9,
        "matmul_peak_gflops_bf16": peak16 / 1e9,
        "emotune": ours,
        "standard": standard,
        "train_speedup_vs_standard": ours["train_examples_per_second"] / standard["train_examples_per_second"],
        "predict_speedup_vs_generation": ours["predict_examples_per_second"] / standard["predict_examples_per_second"],
        "train_mfu": mfu,
        "train_achieved_gflops": mfu * peak32 / 1e9,
        "sst2_lora_epoch_minutes": SST2_TRAIN / ours["train_examples_per_second"] / 60,
        "sst2_lora_epoch_minutes_note": f"projected from {ours['train_examples']} timed examples "
        "in random length-bucketed batches of the whole train split",
        "train_peak_rss_mb": ours["train_peak_rss_mb"],
        "predict_peak_rss_mb": ours["predict_peak_rss_mb"],
        "flops_note": "per example: 2*N*tokens forward + the same again for activation gradients through "
        "frozen weights (LoRA's own FLOPs are negligible); emotune never runs the output projection",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    e, s = r["emotune"], r["standard"]
    rows = [
        "| | standard recipe | emotune | ratio |",
        "|---|---|---|---|",
        f"| training examples/s | {s['train_examples_per_second']:.2f} | {e['train_examples_per_second']:.2f} | "
        f"{r['train_speedup_vs_standard']:.1f}x |",
        f"| training tokens/s | {s['train_tokens_per_second']:.0f} (padded to 64) | "
        f"{e['train_tokens_per_second']:.0f} (real) | |",
        f"| prediction examples/s | {s['predict_examples_per_second']:.2f} (generation) | "
        f"{e['predict_examples_per_second']:.2f} | {r['predict_speedup_vs_generation']:.1f}x |",
        f"| training GFLOP/s, MFU vs fp32 matmul peak {r['matmul_peak_gflops_fp32']:.0f} GFLOP/s | | "
        f"{r['train_achieved_gflops']:.0f} ({100 * r['train_mfu']:.0f}%) | |",
        f"| SST-2 LoRA epoch (6,920 sentences) | | {r['sst2_lora_epoch_minutes']:.1f} min | |",
        f"| peak RSS training / prediction | | {r['train_peak_rss_mb']} / {r['predict_peak_rss_mb']} MB | |",
    ]
    return (
        f"Measured {r['date']} on {r['machine']}; bf16 matmul peak {r['matmul_peak_gflops_bf16']:.1f} GFLOP/s.\n"
        f"`{r['command']}`\n\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
