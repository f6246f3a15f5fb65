"""``train.init_from``: a new run's adapter starts from a trained run's (the same backbone and
method; the label set may differ), so a user fine-tunes an emotion generalist on a few hundred
texts instead of starting from scratch. Its default, ``auto``, is the shipped generalist wherever
it fits the run (`default_start`)."""

from __future__ import annotations

import logging
from pathlib import Path

from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.methods import method_class, method_name_of
from emotune.methods.base import MethodOptions
from emotune.models.generalist import NAME, is_generalist, is_shipped, resolve_run, shipped_dir
from emotune.models.recogniser import Recogniser
from emotune.rundir import load_run

log = logging.getLogger(__name__)

#: ``train.init_from``'s default: the shipped generalist where it fits the run, else fresh.
AUTO = "auto"


def default_start(model: str, method: MethodOptions) -> Path | None:
    """The shipped generalist when this run's backbone (``model.name``) and method options are
    the ones it was trained with (so its adapter's weights fit), else None: a fresh adapter."""
    if not method_class(method_name_of(method)).trainable or not is_shipped():
        return None
    shipped = RunConfig.from_yaml(shipped_dir() / "config.yaml", saved=True)
    if shipped.model.name != model or shipped.method != method:
        # Said, not silent: a user who changed the rank learns why the generalist was not used.
        log.info(
            "train.init_from auto: a fresh adapter, as %s", _mismatch(shipped.model.name, shipped.method, model, method)
        )
        return None
    return resolve_run(NAME)  # checked against its manifest, as --init-from generalist is


def _mismatch(shipped_model: str, shipped_method: MethodOptions, model: str, method: MethodOptions) -> str:
    """What keeps the shipped generalist's adapter (of ``shipped_model``, with ``shipped_method``)
    from fitting a run of ``method`` on ``model``, in words."""
    if shipped_model != model:
        return f"the shipped generalist is an adapter of {shipped_model}, not of {model}"
    theirs, mine = shipped_method.to_dict(), method.to_dict()
    if theirs.get("name") != mine.get("name"):
        return f"the shipped generalist is {theirs.get('name')}, this run {mine.get('name')}"
    keys = sorted(set(theirs) | set(mine), key=str)
    differ = [f"{k} {mine.get(k)} (generalist: {theirs.get(k)})" for k in keys if theirs.get(k) != mine.get(k)]
    return f"this run's {mine.get('name')} options differ from the shipped generalist's: " + ", ".join(differ)


def start_name(source: Path | None) -> str:
    """What a run records as its start: ``generalist``, the run's path, or ``none``."""
    if source is None:
        return "none"
    return NAME if is_generalist(source) else str(source)


def check_init_from(init_from: str | None, model: str, method: MethodOptions) -> Path | None:
    """The run ``init_from`` (``train.init_from``) names, checked against this run's ``model``
    (``model.name``) and ``method`` before any weights load.

    Returns:
        The run directory to start from; None for a fresh adapter (``none``, or ``auto`` where
        the shipped generalist does not fit, `default_start`).

    Raises:
        EmotuneError: One line, for a folder that is not a trained run, another backbone or
            another method.
    """
    if not init_from or init_from == "none":
        return None
    if init_from == AUTO:
        return default_start(model, method)
    source = resolve_run(init_from)
    assert source is not None
    try:
        run = load_run(source)
        other = RunConfig.from_yaml(run.config_file, saved=True)
        run.adapter(needed=True)
    except EmotuneError as err:
        raise EmotuneError(f"train.init_from: {err}") from None
    if other.model.name != model:
        raise EmotuneError(
            f"train.init_from {source}: trained on backbone '{other.model.name}', this run uses '{model}'"
        )
    mine, theirs = method_name_of(method), method_name_of(other.method)
    if mine != theirs:
        raise EmotuneError(f"train.init_from {source}: a '{theirs}' run, this run trains '{mine}'")
    return source


def warm_start(rec: Recogniser, source: Path | None) -> None:
    """Loads the adapter of ``source`` (from `check_init_from`) into ``rec``'s fresh one."""
    if source is None or not rec.method.trainable:
        return
    rec.method.warm_start(rec.model, load_run(source).adapter(needed=True))
    if is_generalist(source):  # the default start: say how to leave it
        log.info("adapter initialised from the shipped generalist (train.init_from none starts fresh)")
    else:
        log.info("adapter initialised from %s", source)
