"""One inference API, `Predictor`, shared by the CLI, Python users and the server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from emotune.data.schema import Example, LabelSet, Turn
from emotune.errors import EmotuneError
from emotune.inference.backends import student_backend, torch_recogniser, trained_context_turns
from emotune.inference.explain import Explanation
from emotune.models.generalist import DEFAULT_LABELS, resolve_run
from emotune.models.generalist import NAME as GENERALIST
from emotune.models.text_pairs import is_student
from emotune.rundir import load_run

if TYPE_CHECKING:
    from emotune.inference.call_time import LabelSets


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
        raise EmotuneError(f"min_confidence must be in (0, 1], got {value}", settings=("min_confidence",))
    return value


def abstain_below(prediction: Prediction, min_confidence: float | None) -> Prediction:
    """``prediction`` without a label when its confidence is below ``min_confidence``."""
    if min_confidence is None or prediction.confidence >= min_confidence:
        return prediction
    return Prediction(None, prediction.scores, ())


def check_batch_size(batch_size: int | None) -> None:
    """Refuses a batch size below 1 (a negative one sliced the batches wrongly); None: the default."""
    if batch_size is not None and batch_size < 1:
        raise EmotuneError(
            f"batch_size must be >= 1 (left out: 16 on a CPU, 256 on a GPU), got {batch_size}",
            settings=("batch_size",),
        )


class Predictor:
    """Loads a run directory once and predicts labels for texts.

    Example:
        >>> predictor = Predictor.load("runs/lora")
        >>> predictor.predict(["what a wonderful film"])[0].label
        'positive'
    """

    def __init__(
        self,
        recogniser: ScoringBackend,
        batch_size: int | None = None,
        context_turns: int = 0,
        *,
        label_sets: LabelSets | None = None,
        run_dir: Path | None = None,
    ) -> None:
        check_batch_size(batch_size)
        self.recogniser = recogniser
        self.batch_size = batch_size
        #: Call-time scoring (labels per call, each text's prompt language): set for a predictor
        #: of labels given at call time, built on first use for a run (`call_time_scoring`).
        self.label_sets = label_sets
        self.run_dir = run_dir
        #: The default of `predict`'s ``min_confidence`` (``emotune predict --min-confidence``).
        self.min_confidence: float | None = None
        #: The prompt language of call-time scoring (None: each text's own).
        self.language: str | None = None
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
        if str(run) == GENERALIST:
            return cls.generalist(batch_size=batch_size)
        folder = load_run(run).folder
        if is_student(folder):
            return cls(student_backend(folder), batch_size, trained_context_turns(folder))
        if (folder / "model.onnx").is_file():
            from emotune.inference.onnx_backend import OnnxRecogniser  # torch-free backend, imported only for it

            return cls(OnnxRecogniser.load(folder), batch_size, trained_context_turns(folder))
        rec = torch_recogniser(folder, dequantize, corpus)
        return cls(rec, batch_size, trained_context_turns(folder), run_dir=folder)

    @classmethod
    def generalist(cls, labels: str | Sequence[str] | None = None, **options: Any) -> Predictor:
        """The emotion generalist shipped with emotune, for ``labels`` (default: Ekman's six
        emotions and neutral); ``options`` as `zero_shot`'s.

        Example:
            >>> Predictor.generalist().predict("I can't believe they cancelled it")[0].label
            'surprise'
        """
        return cls.zero_shot(labels or DEFAULT_LABELS, adapter=GENERALIST, **options)

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
        language: str | None = None,
        frozen_backbone: bool = False,
    ) -> Predictor:
        """A predictor for any label set, chosen at call time: no dataset, no run directory.

        Example:
            >>> predictor = Predictor.zero_shot("joy,anger,sadness")
            >>> predictor.predict("I can't stop smiling")[0].label
            'joy'

        Args:
            labels: Label names, comma-separated or a list.
            model: The backbone (default: emotune's default). Another backbone than the default
                is scored frozen: the shipped generalist is an adapter of the default.
            adapter: A trained run whose adapter scores these labels; default: the shipped
                emotion generalist on the default backbone (``generalist``).
            task: The prompt's task word (default: sentiment for polarity labels, else emotion).
            calibrate: Contextual calibration (default: on for the frozen backbone; a run over
                several corpora, the generalist among them, brings its own temperature).
            batch_size: Texts per forward pass.
            device: auto, cpu or cuda.
            language: The prompt's language, ``en`` or ``zh``; default: each text's own.
            frozen_backbone: Score with the frozen backbone even where the generalist applies.

        Raises:
            EmotuneError: For fewer than two labels or more than 64, a repeated or over-long
                label, labels the tokenizer cannot tell apart, or an adapter that cannot take
                new labels.
        """
        from emotune.inference.call_time import LabelSets, call_time_recogniser, default_adapter

        folder = resolve_run(default_adapter(model, adapter, frozen_backbone))
        rec = call_time_recogniser(
            labels, model, folder, task=task, calibrate=calibrate, device=device, language=language
        )
        contextual = calibrate if calibrate is not None else folder is None
        sets = LabelSets(rec, contextual, rec.temperature, task)
        predictor = cls(rec, batch_size, label_sets=sets, run_dir=folder)
        predictor.language = language
        return predictor

    @contextlib.contextmanager
    def scoring_alone(self) -> Iterator[None]:
        """Within the block each process scores what it is given by itself, for work already
        split between the launched processes (a file labelled by several processes, each its own
        rows); a backend that never splits its work is left as it is."""
        backend: Any = self.recogniser
        split = getattr(backend, "split_work", None)
        if split is None:
            yield
            return
        backend.split_work = False
        try:
            yield
        finally:
            backend.split_work = split

    def predict(
        self,
        texts: str | Sequence[str],
        contexts: Sequence[Sequence[str]] | None = None,
        *,
        min_confidence: float | None = None,
        labels: str | Sequence[str] | None = None,
        language: str | None = None,
    ) -> list[Prediction]:
        """Predicts a label for each text; always returns a list (one item for one string).

        Args:
            texts: One text or several.
            contexts: Optional earlier dialogue turns per text, oldest first.
            min_confidence: Abstain (label None, probabilities still given) below this top
                probability; default: the predictor's ``min_confidence`` (none).
            labels: Classify into these labels instead of the predictor's own (call-time
                scoring on its backbone and adapter, with its call-time calibration).
            language: The prompt's language (``en``, ``zh``); default: the predictor's, which
                for labels given at call time is each text's own.

        Raises:
            EmotuneError: For an empty text, mismatched contexts, ``min_confidence`` outside
                (0, 1], bad labels, or labels a backend cannot score (a trained label head, an
                ONNX export, a distilled student).
        """
        floor = check_min_confidence(self.min_confidence if min_confidence is None else min_confidence)
        return [abstain_below(p, floor) for p in self._predict(texts, contexts, labels, language)]

    def _predict(
        self,
        texts: str | Sequence[str],
        contexts: Sequence[Sequence[str]] | None,
        labels: str | Sequence[str] | None = None,
        language: str | None = None,
    ) -> list[Prediction]:
        from emotune.inference.call_time import check_language, parse_labels

        names = parse_labels(labels) if labels is not None else self.labels
        language = check_language(language) or self.language
        items = [texts] if isinstance(texts, str) else list(texts)
        if contexts is not None and len(contexts) != len(items):
            raise EmotuneError(f"got {len(contexts)} contexts for {len(items)} texts")
        examples = [self._example(t, None if contexts is None else contexts[i], i) for i, t in enumerate(items)]
        if not examples:
            return []
        if labels is None and self.label_sets is None and language in (None, self.own_language):
            probs = self.recogniser.probabilities(examples, self.batch_size)
            chosen = self.recogniser.decide(probs)
        else:
            probs = self.call_time_scoring().probabilities(names, examples, language, self.batch_size)
            chosen = [[int(i)] for i in probs.argmax(-1).tolist()]
        return [self._prediction(row, picks, names) for row, picks in zip(probs, chosen, strict=True)]

    @property
    def own_language(self) -> str | None:
        """The prompt language of the predictor's own labels (None for a backend without a prompt)."""
        prompt = getattr(self.recogniser, "prompt", None)
        return getattr(prompt, "language", None)

    def call_time_scoring(self) -> LabelSets:
        """Scoring of labels given per call on this predictor's backbone and adapter.

        Raises:
            EmotuneError: For a backend that scores only its own labels.
        """
        from emotune.inference.call_time import LabelSets, backend_kind, label_free_temperature
        from emotune.models.recogniser import Recogniser

        if self.label_sets is None:
            rec = self.recogniser
            if not isinstance(rec, Recogniser) or rec.multi_label or rec.head.rows is not None:
                kind = "a multi-label run" if getattr(rec, "multi_label", False) else backend_kind(rec)
                raise EmotuneError(f"this predictor ({kind}) scores only its own labels")
            self.label_sets = LabelSets(rec, rec.method.calibrates, label_free_temperature(self.run_dir))
        return self.label_sets

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
        if not isinstance(text, str):
            raise EmotuneError(f"text {i} is not a string but {type(text).__name__}")
        if not text.strip():
            raise EmotuneError(f"text {i} is empty")
        turns = tuple(Turn(c) for c in context or ())
        return Example(text.strip(), context=turns)

    def _prediction(self, row: Any, picks: list[int], labels: Sequence[str] | None = None) -> Prediction:
        labels = labels or self.labels
        scores = {n: float(v) for n, v in zip(labels, row.tolist(), strict=True)}
        names = tuple(labels[k] for k in picks)
        return Prediction(names[0], scores, names)
