"""Gradient checkpointing with every trainable method: the same loss and adapter gradients as
without it, less peak memory, and P-Tuning v2's per-layer prefix still in the computation."""

from __future__ import annotations

import pytest
import torch

from archs import build_arch
from conftest import build_tokenizer
from emotune.config import RunConfig
from emotune.data.schema import LabelSet
from emotune.methods import method_class, method_names
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.planning.measure import PeakTensorMemory
from emotune.training.trainer import enable_gradient_checkpointing, trainable_parameters

TRAINABLE = [m for m in method_names() if method_class(m).trainable]
LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TEXTS = ["a wonderful film and a good story " * 6, "i hated it , boring from start to end " * 5] * 4


@pytest.fixture(scope="module", params=["gemma3", "llama"])
def deep_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Four layers: enough for recomputation to save more than the one layer it replays."""
    folder = tmp_path_factory.mktemp(f"ckpt-{request.param}")
    build_arch(request.param, folder, len(build_tokenizer(folder)), layers=4)
    return str(folder)


def recogniser(model: str, method: str, checkpointing: bool) -> Recogniser:
    options = {"prompt_length": 4} if "prompt_length" in method_class(method).options_class.__dataclass_fields__ else {}
    if "dropout" in method_class(method).options_class.__dataclass_fields__:
        options["dropout"] = 0.0  # the two runs must draw the same masks: none
    cfg = RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method, **options},
            "runtime": {"precision": "fp32", "max_length": 128},
            "train": {"gradient_checkpointing": checkpointing},
        }
    ).validate()
    torch.manual_seed(0)
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    if checkpointing:
        enable_gradient_checkpointing(rec)
    rec.model.train()
    return rec


def loss_and_grads(rec: Recogniser) -> tuple[float, dict[str, torch.Tensor], int]:
    from emotune.data.schema import Example

    batch = rec.collate(rec.encode([Example(t) for t in TEXTS]))
    params = trainable_parameters(rec)
    with PeakTensorMemory() as mem:
        logits = rec.scorer(batch.input_ids, batch.attention_mask, batch.last_index)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0] * 4, device=logits.device))
        loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in params.items() if p.grad is not None}, mem.peak


@pytest.mark.parametrize("method", TRAINABLE)
def test_checkpointing_keeps_loss_and_gradients_and_lowers_peak_memory(deep_model: str, method: str) -> None:
    loss, grads, peak = loss_and_grads(recogniser(deep_model, method, checkpointing=False))
    loss_ckpt, grads_ckpt, peak_ckpt = loss_and_grads(recogniser(deep_model, method, checkpointing=True))
    assert loss_ckpt == pytest.approx(loss, rel=1e-5)
    assert grads.keys() == grads_ckpt.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert peak_ckpt < 0.8 * peak, (peak_ckpt, peak)


def test_ptuning_v2_prefix_reaches_every_layer_under_checkpointing(deep_model: str) -> None:
    rec = recogniser(deep_model, "ptuning-v2", checkpointing=True)
    _, grads, _ = loss_and_grads(rec)
    (prefix,) = grads.values()  # (virtual tokens, layers * 2 * kv width): every layer's keys and values
    per_layer = prefix.view(prefix.shape[0], 4 * 2, -1).abs().sum(dim=(0, 2))
    assert bool((per_layer > 0).all()), per_layer


def test_peak_tensor_memory_counts_live_storages() -> None:
    weights = torch.zeros(1000)
    with PeakTensorMemory([weights]) as mem:
        a = torch.ones(1000)
        b = a * 2
        del a, b
        c = torch.ones(500)
    assert mem.baseline == 4000 and mem.peak == 4000 + 8000
    assert mem.current == 4000 + 2000 and c.numel() == 500
