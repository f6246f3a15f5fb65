"""Labels at call time: classify with any label set, with no dataset and no run directory.

The paper's prompt is built from the labels themselves ("Classify the emotion of the sentence to
joy, anger, or sadness: ..."), each label's own name is the word scored for it, and the label
scores of the frozen backbone are calibrated on a content-free input (contextual calibration),
as transformers' ``pipeline("zero-shot-classification", candidate_labels=[...])`` takes its
labels at call time. A trained run's adapter (an emotion generalist, say) can score a new label
set the same way.

Labels whose words start with the same token are scored by their whole words instead
(``data.label_tokens: all``); labels that tokenise identically even then are refused.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.config import PROMPT_LANGUAGES, DataConfig, RunConfig
from emotune.data.schema import Example, LabelSet
from emotune.data.wording import label_language, task_word, text_language
from emotune.errors import EmotuneError
from emotune.inference.backends import SAME_FOLDER
from emotune.methods import UNTRAINED, default_options, get_method
from emotune.models.backbones import DEFAULT_BACKBONE
from emotune.models.generalist import NAME as GENERALIST
from emotune.models.generalist import is_shipped
from emotune.models.prompts import PromptBuilder
from emotune.rundir import LABEL_HEAD, RunMeta, load_run
from emotune.storage import read_json

if TYPE_CHECKING:
    from emotune.models.recogniser import Recogniser

log = logging.getLogger(__name__)


#: The most labels one call may give: each label widens every scoring pass, and 300 labels kept
#: a 2-core CPU busy for minutes (one bound for the CLI, `Predictor` and the HTTP service).
MAX_LABELS = 64
#: The longest label name, in characters (a label is a word or a short phrase, not a sentence).
MAX_LABEL_CHARS = 40


def parse_labels(labels: str | Sequence[str]) -> tuple[str, ...]:
    """Label names from ``"joy,anger"`` or a list, checked: two to `MAX_LABELS`, none empty,
    none over `MAX_LABEL_CHARS` characters, none twice.

    Raises:
        EmotuneError: One line naming the problem.
    """
    raw = labels.split(",") if isinstance(labels, str) else list(labels)
    names = tuple(str(n).strip() for n in raw)
    if any(not n for n in names):
        raise EmotuneError(f"labels: an empty label name in {list(names)}")
    if len(names) < 2:
        raise EmotuneError(f"labels: at least two labels are needed, got {list(names)}")
    if len(names) > MAX_LABELS:
        raise EmotuneError(f"labels: at most {MAX_LABELS} per call, got {len(names)}")
    if long := [n for n in names if len(n) > MAX_LABEL_CHARS]:
        raise EmotuneError(f"labels: '{long[0][:50]}' is over {MAX_LABEL_CHARS} characters")
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        seen = names[first.setdefault(name.casefold(), i)]
        if first[name.casefold()] != i:
            same = f"'{name}' is given twice" if seen == name else f"'{seen}' and '{name}' are the same label"
            raise EmotuneError(f"labels: {same}")
    return names


def check_language(language: str | None) -> str | None:
    """``language`` checked: None (each text's own), ``en`` or ``zh``.

    Raises:
        EmotuneError: One line for another value.
    """
    if language is not None and language not in PROMPT_LANGUAGES:
        raise EmotuneError(
            f"language must be one of {PROMPT_LANGUAGES} (or left out: each text's own), got '{language}'"
        )
    return language


def label_tokens(tokenizer: Any, labels: LabelSet, prompt: PromptBuilder) -> str:
    """``first`` when the labels' first tokens differ, else ``all`` (whole words scored).

    Raises:
        EmotuneError: If two labels tokenise the same even as whole words.
    """
    from emotune.models.scoring import verbaliser_token_ids

    try:
        verbaliser_token_ids(tokenizer, labels, prompt)
        return "first"
    except EmotuneError:
        pass
    try:
        verbaliser_token_ids(tokenizer, labels, prompt, whole_words=True)
    except EmotuneError as err:
        raise EmotuneError(
            f"labels: the tokenizer cannot tell these labels apart ({err})", settings=("labels",)
        ) from None
    return "all"


def call_time_config(run: Path | None, model: str | None) -> RunConfig:
    """The configuration scoring runs under: a trained run's (its backbone, method and adapter),
    else the frozen backbone ``model`` zero-shot.

    Raises:
        EmotuneError: For a folder that is not a run, or a run whose label head was trained for its
            own labels (it has no rows for new ones).
    """
    if run is None:
        cfg = RunConfig()
        cfg.model.name = model or DEFAULT_BACKBONE
        cfg.method = default_options(UNTRAINED)
        return cfg
    trained = load_run(run)
    if (run / LABEL_HEAD).is_file():
        raise EmotuneError(f"{run}: its label head was trained for its own labels; it cannot score new ones")
    cfg = RunConfig.from_yaml(trained.config_file, saved=True)
    if cfg.model.name == SAME_FOLDER:  # an export: its weights are the folder's own
        if (run / "model.onnx").is_file():
            raise EmotuneError(
                f"{run}: an ONNX export scores only the label set it was exported with; export another one "
                "for these labels, or score them with the run it came from"
            )
        cfg.model.name = str(run)
    if model and model != cfg.model.name:
        raise EmotuneError(f"{run} was trained on backbone '{cfg.model.name}', not '{model}'")
    trained.adapter(needed=get_method(cfg.method).needs_adapter)
    return cfg


@dataclass(frozen=True)
class CallTimeSetup:
    """What a label set given at call time is scored under.

    Attributes:
        cfg: The configuration (the run's backbone and method, or the frozen backbone zero-shot;
            a fresh data section naming how the labels are scored).
        labels: The label set, each name its own verbaliser word.
        language: The prompt's language.
        task: The prompt's task word.
        run: The trained run whose adapter scores the labels (None: the frozen backbone).
    """

    cfg: RunConfig
    labels: LabelSet
    language: str
    task: str
    run: Path | None


def call_time_setup(
    labels: str | Sequence[str],
    model: str | None = None,
    run: str | Path | None = None,
    *,
    task: str | None = None,
    device: str = "auto",
    language: str | None = None,
) -> CallTimeSetup:
    """The configuration, label set and prompt that ``labels`` are scored under (arguments as
    `call_time_recogniser`'s); reads the tokenizer, not the weights.

    Raises:
        EmotuneError: For bad labels, labels the tokenizer cannot tell apart, or a run that cannot
            score new labels.
    """
    from emotune.models.backbones import load_tokenizer, resolve_source

    names = parse_labels(labels)
    language = check_language(language) or label_language(names)
    label_set = LabelSet(names, {language: [[n] for n in names]})
    folder = Path(run) if run is not None else None
    cfg = call_time_config(folder, model)
    cfg.runtime.device = device
    prompt = PromptBuilder(label_set, language, task or task_word(names))
    tokenizer = load_tokenizer(resolve_source(cfg.model.name), cfg.model.trust_remote_code)
    # Labels given at call time read nothing of the run's data: a fresh data section, so neither
    # the run's template (it may name its own labels) nor its corpora (a run over several refuses
    # whole-word scoring in training) carry over.
    cfg.data = DataConfig(label_tokens=label_tokens(tokenizer, label_set, prompt))
    return CallTimeSetup(cfg.validate(), label_set, language, prompt.task, folder)


def call_time_recogniser(
    labels: str | Sequence[str],
    model: str | None = None,
    run: str | Path | None = None,
    *,
    task: str | None = None,
    calibrate: bool | None = None,
    device: str = "auto",
    language: str | None = None,
) -> Recogniser:
    """A recogniser for ``labels`` on the frozen ``model`` or a trained ``run``'s adapter.

    Args:
        labels: Label names, comma-separated or a list.
        model: The backbone (default: emotune's default); with ``run``, it must be the run's.
        run: A trained run directory whose adapter scores the new labels.
        task: The prompt's task word; default ``sentiment`` for polarity labels, else ``emotion``.
        calibrate: Contextual calibration on a content-free input; default: on for the frozen
            backbone, off for a run (a run over several corpora brings its own temperature).
        device: ``auto``, ``cpu`` or ``cuda``.
        language: The prompt's language (default: the label names' script).
    """
    setup = call_time_setup(labels, model, run, task=task, device=device, language=language)
    return setup_recogniser(setup, calibrate)


def setup_recogniser(setup: CallTimeSetup, calibrate: bool | None = None, dequantize: bool = False) -> Recogniser:
    """Loads the recogniser ``setup`` describes, calibrated as `call_time_recogniser` says;
    ``dequantize`` loads a quantised run's backbone in full precision (what an export merges into)."""
    from emotune.models.recogniser import build_recogniser

    cfg = setup.cfg
    if dequantize:
        cfg = replace(cfg, model=replace(cfg.model, quantization="none"))
    needs_adapter = get_method(cfg.method).needs_adapter
    adapter = setup.run / "adapter" if setup.run is not None and needs_adapter else None
    rec = build_recogniser(cfg, setup.labels, setup.language, setup.task, adapter_dir=adapter)
    if calibrate is False:
        rec.head.bias.zero_()
    elif calibrate and not rec.method.calibrates:
        rec.calibrate()
    rec.temperature = label_free_temperature(setup.run)
    return rec


def label_free_temperature(run: Path | None) -> float:
    """The temperature a run fitted for any label set: a run over several corpora fits one for all
    of them (the shipped generalist's calibration); a one-corpus run's fits only its own labels,
    so new labels get none (1)."""
    if run is None:
        return 1.0
    meta = RunMeta.load(run)
    return meta.temperature if meta.corpora else 1.0


class LabelSets:
    """Recognisers of label sets given at call time, on one loaded backbone and adapter.

    Each (labels, language) pair gets its prompt and label head once (`Recogniser.relabelled`),
    calibrated as the predictor's call-time scoring is (contextual calibration on the frozen
    backbone, the run's label-independent temperature otherwise); the `SIZE` most recent stay.
    """

    SIZE = 16

    def __init__(self, base: Recogniser, contextual: bool, temperature: float, task: str | None = None) -> None:
        self.base, self.contextual, self.temperature, self.task = base, contextual, temperature, task
        self._cache: OrderedDict[tuple[tuple[str, ...], str], Recogniser] = OrderedDict()
        self._cache[(base.labels.names, base.prompt.language)] = base

    def recogniser(self, names: tuple[str, ...], language: str) -> Recogniser:
        """The recogniser of ``names`` prompted in ``language`` (built on first use)."""
        key = (names, language)
        if key not in self._cache:
            self._cache[key] = self._build(names, language)
            while len(self._cache) > self.SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def _build(self, names: tuple[str, ...], language: str) -> Recogniser:
        label_set = LabelSet(names, {language: [[n] for n in names]})
        prompt = PromptBuilder(label_set, language, self.task or task_word(names))
        whole = label_tokens(self.base.tokenizer, label_set, prompt) == "all"
        rec = self.base.relabelled(label_set, language, prompt.task, whole_words=whole)
        rec.temperature = self.temperature
        if self.contextual:
            rec.calibrate()
        return rec

    def probabilities(
        self, names: tuple[str, ...], examples: Sequence[Example], language: str | None, batch_size: int | None
    ) -> Any:
        """(n, len(names)) probabilities, each text prompted in ``language`` or, left None, its own."""
        import torch

        langs = [language or text_language(e.text) for e in examples]
        out = torch.zeros(len(examples), len(names))
        for lang in sorted(set(langs)):
            rows = [i for i, g in enumerate(langs) if g == lang]
            probs = self.recogniser(names, lang).probabilities([examples[i] for i in rows], batch_size)
            out[rows] = probs.float().cpu()
        return out


def describe_call_time(labels: Sequence[str], model: str | None, run: str | Path | None) -> dict[str, Any]:
    """What ``/v1/model`` says of a service started with ``--labels``."""
    cfg = call_time_config(Path(run) if run is not None else None, model)
    card = read_json(Path(run) / "dataset_card.json") if run and (Path(run) / "dataset_card.json").is_file() else None
    return {"run": str(run) if run else None, "backbone": cfg.model.name, "labels": list(labels), "dataset_card": card}


def backend_kind(rec: Any) -> str:
    """What a backend that cannot score new labels is, for the one-line refusal."""
    name = type(rec).__name__
    if "Onnx" in name and "Encoder" not in name:
        return "an ONNX export"
    if "Encoder" in name:
        return "a distilled student"
    return "a run whose label head was trained"


def default_adapter(model: str | None, adapter: str | Path | None, frozen_backbone: bool) -> str | Path | None:
    """The adapter labels given at call time are scored with: ``adapter`` when given; else the
    shipped generalist on the default backbone; none (the frozen backbone) with
    ``frozen_backbone``, for another backbone (said in a log line), or where none is shipped.

    Raises:
        EmotuneError: For ``adapter`` and ``frozen_backbone`` together (one says no adapter).
    """
    if adapter is not None and frozen_backbone:
        raise EmotuneError(
            "choose one of adapter (a run's adapter scores the labels) and frozen_backbone (no adapter)",
            settings=("frozen_backbone", "adapter"),
        )
    if adapter is not None or frozen_backbone:
        return adapter
    if model is not None and model != DEFAULT_BACKBONE:
        log.info("the shipped generalist is an adapter of %s: '%s' scores zero-shot, frozen", DEFAULT_BACKBONE, model)
        return None
    return GENERALIST if is_shipped() else None
