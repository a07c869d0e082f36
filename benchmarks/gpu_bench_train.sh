#!/usr/bin/env bash
# One device call (through the `device` tool): `stnlab bench train --device cuda` over every
# mode at the paper configuration (batch 256, 10 seeds) for S, T and R, within BUDGET_S.
#   bash benchmarks/gpu_bench_train.sh BUDGET_S
# Expects the MNIST cache in .cache/stnlab (carried). JSON and logs land in $OUT.
set -u
BUDGET=${1:-420}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD STNLAB_DATA_DIR=$PWD/.cache/stnlab
{ nvidia-smi -L; python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0], torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
for vn in S:STN-C0 S:CNN T:STN-C1 R:STN-C0; do
  left=$((BUDGET - SECONDS - 15)); [ "$left" -gt 30 ] || break
  v=${vn%%:*}; n=${vn#*:}
  echo "=== $v/$n at ${SECONDS}s (budget left ${left}s)"
  timeout "$left" python3 -m proofs.cli bench train --suite mnist --variant "$v" --net "$n" \
    --device cuda --batch-size 256 --seeds 10 --steps 8 --warmup 3 \
    --json "$OUT/bench-train-$v-$n-cuda.json" 2>&1 | tee "$OUT/bench-train-$v-$n-cuda.md" | tail -16
done
echo "used ${SECONDS}s of ${BUDGET}s"
