"""Step times of the CUB suite's networks at width 16 and 8, interleaved in one process so
both see the same load (the `medium` preset of models/suites/cub.py was sized from this).

    OMP_NUM_THREADS=1 python benchmarks/cub_step_times.py

Prints seconds per Adam step (batch 16, 128 px, stand-in data) per (network, width), two
repeats each, and the width-8 / width-16 ratio (best of the repeats). Writes nothing.
"""

from __future__ import annotations

import time

import torch

from models.suites import DataSource, get_suite
from models.suites.cub import preset


def main(nets=("CSTN", "CAM", "no-CSTN"), widths=(16, 8), steps=15, repeats=2) -> dict:
    suite = get_suite("cub")
    train_data, _ = suite.load_data("standin", preset("small", "standin", nets[0]),
                                    DataSource("standin"))
    times: dict = {}
    for _ in range(repeats):
        for net in nets:
            for w in widths:
                cfg = preset("small", "standin", net, width=w)
                torch.manual_seed(0)
                model = suite.build(cfg).train()
                hooks = suite.hooks(cfg)
                opt = hooks.module_optimizer(cfg, model)
                x, y = train_data.train_batches(cfg.batch_size, [torch.Generator().manual_seed(0)])

                def step():
                    loss = hooks.loss(model(x[0]), y[0])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

                step()  # warm-up
                t = time.perf_counter()
                for _ in range(steps):
                    step()
                times.setdefault((net, w), []).append((time.perf_counter() - t) / steps)
    for (net, w), v in times.items():
        print(f"{net:8s} width {w:2d}: " + ", ".join(f"{s:.3f} s" for s in v))
    for net in nets:
        print(f"{net:8s} width {widths[1]} / width {widths[0]}: "
              f"{min(times[(net, widths[1])]) / min(times[(net, widths[0])]):.3f}")
    return times


if __name__ == "__main__":
    main()
