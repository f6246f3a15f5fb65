"""One inference API, `Predictor`, shared by the CLI, Python users and the server."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from emotune.config import RunConfig
from emotune.data.schema import Example, LabelSet, Turn
from emotune.errors import EmotuneError
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

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> Any:
        """Label probabilities (n, num_labels): a torch tensor or a numpy array."""
        ...

    def decide(self, probs: Any) -> list[list[int]]:
        """Predicted label indices per row, best first."""
        ...


@dataclass(frozen=True)
class Prediction:
    """The predicted label(s) and a probability for every label.

    Attributes:
        label: The best label.
        scores: Probability per label; they sum to 1, except for multi-label runs, where each
            is an independent sigmoid.
        labels: Every predicted label, best first: ``[label]`` for single-label runs; for
            multi-label runs every label at or above the run's threshold (at least one).
    """

    label: str
    scores: dict[str, float] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {"label": self.label, "labels": list(self.labels or (self.label,)), "scores": self.scores}


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
        #: Earlier dialogue turns the run was trained with (its dataset card): how much context a
        #: file's dialogue column supplies per row.
        self.context_turns = context_turns

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names, in index order."""
        return self.recogniser.labels.names

    @classmethod
    def load(cls, run: str | Path, batch_size: int | None = None, *, dequantize: bool = False) -> Predictor:
        """Loads a run directory (backbone + saved adapter), a merged export, an ONNX export, or a
        distilled student (``emotune distill``) or its export.

        An ONNX export (``model.onnx``) runs on ONNX Runtime and imports neither torch nor PEFT.
        ``dequantize`` loads a quantised run's backbone in full precision instead, with the
        adapter that was trained on the quantised weights (what an export merges into).

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
        return cls(_torch_recogniser(folder, dequantize), batch_size, trained_context_turns(folder))

    def predict(self, texts: str | Sequence[str], contexts: Sequence[Sequence[str]] | None = None) -> list[Prediction]:
        """Predicts a label for each text; always returns a list (one item for one string).

        Args:
            texts: One text or several.
            contexts: Optional earlier dialogue turns per text, oldest first.

        Raises:
            EmotuneError: For an empty text or mismatched contexts.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if contexts is not None and len(contexts) != len(items):
            raise EmotuneError(f"got {len(contexts)} contexts for {len(items)} texts")
        examples = [self._example(t, None if contexts is None else contexts[i], i) for i, t in enumerate(items)]
        if not examples:
            return []
        probs = self.recogniser.probabilities(examples, self.batch_size)
        chosen = self.recogniser.decide(probs)
        return [self._prediction(row, picks) for row, picks in zip(probs, chosen, strict=True)]

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


def _torch_recogniser(folder: Path, dequantize: bool = False) -> Any:
    """The torch Recogniser of a run directory or merged export (torch is imported here, not at
    module import, so an ONNX export predicts without it)."""
    from emotune.models.recogniser import build_recogniser
    from emotune.rundir import read_label_head

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True).validate()
    if cfg.model.name == SAME_FOLDER:  # a merged export carries its own weights
        cfg.model.name = str(folder)
    if dequantize:
        cfg.model.quantization = "none"
    meta = read_json(folder / "run.json")
    adapter = folder / "adapter"
    if get_method(cfg.method).needs_adapter and not adapter.is_dir():
        raise EmotuneError(f"{folder}: run has no adapter/ (training did not finish?)")
    return build_recogniser(
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
