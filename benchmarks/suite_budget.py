"""Does a suite's scale fit its CPU budget? Step times of every network, projected.

For each network of ``--suite`` at ``--scale`` (its preset, its default seeds, stand-in
data) this trains two short runs into a temporary directory with the real training loop
(``models.train.train``, ``stop_after``): ``--steps A,B`` steps. The per-step time is
``(t_B - t_A) / (B - A)``, so start-up (building, the first step's allocations) cancels.
The projection is ``sum over networks of total_steps x step time``, divided by the number
of cores (``--cores``: that many one-thread processes, each taking the next network, as
the worker scripts of issue 13 did), plus evaluation, which is not timed here (state it).
A network whose own seeds diverge within ``B`` steps is timed on seeds + 100 (the step's
cost does not depend on the seed; the row says which seeds were timed).

    OMP_NUM_THREADS=1 python benchmarks/suite_budget.py --suite svhn --scale medium

Nothing is asserted; it prints a Markdown table and, with ``--json PATH``, writes one.
Run it on an otherwise idle machine: a shared core makes every number longer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.runio import LOADED_SOURCE  # noqa: E402
from models.suites import DataSource, get_suite  # noqa: E402
from models.train import TrainingDiverged, train  # noqa: E402


def _timed(cfg, train_data, suite, steps: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        train(cfg, Path(d) / "run", train_data, None, progress=False, stop_after=steps,
              suite=suite)
        return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", required=True)
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--steps", default="5,25", help="A,B: the two run lengths (default 5,25)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--nets", default="all", help="comma list (default: every network)")
    ap.add_argument("--variant", default=None,
                    help="the data variant (default: the suite's first stand-in variant)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    lo, hi = (int(s) for s in a.steps.split(","))
    if not 0 < lo < hi:
        ap.error(f"--steps: expected A,B with 0 < A < B, got {a.steps!r}")
    suite = get_suite(a.suite)
    every = getattr(suite, "nets_for", None)  # suites whose `--net all` depends on the scale
    nets = ((every(a.scale) if every else suite.nets) if a.nets == "all"
            else tuple(a.nets.split(",")))
    pick = getattr(suite, "variants_for", None)  # suites with a real and a stand-in variant
    variant = a.variant or (pick(DataSource("standin"))[0] if pick else suite.variants[0])
    if variant not in suite.variants:
        ap.error(f"--variant: expected one of {list(suite.variants)}, got {variant!r}")
    seeds = tuple(range(suite.default_seeds(a.scale)))
    data = None
    rows = []
    for net in nets:
        cfg = suite.preset(a.scale, variant, net, seeds=seeds)
        if data is None:
            data = suite.load_data(variant, cfg, DataSource("standin"))[0]
        for timing_seeds in (seeds, tuple(s + 100 for s in seeds)):
            cfg = suite.preset(a.scale, variant, net, seeds=timing_seeds)
            try:
                t_lo, t_hi = (_timed(cfg, data, suite, n) for n in (lo, hi))
                break
            except TrainingDiverged:  # its own seeds diverge early: time the others
                continue
        else:
            sys.exit(f"suite_budget: {net} diverges within {hi} steps on seeds {seeds} and "
                     f"{timing_seeds}; not timed")
        step = (t_hi - t_lo) / (hi - lo)
        rows.append({"net": net, "seeds": len(seeds), "timing_seeds": list(timing_seeds),
                     "total_steps": cfg.total_steps, "step_s": step,
                     "projected_s": step * cfg.total_steps})
        print(f"{net}: {step:.3f} s/step x {cfg.total_steps} = {step * cfg.total_steps:.0f} s",
              file=sys.stderr, flush=True)
    total = sum(r["projected_s"] for r in rows)
    out = {"suite": a.suite, "variant": variant, "scale": a.scale, "seeds": list(seeds),
           "steps": [lo, hi],
           "cores": a.cores, "torch_threads": torch.get_num_threads(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
           "git_commit": LOADED_SOURCE["git_commit"],
           "load_average_at_end": os.getloadavg(), "rows": rows, "training_s": total,
           "projected_min_on_cores": total / a.cores / 60}
    print(f"| network | s/step ({len(seeds)} seeds) | steps | projected s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['net']} | {r['step_s']:.3f} | {r['total_steps']} | {r['projected_s']:.0f} |")
    print(f"\ntraining: {total:.0f} s on one core; {out['projected_min_on_cores']:.1f} min on "
          f"{a.cores} cores (evaluation not included); load average at the end "
          f"{out['load_average_at_end'][0]:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
