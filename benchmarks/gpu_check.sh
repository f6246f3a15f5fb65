#!/usr/bin/env bash
# One device call on a lent GPU, under 8 minutes, every step under its own timeout:
#   1. the `gpu` tests (the 7B backbone is built and saved meanwhile, in the background);
#   2. the default backbone's architecture trained with LoRA in fp32, bf16 and 4-bit weights
#      against `emotune plan` (memory-plan-gpu.json);
#   3. emotune against the standard recipe on the default backbone's architecture at equal batch
#      sizes and precision, warm-up apart (speed-gpu.json, speed-gpu.md);
#   4. benchmarks/gpu_scale.py: a 7B backbone (random bf16 weights) trained through emotune's own
#      code, row by row, in what is left of the budget (gpu-scale.json).
# Writes those and gpu-check.log, pytest-gpu.log, gpu-scale.log into $OUT (the device tool's
# folder: at most 8 files) or benchmarks/results/.
#
#   bash benchmarks/gpu_check.sh
#   DEVICE=cpu bash benchmarks/gpu_check.sh    # the dry run: every step on the CPU, tiny sizes
#
# The GPU image lacks what emotune needs beyond torch: carry wheels in .whl/ (transformers>=5.23
# with huggingface-hub 2 and its httpx2, peft, bitsandbytes trimmed to its CUDA 13 library, gguf,
# fastapi for the service test; see the device README), the default backbone's config and
# tokenizer files in .gpu/gemma (tokenizer.json xz-compressed) and SST-2 in .gpu/data/sst.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
BUDGET="${BUDGET:-470}"  # seconds for the whole call
DEVICE="${DEVICE:-cuda}"  # cpu: the dry run, before a device call (tiny sizes, results in a temp folder)
TINY=()
MEMORY=()
SPEED=(--batch-sizes 16,64,256 --standard-batch-sizes 16,64,256 --train-batches 30)
if [ "$DEVICE" = cpu ]; then
    OUT="${DRY_OUT:-$(mktemp -d)}"
    mkdir -p "$OUT"
    TINY=(--tiny)
    MEMORY=(--batch 2 --length 32 --steps 1)
    SPEED=(--batch-sizes 2 --standard-batch-sizes 2 --train-batches 2 --standard-train-batches 1 \
        --predict-examples 8 --generate-examples 2)
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
DATA="${DATA:-.gpu/data/sst}"
[ -d "$DATA" ] || DATA=../shared/datasets/sst
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
log() { echo "[$SECONDS s] $*"; }
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
if ! python3 -c "import transformers, peft, accelerate, huggingface_hub, emotune.models.recogniser, emotune.training.trainer"; then
    log "the carried packages do not import together: falling back to the image's own"
    export PYTHONPATH=src
fi
if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
    log "dry run on the CPU: results in $OUT"
fi
python3 -c "import importlib.metadata as m; print({p: m.version(p) for p in ('torch', 'transformers', 'peft', 'accelerate', 'bitsandbytes')})"
df -h /dev/shm /tmp | tail -2
status=0
log "building the 7B backbone in the background"
python3 benchmarks/gpu_scale.py --device "$DEVICE" "${TINY[@]}" --prepare-only --data-dir "$DATA" >"$OUT/gpu-scale.log" 2>&1 &
prepare=$!
log "gpu tests"
timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider -rs tests >"$OUT/pytest-gpu.log" 2>&1 || status=1
tail -3 "$OUT/pytest-gpu.log"
wait $prepare || status=1
log "default backbone: memory against the plan"
timeout 60 python3 benchmarks/memory_plan.py --gpu --device "$DEVICE" "${MEMORY[@]}" --out "$OUT/memory-plan-gpu.json" 2>&1 | tail -4 || status=1
log "default backbone: emotune against the standard recipe"
MODEL_DIR=()
[ -d .gpu/gemma ] && MODEL_DIR=(--model-dir .gpu/gemma)
timeout 120 python3 benchmarks/speed.py --device "$DEVICE" --dtype auto "${MODEL_DIR[@]}" --data-dir "$DATA" \
    "${SPEED[@]}" --lora-targets all-linear --out "$OUT/speed-gpu.json" 2>&1 | tail -20 || status=1
# The 7B rows last: each row is skipped once too little of the budget is left for it. A tiny
# model of the same architecture goes first: if emotune cannot train it on this GPU, the 7B rows
# would only spend the budget failing the same way (2026-12-04: every load failed).
log "preflight: the tiny architecture on the GPU"
timeout 90 python3 benchmarks/gpu_scale.py --device "$DEVICE" --tiny --rows lora,qlora-lora --warmup 1 --steps 1 \
    --data-dir "$DATA" --out /tmp/gpu-scale-tiny.json 2>&1 | grep '^{'
if [ ! -f /tmp/gpu-scale-tiny.json ] || grep -q '"error"' /tmp/gpu-scale-tiny.json; then
    log "preflight failed: no 7B rows"
    exit 1
fi
left=$((BUDGET - SECONDS))
log "7B rows, $left s left"
timeout $((left + 30)) python3 benchmarks/gpu_scale.py --device "$DEVICE" "${TINY[@]}" --data-dir "$DATA" --budget "$left" \
    --out "$OUT/gpu-scale.json" >>"$OUT/gpu-scale.log" 2>&1 || status=1
grep '^{' "$OUT/gpu-scale.log" | tail -20
log "done, status $status"
exit $status
