"""Two CPU processes (gloo, launched like ``accelerate launch``/``torchrun``) train like one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emotune.pipeline import run
from helpers import tiny_config


def test_two_processes_match_one_with_the_same_global_batch(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    # 16 examples, global batch 6: batches of 6, 6, 4 split 3+3, 3+3, 2+2 over the two processes.
    settings = {"epochs": 3, "batch_size": 6, "lr": 2e-2, "device": "cpu", "checkpoint_every": 2}
    one_cfg, two_cfg = (tiny_config(tiny_gemma, sentiment_files, str(tmp_path / n), **settings) for n in ("one", "two"))
    for cfg in (one_cfg, two_cfg):
        cfg.method.dropout = 0.0  # dropout masks depend on how a batch is split, so compare without it
    single = run(one_cfg)
    cfg_file = tmp_path / "two.yaml"
    two_cfg.to_yaml(cfg_file)
    with socket.socket() as sock:  # a free port for the process group's rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    cmd += ["-m", "emotune.cli", "train", "--config", str(cfg_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"split": "test"') == 1  # only the main process reports
    assert "training on 2 process(es)" in (tmp_path / "two" / "train.log").read_text()
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["n"] == single["n"] == 8  # evaluation gathered: no example dropped or doubled
    for key in ("accuracy", "macro_f1", "best_dev_macro_f1", "best_dev_step", "train_examples_seen"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-6)
    one = load_file(tmp_path / "one" / "adapter" / "adapter_model.safetensors")
    two = load_file(tmp_path / "two" / "adapter" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    assert any(t.abs().sum() > 0 for k, t in one.items() if "lora_B" in k), "training did not move LoRA B"
    for name in one:  # summation order differs across processes; Adam magnifies it where a gradient is ~0
        torch.testing.assert_close(two[name], one[name], atol=1e-3, rtol=1e-3)
    ref = [json.loads(x) for x in (tmp_path / "one" / "predictions.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in (tmp_path / "two" / "predictions.jsonl").read_text().splitlines()]
    assert [r["uid"] for r in got] == [r["uid"] for r in ref]
    for a, b in zip(got, ref, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-3)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-00000006", "step-00000008"]
