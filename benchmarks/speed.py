"""emotune vs the standard recipe, and both against the machine's own matmul peak; one process.

Same backbone (default gemma3-270m), same SST-2 train sentences, same batch size, same machine:

- standard recipe (``standard_recipe.py``): PEFT LoRA r=8 on the same targets, causal-LM loss over
  the full vocabulary on "prompt + label word", fused AdamW, with emotune's weight format and
  autocast and each batch padded to its longest row; prediction by greedy generation of the label
  word, then parsing it (the way peers classify with a generative LLM). ``--standard-variants``
  also times it in fp32 and padded to 64 tokens (the earlier tables' recipe), and
  ``--emotune-fp32`` emotune in fp32, so the gain splits into label scoring, precision and padding;
- emotune: its own Trainer step (label-restricted scoring, length-bucketed dynamic padding) and
  its Recogniser.probabilities for prediction;
- the limit: achieved FLOP/s of a large fp32 and bf16 matmul, measured in this run.

    python benchmarks/speed.py --data-dir ../shared/datasets/sst \
        --standard-variants same,fp32-dynamic,fp32-pad64 --emotune-fp32       # CPU -> speed.json, speed.md
    python benchmarks/speed.py --device cuda --batch-sizes 16,64,256          # GPU -> speed-gpu.json, .md

MFU is measured against the matmul peak of the precision the forward passes actually ran in
(bf16 under ``runtime.precision: auto`` on bf16-capable CPUs and GPUs, else fp32).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emotune.bench.record import header
from emotune.bench.timing import matmul_peak, peak_rss_mb, sync
from emotune.config import RunConfig
from emotune.data import load_data, subsample
from emotune.distributed import resolve_device
from emotune.methods.base import base_model_of
from emotune.models.precision import autocast_dtype, resolve_format
from emotune.models.recogniser import build_recogniser
from emotune.models.scoring import epoch_batches
from emotune.training.trainer import Trainer
from standard_recipe import StandardRecipe  # this folder: run as `python benchmarks/speed.py`

SST2_TRAIN = 6920
QKVO = "q_proj,k_proj,v_proj,o_proj"


def rss_mb() -> int:
    return round(peak_rss_mb())


def timed_steps(trainer: Trainer, batches: list[list[int]], device: torch.device) -> float:
    """Seconds for one training micro-step per batch, queued GPU work included."""
    sync(device)
    start = time.perf_counter()
    for idx in batches:
        trainer.micro_step(idx)
    sync(device)
    return time.perf_counter() - start


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
    model = {"name": backbone_source(args), "dtype": getattr(args, "dtype", "float32")} | (model or {})
    cfg = RunConfig.from_dict(
        {
            "model": model,
            "method": {"name": "lora", "rank": 8, "target_modules": lora_targets(args)},
            "data": {"dataset": "sst2", "data_dir": args.data_dir},
            "train": {"batch_size": batch_size, "lr": 2e-4, "checkpoint_every": 0, "log_every": 0},
            "runtime": {"device": args.device, "precision": getattr(args, "precision", "auto")},
            "output": tempfile.mkdtemp(prefix="emotune-speed-"),
        }
    ).validate()
    dataset = load_data(cfg.data, cfg.train.seed)
    return build_recogniser(cfg, dataset.labels, dataset.language, dataset.task), dataset, cfg


def lora_targets(args: argparse.Namespace) -> list[str]:
    """The LoRA targets timed: by default the attention projections the earlier releases adapted,
    so the committed figures compare; ``--lora-targets all-linear`` times today's default."""
    return str(getattr(args, "lora_targets", QKVO)).split(",")


def emotune_side(args: argparse.Namespace, batch_size: int, precision: str = "auto") -> dict[str, Any]:
    """emotune's prediction and training speed at ``batch_size`` (``precision`` fp32: no autocast,
    fp32 weights)."""
    fp32 = {"dtype": "float32"} if precision == "fp32" else {}
    rec, dataset, cfg = emotune_recogniser(
        argparse.Namespace(**{**vars(args), "precision": precision}), batch_size, fp32
    )
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


STANDARD_VARIANTS = {  # name: (autocast like emotune's, padding; None = each batch to its longest row)
    "same": (True, None),
    "fp32-dynamic": (False, None),
    "fp32-pad64": (False, 64),
}


def standard_side(
    args: argparse.Namespace, prompts: list[str], answers: list[str], words: list[str], variant: str = "same"
) -> dict[str, Any]:
    """The standard recipe (`standard_recipe.StandardRecipe`) timed at ``args.standard_batch_size``.

    ``variant`` "same" gives it emotune's weight format, autocast and dynamic padding (the fair
    comparison); "fp32-dynamic" and "fp32-pad64" take away the precision, then the padding, as the
    earlier tables did, so the gain splits into label scoring, precision and padding.
    """
    same_precision, padding = STANDARD_VARIANTS[variant]
    device = resolve_device(args.device)
    fmt = resolve_format(args.dtype if same_precision else "float32", "none", device)
    autocast = autocast_dtype("auto", device, getattr(torch, fmt.dtype)) if same_precision else None
    targets = lora_targets(args)
    recipe = StandardRecipe.build(
        backbone_source(args),
        fmt,
        device,
        "all-linear" if targets == ["all-linear"] else targets,
        autocast=autocast,
        padding=padding,
    )
    full = [p + a for p, a in zip(prompts, answers, strict=True)]
    bs = args.standard_batch_size
    started = time.perf_counter()
    recipe.step(full[:bs])  # warm-up, timed apart
    sync(device)
    warmup_s = time.perf_counter() - started
    steps, tokens = args.standard_train_batches, 0
    start = time.perf_counter()
    for i in range(steps):  # the sentences cycle when a batch is larger than what is left
        tokens += recipe.step([full[j % len(full)] for j in range((i + 1) * bs, (i + 2) * bs)])
    sync(device)
    train_s = time.perf_counter() - start
    result = {
        "variant": variant,
        "precision": "fp32" if autocast is None else f"{_short(autocast)} autocast, {fmt.dtype} weights",
        "padding": "each batch to its longest row" if padding is None else f"every batch to {padding}",
        "batch_size": bs,
        "warmup_step_seconds": warmup_s,
        "train_examples": steps * bs,
        "train_examples_per_second": steps * bs / train_s,
        "train_tokens_per_second": tokens / train_s,
        "train_padded_tokens_per_example": tokens / (steps * bs),
    }
    return result | (generation(args, recipe, prompts, words) if variant == "same" else {})


def _short(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def generation(
    args: argparse.Namespace, recipe: StandardRecipe, prompts: list[str], words: list[str]
) -> dict[str, Any]:
    """Prediction the generative way: greedy generation of the label word, then parsing it."""
    model, tok = recipe.model, recipe.tokenizer
    model.eval()
    tok.padding_side = "left"
    gen_prompts = prompts[: args.generate_examples]
    valid = 0
    start = time.perf_counter()
    with torch.no_grad(), recipe.context():
        for i in range(0, len(gen_prompts), args.predict_batch):
            enc = tok(gen_prompts[i : i + args.predict_batch], padding=True, return_tensors="pt").to(recipe.device)
            out = model.generate(**enc, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
            for text in tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True):
                valid += any(text.strip().lower().startswith(w) for w in words)
    sync(recipe.device)
    gen_s = time.perf_counter() - start
    return {
        "predict_examples": len(gen_prompts),
        "predict_examples_per_second": len(gen_prompts) / gen_s,
        "generation_valid_rate": valid / len(gen_prompts),
    }


def backbone_source(args: argparse.Namespace) -> str:
    """The backbone both recipes load: the default, or ``--model-dir`` (its architecture with
    random weights, built once from its config and tokenizer files: speed does not depend on
    weight values, and a GPU machine gets no 253 MB GGUF)."""
    if not getattr(args, "model_dir", None):
        return "gemma3-270m"
    folder = Path(args.model_dir)
    if not any(folder.glob("*.safetensors")):
        from synthetic import backbone_from_config

        backbone_from_config(folder)
    return str(folder)


def parse_args() -> argparse.Namespace:
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
    parser.add_argument(
        "--lora-targets",
        default=QKVO,
        help="both recipes' LoRA targets, comma-separated (all-linear: the default of train)",
    )
    parser.add_argument(
        "--standard-batch-sizes", help="the standard recipe's batch sizes (default: the first of --batch-sizes)"
    )
    parser.add_argument(
        "--standard-variants",
        default="same",
        help=f"standard recipes timed at the first batch size, from {sorted(STANDARD_VARIANTS)}; 'same' "
        "(emotune's precision, dynamic padding) is the one every ratio uses and the one timed at each batch size",
    )
    parser.add_argument("--emotune-fp32", action="store_true", help="also time emotune in fp32 (the gain split)")
    parser.add_argument("--dtype", default="float32", help="model.dtype of both recipes (auto: bf16 on a GPU)")
    parser.add_argument(
        "--model-dir", help="a folder with config and tokenizer files: that architecture, random weights"
    )
    parser.add_argument("--out", help="default: benchmarks/results/speed.json (cpu) or speed-gpu.json (cuda)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    args.predict_batch = args.predict_batch or (256 if device.type == "cuda" else 16)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    # bf16 gets a smaller matrix on a CPU: without native bf16 a 2048^3 product takes minutes.
    peak32 = matmul_peak(torch.float32, device)
    peak16 = matmul_peak(torch.bfloat16, device, *((4096, 10) if device.type == "cuda" else (512, 2)))
    runs = [emotune_side(args, b) for b in sizes]
    fp32_run = emotune_side(args, sizes[0], precision="fp32") if args.emotune_fp32 else None
    inputs = standard_inputs(args)
    by_size = {}
    for size in [int(b) for b in (args.standard_batch_sizes or str(sizes[0])).split(",")]:
        args.standard_batch_size = size  # the same batch sizes for both recipes: a fair GPU row
        by_size[str(size)] = standard_side(args, *inputs)
    args.standard_batch_size = sizes[0]
    variants = {v: standard_side(args, *inputs, variant=v) for v in args.standard_variants.split(",") if v != "same"}
    result = {
        **header("python " + " ".join(sys.argv)),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "backbone": f"gemma3-270m ({args.dtype} weights{', random weights' if args.model_dir else ''})",
        "lora_targets": args.lora_targets,
        "matmul_peak_gflops_fp32": peak32 / 1e9,
        "matmul_peak_gflops_bf16": peak16 / 1e9,
        "emotune": runs[0],
        "emotune_fp32": fp32_run,
        "emotune_by_batch_size": {str(r["batch_size"]): r["train_examples_per_second"] for r in runs},
        "emotune_by_batch_size_repeat": {str(r["batch_size"]): r["train_examples_per_second_repeat"] for r in runs},
        "standard": by_size[str(sizes[0])] if str(sizes[0]) in by_size else next(iter(by_size.values())),
        "standard_by_batch_size": {k: v["train_examples_per_second"] for k, v in by_size.items()},
        "standard_variants": variants,
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
        "gain_split": gain_split(r),
    }


def gain_split(r: dict[str, Any]) -> dict[str, float]:
    """Training speed ratios that separate label scoring from precision and padding (the
    variants a run timed; results from before the variants existed give the one ratio they have)."""
    rate = {k: v["train_examples_per_second"] for k, v in (r.get("standard_variants") or {}).items()}
    ours, same = r["emotune"]["train_examples_per_second"], r["standard"]["train_examples_per_second"]
    split = {"label scoring, both at emotune's precision": ours / same}
    if r.get("emotune_fp32") and "fp32-dynamic" in rate:
        split["label scoring, both in fp32"] = r["emotune_fp32"]["train_examples_per_second"] / rate["fp32-dynamic"]
    if "fp32-dynamic" in rate:
        split["precision, standard recipe (emotune's / fp32)"] = same / rate["fp32-dynamic"]
    if {"fp32-dynamic", "fp32-pad64"} <= rate.keys():
        split["dynamic padding, standard recipe in fp32"] = rate["fp32-dynamic"] / rate["fp32-pad64"]
    if "fp32-pad64" in rate:
        split["emotune against the earlier fp32, padded-to-64 recipe"] = ours / rate["fp32-pad64"]
    return split


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


def variant_rows(r: dict[str, Any]) -> list[str]:
    """The standard recipe's other variants and the gain split, where a run timed them."""
    rows = [
        f"| standard recipe, {v['precision']}, {v['padding']}: training examples/s | "
        f"{v['train_examples_per_second']:.2f} | | |"
        for v in (r.get("standard_variants") or {}).values()
    ]
    if r.get("emotune_fp32"):
        rows.append(
            f"| emotune in fp32: training examples/s | | {r['emotune_fp32']['train_examples_per_second']:.2f} | |"
        )
    split = r.get("gain_split") or {}
    if len(split) > 1:
        rows += ["", "| training speed ratio | |", "|---|---|", *(f"| {k} | {v:.2f}x |" for k, v in split.items())]
    return rows


def markdown(r: dict[str, Any]) -> str:
    e, s = r["emotune"], r["standard"]
    rows = [
        "| | standard recipe | emotune | ratio |",
        "|---|---|---|---|",
        f"| training examples/s | {s['train_examples_per_second']:.2f} | {e['train_examples_per_second']:.2f} | "
        f"{r['train_speedup_vs_standard']:.1f}x |",
        *repeat_row(r),
        f"| training tokens/s | {s['train_tokens_per_second']:.0f} ({s.get('padding', 'padded to 64')}) | "
        f"{e['train_tokens_per_second']:.0f} (real) | |",
        f"| prediction examples/s | {s['predict_examples_per_second']:.2f} (generation) | "
        f"{e['predict_examples_per_second']:.2f} | {r['predict_speedup_vs_generation']:.1f}x |",
        f"| training GFLOP/s ({r['train_precision']}), MFU | | "
        f"{r['train_achieved_gflops']:.0f} ({100 * r['train_mfu']:.0f}% of the {r['train_precision'].split()[0]} "
        "matmul peak) | |",
        f"| SST-2 LoRA epoch (6,920 sentences) | | {r['sst2_lora_epoch_minutes']:.1f} min | |",
        f"| peak RSS training / prediction | | {r['train_peak_rss_mb']} / {r['predict_peak_rss_mb']} MB | |",
    ]
    rows += variant_rows(r)
    return (
        f"Measured {r['date']} on {r.get('device', 'cpu')} ({r['machine']}); matmul peaks fp32 "
        f"{r['matmul_peak_gflops_fp32']:.0f} / bf16 {r['matmul_peak_gflops_bf16']:.0f} GFLOP/s; "
        f"emotune's LoRA on {r.get('lora_targets', QKVO)}.\n"
        f"`{r['command']}`\n\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
