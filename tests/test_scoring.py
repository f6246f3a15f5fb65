"""Label scoring equals the full-vocabulary computation restricted to the label tokens."""

from __future__ import annotations

import pytest
import torch

from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError
from emotune.methods.base import base_model_of
from emotune.models.batching import length_batches
from emotune.models.prompts import PromptBuilder
from emotune.models.recogniser import build_recogniser
from emotune.models.scoring import Batch, LabelHead, verbaliser_token_ids
from helpers import tiny_config

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TEXTS = ["a wonderful film", "i hated it and it was boring from start to end", "good"]


@pytest.mark.parametrize("method", ["zero-shot", "lora", "dora", "ia3", "ptuning-v2", "prompt-tuning"])
def test_label_logits_match_full_vocabulary_forward(tiny_model: str, sentiment_files, tmp_path, method) -> None:
    cfg = tiny_config(tiny_model, sentiment_files, str(tmp_path / "r"), method=method)
    if hasattr(cfg.method, "calibrate"):
        cfg.method.calibrate = False
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    rec.model.eval()
    rows = rec.encode([Example(t) for t in TEXTS])
    batch = rec.collate(rows)
    with torch.no_grad():
        ours = rec.label_logits(batch)
        # PEFT's own forward (full LM head over every position) is the reference.
        full = rec.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    offset = full.shape[1] - batch.input_ids.shape[1]  # prompt tuning prepends virtual tokens
    ids = rec.head.flat_ids
    ref = torch.stack([full[i, offset + int(batch.last_index[i]), ids] for i in range(len(TEXTS))])
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_scores(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), method="zero-shot")
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    together = rec.probabilities([Example(t) for t in TEXTS], batch_size=3)
    alone = torch.cat([rec.probabilities([Example(t)], batch_size=1) for t in TEXTS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together.sum(-1), torch.ones(len(TEXTS)))


def test_calibration_makes_content_free_input_uniform(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), method="zero-shot")
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    probs = rec.probabilities([Example("N/A")])
    torch.testing.assert_close(probs, torch.full((1, 2), 0.5), atol=1e-5, rtol=0)
    assert rec.head.bias.abs().sum() > 0


def test_multiword_verbaliser_is_logsumexp() -> None:
    head = LabelHead([[[0], [2]], [[1]]])
    weight = torch.eye(3)
    hidden = torch.tensor([[1.0, 2.0, 3.0]])
    out = head(hidden, weight)
    expected = torch.tensor([[torch.logsumexp(torch.tensor([1.0, 3.0]), 0), 2.0]])
    torch.testing.assert_close(out, expected)


def test_shared_first_token_is_rejected(tiny_gemma: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma)
    labels = LabelSet(("a", "b"), {"en": [["good"], ["good"]]})
    with pytest.raises(EmotuneError, match="same token"):
        verbaliser_token_ids(tok, labels, PromptBuilder(labels))


def test_batch_padding_and_last_index() -> None:
    batch = Batch.from_ids([[5, 6, 7], [8]], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch.last_index.tolist() == [2, 0]


def test_length_batches_cover_every_index_once() -> None:
    batches = length_batches([3, 9, 1, 7, 5], 2)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert batches[0] == [1, 3]


def test_output_weight_is_tied_for_gemma(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), method="lora")
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    base = base_model_of(rec.model)
    assert base.get_output_embeddings().weight.data_ptr() == base.get_input_embeddings().weight.data_ptr()


# "very" starts two labels: only whole-word scoring can tell them apart.
PHRASES = LabelSet(("negative", "neutral", "positive"), {"en": [["very bad"], ["neutral"], ["very good", "great"]]})


def reference_word_scores(rec, texts: list[str]) -> torch.Tensor:
    """Each label's log-sum-exp over its words of log p(word | prompt), by one plain LM forward per word."""
    scores = torch.empty(len(texts), len(PHRASES))
    model = base_model_of(rec.model)
    for i, text in enumerate(texts):
        prompt = rec.encode([Example(text)])[0]
        for k, words in enumerate(PHRASES.words("en")):
            per_word = []
            for word in words:
                ids = rec.tokenizer(" " + word, add_special_tokens=False).input_ids
                logp = model(input_ids=torch.tensor([prompt + ids])).logits[0].log_softmax(-1)
                per_word.append(sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(ids)))
            scores[i, k] = torch.logsumexp(torch.stack(per_word), 0)
    return scores


@pytest.mark.parametrize("method", ["zero-shot", "ptuning-v2"])
def test_whole_word_scoring_is_the_words_probability(tiny_gemma: str, sentiment_files, tmp_path, method) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), method=method)
    cfg.data.label_tokens = "all"
    if hasattr(cfg.method, "calibrate"):
        cfg.method.calibrate = False
    rec = build_recogniser(cfg, PHRASES, "en", "sentiment")
    assert rec.head.scores_whole_words
    with torch.no_grad():
        ours = rec.label_logits(rec.collate(rec.encode([Example(t) for t in TEXTS]))).log_softmax(-1)
        if method == "zero-shot":
            torch.testing.assert_close(ours, reference_word_scores(rec, TEXTS).log_softmax(-1), atol=1e-4, rtol=1e-4)
    # Padding and batch composition change nothing (the extended rows overwrite only padding).
    together = rec.probabilities([Example(t) for t in TEXTS], batch_size=3)
    alone = torch.cat([rec.probabilities([Example(t)], batch_size=1) for t in TEXTS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together, ours.exp(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["zero-shot", "lora"])
def test_cached_continuations_equal_copied_prompts(tiny_model: str, sentiment_files, tmp_path, method) -> None:
    """Inference extends each prompt from its key/value cache; training copies the prompt once
    per word: both give the same label logits, padded rows and shorter words included. A batch
    wider than a sliding window (the tiny Gemma's is 64 tokens) copies the prompts instead, since
    a sliding layer's cache of a short right-padded row would hold only padding."""
    cfg = tiny_config(tiny_model, sentiment_files, str(tmp_path / "r"), method=method)
    cfg.data.label_tokens = "all"
    if hasattr(cfg.method, "calibrate"):
        cfg.method.calibrate = False
    rec = build_recogniser(cfg, PHRASES, "en", "sentiment")
    assert rec.method.caches_prompts and rec.head.scores_whole_words
    rec.model.eval()
    span = rec.head.long_words.shape[1]
    short = rec.collate(rec.encode([Example(t) for t in TEXTS]))
    wide = rec.collate(rec.encode([Example(t) for t in [*TEXTS, " ".join(["a wonderful film"] * 30)]]))
    sliding = getattr(base_model_of(rec.model).config, "sliding_window", None) is not None
    with torch.no_grad():
        assert rec.scorer.reads_cache(short.input_ids.shape[1] + span)
        assert rec.scorer.reads_cache(wide.input_ids.shape[1] + span) != sliding
        cached = [rec.label_logits(b) for b in (short, wide)]
    with torch.enable_grad():
        copied = [rec.label_logits(b).detach() for b in (short, wide)]
    for ours, reference in zip(cached, copied, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_first_token_scoring_rejects_labels_sharing_a_first_token(tiny_gemma: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma)
    with pytest.raises(EmotuneError, match="label_tokens: all"):
        verbaliser_token_ids(tok, PHRASES, PromptBuilder(PHRASES))
    whole = verbaliser_token_ids(tok, PHRASES, PromptBuilder(PHRASES), whole_words=True)
    assert [len(w) for w in whole[0] + whole[2]] == [2, 1, 2]


def test_whole_word_training_learns(tiny_gemma: str, sentiment_files, tmp_path) -> None:
    from emotune.pipeline import run

    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), method="lora", epochs=8, patience=8)
    cfg.data.labels = ["negative", "positive"]
    cfg.data.verbalisers = [["very bad"], ["very good"]]
    cfg.data.label_tokens = "all"
    metrics = run(cfg)
    assert metrics["accuracy"] >= 0.75
