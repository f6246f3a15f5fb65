"""End to end on the real default backbone (Gemma 3 270M from its PyPI package): slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emotune.config import RunConfig
from emotune.data import Example, load_data
from emotune.inference.predict import Predictor
from emotune.models.recogniser import build_recogniser
from emotune.pipeline import run

pytestmark = pytest.mark.slow


def _cfg(method: str, out: Path, **train_cfg: object) -> RunConfig:
    return RunConfig.from_dict(
        {
            "method": {"name": method},
            "data": {"dataset": "quickstart", "max_train_samples": 32, "max_eval_samples": 24},
            "train": {"epochs": 1, "min_steps": 0, "batch_size": 8, "lr": 1e-3, "checkpoint_every": 0, **train_cfg},
            "output": str(out),
        }
    ).validate()


def test_zero_shot_lora_and_predict(tmp_path: Path) -> None:
    zero = run(_cfg("zero-shot", tmp_path / "zs"))
    lora = run(_cfg("lora", tmp_path / "lora"))
    for metrics in (zero, lora):
        assert metrics["n"] == 24 and 0.0 <= metrics["accuracy"] <= 1.0
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").is_file()
    preds = Predictor.load(tmp_path / "lora").predict(["I am so happy today!", "That spider terrifies me."])
    for pred in preds:
        assert pred.label in ("joy", "sadness", "anger", "fear")
        assert sum(pred.scores.values()) == pytest.approx(1.0, abs=1e-5)
    saved = [json.loads(x) for x in (tmp_path / "lora" / "predictions.jsonl").read_text().splitlines()]
    assert len(saved) == 24


def test_ptuning_v2_on_gemma3_matches_peft_and_learns(tmp_path: Path) -> None:
    cfg = _cfg("ptuning-v2", tmp_path / "pt2", lr=1e-2)
    cfg.runtime.precision = "fp32"
    data = load_data(cfg.data)
    rec = build_recogniser(cfg, data.labels, data.language, data.task)
    batch = rec.collate(rec.encode(data.split("train")[:4]))
    with torch.no_grad():
        ours = rec.label_logits(batch)
        full = rec.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    tokens = torch.stack([full[i, int(batch.last_index[i]), rec.head.flat_ids] for i in range(4)])
    # Two verbaliser words per label: a label's score is the log-sum-exp of its words' tokens.
    ref = torch.stack([torch.logsumexp(tokens[:, rec.head.owner == k], -1) for k in range(4)], -1)
    torch.testing.assert_close(ours, ref, atol=2e-3, rtol=2e-3)

    examples = data.split("train")[:16]
    rows, gold = rec.encode(examples), torch.tensor([e.label for e in examples])
    params = [p for p in rec.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    rec.model.train()
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(rec.label_logits(rec.collate(rows)), gold)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    probs = rec.probabilities([Example("I am so happy today!")])
    assert probs.shape == (1, 4) and float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
