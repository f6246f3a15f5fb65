"""Where one training step's time goes on a GPU: host (Python + kernel launches) vs device.

Speed does not depend on weight values, so the default backbone's architecture is built with
random weights from its ``config.json`` and tokenizer files (no 253 MB GGUF to carry to a GPU
machine). LoRA r=8 on q/k/v/o as in ``speed.py``, SST-2 train sentences, emotune's Trainer:

- ms/step over ``steps`` length-bucketed batches (the first batches of an epoch, so every new
  sequence length is seen cold), then the same batches again with plain copies instead of pinned
  memory, and in fp32 instead of bf16 autocast, and at batch 64;
- cProfile (Python) and torch.profiler (operators, kernel launches, device time) of warm steps.

    python benchmarks/gpu_step_probe.py cuda 20 > benchmarks/results/gpu-step-probe-h200.log

``--tok-dir`` holds ``config.json``, ``tokenizer_config.json``, ``generation_config.json`` and
``tokenizer.json.xz`` (copied from ``$EMOTUNE_CACHE/backbones/gemma3-270m``).
"""

import cProfile
import io
import lzma
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoConfig, AutoModelForCausalLM

from emotune.config import RunConfig
from emotune.data import load_data
from emotune.recogniser import build_recogniser
from emotune.scoring import Batch, epoch_batches
from emotune.train import Trainer

dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
tok_dir = Path(os.environ.get("PROBE_TOK_DIR", ".gpu/tok"))
folder = Path(os.environ.get("PROBE_MODEL", "/tmp/rand-gemma"))


def random_backbone() -> None:
    """Writes the default backbone's architecture with random weights to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(tok_dir / f, folder / f)
    (folder / "tokenizer.json").write_bytes(lzma.decompress((tok_dir / "tokenizer.json.xz").read_bytes()))
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)


def build(bs: int) -> tuple:
    cfg = RunConfig.from_dict(
        {
            "model": {"name": str(folder)},
            "method": {"name": "lora", "rank": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
            "data": {"dataset": "sst2", "data_dir": "../shared/datasets/sst"},
            "train": {"batch_size": bs, "lr": 2e-4, "checkpoint_every": 0, "log_every": 0},
            "runtime": {"device": dev},
            "output": tempfile.mkdtemp(),
        }
    ).validate()
    ds = load_data(cfg.data, cfg.train.seed)
    rec = build_recogniser(cfg, ds.labels, ds.language, ds.task)
    tr = Trainer(rec, ds.split("train"), cfg.train)
    rec.model.train()
    return rec, tr


def sync() -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def timed(tr: Trainer, bs: int, label: str, n: int = steps) -> list[list[int]]:
    b = epoch_batches([len(r) for r in tr.rows], bs, seed=0)
    for idx in b[:3]:
        tr.micro_step(idx)
    sync()
    t = time.perf_counter()
    for idx in b[3 : 3 + n]:
        tr.micro_step(idx)
    sync()
    dt = (time.perf_counter() - t) / n
    print(f"PROBE {label}: {1000 * dt:.1f} ms/step, {bs / dt:.0f} ex/s", flush=True)
    return b


if not (folder / "model.safetensors").exists():
    random_backbone()
rec, tr = build(16)
b = timed(tr, 16, "baseline bs16")
# Where the host time goes: cProfile of 5 steps.
pr = cProfile.Profile()
pr.enable()
for idx in b[30:35]:
    tr.micro_step(idx)
sync()
pr.disable()
s = io.StringIO()
pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
print(s.getvalue()[-4000:])
s = io.StringIO()
pstats.Stats(pr, stream=s).sort_stats("cumtime").print_stats(30)
print(s.getvalue()[-5000:])
acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
with profile(activities=acts) as prof:
    for idx in b[40:43]:
        tr.micro_step(idx)
    sync()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=50))
if dev == "cuda":
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=50))
# Variant: plain copies instead of pinned memory per batch.
orig_to = Batch.to
Batch.to = lambda self, device: Batch(  # type: ignore[method-assign]
    self.input_ids.to(device), self.attention_mask.to(device), self.last_index.to(device)
)
timed(tr, 16, "no pin_memory bs16")
Batch.to = orig_to  # type: ignore[method-assign]
# Variant: no autocast (fp32).
rec.precision = "fp32"
timed(tr, 16, "fp32 bs16")
rec.precision = "auto"
timed(tr, 64, "baseline bs64", 10)
