"""No kernels from the Hugging Face Hub on any path.

bitsandbytes, which PEFT imports whenever it is installed, asks the Hub's ``kernels`` package for a
CPU 4-bit kernel (``kernels-community/quantization-bitsandbytes``) at import time on processors
with AVX512-BF16: online that is a lookup of code no test here has seen, offline a "Skipping
publisher trust check" warning printed to every ``emotune predict`` user. emotune imports
bitsandbytes once with ``kernels`` hidden, so it keeps its own CPU path (transformers keeps its own
layers too: ``TRANSFORMERS_OWN_LAYERS`` in `emotune.models.backbones`).
"""

from __future__ import annotations

import importlib.util
import logging
import sys


def import_bitsandbytes_without_hub_kernels() -> None:
    """Imports bitsandbytes (if installed and not imported yet) with the ``kernels`` package
    unreachable and its fallback warning quiet; safe to call many times."""
    if "bitsandbytes" in sys.modules or importlib.util.find_spec("bitsandbytes") is None:
        return
    saved = sys.modules.get("kernels")
    sys.modules["kernels"] = None  # type: ignore[assignment]  # `from kernels import ...` raises ImportError
    quiet = logging.getLogger("bitsandbytes")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # a broken bitsandbytes only matters to 4-bit runs, which say so
        pass
    finally:
        quiet.setLevel(level)
        if saved is None:
            del sys.modules["kernels"]
        else:
            sys.modules["kernels"] = saved
