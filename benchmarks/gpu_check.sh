#!/usr/bin/env bash
# One device call on a lent GPU, under 8 minutes: the `gpu` tests; the default backbone's
# architecture trained with LoRA in fp32, bf16 and 4-bit weights (peak memory and speed against
# `emotune plan`); and, when the default backbone's weights are in the cache
# (../shared/tools/gpu-weights), emotune against the standard recipe at equal batch sizes, warm-up
# apart. Writes gpu.txt, pytest-gpu.log, memory-plan-gpu.json and speed-gpu.json into $OUT (the
# device tool's folder) or benchmarks/results/. The operator counts of benchmarks/step_ops.py do
# not depend on the device and are measured on the CPU.
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
timeout 240 python3 -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest-gpu.log" || status=1
timeout 90 python3 benchmarks/memory_plan.py --gpu --out "$OUT/memory-plan-gpu.json" 2>&1 | tail -5 || status=1
if [ -f "${EMOTUNE_CACHE:-$HOME/.cache/emotune}/gguf/gemma-3-270m-q4_k_m.gguf" ]; then
    timeout 130 python3 benchmarks/speed.py --device cuda --dtype auto --batch-sizes 16,64,256 \
        --standard-batch-sizes 16,64,256 --lora-targets all-linear --out "$OUT/speed-gpu.json" 2>&1 | tail -5 || status=1
fi
exit $status
