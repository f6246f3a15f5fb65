"""One inference API, `Predictor`, shared by the CLI, Python users and the server."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from emotune.calibration import run_temperature
from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet, Turn
from emotune.errors import EmotuneError
from emotune.inference.explain import Explanation
from emotune.methods import get_method
from emotune.models.text_pairs import HEAD_FILE, STUDENT_DIR
from emotune.storage import read_json

#: ``model.name`` of an exported folder: the backbone is the folder itself.
SAME_FOLDER = "."


class ScoringBackend(Protocol):
    """What a Predictor needs: the torch `Recogniser` or the ONNX one."""

    labels: LabelSet
    multi_label: bool
    threshold: float
    temperature: float

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> Any:
        """Label probabilities (n, num_labels): a torch tensor or a numpy array."""
        ...

    def scores(self, examples: Sequence[Example], batch_size: int | None = None) -> Any:
        """Label logits (n, num_labels) before the temperature."""
        ...

    def decide(self, probs: Any) -> list[list[int]]:
        """Predicted label indices per row, best first."""
        ...


@dataclass(frozen=True)
class Prediction:
    """The predicted label(s) and a probability for every label.

    Attributes:
        label: The best label; None when the prediction abstained (its confidence was below the
            ``min_confidence`` asked for).
        scores: Probability per label; they sum to 1, except for multi-label runs, where each
            is an independent sigmoid. Given also when the prediction abstained.
        labels: Every predicted label, best first: ``[label]`` for single-label runs; for
            multi-label runs every label at or above the run's threshold (at least one); empty
            when the prediction abstained.
    """

    label: str | None
    scores: dict[str, float] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    @property
    def confidence(self) -> float:
        """The highest label probability (what abstention compares with ``min_confidence``)."""
        return max(self.scores.values(), default=0.0)

    @property
    def abstained(self) -> bool:
        return self.label is None

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        labels = list(self.labels or (() if self.label is None else (self.label,)))
        return {"label": self.label, "labels": labels, "scores": self.scores, "confidence": self.confidence}


def check_min_confidence(value: float | None) -> float | None:
    """``min_confidence``, checked: None or a probability in (0, 1].

    Raises:
        EmotuneError: One line for a value outside (0, 1].
    """
    if value is not None and not 0.0 < value <= 1.0:
        raise EmotuneError(f"--min-confidence must be in (0, 1], got {value}")
    return value


def abstain_below(prediction: Prediction, min_confidence: float | None) -> Prediction:
    """``prediction`` without a label when its confidence is below ``min_confidence``."""
    if min_confidence is None or prediction.confidence >= min_confidence:
        return prediction
    return Prediction(None, prediction.scores, ())


class Predictor:
    """Loads a run directory once and predicts labels for texts.

    Example:
        >>> predictor = Predictor.load("runs/lora")
        >>> predictor.predict(["what a wonderful film"])[0].label
        'positive'
    """

    def __init__(self, recogniser: ScoringBackend, batch_size: int | None = None, context_turns: int = 0) -> None:
        self.recogniser = recogniser
        self.batch_size = batch_size
        #: The default of `predict`'s ``min_confidence`` (``emotune predict --min-confidence``).
        self.min_confidence: float | None = None
        #: Earlier dialogue turns the run was trained with (its dataset card): how much context a
        #: file's dialogue column supplies per row.
        self.context_turns = context_turns

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names, in index order."""
        return self.recogniser.labels.names

    @classmethod
    def load(
        cls, run: str | Path, batch_size: int | None = None, *, dequantize: bool = False, corpus: str | None = None
    ) -> Predictor:
        """Loads a run directory (backbone + saved adapter), a merged export, an ONNX export, or a
        distilled student (``emotune distill``) or its export.

        An ONNX export (``model.onnx``) runs on ONNX Runtime and imports neither torch nor PEFT.
        ``dequantize`` loads a quantised run's backbone in full precision instead, with the
        adapter that was trained on the quantised weights (what an export merges into).
        ``corpus`` picks one label set of a run trained on several corpora (default: the first).

        Raises:
            EmotuneError: If the folder is not a complete run directory or export.
        """
        folder = Path(run)
        if not (folder / "config.yaml").is_file():
            raise EmotuneError(f"{folder}: not a run directory (no config.yaml)")
        if (folder / STUDENT_DIR).is_dir():
            return cls(_student(folder), batch_size, trained_context_turns(folder))
        if (folder / "model.onnx").is_file():
            from emotune.inference.onnx_backend import OnnxRecogniser  # torch-free backend, imported only for it

            return cls(OnnxRecogniser.load(folder), batch_size, trained_context_turns(folder))
        return cls(_torch_recogniser(folder, dequantize, corpus), batch_size, trained_context_turns(folder))

    @classmethod
    def zero_shot(
        cls,
        labels: str | Sequence[str],
        model: str | None = None,
        adapter: str | Path | None = None,
        *,
        task: str | None = None,
        calibrate: bool | None = None,
        batch_size: int | None = None,
        device: str = "auto",
    ) -> Predictor:
        """A predictor for any label set, chosen at call time: no dataset, no run directory.

        Example:
            >>> predictor = Predictor.zero_shot("joy,anger,sadness")
            >>> predictor.predict("I can't stop smiling")[0].label
            'joy'

        Args:
            labels: Label names, comma-separated or a list (Chinese names: a Chinese prompt).
            model: The frozen backbone (default: emotune's default).
            adapter: A trained run whose adapter scores these labels instead (e.g. the emotion
                generalist of ``configs/generalist.yaml``).
            task: The prompt's task word (default: sentiment for polarity labels, else emotion).
            calibrate: Contextual calibration (default: on for the frozen backbone).
            batch_size: Texts per forward pass.
            device: auto, cpu or cuda.

        Raises:
            EmotuneError: For fewer than two labels, a repeated label, labels the tokenizer
                cannot tell apart, or an adapter that cannot take new labels.
        """
        from emotune.inference.call_time import call_time_recogniser

        rec = call_time_recogniser(labels, model, adapter, task=task, calibrate=calibrate, device=device)
        return cls(rec, batch_size)

    def predict(
        self,
        texts: str | Sequence[str],
        contexts: Sequence[Sequence[str]] | None = None,
        *,
        min_confidence: float | None = None,
    ) -> list[Prediction]:
        """Predicts a label for each text; always returns a list (one item for one string).

        Args:
            texts: One text or several.
            contexts: Optional earlier dialogue turns per text, oldest first.
            min_confidence: Abstain (label None, probabilities still given) below this top
                probability; default: the predictor's ``min_confidence`` (none).

        Raises:
            EmotuneError: For an empty text, mismatched contexts or ``min_confidence`` outside (0, 1].
        """
        floor = check_min_confidence(self.min_confidence if min_confidence is None else min_confidence)
        return [abstain_below(p, floor) for p in self._predict(texts, contexts)]

    def _predict(self, texts: str | Sequence[str], contexts: Sequence[Sequence[str]] | None) -> list[Prediction]:
        items = [texts] if isinstance(texts, str) else list(texts)
        if contexts is not None and len(contexts) != len(items):
            raise EmotuneError(f"got {len(contexts)} contexts for {len(items)} texts")
        examples = [self._example(t, None if contexts is None else contexts[i], i) for i, t in enumerate(items)]
        if not examples:
            return []
        probs = self.recogniser.probabilities(examples, self.batch_size)
        chosen = self.recogniser.decide(probs)
        return [self._prediction(row, picks) for row, picks in zip(probs, chosen, strict=True)]

    def explain(
        self,
        texts: str | Sequence[str],
        label: str | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
        *,
        method: str = "occlusion",
    ) -> list[Explanation]:
        """Which words (and earlier turns) decided the label of each text (`emotune.inference.explain`).

        Args:
            texts: One text or several.
            label: The label to explain (default: each text's predicted label).
            contexts: Optional earlier dialogue turns per text, oldest first.
            method: ``occlusion`` (any backend) or ``ig`` (integrated gradients; the torch
                backbone and ``pip install 'emotune[explain]'``).

        Raises:
            EmotuneError: For an empty or too long text, a label the run does not have, or an
                unknown method.
        """
        from emotune.inference.explain import METHODS, integrated_gradients, occlusion

        if method not in METHODS:
            raise EmotuneError(f"explain method must be one of {METHODS}, got '{method}'")
        if label is not None and label not in self.labels:
            raise EmotuneError(f"label '{label}' is not one of the run's labels {list(self.labels)}")
        index = None if label is None else self.labels.index(label)
        items = [texts] if isinstance(texts, str) else list(texts)
        if contexts is not None and len(contexts) != len(items):
            raise EmotuneError(f"got {len(contexts)} contexts for {len(items)} texts")
        examples = [self._example(t, None if contexts is None else contexts[i], i) for i, t in enumerate(items)]
        if method == "ig":
            return [integrated_gradients(self.recogniser, ex, index) for ex in examples]
        return [occlusion(self.recogniser, ex, index, self.batch_size) for ex in examples]

    def _example(self, text: str, context: Sequence[str] | None, i: int) -> Example:
        if not isinstance(text, str) or not text.strip():
            raise EmotuneError(f"text {i} is empty")
        turns = tuple(Turn(c) for c in context or ())
        return Example(text.strip(), context=turns)

    def _prediction(self, row: Any, picks: list[int]) -> Prediction:
        scores = {n: float(v) for n, v in zip(self.labels, row.tolist(), strict=True)}
        names = tuple(self.labels[k] for k in picks)
        return Prediction(names[0], scores, names)


def trained_context_turns(folder: Path) -> int:
    """The dialogue turns a run put before each utterance (0 for a run or export without a card)."""
    card = folder / "dataset_card.json"
    data = read_json(card) if card.is_file() else {}
    turns = data.get("context_turns") if isinstance(data, dict) else None
    return turns if isinstance(turns, int) and turns > 0 else 0


def _student(folder: Path) -> Any:
    """A distilled student: its ONNX file on ONNX Runtime where both exist (it starts in a fraction
    of a second: no torch, no transformers), else its torch weights."""
    student = folder / STUDENT_DIR
    onnx = (student / "model.onnx").is_file()
    if onnx and importlib.util.find_spec("onnxruntime") is not None:
        from emotune.inference.onnx_backend import OnnxEncoderRecogniser

        return OnnxEncoderRecogniser.load(folder)
    if not (student / HEAD_FILE).is_file():
        extra = " (its model.onnx needs: pip install 'emotune[onnx]')" if onnx else ""
        raise EmotuneError(f"{student}: no student weights{extra}")
    from emotune.models.encoder import EncoderRecogniser

    return EncoderRecogniser.load(folder)


def _corpus_meta(meta: dict[str, Any], corpus: str | None) -> dict[str, Any]:
    """The labels, language and task of one corpus of a run (the run's own without ``corpus``).

    Raises:
        EmotuneError: For a corpus the run was not trained on.
    """
    if corpus is None:
        return meta
    corpora = {c["name"]: c for c in meta.get("corpora") or [{"name": meta.get("dataset"), **meta}]}
    if corpus not in corpora:
        raise EmotuneError(f"the run was not trained on corpus '{corpus}'; it knows {sorted(corpora)}")
    return corpora[corpus]


def _torch_recogniser(folder: Path, dequantize: bool = False, corpus: str | None = None) -> Any:
    """The torch Recogniser of a run directory or merged export (torch is imported here, not at
    module import, so an ONNX export predicts without it)."""
    from emotune.models.recogniser import build_recogniser
    from emotune.rundir import read_label_head

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True).validate()
    if cfg.model.name == SAME_FOLDER:  # a merged export carries its own weights
        cfg.model.name = str(folder)
    if dequantize:
        cfg.model.quantization = "none"
    meta = _corpus_meta(read_json(folder / "run.json"), corpus)
    adapter = folder / "adapter"
    if get_method(cfg.method).needs_adapter and not adapter.is_dir():
        raise EmotuneError(f"{folder}: run has no adapter/ (training did not finish?)")
    rec = build_recogniser(
        cfg,
        LabelSet.from_dict(meta["labels"]),
        meta["language"],
        meta["task"],
        adapter_dir=adapter,
        multi_label=bool(meta.get("multi_label", False)),
        head_bias=meta.get("head_bias"),
        head_rows=read_label_head(folder),
        threshold=float(meta.get("threshold", 0.5)),
    )
    rec.temperature = run_temperature(meta)
    return rec
