"""Ship a trained recogniser: a merged Hugging Face model, an ONNX label scorer, or a sequence
classifier for serving engines.

- ``merged``: the adapter folded into the backbone (PEFT ``merge_and_unload``), saved as a plain
  Hugging Face folder (safetensors, config, tokenizer) plus emotune's label metadata
  (``emotune.json``) and run files, so both ``transformers`` and `Predictor` load it.
  Methods that cannot merge (prompt tuning, P-Tuning v2) export their run with its adapter.
- ``onnx``: the label-scoring forward (token ids -> label logits; never the full-vocabulary
  output) as ``model.onnx``, optionally with dynamic int8 weights; `Predictor` runs it on
  ONNX Runtime without torch or PEFT.
- ``seq-cls``: the backbone's ``*ForSequenceClassification`` whose ``score`` rows are the label
  words' output rows (`emotune.inference.seqcls_export`), for transformers' text-classification
  pipeline, vLLM's and SGLang's classify endpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.inference.backends import SAME_FOLDER
from emotune.inference.onnx_backend import quantize_onnx
from emotune.inference.onnx_trace import trace_to_onnx
from emotune.inference.predict import Predictor
from emotune.methods.zero_shot import ZeroShotOptions
from emotune.models.generalist import DEFAULT_LABELS, resolve_run
from emotune.models.generalist import NAME as GENERALIST
from emotune.models.recogniser import LabelScorer, Recogniser
from emotune.models.text_pairs import is_student
from emotune.rundir import LABEL_HEAD, ExportMeta, RunMeta, check_replaceable, load_run
from emotune.storage import atomic_dir

FORMATS = ("merged", "onnx", "seq-cls")
RUN_FILES = ("run.json", "dataset_card.json")


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote."""

    output: str
    format: str
    merged: bool
    note: str


@dataclass
class ExportSource:
    """A recogniser to export and what describes it.

    Attributes:
        rec: The recogniser whose label scoring the export reproduces.
        cfg: The configuration it was built from (written, adjusted, into the export).
        meta: Its run metadata (``run.json``).
        name: Where it came from, as the export records it.
        folder: The run directory whose own files an export may copy (None: labels given at
            export, which no run's files describe).
    """

    rec: Recogniser
    cfg: RunConfig
    meta: RunMeta
    name: str
    folder: Path | None

    @classmethod
    def of_run(cls, run: str | Path) -> ExportSource:
        """A run directory or export, as trained (``generalist``: the shipped one, with its
        default labels)."""
        if str(run) == GENERALIST:
            return cls.of_labels(DEFAULT_LABELS, GENERALIST)
        # A quantised run is exported de-quantised: bitsandbytes' k-bit weights neither merge an
        # adapter losslessly nor trace to ONNX, so its adapter goes into the full-precision backbone.
        rec = Predictor.load(run, dequantize=True).recogniser
        if not isinstance(rec, Recogniser):
            raise EmotuneError(f"{run}: already an ONNX export; export the trained run instead")
        trained = load_run(run)
        cfg = RunConfig.from_yaml(trained.config_file, saved=True)
        return cls(rec, cfg, trained.meta, str(run), trained.folder)

    @classmethod
    def of_labels(
        cls,
        labels: str | Sequence[str],
        run: str | Path | None = None,
        *,
        model: str | None = None,
        task: str | None = None,
        language: str | None = None,
        frozen_backbone: bool = False,
    ) -> ExportSource:
        """A label set given at export time, scored as `Predictor.zero_shot` scores it: by
        ``run``'s adapter, by default the shipped generalist's, or by the frozen ``model``. The
        prompt's language is fixed in an export: ``language``, else the label names' script."""
        from emotune.inference.call_time import call_time_setup, default_adapter, setup_recogniser

        scorer = default_adapter(model, run, frozen_backbone)
        setup = call_time_setup(labels, model, resolve_run(scorer), task=task, language=language)
        # Quantised weights are de-quantised here as in `of_run` (the note says so).
        rec = setup_recogniser(setup, dequantize=True)
        labels_dict = setup.labels.to_dict()
        meta = RunMeta("labels", setup.language, setup.task, labels_dict, temperature=rec.temperature)
        return cls(rec, setup.cfg, meta, str(scorer or setup.cfg.model.name), None)


def export(
    source: ExportSource | str | Path, fmt: str, output: Path, *, quantize: bool = False, overwrite: bool = False
) -> ExportResult:
    """Exports a run directory (or ``generalist``), or a label set given at export time
    (`ExportSource.of_labels`), as ``fmt`` into ``output`` (written atomically).

    Raises:
        EmotuneError: For an unknown format, an existing output without ``overwrite``, an output
            that is the run itself, or an ONNX export of a method that cannot be merged.
    """
    check_output(fmt, output, overwrite)
    if quantize and fmt != "onnx":
        raise EmotuneError(f"int8 weights (quantize) apply to the onnx format only, not {fmt}", settings=("quantize",))
    folder = _run_folder(source)
    if folder is not None and output.resolve() == folder.resolve():  # overwrite would delete the run
        raise EmotuneError(f"{output}: the run being exported; choose another output", settings=("output",))
    if not isinstance(source, ExportSource):
        if is_student(Path(source)):
            return _student(Path(source), fmt, output, quantize)
        source = ExportSource.of_run(source)
    writers = {
        "onnx": lambda tmp: _onnx(source, tmp, output, quantize),
        "seq-cls": lambda tmp: _seq_cls(source, tmp, output),
    }
    with atomic_dir(output) as tmp:
        result = writers.get(fmt, lambda tmp: _merged(source, tmp, output))(tmp)
    return dataclasses.replace(result, note=_noted(result.note, source, result.merged))


def _run_folder(source: ExportSource | str | Path) -> Path | None:
    """The run directory an export is made from; None for labels given at export and for the
    shipped generalist (a name, not a folder of the user's)."""
    if isinstance(source, ExportSource):
        return source.folder
    return None if str(source) == GENERALIST else Path(source)


def check_output(fmt: str, output: Path, overwrite: bool) -> None:
    """Refuses an unknown format, an existing non-empty ``output`` without ``overwrite``, or one
    emotune did not write (`emotune.rundir.check_replaceable`)."""
    if fmt not in FORMATS:
        raise EmotuneError(f"unknown export format '{fmt}'; expected one of {FORMATS}")
    if output.exists() and any(output.iterdir()):
        check_replaceable(output)
        if not overwrite:
            raise EmotuneError(f"{output}: exists; pass overwrite", settings=("overwrite",))


def _noted(note: str, source: ExportSource, merged: bool) -> str:
    """The export's note with what a reader should know of its source."""
    quantized = source.cfg.model.quantization
    if quantized != "none" and merged:
        note += f"; de-quantised: the adapter trained on {quantized} weights is merged into full precision"
    if source.folder is None:
        names = ", ".join(source.rec.labels.names)
        note += f"; labels {names}, scored by {source.name}, prompt in {source.meta.language}"
    return note


def _student(run: Path, fmt: str, output: Path, quantize: bool) -> ExportResult:
    """A distilled student: its ONNX form (it has no adapter to merge)."""
    from emotune.inference.student_export import export_student

    if fmt != "onnx":
        raise EmotuneError(
            f"{run}: a distilled student has no adapter to merge (student/ is a plain encoder); use fmt onnx",
            settings=("fmt",),
        )
    return ExportResult(str(output), "onnx", False, export_student(run, output, quantize))


def _merged(source: ExportSource, tmp: Path, output: Path) -> ExportResult:
    rec = source.rec
    # A trained label head stays a file: its rows would overwrite the label words' shared
    # output-embedding rows (tied to the input embedding in most small LLMs).
    if not can_merge(rec) or rec.head.rows is not None:
        what = "a trained label head" if rec.head.rows is not None else f"method '{rec.method.name}'"
        if source.folder is None:
            raise EmotuneError(
                f"{what} cannot be merged into the backbone, so a label set given at export cannot be exported"
            )
        for name in ("config.yaml", *RUN_FILES, LABEL_HEAD):
            if (source.folder / name).is_file():
                shutil.copy2(source.folder / name, tmp / name)
        shutil.copytree(source.folder / "adapter", tmp / "adapter")
        note = f"{what} cannot be merged into the backbone; exported its run with the adapter"
        return ExportResult(str(output), "merged", False, note)
    model = merged_model(rec)
    model.save_pretrained(str(tmp), safe_serialization=True)  # type: ignore[operator]
    rec.tokenizer.save_pretrained(str(tmp))
    write_exported_run(source, tmp, "merged")
    return ExportResult(str(output), "merged", True, f"{rec.method.name} merged into the backbone")


def _seq_cls(source: ExportSource, tmp: Path, output: Path) -> ExportResult:
    """The backbone's ``*ForSequenceClassification`` (`emotune.inference.seqcls_export`)."""
    from emotune.inference.seqcls_export import export_seq_cls, label_rows

    rec = source.rec
    _require_mergeable(rec, "seq-cls")
    label_rows(rec)  # refuses what one row per label cannot hold before anything is merged
    note = export_seq_cls(source.name, rec, tmp, merged_model(rec).float())
    return ExportResult(str(output), "seq-cls", True, note)


def _require_mergeable(rec: Recogniser, fmt: str) -> None:
    """Refuses a format that needs the adapter merged into the backbone's weights."""
    if not can_merge(rec):
        raise EmotuneError(
            f"method '{rec.method.name}' cannot be merged into the backbone, so it has no {fmt} export; "
            "use fmt merged (it keeps the adapter) or train a mergeable method (lora, dora, ia3)",
            settings=("fmt",),
        )


def can_merge(rec: Recogniser) -> bool:
    """Whether the run's adaptation can live in plain weights (a mergeable adapter, or none)."""
    return rec.method.mergeable or not rec.method.trainable


def merged_model(rec: Recogniser) -> nn.Module:
    """The backbone with the adapter folded into its weights (the plain model for zero-shot)."""
    merge = getattr(rec.model, "merge_and_unload", None)
    return merge() if callable(merge) else rec.model


def write_exported_run(source: ExportSource, folder: Path, fmt: str) -> None:
    """Run files that make ``folder`` loadable by `Predictor`, and ``emotune.json``: everything
    plain ``transformers`` code needs to reproduce the label logits."""
    rec, cfg = source.rec, copy.deepcopy(source.cfg)
    cfg.model.name = SAME_FOLDER
    cfg.model.quantization = "none"  # the folder holds full-precision weights (a quantised run is de-quantised)
    # The adaptation now lives in the weights; any calibration is in run.json's head_bias.
    cfg.method = ZeroShotOptions(calibrate=False)
    cfg.train.label_head = "frozen"  # an ONNX graph holds a trained head's rows as constants
    cfg.runtime.device = "auto"
    cfg.to_yaml(folder / "config.yaml")
    meta = dataclasses.replace(source.meta, head_bias=rec.head.bias.tolist())
    meta.exported_from = {"run": source.name, "method": rec.method.name}
    meta.save(folder)
    if source.folder is not None and (source.folder / "dataset_card.json").is_file():
        shutil.copy2(source.folder / "dataset_card.json", folder / "dataset_card.json")
    head, tail = rec.prompt.render()
    ExportMeta(
        format=fmt,
        labels=list(rec.labels.names),
        multi_label=rec.multi_label,
        threshold=rec.threshold,
        prompt_head=head,
        prompt_tail=tail,
        add_bos=rec.tokenizer.bos_token_id is not None,
        max_length=rec.max_length,
        label_token_ids=label_token_ids(rec),
        label_tokens="all" if rec.head.scores_whole_words else "first",
        label_word_ids=label_word_ids(rec),
        label_bias=rec.head.bias.tolist(),
        temperature=rec.temperature,
        trained_label_head=rec.head.rows is not None,
        how=HOW_WHOLE_WORDS if rec.head.scores_whole_words else HOW_FIRST_TOKEN,
    ).save(folder)


HOW_FIRST_TOKEN = (
    "ids = [bos] + tok(prompt_head) + tok(text) + tok(prompt_tail) (no special tokens); "
    "label logit k = logsumexp over label_token_ids[k] of the last position's logits, minus label_bias[k]; "
    "probabilities = softmax of the label logits divided by temperature (where run.json has class_scaling: "
    "of scale[k] * logit k + bias[k] instead)"
)
HOW_WHOLE_WORDS = (
    "ids = [bos] + tok(prompt_head) + tok(text) + tok(prompt_tail) (no special tokens); word score = the last "
    "position's logit of the word's first token + log-softmax log-probabilities of its later tokens given ids and "
    "the tokens before them; label logit k = logsumexp over label_word_ids[k] of word scores, minus label_bias[k]; "
    "probabilities = softmax of the label logits divided by temperature (where run.json has class_scaling: "
    "of scale[k] * logit k + bias[k] instead)"
)


def label_word_ids(rec: Recogniser) -> list[list[list[int]]]:
    """Every verbaliser word's token ids, per label (one id per word when only first tokens are scored)."""
    words = [[t] for t in rec.head.flat_ids.tolist()]
    for i, row in zip(rec.head.long_index.tolist(), rec.head.long_words.tolist(), strict=True):
        words[i] = [t for t in row if t >= 0]
    owner = rec.head.owner.tolist()
    return [[w for w, o in zip(words, owner, strict=True) if o == k] for k in range(rec.head.num_labels)]


def label_token_ids(rec: Recogniser) -> list[list[int]]:
    """The output-vocabulary ids each label is scored on at the answer position (its words' first tokens)."""
    return [[word[0] for word in words] for words in label_word_ids(rec)]


class _OnnxScorer(nn.Module):
    """The traced function: (ids, mask, positions) -> label logits, in fp32."""

    def __init__(self, scorer: LabelScorer) -> None:
        super().__init__()
        self.scorer = scorer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.scorer(input_ids, attention_mask, positions).float()


def _onnx(source: ExportSource, tmp: Path, output: Path, quantize: bool) -> ExportResult:
    rec = source.rec
    _require_mergeable(rec, "ONNX")
    try:
        import onnxruntime  # noqa: F401  (checked here: the export is useless without it)
    except ImportError:
        raise EmotuneError("an ONNX export needs the onnx extra: pip install 'emotune[onnx]'") from None
    model = merged_model(rec).cpu().float().eval()  # type: ignore[union-attr]
    scorer = _OnnxScorer(LabelScorer(model, rec.method, rec.head.cpu())).eval()
    _trace(scorer, rec, tmp / "model.onnx")
    if quantize:
        quantize_onnx(tmp / "model.onnx")
    rec.tokenizer.save_pretrained(str(tmp))
    write_exported_run(source, tmp, "onnx-int8" if quantize else "onnx")
    note = "label scorer as ONNX" + (" with dynamic int8 weights" if quantize else " (fp32)")
    return ExportResult(str(output), "onnx", True, note)


def _trace(scorer: nn.Module, rec: Recogniser, path: Path) -> None:
    from emotune.data.schema import Example

    example = rec.collate(rec.encode([Example("an example text"), Example("another one, longer than that")]))
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    dims: dict[str, Any] = {
        "input_ids": {0: batch, 1: seq},
        "attention_mask": {0: batch, 1: seq},
        "positions": {0: batch},
    }
    inputs = (example.input_ids.cpu(), example.attention_mask.cpu(), example.last_index.cpu())
    trace_to_onnx(scorer, inputs, path, ["input_ids", "attention_mask", "positions"], dims)
