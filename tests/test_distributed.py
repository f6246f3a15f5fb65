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


def _launch(argv: list[str], processes: int = 2) -> subprocess.CompletedProcess[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(port),
    ]
    cmd += ["-m", "emotune.cli", "--", *argv]  # torchrun would take --run for its own --run-path
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)


def _dialogue_file(path: Path, rows: int = 40) -> Path:
    from conftest import NEGATIVE, POSITIVE

    texts = POSITIVE + NEGATIVE
    lines = [
        {"text": texts[i % len(texts)] if i != 17 else "", "dialogue": f"d{i // 6}", "speaker": f"s{i % 2}"}
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.mark.parametrize("context", [False, True])
def test_two_processes_predict_a_file_like_one(tiny_run: Path, tmp_path: Path, context: bool) -> None:
    import shutil

    from emotune.cli import main
    from emotune.storage import read_json, write_json

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    if context:  # as if trained with two turns of context: a dialogue column then supplies them
        card = read_json(run_dir / "dataset_card.json")
        write_json(run_dir / "dataset_card.json", card | {"context_turns": 2})
    source = _dialogue_file(tmp_path / "in.jsonl")
    flags = ["--run", str(run_dir), "--input", str(source), "--chunk-rows", "8"]
    flags += ["--dialogue-column", "dialogue", "--speaker-column", "speaker"] if context else []
    assert main(["predict", *flags, "--output", str(tmp_path / "one.jsonl")]) == 0
    done = _launch(["predict", *flags, "--output", str(tmp_path / "two.jsonl")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"rows": 40') == 1  # one report, rows summed over the processes
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["row"] for r in two] == list(range(1, 41)) and len(one) == 40
    for a, b in zip(two, one, strict=True):
        assert a.get("label") == b.get("label") and a.get("error") == b.get("error")
        assert a.get("scores", {}) == pytest.approx(b.get("scores", {}), abs=1e-5)
    assert not list(tmp_path.glob("two.jsonl.part-*"))  # the parts were merged and removed


def test_a_killed_two_process_job_resumes_without_rescoring(tiny_run: Path, tmp_path: Path) -> None:
    source = _dialogue_file(tmp_path / "in.jsonl")
    target = tmp_path / "out.jsonl"
    argv = ["predict", "--run", str(tiny_run), "--input", str(source), "--output", str(target), "--chunk-rows", "8"]
    assert _launch(argv).returncode == 0
    full = target.read_text().splitlines()
    target.unlink()
    # As if killed: process 0 had written chunk 0 and half of chunk 2; process 1 nothing yet.
    # The written rows carry a marker, so a re-scored row would show.
    marked = [json.dumps({**json.loads(x), "marker": True}) for x in full[:8] + full[16:20]]
    (tmp_path / "out.jsonl.part-0-of-2.partial").write_text("\n".join(marked) + "\n" + '{"row": 21, "te')
    done = _launch(argv)
    assert done.returncode == 0, done.stderr[-3000:]
    again = [json.loads(x) for x in target.read_text().splitlines()]
    assert [r["row"] for r in again] == list(range(1, 41))
    assert [r["row"] for r in again if r.get("marker")] == [*range(1, 9), *range(17, 21)]
    # The same rows as one uninterrupted job: labels equal, probabilities to float noise (a resumed
    # chunk batches other rows together, and some CPUs' kernels then differ in the last bits).
    for a, b in zip(again, [json.loads(x) for x in full], strict=True):
        assert {k: v for k, v in a.items() if k not in ("marker", "scores", "confidence")} == {
            k: v for k, v in b.items() if k not in ("scores", "confidence")
        }
        assert a.get("scores", {}) == pytest.approx(b.get("scores", {}), abs=1e-5)
    # Parts from a run with another number of processes are refused in one line.
    target.unlink()
    (tmp_path / "out.jsonl.part-0-of-3.partial").write_text("")
    refused = _launch(argv)
    assert refused.returncode != 0 and "was written by a run with 3 processes" in refused.stderr
