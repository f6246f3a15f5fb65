"""A backbone, a method, a prompt and a label head: the object train, evaluate and predict share."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from emotune.calibration import ClassScaling, calibrated
from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet
from emotune.distributed import gather_rows, my_share, resolve_device, shares_work
from emotune.errors import EmotuneError
from emotune.methods import Method, get_method
from emotune.methods.base import base_model_of, decoder_of
from emotune.models.backbones import load_backbone
from emotune.models.batching import length_batches
from emotune.models.decisions import decide_labels
from emotune.models.precision import (
    WeightFormat,
    autocast_dtype,
    forward_context,
    keep_trainable_fp32,
    resolve_format,
    warn_if_emulated_bf16,
)
from emotune.models.prompts import PromptBuilder
from emotune.models.scoring import (
    Batch,
    LabelHead,
    continuation_inputs,
    continuation_rows,
    encode_examples,
    output_weight,
    verbaliser_token_ids,
)

CONTENT_FREE = "N/A"

log = logging.getLogger(__name__)


def causal_only(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """None, the decoder's own causal mask, in place of a right-padded batch's padding mask.

    Rows are right-padded and only positions up to each row's last real token are read, which
    causal attention keeps from seeing the padding after them: the padding mask changes nothing
    that is read. Leaving it out spares transformers building a padding mask per layer type and
    lets attention take its causal path (on a GPU, flash attention, which takes no explicit mask).
    An ONNX export keeps the mask, which is an input of the exported graph.
    """
    return attention_mask if torch.onnx.is_in_onnx_export() else None


class LabelScorer(nn.Module):
    """Backbone (wrapped by its method) plus label head as one module.

    It is the unit Accelerate wraps for DDP/FSDP: its forward runs the whole scoring path, so
    gradient synchronisation sees every trainable parameter.
    """

    def __init__(self, model: nn.Module, method: Method, head: LabelHead) -> None:
        super().__init__()
        self.model, self.head = model, head
        self.method = method

    def hidden_at(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Final hidden states at ``positions`` (batch,) or (batch, k)."""
        hidden = self.method.hidden_states(self.model, input_ids, causal_only(attention_mask))
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if positions.dim() == 2:
            rows = rows[:, None]
        return hidden[rows, positions]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Label logits (batch, num_labels) from the hidden states at ``positions`` (batch,)."""
        weight = output_weight(base_model_of(self.model))
        if not self.head.scores_whole_words:
            picked = self.hidden_at(input_ids, attention_mask, positions)
            with torch.autocast(picked.device.type, enabled=False):  # the head stays fp32 under autocast
                return self.head(picked, weight)
        if self.reads_cache(input_ids.shape[1] + self.head.long_words.shape[1]):
            picked, at_read, targets = self.cached_continuations(input_ids, attention_mask, positions)
        else:
            ids, mask, read, targets = continuation_rows(input_ids, attention_mask, positions, self.head.long_words)
            hidden = self.method.hidden_states(self.model, ids, causal_only(mask))
            # Every extended row starts with its whole prompt, so the first block also gives the
            # answer position: no separate pass over the bare prompts.
            picked = hidden[torch.arange(input_ids.shape[0], device=hidden.device), positions]
            at_read = hidden.gather(1, read[..., None].expand(-1, -1, hidden.shape[-1]))
        with torch.autocast(picked.device.type, enabled=False):
            return self.head(picked, weight, self.head.continuation_logprobs(at_read, targets, weight))

    def reads_cache(self, width: int) -> bool:
        """Whether multi-token words are read from the prompts' key/value cache: in inference, for a
        method whose prompts the decoder caches, and while the batch's padded width plus the words
        fits the backbone's sliding window (a sliding layer's cache keeps only the last window of
        positions, which for a short right-padded row would be padding)."""
        if not self.method.caches_prompts or torch.is_grad_enabled() or torch.onnx.is_in_onnx_export():
            return False
        window = getattr(base_model_of(self.model).config, "sliding_window", None)
        return not isinstance(window, int) or width <= window

    def cached_continuations(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The answer-position states, and the long words' states read from the prompts' key/value
        cache (`emotune.models.scoring.continuation_inputs`), with the tokens those predict."""
        hidden, cache = self.method.cached_states(self.model, input_ids)
        picked = hidden[torch.arange(input_ids.shape[0], device=hidden.device), positions]
        ids, mask, position_ids, targets = continuation_inputs(attention_mask, positions, self.head.long_words)
        num = self.head.long_words.shape[0]
        cache.batch_select_indices(torch.arange(input_ids.shape[0], device=hidden.device).repeat(num))
        return picked, self.method.continue_states(self.model, ids, mask, position_ids, cache), targets


@dataclass
class Recogniser:
    """Scores an emotion/sentiment label set with a (customised) causal LM."""

    model: nn.Module
    method: Method
    tokenizer: PreTrainedTokenizerBase
    labels: LabelSet
    prompt: PromptBuilder
    head: LabelHead
    max_length: int = 128
    precision: str = "auto"
    multi_label: bool = False
    threshold: float = 0.5
    eval_batch_size: int = 0
    weights: WeightFormat = field(default_factory=lambda: WeightFormat("float32"))
    #: Batch widths are rounded up to a multiple of this (0: none); set with a compiled decoder.
    bucket: int = 0
    #: Divides the label logits before softmax/sigmoid: a trained run's, fitted on dev
    #: (`emotune.calibration`); 1 leaves the probabilities as the model gives them.
    temperature: float = 1.0
    #: Vector scaling, for a run with a fixed label set that chose it over the temperature.
    class_scaling: ClassScaling | None = None
    #: Whether each scoring call is split between the launched processes (``accelerate launch``);
    #: off while each process scores rows of its own (`Predictor.scoring_alone`).
    split_work: bool = True

    def __post_init__(self) -> None:
        self.scorer = LabelScorer(self.model, self.method, self.head)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def segments(self) -> torch.Tensor | None:
        """For each label, the corpus it belongs to when one run trains on several corpora
        (`emotune.models.multi`); None for a single corpus."""
        return None

    @property
    def batch_size(self) -> int:
        """Texts per scoring pass: ``runtime.eval_batch_size``, else 16 on a CPU and 256 on a GPU,
        where small batches leave the device idle between launches."""
        return self.eval_batch_size or (256 if self.device.type == "cuda" else 16)

    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype forward passes autocast to (None: none); see `emotune.models.precision.autocast_dtype`."""
        half = None if self.weights.quantized else getattr(torch, self.weights.dtype)
        return autocast_dtype(self.precision, self.device, half)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed precision where the hardware supports it, and a GPU's attention kernels, for forward passes."""
        return forward_context(self.device.type, self.autocast_dtype())

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        """Prompt token ids for each example."""
        return encode_examples(self.tokenizer, self.prompt, examples, self.max_length)

    def collate(self, rows: Sequence[Sequence[int]]) -> Batch:
        """Right-pads rows into a batch on the model's device."""
        return Batch.from_ids(rows, self.tokenizer.pad_token_id, self.bucket).to(self.device)

    def hidden_at(self, batch: Batch, positions: torch.Tensor) -> torch.Tensor:
        """Final hidden states at ``positions`` (batch,) or (batch, k)."""
        return self.scorer.hidden_at(batch.input_ids, batch.attention_mask, positions)

    def label_logits(self, batch: Batch) -> torch.Tensor:
        """Label logits (batch, num_labels) at each row's answer position."""
        with self.autocast():
            return self.scorer(batch.input_ids, batch.attention_mask, batch.last_index)

    def to_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over labels (one label per text) or one sigmoid per label (multi-label), of the
        logits calibrated as the run chose (its temperature, or a scale and bias per label)."""
        scaled = calibrated(logits.float(), self.temperature, self.class_scaling)
        return scaled.sigmoid() if self.multi_label else scaled.softmax(-1)

    @torch.no_grad()
    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> torch.Tensor:
        """Label probabilities (n, num_labels), batched by length, in the input order.

        Under ``accelerate launch`` each process scores its share and the rows are gathered, so
        every process returns the whole matrix.
        """
        return self.to_probabilities(self.scores(examples, batch_size))

    @torch.no_grad()
    def scores(self, examples: Sequence[Example], batch_size: int | None = None) -> torch.Tensor:
        """Label logits (n, num_labels) before the temperature, in the input order (see `probabilities`)."""
        self.model.eval()
        batch_size = batch_size or self.batch_size
        split = self.split_work and shares_work()
        mine = my_share(range(len(examples))) if split else list(range(len(examples)))
        rows = self.encode([examples[i] for i in mine])
        order: list[int] = []
        parts: list[torch.Tensor] = []
        batches = self.iter_batches(rows, batch_size)
        # Results stay on the device until the end: one host copy, not one per batch.
        quiet = len(rows) <= 8 * batch_size or None  # a bar only for long runs, and only on a terminal
        for idx, batch in tqdm(batches, total=-(-len(rows) // batch_size), desc="score", unit="batch", disable=quiet):
            order.extend(mine[i] for i in idx)
            parts.append(self.label_logits(batch).float())
        local = torch.cat(parts).cpu() if parts else torch.empty(0, len(self.labels))
        scores = torch.empty(len(examples), len(self.labels))
        if not split:
            scores[torch.tensor(order, dtype=torch.long)] = local
            return scores
        merged = gather_rows(dict(zip(order, local.tolist(), strict=True)))
        for i, row in merged.items():
            scores[i] = torch.tensor(row)
        return scores

    def decide(self, probs: torch.Tensor) -> list[list[int]]:
        """Predicted label indices per row, best first (see `emotune.models.decisions.decide_labels`)."""
        return decide_labels(probs.tolist(), self.multi_label, self.threshold)

    @torch.no_grad()
    def calibrate(self) -> None:
        """Sets the head's bias from its label scores on a content-free input.

        The base LLM prefers some label words whatever the input (it picks one label for
        almost everything zero-shot); subtracting that prior is contextual calibration. For
        multi-label scoring the raw logits are subtracted, so a content-free text scores 0.5
        on every label and training starts from an even point instead of a saturated sigmoid.
        """
        self.head.bias.zero_()
        logits = self.label_logits(self.collate(self.encode([Example(CONTENT_FREE)])))[0].float()
        self.head.bias.copy_(logits if self.multi_label else logits.log_softmax(-1))

    def relabelled(self, labels: LabelSet, language: str, task: str, whole_words: bool = False) -> Recogniser:
        """A recogniser of another label set on this one's backbone and adapter (nothing reloads).

        The prompt lists ``labels`` and their words are scored with the backbone's own rows; the
        head's bias and the temperature start neutral (the caller calibrates for these labels).

        Raises:
            EmotuneError: If this recogniser's label head was trained (it has no rows for new labels).
        """
        if self.head.rows is not None:
            raise EmotuneError("a run whose label head was trained scores only its own labels")
        prompt = PromptBuilder(labels, language, task)
        ids = verbaliser_token_ids(self.tokenizer, labels, prompt, whole_words=whole_words)
        head = LabelHead(ids, getattr(self.head, "softcap", None)).to(self.device)
        rec = Recogniser(self.model, self.method, self.tokenizer, labels, prompt, head, self.max_length, self.precision)
        rec.weights, rec.bucket, rec.eval_batch_size = self.weights, self.bucket, self.eval_batch_size
        return rec

    def iter_batches(self, rows: list[list[int]], batch_size: int) -> Iterator[tuple[list[int], Batch]]:
        """Length-bucketed batches of ``rows`` with their indices."""
        for idx in length_batches([len(r) for r in rows], batch_size):
            yield idx, self.collate([rows[i] for i in idx])


def compile_decoder(wrapped: nn.Module, widths: int) -> None:
    """Compiles the decoder stack in place (``torch.compile``, static shapes).

    Every (batch size, bucketed width) pair is one graph; ``widths`` bounds the cache so a long
    run never falls back to eager silently. The label head and the loss stay eager: they are a
    handful of operators on a few rows.
    """
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, widths)
    decoder_of(wrapped).compile(dynamic=False)


def prepare_kbit(model: nn.Module) -> None:
    """PEFT's k-bit preparation of a quantised backbone for training: frozen, with its norms and
    other unquantised weights in fp32. Checkpointing is left to the trainer, which turns it on
    after the method is attached (PEFT refuses prefix tuning on a model that already has it)."""
    from peft import prepare_model_for_kbit_training

    prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def build_recogniser(
    cfg: RunConfig,
    labels: LabelSet,
    language: str,
    task: str,
    adapter_dir: Path | None = None,
    *,
    multi_label: bool = False,
    head_bias: Sequence[float] | None = None,
    head_rows: torch.Tensor | None = None,
    threshold: float = 0.5,
) -> Recogniser:
    """Loads the backbone and attaches a fresh method (training) or a saved adapter.

    Args:
        cfg: The run configuration.
        labels: The task's label set (verbalisers already resolved).
        language: Prompt language ("en" or "zh").
        task: Task word for the prompt ("sentiment" or "emotion").
        adapter_dir: A saved adapter to load instead of fresh parameters.
        multi_label: Score each label with its own sigmoid instead of one softmax.
        head_bias: The label bias a multi-label run was trained with (from its run.json);
            computed by calibration when omitted.
        head_rows: A trained label head's rows (the run's ``label_head.safetensors``).
        threshold: Multi-label decision threshold on each label's probability.
    """
    runtime = cfg.runtime
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    device = resolve_device(runtime.device)
    fmt = resolve_format(cfg.model.dtype, cfg.model.quantization, device)  # before any weights load
    warn_if_emulated_bf16(fmt.dtype, runtime.precision, device)
    model, tokenizer = load_backbone(cfg.model.name, fmt, device, trust_remote_code=cfg.model.trust_remote_code)
    method = get_method(cfg.method)
    prompt = PromptBuilder(labels, language, task, cfg.data.template)
    head = LabelHead(
        verbaliser_token_ids(tokenizer, labels, prompt, whole_words=cfg.data.label_tokens == "all"),
        getattr(model.config, "final_logit_softcapping", None),
    ).to(device)
    training = adapter_dir is None and method.trainable
    if training and fmt.quantized:
        prepare_kbit(model)
    wrapped = method.load(model, adapter_dir) if adapter_dir is not None else method.attach(model, tokenizer)
    keep_trainable_fp32(wrapped)
    if head_rows is not None or (adapter_dir is None and cfg.train.label_head == "trainable"):
        head.make_trainable(output_weight(base_model_of(wrapped)), head_rows)
    rec = Recogniser(wrapped, method, tokenizer, labels, prompt, head, runtime.max_length, runtime.precision)
    rec.weights = fmt
    if runtime.compile:
        compile_decoder(wrapped, runtime.max_length + 64)
        rec.bucket = runtime.compile_bucket
    rec.multi_label, rec.threshold, rec.eval_batch_size = multi_label, threshold, runtime.eval_batch_size
    if head_bias is not None:
        head.bias.copy_(torch.tensor(list(head_bias), dtype=head.bias.dtype))
    elif multi_label or method.calibrates:
        rec.calibrate()
    return rec
