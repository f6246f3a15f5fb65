"""Number formats: the backbone's weight dtype, k-bit quantisation, and autocast for forward passes.

``model.dtype: auto`` picks per device: bf16 weights on a GPU that has bf16, fp16 on one that does
not (T4, V100), and fp32 weights on a CPU, where bf16 autocast runs instead when the CPU has native
bf16 (a half-precision weight on a CPU without it is emulated and slower than fp32). Trainable
parameters always stay fp32; fp16 training scales its loss (`grad_scaler`) so small gradients
do not underflow to zero.

`resolve_format` says, in one line and before any weights load, when the device or the installed
bitsandbytes cannot do what the config asks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.config import QUANTIZATIONS
from emotune.errors import EmotuneError

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

QLORA_EXTRA = "pip install 'emotune[qlora]'"


@lru_cache(maxsize=1)
def cpuinfo() -> str:
    """The text of /proc/cpuinfo ("" where there is none, e.g. not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (avx512_bf16 or AMX), where bf16 pays off."""
    flags = cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def weight_dtype_name(dtype: str, device: torch.device) -> str:
    """The weight dtype ``model.dtype`` comes to on ``device`` (``auto`` resolved).

    Raises:
        EmotuneError: For float16 weights on a CPU (no fp16 matmul kernels worth using there).
    """
    import torch

    if dtype == "float16" and device.type == "cpu":
        raise EmotuneError(
            "model.dtype float16 needs a GPU: CPUs have no fast fp16 matmuls; use auto or float32 on a CPU"
        )
    if dtype != "auto":
        return dtype
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def autocast_dtype(precision: str, device: torch.device, weights: torch.dtype | None = None) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto", "fp32", "bf16") on ``device``; None = no autocast.

    Half-precision weights autocast to their own dtype, so the fp32 adapters run at the backbone's
    precision instead of casting its frozen weights every step.
    """
    import torch

    if precision == "fp32":
        return None
    if weights in (torch.float16, torch.bfloat16):
        return weights
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "bf16" or cpu_supports_bf16():
        return torch.bfloat16
    return None


def warn_if_emulated_bf16(dtype: str, precision: str, device: torch.device) -> None:
    """Warns when bf16 will run on a CPU without native bf16 (emulated there, far slower than fp32).

    Args:
        dtype: ``model.dtype`` (bf16 weights).
        precision: ``runtime.precision``; "bf16" forces autocast where "auto" would skip it.
        device: Where the model runs.
    """
    if device.type != "cpu" or cpu_supports_bf16():
        return
    if dtype == "bfloat16":
        log.warning(
            "model.dtype bfloat16 on a CPU without avx512_bf16/AMX: bf16 matmuls are emulated there and "
            "much slower than float32; leave model.dtype at auto (runtime.precision still picks autocast)"
        )
    if precision == "bf16":
        log.warning(
            "runtime.precision bf16 on a CPU without avx512_bf16/AMX: bf16 autocast is emulated there and "
            "several times slower than float32; use runtime.precision auto (bf16 only where the hardware has it)"
        )


def _gpu_attention() -> list[Any]:
    # Not cuDNN's attention: on an H200 it cost ~1.1 ms of host time per call even warm, 36 calls a
    # LoRA step of the default backbone, whose whole step is ~13 ms of device work
    # (benchmarks/results/gpu-step-probe-h200.log); it also plans anew for every sequence length,
    # which length-bucketed batches keep changing. Keeping it off cut a cold batch-16 step from
    # 733 to 175 ms (benchmarks/results/gpu-step-probe-h200.json).
    from torch.nn.attention import SDPBackend

    return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@contextlib.contextmanager
def forward_context(device_type: str, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` (None: none) and, on a GPU, the attention kernels of ``_gpu_attention``."""
    import torch
    from torch.nn.attention import sdpa_kernel

    with contextlib.ExitStack() as stack:
        if device_type == "cuda":
            stack.enter_context(sdpa_kernel(_gpu_attention()))
        if dtype is not None:
            stack.enter_context(torch.autocast(device_type, dtype=dtype))
        yield


@dataclass(frozen=True)
class WeightFormat:
    """What a backbone's weights are loaded as: the dtype name and the k-bit quantisation."""

    dtype: str
    quantization: str = "none"

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"

    def describe(self) -> str:
        """``bfloat16``, or ``4bit nf4 (compute bfloat16)``: what a run records."""
        if self.quantization == "4bit":
            return f"4bit nf4 (compute {self.dtype})"
        return f"8bit (compute {self.dtype})" if self.quantization == "8bit" else self.dtype


def resolve_format(dtype: str, quantization: str, device: torch.device) -> WeightFormat:
    """``model.dtype`` and ``model.quantization`` on ``device``, checked against the device and the
    installed bitsandbytes before anything loads.

    A quantised backbone computes in half precision on a GPU (bitsandbytes' kernels are fp16/bf16)
    and in fp32 on a CPU unless ``model.dtype`` says otherwise.
    """
    name = weight_dtype_name(dtype, device)
    if quantization != "none":
        check_quantization(quantization, device)
    return WeightFormat(name, quantization)


def check_quantization(quantization: str, device: torch.device) -> None:
    """Raises one line when bitsandbytes is missing or cannot quantise on ``device``."""
    if quantization not in QUANTIZATIONS:
        raise EmotuneError(f"model.quantization must be one of {QUANTIZATIONS}, got '{quantization}'")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise EmotuneError(f"model.quantization {quantization} needs bitsandbytes: {QLORA_EXTRA}")
    problem = _bnb_probe(quantization, device.type)
    if problem:
        raise EmotuneError(f"model.quantization {quantization} does not run on {device.type} here: {problem}")


@lru_cache(maxsize=8)
def _bnb_probe(quantization: str, device_type: str) -> str:
    """Quantises and multiplies a small matrix with bitsandbytes on the device: "" when it works,
    else the first line of what went wrong (an old bitsandbytes without a CPU backend, no CUDA
    build, an unsupported GPU)."""
    import torch

    try:
        import bitsandbytes as bnb

        x = torch.randn(4, 64, device=device_type)
        layer = (
            bnb.nn.Linear4bit(64, 64, bias=False, quant_type="nf4")
            if quantization == "4bit"
            else bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        )
        layer.to(device_type)(x)
    except Exception as err:  # bitsandbytes raises many types for a missing backend
        text = str(err).strip().splitlines()
        return text[0] if text else type(err).__name__
    return ""


def quantization_config(fmt: WeightFormat) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``fmt`` (QLoRA's nf4 with double quantisation)."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = getattr(torch, fmt.dtype)
    if fmt.quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def keep_trainable_fp32(model: nn.Module) -> None:
    """Casts every trainable parameter to fp32: half-precision weights with fp32 adapters (what
    mixed precision means), so optimizer updates smaller than a half's resolution are not lost."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def grad_scaler(dtypes: set[torch.dtype | None], device: torch.device) -> Any:
    """A gradient scaler when fp16 is among the weight and autocast ``dtypes`` on a GPU (None
    otherwise: bf16 and fp32 gradients do not underflow)."""
    import torch

    if torch.float16 not in dtypes or device.type != "cuda":
        return None
    return torch.amp.GradScaler(device.type)
