#!/bin/bash
# base (eb9bc61, /tmp/sampler-base) and new (h-sampler) benches, interleaved, both capability levels
export TORCH_EXTENSIONS_DIR=/tmp/ext-sampler OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
S="--shape 256,1,28,28 --shape 64,1,60,30 --shape 64,3,50,12 --shape 8,3,256,32 --shape 32,64,32,32"
ST=/work/main/.venv/bin/stnlab
for round in ${ROUNDS:-1 2}; do
  PYTHONPATH=/tmp/sampler-base $ST bench sampler --threads 1 --repeats 25 $S --json base-avx512-$round.json > base-avx512-$round.md 2>/dev/null
  PYTHONPATH=/work/wt/sampler $ST bench sampler --threads 1 --repeats 25 --json new-avx512-$round.json > new-avx512-$round.md 2>/dev/null
  ATEN_CPU_CAPABILITY=avx2 PYTHONPATH=/tmp/sampler-base $ST bench sampler --threads 1 --repeats 25 --cpu-kernel avx2 $S --json base-avx2-$round.json > base-avx2-$round.md 2>/dev/null
  ATEN_CPU_CAPABILITY=avx2 PYTHONPATH=/work/wt/sampler $ST bench sampler --threads 1 --repeats 25 --cpu-kernel avx2 --json new-avx2-$round.json > new-avx2-$round.md 2>/dev/null
done
echo done
