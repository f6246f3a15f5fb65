"""What ``emotune plan`` and ``emotune train --dry-run`` print, and how their inputs are read."""

from __future__ import annotations

import json
import re

from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.methods import method_name_of
from emotune.planning.estimate import GIB, HEADROOM, MemoryPlan, PlanRequest, estimate

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int:
    """Bytes in ``24GiB``, ``24GB``, ``24000MiB`` or ``24`` (GiB when no unit is given).

    Raises:
        EmotuneError: For a size it cannot read.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else "?"
    if match is None or unit not in _UNITS:
        raise EmotuneError(f"gpu_memory expects a size such as 24GiB or 16GB, got '{text}'", settings=("gpu_memory",))
    return int(float(match.group(1)) * (_UNITS[unit] if unit else GIB))


def gpu_memory(text: str | None) -> int | None:
    """``--gpu-memory`` in bytes; without it, this machine's first GPU, if it has one."""
    if text:
        return parse_size(text)
    import torch

    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def plan_text(cfg: RunConfig, memory: str | None, as_json: bool) -> str:
    """What ``emotune plan`` / ``train --dry-run`` print for ``cfg``: the plan, as text or JSON."""
    plan = estimate(request_from_config(cfg, gpu_memory(memory)))
    return json.dumps(plan.to_dict()) if as_json else render(plan)


def request_from_config(cfg: RunConfig, gpu_memory: int | None) -> PlanRequest:
    """The plan of a run configuration (``train --dry-run``)."""
    return PlanRequest(
        model=cfg.model.name,
        method=cfg.method,
        dtype=cfg.model.dtype,
        quantization=cfg.model.quantization,
        batch_size=cfg.train.batch_size,
        max_length=cfg.runtime.max_length,
        gradient_checkpointing=cfg.train.gradient_checkpointing,
        gpu_memory=gpu_memory,
        trust_remote_code=cfg.model.trust_remote_code,
    )


def _gib(n: int) -> str:
    return f"{n / GIB:7.2f} GiB"


def render(plan: MemoryPlan) -> str:
    """A few lines: the run, each part (an arrow marks the activations this run has), the total,
    the fit and what to change."""
    r = plan.request
    ckpt = "on" if r.checkpointing else "off"
    lines = [
        f"plan: {r.model}, {method_name_of(r.method)}, weights {r.weight_format().describe()}, "
        f"batch {r.batch_size} x {r.max_length} tokens, gradient checkpointing {ckpt}",
        f"  parameters {plan.parameters / 1e9:.2f} B, trainable {plan.trainable / 1e6:.2f} M",
        f"  weights                           {_gib(plan.weights)}",
        f"  adapter + grads + AdamW (16 B/p)  {_gib(plan.adapter)}",
        f"  activations, no checkpointing     {_gib(plan.activations)}" + ("" if r.checkpointing else "  <-"),
        f"  activations, checkpointing        {_gib(plan.activations_checkpointed)}"
        + ("  <-" if r.checkpointing else ""),
        f"  peak                              {_gib(plan.total)}",
    ]
    if r.gpu_memory is not None:
        budget = f"{HEADROOM:.0%} of {r.gpu_memory / GIB:.1f} GiB"
        lines.append(f"  fits: {'yes' if plan.fits else 'no'} (peak against {budget}; the rest is CUDA's own)")
    lines += [f"  to fit: {advice}" for advice in plan.advice]
    return "\n".join(lines)
