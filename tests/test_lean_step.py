"""The training step's host-side overhead: no host syncs of emotune's own, padding that changes no
score (so batches can be bucketed for a compiled decoder), and compiled steps equal to eager."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from archs import ARCHITECTURES, build_arch
from conftest import NEGATIVE, POSITIVE, build_tokenizer
from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet
from emotune.models.recogniser import Recogniser, build_recogniser
from emotune.models.scoring import epoch_batches
from emotune.planning.measure import HOST_SYNCS, OperatorCount
from emotune.training.trainer import Trainer

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TEXTS = POSITIVE + NEGATIVE
EXAMPLES = [Example(t, int(i < len(POSITIVE))) for i, t in enumerate(TEXTS)]


def recogniser(model: str, method: str = "lora", **runtime: Any) -> Recogniser:
    # No dropout: eager and compiled code draw different random masks.
    options = {"prompt_length": 4} if method in ("ptuning-v2", "prompt-tuning") else {"dropout": 0.0}
    cfg = RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": method, **options},
            "runtime": {"precision": "fp32", "device": "cpu", **runtime},
            "train": {"batch_size": 4, "lr": 1e-2},
        }
    ).validate()
    torch.manual_seed(0)
    return build_recogniser(cfg, LABELS, "en", "sentiment")


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def any_arch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp(f"pad-{request.param}")
    build_arch(request.param, folder, len(build_tokenizer(folder)))
    return str(folder)


@pytest.mark.parametrize("method", ["lora", "ptuning-v2", "prompt-tuning"])
def test_padding_changes_no_score(any_arch: str, method: str) -> None:
    """Right-padded rows scored without a padding mask (causal attention alone) score as alone."""
    rec = recogniser(any_arch, method)
    together = rec.probabilities(EXAMPLES, batch_size=len(EXAMPLES))  # one batch, rows of many lengths
    alone = torch.cat([rec.probabilities([ex], batch_size=1) for ex in EXAMPLES])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    rec.bucket = 32  # wider padding still, as a compiled decoder gets
    torch.testing.assert_close(rec.probabilities(EXAMPLES, batch_size=5), alone, rtol=1e-4, atol=1e-5)


class _SyncSites(TorchDispatchMode):
    """Where each operator that reads a tensor's value on the host was called from."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket.__name__ in HOST_SYNCS:
            self.sites.append(" <- ".join(f"{f.filename}:{f.name}" for f in traceback.extract_stack()[-12:]))
        return func(*args, **(kwargs or {}))


def test_the_training_step_reads_nothing_back_to_the_host(tiny_gemma: str) -> None:
    rec = recogniser(tiny_gemma)
    trainer = Trainer(rec, EXAMPLES, rec_settings(rec))
    rec.model.train()
    trainer.micro_step([0, 1, 2, 3])
    with _SyncSites() as syncs:
        for batch in ([4, 5, 6, 7], [8, 9, 10, 11]):  # the second one is an optimizer step
            trainer.micro_step(batch)
    # transformers' mask setup checks the positions for packed sequences (one host read per
    # attention type; skipped under torch.compile); nothing of emotune's own reads back.
    assert all("masking_utils" in site for site in syncs.sites), syncs.sites
    assert len(syncs.sites) <= 2 * 2


def rec_settings(rec: Recogniser) -> Any:
    from emotune.config import TrainConfig

    return TrainConfig(batch_size=4, grad_accum=2, lr=1e-2)


def test_the_step_counts_operators_of_forward_backward_and_optimizer(tiny_gemma: str) -> None:
    rec = recogniser(tiny_gemma)
    trainer = Trainer(rec, EXAMPLES, rec_settings(rec))
    with OperatorCount() as ops:
        trainer.micro_step([0, 1, 2, 3])
    assert ops.counts["mm"] > 0 and ops.views > 0 and ops.total > ops.views
    assert "_fused_adamw_" not in ops.counts  # accumulating: no optimizer step yet
    with OperatorCount() as ops:
        trainer.micro_step([4, 5, 6, 7])
    assert ops.counts.get("_fused_adamw_") == 1  # one fused update for every parameter


@pytest.mark.slow
def test_a_compiled_decoder_trains_and_scores_like_eager(tiny_gemma: str) -> None:
    import torch._dynamo
    from torch._dynamo.utils import counters

    results = []
    for compiled in (False, True):
        torch._dynamo.reset()
        counters.clear()
        rec = recogniser(tiny_gemma, compile=compiled, compile_bucket=8, max_length=64)
        trainer = Trainer(rec, EXAMPLES, rec_settings(rec))
        rec.model.train()
        for batch in epoch_batches([len(r) for r in trainer.rows], 4, 0) * 2:
            trainer.micro_step(batch)
        results.append((trainer.take_mean_loss(), rec.probabilities(EXAMPLES, batch_size=4)))
        graphs = counters["stats"]["unique_graphs"]
    (loss, probs), (loss_c, probs_c) = results
    assert loss_c == pytest.approx(loss, abs=1e-4)
    torch.testing.assert_close(probs_c, probs, atol=1e-4, rtol=1e-4)
    # Rows of 9-17 tokens in buckets of 8: widths 16 and 24, in training and in scoring.
    assert 0 < graphs <= 4, graphs


def test_batch_size_auto_halves_until_the_step_fits(tiny_gemma: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import emotune.training.trainer as train

    cfg = RunConfig.from_dict({"model": {"name": tiny_gemma}, "train": {"batch_size": "auto"}}).validate()
    assert cfg.train.batch_size == train.AUTO_BATCH
    rec = recogniser(tiny_gemma)
    monkeypatch.setitem(train.AUTO_START, False, 16)  # search on the CPU as a GPU would
    loss = Trainer.loss

    def loss_that_fits_4(self: Trainer, idx: list[int]) -> torch.Tensor:
        if len(idx) > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")  # what accelerate retries on
        return loss(self, idx)

    monkeypatch.setattr(Trainer, "loss", loss_that_fits_4)
    trainer = Trainer(rec, EXAMPLES, cfg.train)
    assert trainer.settings.batch_size == 4 and trainer.recipe["batch_size"] == 4
    assert trainer.batches_per_epoch == 4 and all(p.grad is None for p in trainer.params)


def test_plan_of_batch_size_auto_is_the_largest_that_fits(capsys: pytest.CaptureFixture[str]) -> None:
    from emotune.cli import main

    main(["plan", "--model", "qwen2.5-7b", "--quantization", "4bit", "--batch-size", "auto", "--gpu-memory", "24GiB"])
    out = capsys.readouterr().out
    batch = int(out.split("batch ")[1].split(" x")[0])
    assert batch >= 16 and "fits: yes" in out
