"""Probe 2: longer schedules. Judged on: does the net leave chance (90 %, 10 classes), does
the ST scale move. One seed, bilinear only (no sampler comparison)."""
import json, sys, time
from pathlib import Path
from models.suites import get_suite, DataSource
from models.train import train

suite = get_suite("gtsrb")
out = Path(sys.argv[1])
for spec in sys.argv[2:]:
    net, iters, lr = spec.split(":")
    iters, lr = int(iters), float(lr)
    cfg = suite.preset("medium", "table1", net, lr_st=lr, seeds=(0,), iters=iters,
                       validate_every=max(1, iters // 5), checkpoint_every=iters)
    data = suite.load_data("table1", cfg, DataSource("standin"))
    t = time.time()
    res = train(cfg, out / f"{net}-{iters}-lr{lr:g}", data[0], data[1], suite=suite,
                progress=False, keep_checkpoint=False)
    print(json.dumps({"net": net, "iters": iters, "lr_st": lr, "wall_s": round(time.time() - t),
                      "err": res["error"]["mean"], "best": res["early_stopping"],
                      "scale": res.get("mean_scale", {}).get("mean")}), flush=True)
