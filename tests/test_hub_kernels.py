"""No Hub kernel lookups on any path: `emotune predict --run` offline, on a CPU that bitsandbytes
believes has AVX512-BF16 (where it asks the Hub's `kernels` package for a kernel at import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: make bitsandbytes see AVX512-BF16, record every `kernels.get_kernel`
# call, then predict through the CLI.
SCRIPT = """
import importlib.abc, importlib.machinery, sys

class ForceBf16(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "bitsandbytes.functional":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.has_avx512bf16 = lambda: True
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, ForceBf16())
import kernels
calls = []
kernels.get_kernel = lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(RuntimeError("hub"))
from emotune.cli import main
code = main(["predict", "--run", sys.argv[1], "a wonderful film"])
print("GET_KERNEL_CALLS", len(calls))
raise SystemExit(code)
"""


def test_predict_offline_makes_no_hub_kernel_lookup(tiny_run: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_run)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GET_KERNEL_CALLS 0" in done.stdout
    output = done.stdout + done.stderr
    assert "publisher trust" not in output and "kernels-community" not in output
