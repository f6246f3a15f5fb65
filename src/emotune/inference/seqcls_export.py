"""``emotune export --format seq-cls``: the run as the backbone's ``*ForSequenceClassification``,
the model class the serving engines users run load as a classifier (transformers'
``pipeline("text-classification")``, vLLM's pooling runner and ``/classify``, SGLang's
``/v1/classify``).

emotune scores a label by the logit of its word's first token at the prompt's last position:
``hidden_last @ output_embedding[token]``. A classification head does the same with its
``score`` rows, so the export is exact: the adapter merged into the backbone (LoRA, DoRA, IA3;
zero-shot needs none), ``score`` row *k* the output-embedding row of label *k*'s token (or a
trained label head's row), divided by the run's temperature. Sequence classifiers read the last
token that is not padding, which is the prompt's last token. ``config.json`` carries
``id2label`` and an ``emotune`` block: the prompt's head and tail as text and token ids (for
engines that take ids), the label bias (calibration, prior correction; zero for a plain trained
run) and the temperature already folded into ``score``. The exported tokenizer wraps every text
in the prompt itself (a post-processor: `wrapping`), so raw text goes in.

What a linear head cannot hold is refused in one line: several words for one label (scored by
their log-sum-exp), a multi-token word scored whole, or a backbone that soft-caps its final
logits (Gemma 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emotune.calibration import calibrated
from emotune.errors import EmotuneError
from emotune.methods.base import base_model_of
from emotune.models.recogniser import Recogniser
from emotune.models.scoring import output_weight
from emotune.rundir import SeqClsBlock


def label_rows(rec: Recogniser) -> torch.Tensor:
    """The (labels, hidden) rows a linear ``score`` head needs to reproduce the run's label logits.

    Raises:
        EmotuneError: When the run's scoring is not one row per label.
    """
    head = rec.head
    if head.softcap:
        raise EmotuneError(
            f"this backbone soft-caps its final logits ({head.softcap}); a linear classification head cannot "
            "reproduce that: use fmt merged or onnx",
            settings=("fmt",),
        )
    if head.rows is not None:
        return head.rows.detach().float()
    if not head.one_word_per_label or head.scores_whole_words:
        raise EmotuneError(
            "a label is scored by several words or by a multi-token word, which is no single classification-head "
            "row: use fmt merged or onnx (or one single-token verbaliser per label)",
            settings=("fmt",),
        )
    return output_weight(base_model_of(rec.model)).index_select(0, head.flat_ids).detach().float()


def sequence_classifier(merged: Any, rec: Recogniser, rows: torch.Tensor) -> Any:
    """The backbone's ``*ForSequenceClassification`` with ``merged``'s decoder and ``rows`` as ``score``.

    Raises:
        EmotuneError: For an architecture transformers has no sequence classifier for.
    """
    from transformers import AutoModelForSequenceClassification

    config = merged.config.__class__.from_dict(merged.config.to_dict())
    names = list(rec.labels.names)
    config.num_labels = len(names)
    config.id2label, config.label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    config.pad_token_id = rec.tokenizer.pad_token_id
    config.problem_type = "multi_label_classification" if rec.multi_label else "single_label_classification"
    try:
        seq = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    except ValueError as err:
        raise EmotuneError(f"transformers has no sequence classifier for '{config.model_type}': {err}") from None
    body = getattr(seq, seq.base_model_prefix)
    missing, unexpected = body.load_state_dict(getattr(merged, merged.base_model_prefix).state_dict(), strict=False)
    if missing or unexpected:
        raise EmotuneError(f"the merged backbone does not fit {type(seq).__name__} ({(missing or unexpected)[:2]})")
    score = seq.score if hasattr(seq, "score") else seq.classifier
    with torch.no_grad():
        score.weight.copy_(rows.to(score.weight.device) * score_factors(rec).to(score.weight.device)[:, None])
    return seq.eval()


def score_factors(rec: Recogniser) -> torch.Tensor:
    """What each label's ``score`` row is multiplied by: the run's per-label scale (vector
    scaling), else one over its temperature."""
    if rec.class_scaling is not None:
        return torch.tensor(rec.class_scaling.scale, dtype=torch.float32)
    return torch.full((len(rec.labels.names),), 1.0 / rec.temperature)


def logit_offsets(rec: Recogniser) -> list[float]:
    """What a consumer subtracts from the exported logits: the label bias (prior correction,
    multi-label calibration) through the calibration, and vector scaling's per-label bias, which a
    bias-free ``score`` layer cannot hold. Zero for a run with neither."""
    bias = rec.head.bias.detach().double().cpu()
    return [float(-v) for v in calibrated(-bias, rec.temperature, rec.class_scaling)]


def emotune_block(rec: Recogniser, run: str) -> dict[str, Any]:
    """What ``config.json``'s ``emotune`` block records for a client."""
    head, tail = rec.prompt.render()
    # emotune tokenises head, text and tail apart; a string joined first can merge tokens at the seams,
    # so the exact inputs are bos + head ids + the text's ids (no special tokens) + tail ids.
    head_ids, tail_ids = rec.prompt.frame_ids(rec.tokenizer)
    return SeqClsBlock(
        run=run,
        method=rec.method.name,
        prompt_head=head,
        prompt_tail=tail,
        prompt_head_ids=list(head_ids),
        prompt_tail_ids=list(tail_ids),
        add_bos=rec.tokenizer.bos_token_id is not None,
        max_length=rec.max_length,
        label_bias=logit_offsets(rec),
        temperature=rec.temperature,
        multi_label=rec.multi_label,
    ).to_dict()


def wrapping(tokenizer: Any, head_ids: list[int], tail_ids: list[int]) -> Any:
    """A ``tokenizers`` post-processor that turns a text's ids into emotune's prompt:
    ``[bos] + head ids + text ids + tail ids``, so raw text in any consumer of the exported
    tokenizer (a pipeline, ``AutoTokenizer``, a serving engine) gets exactly the run's inputs.

    The head and tail are special pieces of several ids each, so the text is tokenised alone,
    as emotune does (a string wrapped first can merge tokens at the seams).
    """
    from tokenizers import processors

    bos_id = tokenizer.bos_token_id
    pieces = [("emotune_bos", [bos_id] if bos_id is not None else []), ("emotune_head", head_ids)]
    pieces.append(("emotune_tail", tail_ids))
    specials = [
        {"id": name, "ids": list(ids), "tokens": tokenizer.convert_ids_to_tokens(list(ids))}
        for name, ids in pieces
        if ids
    ]
    single = " ".join([*(name for name, ids in pieces[:2] if ids), "$A", *(["emotune_tail"] if tail_ids else [])])
    return processors.TemplateProcessing(single=single, special_tokens=specials)


def save_wrapping_tokenizer(tokenizer: Any, head_ids: list[int], tail_ids: list[int], folder: Path) -> None:
    """Saves ``tokenizer`` into ``folder`` with the prompt-wrapping post-processor (`wrapping`);
    the tokenizer in memory is left as it was.

    Raises:
        EmotuneError: For a tokenizer without a fast (``tokenizers``) backend.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EmotuneError("the tokenizer has no fast backend to carry the prompt; use fmt merged", settings=("fmt",))
    before = backend.post_processor
    backend.post_processor = wrapping(tokenizer, head_ids, tail_ids)
    try:
        tokenizer.save_pretrained(str(folder))
    finally:
        backend.post_processor = before


def export_seq_cls(run: str, rec: Recogniser, tmp: Path, merged: Any) -> str:
    """Writes the sequence classifier, its tokenizer and the ``emotune`` block into ``tmp``;
    returns the export's note."""
    seq = sequence_classifier(merged, rec, label_rows(rec))
    seq.config.emotune = emotune_block(rec, run)
    seq.save_pretrained(str(tmp), safe_serialization=True)
    head_ids, tail_ids = rec.prompt.frame_ids(rec.tokenizer)
    save_wrapping_tokenizer(rec.tokenizer, list(head_ids), list(tail_ids), tmp)
    note = (
        f"{type(seq).__name__} with {len(rec.labels)} label rows (calibration folded in); its tokenizer wraps raw text"
    )
    if any(logit_offsets(rec)):
        # A bias-free `score` layer cannot add per-label constants: consumers subtract them.
        note += "; the run's label bias is not in `score`: subtract config.json's emotune.label_bias from the logits"
    return note
