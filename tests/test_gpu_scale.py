"""The GPU-scale benchmark's dry run: the same script, tiny versions of the same architectures, on
the CPU, so that it cannot rot between GPU loans (benchmarks/gpu_scale.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "datasets" / "sst"


@pytest.mark.skipif(not (SST / "stsa.binary.train").is_file(), reason="needs ../shared/datasets/sst")
def test_gpu_scale_dry_run_measures_every_row_beside_the_plan(tmp_path: Path) -> None:
    out = tmp_path / "gpu-scale.json"
    command = [sys.executable, "benchmarks/gpu_scale.py", "--device", "cpu", "--tiny", "--data-dir", str(SST)]
    command += ["--work-dir", str(tmp_path), "--out", str(out), "--warmup", "2", "--steps", "2"]
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["row"]: r for r in result["rows"]}
    assert "lora-compile" not in rows  # compiling is left to the GPU run
    assert {"lora", "standard", "qlora-lora", "ptuning-v2-128", "batch-auto"} <= rows.keys()
    assert not [r for r in rows.values() if "error" in r or "skipped" in r]
    for row in rows.values():
        assert row["examples_per_second"] > 0 and row["peak_allocated_bytes"] > 0
        assert row["tokens_per_second"] == pytest.approx(row["examples_per_second"] * row["length"])
        assert row["mfu"] > 0 and row["model_flops_per_step"] > 0
    emotune = [r for r in rows.values() if not r["standard"]]
    assert all(0.5 < r["plan_over_measured"] < 2 for r in emotune)
    assert rows["qlora-lora"]["weights"].startswith("4bit") and rows["qlora-lora"]["checkpointing"] is True
    assert rows["lora"]["checkpointing"] is False and rows["lora-ckpt"]["checkpointing"] is True
    # The standard recipe pays for the full-vocabulary output layer that label scoring never runs.
    assert rows["standard"]["model_flops_per_step"] > rows["lora"]["model_flops_per_step"]
    assert "tokens_per_second_vs_standard" in rows["lora"]
    assert set(result["targets"]) >= {"every_row_ran", "plan_within_15_percent", "qlora_peak_under_24_gib"}
    assert result["targets"]["every_row_ran"] is True
