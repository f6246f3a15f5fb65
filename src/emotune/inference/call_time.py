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

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.config import RunConfig
from emotune.data.schema import LabelSet
from emotune.errors import EmotuneError
from emotune.methods import UNTRAINED, default_options, get_method
from emotune.models.backbones import DEFAULT_BACKBONE
from emotune.models.prompts import PromptBuilder
from emotune.storage import read_json

if TYPE_CHECKING:
    from emotune.models.recogniser import Recogniser

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Label sets made only of these read as sentiment, anything else as emotion (the prompt's task word).
_SENTIMENT = {
    "positive",
    "negative",
    "neutral",
    "mixed",
    "very positive",
    "very negative",
    "somewhat positive",
    "somewhat negative",
    "积极",
    "消极",
    "中性",
    "正面",
    "负面",
    "正向",
    "负向",
}


def parse_labels(labels: str | Sequence[str]) -> tuple[str, ...]:
    """Label names from ``"joy,anger"`` or a list, checked: at least two, none empty, none twice.

    Raises:
        EmotuneError: One line naming the problem.
    """
    raw = labels.split(",") if isinstance(labels, str) else list(labels)
    names = tuple(str(n).strip() for n in raw)
    if any(not n for n in names):
        raise EmotuneError(f"--labels: an empty label name in {list(names)}")
    if len(names) < 2:
        raise EmotuneError(f"--labels needs at least two labels, got {list(names)}")
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        seen = names[first.setdefault(name.casefold(), i)]
        if first[name.casefold()] != i:
            same = f"'{name}' is given twice" if seen == name else f"'{seen}' and '{name}' are the same label"
            raise EmotuneError(f"--labels: {same}")
    return names


def label_language(names: Sequence[str]) -> str:
    """``zh`` when a label is written in Chinese characters, else ``en`` (the prompt's language)."""
    return "zh" if any(_CJK.search(n) for n in names) else "en"


def task_word(names: Sequence[str]) -> str:
    """``sentiment`` for a polarity label set (positive, negative, neutral...), else ``emotion``."""
    return "sentiment" if all(n.casefold() in _SENTIMENT for n in names) else "emotion"


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
        raise EmotuneError(f"--labels: the tokenizer cannot tell these labels apart ({err})") from None
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
    if not (run / "config.yaml").is_file() or not (run / "run.json").is_file():
        raise EmotuneError(f"{run}: not a run directory (no config.yaml and run.json)")
    if (run / "label_head.safetensors").is_file():
        raise EmotuneError(f"{run}: its label head was trained for its own labels; it cannot score new ones")
    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    if model and model != cfg.model.name:
        raise EmotuneError(f"{run} was trained on backbone '{cfg.model.name}', not '{model}'")
    if get_method(cfg.method).needs_adapter and not (run / "adapter").is_dir():
        raise EmotuneError(f"{run}: run has no adapter/ (training did not finish?)")
    return cfg


def call_time_recogniser(
    labels: str | Sequence[str],
    model: str | None = None,
    run: str | Path | None = None,
    *,
    task: str | None = None,
    calibrate: bool | None = None,
    device: str = "auto",
) -> Recogniser:
    """A recogniser for ``labels`` on the frozen ``model`` or a trained ``run``'s adapter.

    Args:
        labels: Label names, comma-separated or a list; Chinese names give a Chinese prompt.
        model: The backbone (default: emotune's default); with ``run``, it must be the run's.
        run: A trained run directory whose adapter scores the new labels.
        task: The prompt's task word; default ``sentiment`` for polarity labels, else ``emotion``.
        calibrate: Contextual calibration on a content-free input; default: on for the frozen
            backbone, the run's own setting for a run.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    from emotune.models.backbones import load_tokenizer, resolve_source
    from emotune.models.recogniser import build_recogniser

    names = parse_labels(labels)
    language = label_language(names)
    label_set = LabelSet(names, {language: [[n] for n in names]})
    folder = Path(run) if run is not None else None
    cfg = call_time_config(folder, model)
    cfg.runtime.device = device
    prompt = PromptBuilder(label_set, language, task or task_word(names))
    tokenizer = load_tokenizer(resolve_source(cfg.model.name), cfg.model.trust_remote_code)
    cfg.data.label_tokens = label_tokens(tokenizer, label_set, prompt)
    cfg.data.template = None  # the run's own template may name its own labels
    adapter = folder / "adapter" if folder is not None and get_method(cfg.method).needs_adapter else None
    rec = build_recogniser(cfg.validate(), label_set, language, prompt.task, adapter_dir=adapter)
    if calibrate is False:
        rec.head.bias.zero_()
    elif calibrate and not rec.method.calibrates:
        rec.calibrate()
    return rec


def describe_call_time(labels: Sequence[str], model: str | None, run: str | Path | None) -> dict[str, Any]:
    """What ``/v1/model`` says of a service started with ``--labels``."""
    cfg = call_time_config(Path(run) if run is not None else None, model)
    card = read_json(Path(run) / "dataset_card.json") if run and (Path(run) / "dataset_card.json").is_file() else None
    return {"run": str(run) if run else None, "backbone": cfg.model.name, "labels": list(labels), "dataset_card": card}
