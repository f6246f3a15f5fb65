"""Checkpoints, best-so-far weights, the finished-training record and a trained label head.

Everything is written atomically (see `emotune.storage`), so a run killed at any moment leaves
either the previous or the new version of a file, never half of one. Tensors go to safetensors
and the rest to JSON: nothing is unpickled on load. torch is imported when a function is called.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError
from emotune.storage import atomic_dir, read_json, write_json

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies, as safetensors needs them."""
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        idx, key = flat.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict[str, Any],
) -> Path:
    """Writes ``checkpoints/step-N`` atomically and prunes all but the newest few."""
    import torch
    from safetensors.torch import save_file

    target = run / CHECKPOINTS / f"step-{step:08d}"
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    with atomic_dir(target) as tmp:
        save_file(
            _cpu(trainable),
            tmp / "trainable.safetensors",
        )
        save_file(opt_tensors or {"_empty": torch.zeros(0)}, tmp / "optimizer.safetensors")
        save_file({"torch": torch.get_rng_state()}, tmp / "rng.safetensors")
        meta = {
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict(),
            "trainer": trainer_state,
        }
        (tmp / "state.json").write_text(json.dumps(meta))
    for old in list_checkpoints(run)[KEEP_CHECKPOINTS:]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(run: Path) -> list[Path]:
    """Checkpoint folders, newest first."""
    folder = run / CHECKPOINTS
    return sorted(folder.glob("step-*"), reverse=True) if folder.is_dir() else []


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Reads a checkpoint; raises EmotuneError if any part is missing or damaged."""
    from safetensors.torch import load_file

    try:
        meta = json.loads((path / "state.json").read_text())
        trainable = load_file(path / "trainable.safetensors")
        opt_tensors = load_file(path / "optimizer.safetensors")
        rng = load_file(path / "rng.safetensors")["torch"]
    except Exception as err:  # safetensors/json/OS errors all mean "unusable"
        raise EmotuneError(f"{path}: damaged checkpoint ({type(err).__name__})") from None
    opt_tensors.pop("_empty", None)
    return {
        "trainable": trainable,
        "optimizer": _unflatten_optimizer(opt_tensors, meta["optimizer"]),
        "scheduler": meta["scheduler"],
        "trainer": meta["trainer"],
        "rng": rng,
    }


def latest_good_checkpoint(run: Path) -> dict[str, Any] | None:
    """The newest checkpoint that loads; damaged ones are reported and skipped."""
    for path in list_checkpoints(run):
        try:
            return load_checkpoint(path)
        except EmotuneError as err:
            log.warning("%s; trying the previous checkpoint", err)
    return None


def write_best(run: Path, trainable: dict[str, torch.Tensor]) -> None:
    """Keeps the best-so-far trainable weights (so a resumed run still knows them)."""
    _write_tensors(run / "best.safetensors", trainable)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Saves ``tensors`` as ``path`` atomically: a temporary file beside it, then a rename."""
    from safetensors.torch import save_file

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    save_file(_cpu(tensors), tmp)
    os.replace(tmp, path)


def read_best(run: Path) -> dict[str, torch.Tensor] | None:
    """The best-so-far weights, or None if absent or damaged."""
    from safetensors.torch import load_file

    try:
        return load_file(run / "best.safetensors")
    except Exception:  # missing or damaged: the caller falls back
        return None


TRAINED = "trained.json"


def has_progress(run: Path) -> bool:
    """Whether the run directory holds work a retry should keep: a checkpoint or a finished training."""
    return bool(list_checkpoints(run)) or (run / TRAINED).is_file()


def write_trained(run: Path, state: dict[str, Any]) -> None:
    """Marks training as finished, with its final state (steps, best dev scores, recipe).

    Written after the adapter and run files, so a run that dies while it is evaluated can be
    evaluated again without training it again.
    """
    write_json(run / TRAINED, state)


def read_trained(run: Path) -> dict[str, Any] | None:
    """The finished training's state, or None if training did not finish here.

    Raises:
        EmotuneError: If the marker exists but cannot be read.
    """
    path = run / TRAINED
    # A damaged marker must not pass for a finished run.
    state = _read_if_present(path, read_json, "training record", "; delete it to train again")
    if state is not None and not isinstance(state, dict):
        raise EmotuneError(f"{path}: damaged training record (not a mapping); delete it to train again")
    return state


LABEL_HEAD = "label_head.safetensors"


def write_label_head(run: Path, rows: torch.Tensor) -> None:
    """Saves a trainable label head's rows next to the adapter (``train.label_head: trainable``)."""
    _write_tensors(run / LABEL_HEAD, {"rows": rows})


def read_label_head(run: Path) -> torch.Tensor | None:
    """A run's trained label rows; None when it scores with the backbone's own rows.

    Raises:
        EmotuneError: If the file exists but cannot be read.
    """
    from safetensors.torch import load_file

    rows: torch.Tensor | None = _read_if_present(run / LABEL_HEAD, lambda p: load_file(p)["rows"], "label head")
    return rows


def _read_if_present(path: Path, read: Callable[[Path], Any], what: str, advice: str = "") -> Any:
    """``read(path)``, None when there is no such file.

    Raises:
        EmotuneError: If the file is there but ``read`` fails (readers raise several types for a
            damaged file), naming ``what`` it held.
    """
    if not path.is_file():
        return None
    try:
        return read(path)
    except Exception as err:
        raise EmotuneError(f"{path}: damaged {what} ({type(err).__name__}){advice}") from None
