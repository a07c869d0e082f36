#!/usr/bin/env bash
# One GPU lease's work, as run through the device tool (see benchmarks/README.md):
#   bash benchmarks/gpu_session.sh STAGES BUDGET_S
# STAGES: comma list of  ext (build the fused kernels), tests, bench, probe, exp:NAME (a `stnlab experiment` at paper
# scale), paper (the MNIST suite at paper scale) ; BUDGET_S: seconds for the whole call.
# Expects the MNIST cache in .cache/stnlab (carried). Everything it writes lands in
# $OUT/session.tgz (plus the console). The paper-scale suite resumes from runs/gpu-paper
# (carried back in from a previous call) and is stopped cleanly before the budget ends.
set -u
STAGES=${1:-tests,bench,probe}
BUDGET=${2:-560}
OUT=${OUT:-/tmp/out}
W=$(mktemp -d)
mkdir -p "$OUT" "$W/samplers-paper"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD STNLAB_DATA_DIR=$PWD/.cache/stnlab
PAPER_NETS=${PAPER_NETS:-STN-C1,STN-SL1,STN-C0,STN-DL1,CNN}
PAPER_VARIANTS=${PAPER_VARIANTS:-R}
left() { echo $((BUDGET - SECONDS)); }

{ nvidia-smi -L; python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0], torch.cuda.get_device_name())"; } 2>&1 | tee "$W/env.txt"
for st in ${STAGES//,/ }; do
  echo "=== $st at ${SECONDS}s"
  case $st in
  ext)
    timeout 240 python3 -c "import time, sampling._ext as e; t=time.time(); e.load('cuda'); print('cuda kernel', e.status('cuda'), f'{time.time()-t:.1f}s'); t=time.time(); e.load('cpu'); print('cpu kernel', e.status('cpu'), f'{time.time()-t:.1f}s')" 2>&1 | tee "$W/ext-build.log" | tail -5 ;;
  tests)
    STNLAB_REQUIRE_EXT=1 timeout 170 python3 -m pytest -q -k cuda -p no:cacheprovider -n 8 \
      tests/sampling tests/models tests/invariance 2>&1 | tee "$W/pytest-cuda.log" | tail -8 ;;
  bench)
    timeout 120 python3 -m proofs.cli bench sampler --device cuda --repeats 21 \
      --json "$W/sampler-cuda.json" 2>&1 | tee "$W/sampler-cuda.md" | tail -22 ;;
  probe)
    t=$(( $(left) - 30 )); [ "$t" -gt 20 ] || continue
    timeout "$t" python3 benchmarks/train_throughput.py --device cuda --seeds 10 --repeats 10 \
      --variant "${PROBE_VARIANTS:-R,T,S}" --modes "${PROBE_MODES:-vmap}" \
      --json "$W/train-throughput.json" 2>&1 | tee "$W/train-throughput.md" | grep -v "^{" | tail -90 ;;
  exp:*)
    t=$(( $(left) - 40 )); [ "$t" -gt 20 ] || continue
    timeout "$t" python3 -m proofs.cli experiment "${st#exp:}" --scale paper --device cuda \
      --out "$W/samplers-paper" 2>&1 | tee "$W/exp-${st#exp:}.log" | grep -v ETA | tail -30 ;;
  paper)
    t=$(( $(left) - 40 )); [ "$t" -gt 30 ] || continue
    timeout "$t" python3 -m proofs.cli train --suite mnist --scale paper --device cuda \
      --variant "$PAPER_VARIANTS" --net "$PAPER_NETS" --out runs/gpu-paper --resume 2>&1 \
      | tee "$W/paper-train.log" | grep -v "img/s" | tail -20
    grep "img/s" "$W/paper-train.log" | tail -3
    cp -r runs/gpu-paper "$W/" ;;
  esac
done
tar -czf "$OUT/session.tgz" -C "$W" . && ls -la "$OUT"
echo "used ${SECONDS}s of ${BUDGET}s"
