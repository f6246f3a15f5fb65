"""``emotune plan``: the memory estimate against measured peaks of tiny models, the shipped
configurations, the CLI's answers and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from archs import build_arch
from conftest import WORDS, build_tokenizer
from emotune.cli import main
from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError
from emotune.methods import default_options
from emotune.models.recogniser import build_recogniser
from emotune.planning.backbone import meta_model, model_config, preset_names
from emotune.planning.estimate import PlanRequest, estimate
from emotune.planning.measure import PeakTensorMemory
from emotune.planning.report import parse_size
from emotune.training.trainer import Trainer

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
# Parameter counts the model cards state (billions).
PUBLISHED_SIZES = {
    "chatglm2-6b": 6.24,
    "gemma-2-9b": 9.24,
    "gemma3-270m": 0.268,
    "glm-4-9b": 9.40,
    "llama-2-7b": 6.74,
    "llama-3-8b": 8.03,
    "mistral-7b": 7.24,
    "qwen2.5-7b": 7.62,
}


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Wide enough that activations, not the tiny vocabulary, make up most of a step's memory."""
    folder = tmp_path_factory.mktemp("plan-llama")
    build_arch("llama", folder, len(build_tokenizer(folder)), layers=4, hidden_size=128, intermediate_size=352)
    return str(folder)


def measured_peak(model: str, method: str, checkpointing: bool, batch: int = 8, length: int = 64) -> int:
    cfg = RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method},
            "runtime": {"precision": "fp32", "max_length": length},
            "train": {"batch_size": batch, "gradient_checkpointing": checkpointing},
        }
    ).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    words = [w for w in WORDS if w.isalpha()]
    texts = [" ".join(words[(i + j) % len(words)] for j in range(length)) for i in range(batch)]
    trainer = Trainer(rec, [Example(t, i % 2) for i, t in enumerate(texts)], cfg.train)
    assert {len(r) for r in trainer.rows} == {length}
    rec.model.train()
    with PeakTensorMemory([*rec.model.parameters(), *rec.model.buffers(), *rec.head.buffers()]) as mem:
        trainer.micro_step(list(range(batch)))
    return mem.peak


@pytest.mark.parametrize(("method", "checkpointing"), [("lora", False), ("lora", True), ("ia3", False)])
def test_the_plan_is_within_a_quarter_of_the_measured_peak(wide_model: str, method: str, checkpointing: bool) -> None:
    peak = measured_peak(wide_model, method, checkpointing)
    plan = estimate(PlanRequest(wide_model, default_options(method), "float32", "none", 8, 64, checkpointing))
    assert 0.75 <= plan.total / peak <= 1.25, (plan.total, peak)


def test_checkpointing_and_quantisation_shrink_the_plan(wide_model: str) -> None:
    lora = default_options("lora")
    plain = estimate(PlanRequest(wide_model, lora, "float32", "none", 8, 64, False))
    assert plain.activations_checkpointed < plain.activations / 2
    quantised = estimate(PlanRequest(wide_model, lora, "float32", "4bit", 8, 64, False))
    assert quantised.weights < plain.weights and quantised.trainable == plain.trainable


@pytest.mark.parametrize("name", sorted(PUBLISHED_SIZES))
def test_shipped_configs_have_their_models_published_size(name: str) -> None:
    model = meta_model(model_config(name), torch.float32)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(PUBLISHED_SIZES[name], abs=0.01)
    assert name in preset_names()


def plan_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


QWEN = [
    "--model",
    "qwen2.5-7b",
    "--method",
    "lora",
    "--batch-size",
    "16",
    "--max-length",
    "128",
    "--gpu-memory",
    "24GiB",
]


def test_qlora_on_a_7b_model_fits_24_gib_and_fp32_says_what_to_change(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan_cli([*QWEN, "--quantization", "4bit"], capsys)
    assert code == 0 and "fits: yes" in out and "gradient checkpointing on" in out
    code, out, _ = plan_cli([*QWEN, "--dtype", "float32"], capsys)
    assert code == 0 and "fits: no" in out and "to fit: " in out and "GiB" in out.split("to fit: ")[1]
    code, out, _ = plan_cli([*QWEN, "--quantization", "4bit", "--json"], capsys)
    data = json.loads(out)
    assert data["fits"] is True and data["bytes"]["total"] < 0.9 * 24 * 2**30 and data["trainable"] > 0


def test_plan_reads_a_config_json_and_refuses_what_is_not_one(tmp_path: Path, capsys) -> None:
    (tmp_path / "model").mkdir()
    build_arch("qwen3", tmp_path / "model", 64)
    code, out, _ = plan_cli(["--model", str(tmp_path / "model" / "config.json"), "--gpu-memory", "1GiB"], capsys)
    assert code == 0 and "fits: yes" in out
    (tmp_path / "data.json").write_text(json.dumps({"text": "not a model"}))
    (tmp_path / "notes.json").write_text("hello")
    for bad, message in (("data.json", "no model_type"), ("notes.json", "not JSON"), ("missing.json", "not found")):
        code, _, err = plan_cli(["--model", str(tmp_path / bad)], capsys)
        assert code == 2 and message in err and "\n" not in err
    code, _, err = plan_cli([*QWEN, "--quantization", "2bit"], capsys)
    assert code == 2 and "model.quantization must be one of" in err


def test_train_dry_run_prints_the_plan_and_writes_nothing(tiny_gemma: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--model", tiny_gemma, "--output", str(out), "--dry-run", "--gpu-memory", "8GiB"])
    assert code == 0 and "fits: yes" in capsys.readouterr().out
    assert not out.exists()


def test_gpu_memory_sizes() -> None:
    assert parse_size("24GiB") == 24 * 2**30 == parse_size("24")
    assert parse_size("16GB") == 16 * 10**9 and parse_size("512 MiB") == 512 * 2**20
    with pytest.raises(EmotuneError, match="expects a size"):
        parse_size("lots")
