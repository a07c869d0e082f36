"""A/B of training precision modes: train fp32 and another mode for N seeds, compare.

Training may use a faster mode only if its results are indistinguishable from fp32's
(issue 16): final training loss and test error "within seed noise". This trains the same
suite (same seeds, same data, same schedule) once per mode and reports, per network, the
per-seed values, the seed-to-seed standard deviation of the fp32 runs, and the paired
(same-seed) difference ``mode - fp32`` with a :func:`proofs.stats.paired_seed_ci`
interval. Verdict per network: ``indistinguishable`` when both intervals contain 0 and
both mean differences are within one fp32 seed standard deviation, else ``different``.
With 3 seeds the Student-t interval is wide (it rests on 3 pairs): a ``different`` is a
reason not to switch, an ``indistinguishable`` is a necessary condition, not a proof.

Usage::

    python -m proofs.precision_ab --variant S --net all --scale small --seeds 3 \\
        --mode bf16 --out runs/precision-ab        # --resume continues it

Projected wall time of that ``small`` A/B on 2 quiet CPU cores (not run: the machine is
shared): the committed ``small`` suite trained all 15 networks in 1317 s for one seed in
fp32 (results/mnist-small/suite.json: R 377 s, T 262 s, S 679 s); 3 seeds at that rate
are ~66 min, the bf16 side ~48 min (R 1.15x, T 1.4x, S 1.5x, benchmarks/README.md), and
the evaluations on 2000 test digits ~10 min: **about 2 hours** (S alone, 3 seeds x 2
modes: ~57 min).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models.precision import PRECISIONS, Precision
from models.record import SuiteRecord
from models.train import run_suite

from .stats import paired_seed_ci

__all__ = ["precision_ab", "main"]


def _final_losses(run_dir: Path) -> list[float]:
    lines = [ln for ln in (run_dir / "log.jsonl").read_text().splitlines() if ln.strip()]
    return [float(v) for v in json.loads(lines[-1])["loss"]]


def precision_ab(out, *, variant: str, nets, scale: str = "small", seeds: int = 3,
                 mode: str = "bf16", baseline: str = "fp32", data=None, progress: bool = True,
                 resume: bool = False, **overrides) -> dict:
    """Train ``nets`` on ``variant`` in ``baseline`` and ``mode`` for ``seeds`` seeds; compare.

    Args:
        out: directory; the suites go to ``out/<mode>/`` and the report to ``out/ab.json``.
        seeds: seeds 0..seeds-1 (>= 2: the interval needs pairs).
        data: optional ``{variant: (train, test)}`` (tests).
        overrides: further preset overrides (e.g. ``iters``), the same for both modes.

    Returns:
        ``{"variant", "scale", "seeds", "baseline", "mode", "nets": {net: {...}}}``.

    Raises:
        ValueError: ``seeds < 2``, an unknown mode, or ``mode == baseline``.
    """
    fn = "precision_ab"
    if not isinstance(seeds, int) or seeds < 2:
        raise ValueError(f"{fn}: expected seeds to be an int >= 2 (pairs for the interval), "
                         f"got {seeds!r}")
    mode = Precision.parse(mode, fn=fn).value
    baseline = Precision.parse(baseline, fn=fn).value
    if mode == baseline:
        raise ValueError(f"{fn}: expected mode to differ from baseline, got {mode!r} twice")
    out = Path(out)
    per_mode = {}
    for m in (baseline, mode):
        run_suite([variant], list(nets), out / m, scale=scale, resume=resume,
                  progress=progress, data=data, seeds=tuple(range(seeds)), precision=m,
                  **overrides)
        per_mode[m] = {}
        for n in nets:
            rd = SuiteRecord.run_dir(out / m, variant, n)
            metrics = json.loads((rd / "metrics.json").read_text())
            per_mode[m][n] = {"final_loss": _final_losses(rd),
                              "error": [float(e) for e in metrics["error"]["per_seed"]],
                              "images_per_s": float(metrics["train"]["images_per_s"])}
    report = {"variant": variant, "scale": scale, "seeds": list(range(seeds)),
              "baseline": baseline, "mode": mode, "nets": {}}
    for n in nets:
        a, b = per_mode[baseline][n], per_mode[mode][n]
        row, ok = {}, True
        for key in ("final_loss", "error"):
            noise = float(np.std(a[key], ddof=1))
            ci = paired_seed_ci(b[key], a[key])
            within = ci.contains(0.0) and abs(ci.estimate) <= noise
            ok = ok and within
            row[key] = {baseline: a[key], mode: b[key], "seed_std": noise,
                        "difference": ci.as_dict(), "within_seed_noise": within}
        row["verdict"] = "indistinguishable" if ok else "different"
        # training throughput of the two runs (each its own run, same machine; a ratio of
        # whole runs, data generation included, not of the step alone as `bench train`)
        row["images_per_s"] = {baseline: a["images_per_s"], mode: b["images_per_s"],
                               "ratio": b["images_per_s"] / a["images_per_s"]}
        report["nets"][n] = row
    (out / "ab.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "ab.md").write_text(format_report(report) + "\n")
    return report


def format_report(rep: dict) -> str:
    lines = [f"{rep['variant']} at {rep['scale']}, seeds {rep['seeds']}: {rep['mode']} - "
             f"{rep['baseline']}, paired by seed, 95 % Student-t interval over the seeds "
             f"(proofs.stats.paired_seed_ci); seed std: of the {rep['baseline']} runs. "
             "Verdict indistinguishable: both intervals contain 0 and both mean differences "
             "are within one seed std.", "",
             "| network | final loss diff [interval] | seed std | error diff [interval] | "
             "seed std | img/s ratio | verdict |", "|---|---|---:|---|---:|---:|---|"]
    for n, r in rep["nets"].items():
        cells = []
        for key in ("final_loss", "error"):
            d = r[key]["difference"]
            cells += [f"{d['estimate']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]",
                      f"{r[key]['seed_std']:.4f}"]
        ips = r.get("images_per_s")
        cells.append(f"{ips['ratio']:.2f}x" if ips else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {r['verdict']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from models.mnist_nets import NETS

    p = argparse.ArgumentParser(prog="python -m proofs.precision_ab", description=__doc__
                                .split("\n")[0])
    p.add_argument("--variant", required=True, choices=("R", "T", "S"))
    p.add_argument("--net", default="all", help="comma list or all")
    p.add_argument("--scale", default="small", choices=("smoke", "small", "medium", "paper"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--mode", default="bf16", choices=PRECISIONS)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    nets = list(NETS) if args.net == "all" else [n.strip() for n in args.net.split(",")]
    bad = [n for n in nets if n not in NETS]
    if bad:
        print(f"precision_ab: error: expected --net from {list(NETS)}, got {bad}",
              file=sys.stderr)
        return 2
    try:
        rep = precision_ab(args.out, variant=args.variant, nets=nets, scale=args.scale,
                           seeds=args.seeds, mode=args.mode, progress=not args.quiet,
                           resume=args.resume, device=args.device)
    except ValueError as e:
        print(f"precision_ab: error: {e}", file=sys.stderr)
        return 2
    print(format_report(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
