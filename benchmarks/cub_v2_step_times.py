"""Step times of the cub suite's six study networks on the standin-v2 variant (issue 29).

    OMP_NUM_THREADS=1 python benchmarks/cub_v2_step_times.py [--steps 20] [--repeats 2]

One step = rendering each batch afresh (EpochLocSet.train_batches, batch 16, 64 px) +
forward + backward + Adam, as the module loop runs it. Networks and widths are interleaved
in one process so all see the same load; prints wall and process-CPU seconds per step
(best of the repeats) per (network, width), the rendering alone, and the load average,
then the schedule arithmetic for 6 networks x 5 seeds. Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from models.suites import DataSource, get_suite
from models.suites.cub import preset

NETS = ("CSTN", "CSTN-lam0", "CSTN-fine", "CSTN-coarse", "no-CSTN", "CAM")


def main(steps: int = 20, repeats: int = 2, widths=(8, 16)) -> dict:
    torch.set_num_threads(1)
    suite = get_suite("cub")
    cfg0 = preset("medium", "standin-v2", "CSTN", test_digits=8, heldout_images=8)
    train, _ = suite.load_data("standin-v2", cfg0, DataSource("standin"))
    load0 = os.getloadavg()
    best: dict = {}
    g = torch.Generator().manual_seed(0)
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(steps):
        train.train_batches(16, [g], step=k)
    best["render"] = ((time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps)
    for _ in range(repeats):
        for net in NETS:
            for w in widths:
                cfg = preset("medium", "standin-v2", net, width=w)
                torch.manual_seed(0)
                model = suite.build(cfg).train()
                hooks = suite.hooks(cfg)
                opt = hooks.module_optimizer(cfg, model)
                gen = torch.Generator().manual_seed(0)

                def step(k):
                    x, y = train.train_batches(cfg.batch_size, [gen], step=k)
                    loss = hooks.loss(model(x[0]), y[0])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

                step(0)  # warm-up
                t, c = time.perf_counter(), time.process_time()
                for k in range(1, steps + 1):
                    step(k)
                wall, cpu = (time.perf_counter() - t) / steps, (time.process_time() - c) / steps
                old = best.get((net, w))
                best[(net, w)] = (wall, cpu) if old is None or wall < old[0] else old
    print(f"load average at start {load0}, at end {os.getloadavg()}")
    print(f"render a batch of 16: {best['render'][0]:.4f} s wall, {best['render'][1]:.4f} s CPU")
    for net in NETS:
        print(f"{net:12s} " + "  ".join(f"width {w}: {best[(net, w)][0]:.4f} s wall, "
                                        f"{best[(net, w)][1]:.4f} s CPU" for w in widths))
    for w in widths:
        tot = sum(best[(n, w)][0] for n in NETS)
        print(f"width {w}: sum over the six nets {tot:.3f} s/step; x 5 seeds x 5000 steps = "
              f"{5 * 5000 * tot:.0f} core-s = {5 * 5000 * tot / 2 / 60:.1f} min on 2 cores")
    return best


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    main(a.steps, a.repeats)
