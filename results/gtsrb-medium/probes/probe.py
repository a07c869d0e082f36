"""Probe: does a CPU-scale ST learning rate let the GTSRB-stand-in ST zoom in within the
`medium` step budget? Judged only on the ST scale (sqrt|det|) and on whether it trains; no
sampler comparison. One seed, STN-bilinear-d4, medium preset otherwise."""
import json, sys, time
from pathlib import Path
from models.suites import get_suite, DataSource
from models.train import train

suite = get_suite("gtsrb")
out = Path(sys.argv[1])
net = sys.argv[2]
for lr in map(float, sys.argv[3:]):
    cfg = suite.preset("medium", "table1", net, lr_st=lr, seeds=(0,))
    data = suite.load_data("table1", cfg, DataSource("standin"))
    t = time.time()
    res = train(cfg, out / f"{net}-lr{lr:g}", data[0], data[1], suite=suite, progress=False,
                keep_checkpoint=False)
    print(json.dumps({"net": net, "lr_st": lr, "wall_s": round(time.time() - t),
                      **{k: res[k] for k in res if k not in ("train",)}}), flush=True)
