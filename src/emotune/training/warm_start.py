"""``train.init_from``: a new run's adapter starts from a trained run's (the same backbone and
method; the label set may differ), so a user fine-tunes an emotion generalist on a few hundred
texts instead of starting from scratch."""

from __future__ import annotations

import logging
from pathlib import Path

from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.methods import method_name_of
from emotune.methods.base import MethodOptions
from emotune.models.generalist import resolve_run
from emotune.models.recogniser import Recogniser
from emotune.rundir import load_run

log = logging.getLogger(__name__)


def check_init_from(init_from: str | None, model: str, method: MethodOptions) -> Path | None:
    """The run ``init_from`` (``train.init_from``) names, checked against this run's ``model``
    (``model.name``) and ``method`` before any weights load.

    Raises:
        EmotuneError: One line, for a folder that is not a trained run, another backbone or
            another method.
    """
    if not init_from or init_from == "none":
        return None
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
    log.info("adapter initialised from %s", source)
