"""Probe (not a result): does 000's DLX localization learning-rate multiplier push the
ST off the image at `medium`? One network, one seed, `medium` preset otherwise, 000's
multiplier vs the 0.01 every other network uses. Judged only on where the ST ends
(fraction of sampling points inside, final log line) and the error; no depth comparison
is made from it, and the committed suite keeps 000's multipliers.

    OMP_NUM_THREADS=1 python results/svhn-medium/probes/dl_loc_lr.py SUITE NET LOC_LR SEED OUT
"""
import json
import sys
from pathlib import Path

from models.suites import DataSource, get_suite
from models.train import run_suite, SuiteStopped

suite_name, net, loc_lr, seed, out = sys.argv[1:6]
suite = get_suite(suite_name)
v = suite.variants[0]
try:
    run_suite([v], [net], out, scale="medium", suite=suite, source=DataSource("standin"),
              seeds=(int(seed),), loc_lr=float(loc_lr), keep_checkpoints=False, progress=False)
except SuiteStopped as e:
    print(e)
run = Path(out) / v / net
log = run / "log.jsonl"
lines = log.read_text().splitlines() if log.exists() else []
last = json.loads(lines[-1]) if lines else {}
m = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
stop = run / "diverged.json"
print(json.dumps({"suite": suite_name, "net": net, "loc_lr": float(loc_lr), "seed": int(seed),
                  "final_inside_frac": last.get("inside_frac"), "final_log2_det": last.get("log2_det"),
                  "test_error": m.get("error", {}).get("mean"),
                  "collapse": m.get("collapse"),
                  "diverged": json.loads(stop.read_text()) if stop.exists() else None}))
