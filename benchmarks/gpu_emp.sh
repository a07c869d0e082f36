#!/usr/bin/env bash
# The GPU plan of the empirical claims, as one script a lent device runs as is:
#   bash benchmarks/gpu_emp.sh [BUDGET_S]        (default 480 s: 8 minutes of one H100)
# Through the device tool: carry the MNIST cache (.cache/stnlab, see gpu_session.sh) and, to
# resume a previous lease, results/mnist-emp1-gpu. It trains the pre-registered GPU plan
# results/mnist-emp1-gpu/PLAN.md (committed before any of its runs; each run records the
# plan's sha256 in env.json, which proofs/plan.py checks, since the device's tree copy has
# no .git), stops cleanly before the budget (checkpointed: the next lease resumes exactly),
# and copies the run summaries (never checkpoints) to $OUT/mnist-emp1-gpu.
# EMP-1 (S) and the other EMP suites have no GPU plan committed yet (their plans say so).
set -u
BUDGET=${1:-480}
OUT=${OUT:-/tmp/out}
PLAN=results/mnist-emp1-gpu
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD STNLAB_DATA_DIR=${STNLAB_DATA_DIR:-$PWD/.cache/stnlab}
mkdir -p "$OUT"
test -f "$PLAN/plan.json" || { echo "gpu_emp: $PLAN/plan.json missing: commit the plan first"; exit 2; }
nvidia-smi -L 2>&1 | tee "$OUT/device.txt"
# the command the plan names, with a wall-clock bound (SIGINT: the loop checkpoints and exits)
CMD=$(python3 -c "import json; print(json.load(open('$PLAN/plan.json'))['workers'][0])")
echo "gpu_emp: $CMD  (budget ${BUDGET}s)"
timeout -s INT $((BUDGET - 30)) python3 -m proofs.cli ${CMD#stnlab } 2>&1 | tail -40 | tee "$OUT/train.log"
rc=${PIPESTATUS[0]}
mkdir -p "$OUT/mnist-emp1-gpu"
(cd "$PLAN" && find . -name "*.json" -o -name "*.jsonl" -o -name "*.md" | grep -v checkpoint \
  | tar -cf - -T - ) | tar -xf - -C "$OUT/mnist-emp1-gpu"
echo "gpu_emp: training exit $rc (124/130: stopped at the budget, resumable); summaries in $OUT/mnist-emp1-gpu"
