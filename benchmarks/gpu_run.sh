#!/usr/bin/env bash
# The GPU measurements of the real-JPEG activation pass and of DreamSim, in one run (at most about 8 minutes on one
# H100/H200 with 16 CPU cores). Installs nothing: run it in a working tree with the project's environment active.
#   bash benchmarks/gpu_run.sh [OUT_DIR]
# Prints, as ratios to the bare forward pass measured in the same run: resnet50 and vit_base_patch16_224 (random
# weights, bf16, batch 256) over a generated folder of ImageNet-like JPEGs with CPU and GPU decoding (+ levers:
# memory format, torch.compile, 256-px prepared copy, shared stream); the DreamSim-architecture embedding
# throughput; the per-unit overhead from 84 units to every unit; and the GPU tests.
set -u
OUT=${1:-${OUT:-/tmp/imibench-gpu}}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export HF_HUB_OFFLINE=1
FOLDER=${FOLDER:-/tmp/imibench-jpegs}
N=${N_IMAGES:-12288}
WORKERS=${NUM_WORKERS:-$(( $(nproc) - 2 ))}
run() {  # name, timeout (s), command...
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%T))"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v Warning
  echo "=== $name exit ${PIPESTATUS[0]}"
}
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.log"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee -a "$OUT/device.log"
run resnet50 120 python benchmarks/image_throughput.py --model resnet50 --device cuda --dtype bfloat16 \
  --batch-size 256 --n-images "$N" --num-workers "$WORKERS" --decode cpu,gpu --folder "$FOLDER" \
  --memory-formats --prepared-cache
run vit_base 80 python benchmarks/image_throughput.py --model vit_base_patch16_224 --device cuda --dtype bfloat16 \
  --batch-size 256 --n-images "$N" --num-workers "$WORKERS" --decode cpu,gpu --folder "$FOLDER"
run shared_stream 50 python benchmarks/image_throughput.py --model resnet50 --device cuda --dtype bfloat16 \
  --batch-size 256 --n-images 4096 --num-workers "$WORKERS" --decode gpu --folder "$FOLDER" \
  --shared-models resnet50,resnet18
run dreamsim 70 python benchmarks/dreamsim_throughput.py --device cuda --batch-size 256 --n-images 2048 \
  --folder "$FOLDER"
run units_scaling 60 python benchmarks/units_scaling.py --device cuda --size 224 --n-images 4096 --batch-size 256 \
  --units 84,1000,10000
run gpu_tests 50 python -m pytest -q -m gpu -p no:cacheprovider tests/stimuli/test_decode.py \
  tests/activations/test_collect.py
# last, as it may not finish: torch.compile of the bare forward (compilation takes a minute or more)
run compile 60 python benchmarks/image_throughput.py --model resnet50 --device cuda --dtype bfloat16 \
  --batch-size 256 --n-images 4096 --decode "" --folder "$FOLDER" --compile
echo "logs in $OUT"
