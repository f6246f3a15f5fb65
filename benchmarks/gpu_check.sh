#!/usr/bin/env bash
# One device call on a lent GPU, under 8 minutes: the `gpu` tests, then the default backbone's
# architecture trained with LoRA in fp32, bf16 and 4-bit weights (peak memory and speed against
# `emotune plan`). Writes pytest-gpu.log and memory-plan-gpu.json into $OUT (the device tool's
# folder) or, elsewhere, benchmarks/results/.
#
#   bash benchmarks/gpu_check.sh
#
# The GPU image lacks what emotune needs beyond torch: carry wheels in .whl/ (transformers>=5.23,
# peft, bitsandbytes, gguf, sentencepiece; see the device README) and they are installed first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
export PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
status=0
timeout 270 python3 -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest-gpu.log" || status=1
timeout 180 python3 benchmarks/memory_plan.py --gpu --out "$OUT/memory-plan-gpu.json" 2>&1 | tail -5 || status=1
exit $status
