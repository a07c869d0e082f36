"""``stnlab experiment``: run a sampler experiment of 003 Sec. 6 and write JSON + PNG.

Usage::

    stnlab experiment gradient-field|alignment|ablation-sigma|ablation-k|ablation-collapse
        [--scale smoke|small|paper] [--out DIR] [--seed N] [--device cpu|cuda]
        [--threads N] [--quiet]

Writes ``DIR/<experiment>.json``, its figure(s) and ``DIR/README.md`` (default
``DIR = runs/samplers-<scale>`` under the working directory, ignored by git and printed
at start; the committed ``results/samplers-*`` are written only with an explicit ``--out``); progress (step, elapsed, ETA) goes to stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .samplers import EXPERIMENTS, SCALES

from models import runio

__all__ = ["add_arguments", "run"]

_HELP = {
    "gradient-field": "003 Fig. 8: descent directions over initial offsets, basin per d",
    "alignment": "003 Fig. 7: per-image alignment recall vs threshold (natural, MNIST)",
    "ablation-sigma": "003 Fig. 9a: auxiliary-sample sigma (1, 3, 6 px) at 4x down",
    "ablation-k": "003 Fig. 10a: number of auxiliary samples K (4, 8, 16, 32) at 4x down",
    "ablation-collapse": "003 Fig. 10b: collapse prevention on/off at 1x, 2x, 4x upsampling",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the experiment name (a sub-command) and the shared options."""
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT",
                                parser_class=type(parser))
    for name in EXPERIMENTS:
        p = sub.add_parser(name, help=_HELP[name], description=_HELP[name])
        p.add_argument("--scale", choices=list(SCALES), default="small",
                       help="smoke (seconds), small (minutes on a CPU), paper (003's sizes)")
        p.add_argument("--out", type=Path, default=None,
                       help="output directory (default: ./runs/samplers-<scale>; the "
                            "committed records: --out results/samplers-<scale>)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="torch device (default cpu)")
        p.add_argument("--threads", type=int, default=1,
                       help="torch intra-op threads (default 1: the tensors are small)")
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")
        runio.add_json_argument(p, "the result")


def run(args: argparse.Namespace) -> int:
    """Run the chosen experiment; 0 on success, 2 when no experiment was named."""
    from models.errors import UsageError

    if getattr(args, "experiment", None) is None:
        raise UsageError(f"expected an experiment, one of {', '.join(EXPERIMENTS)}")
    if args.threads < 1:
        raise UsageError(f"expected --threads >= 1, got {args.threads}")
    from .samplers import run_experiment

    res = run_experiment(args.experiment, scale=args.scale, out=args.out, seed=args.seed,
                         device=args.device, quiet=args.quiet, threads=args.threads)
    if args.json is not None:
        runio.emit_json(args.json, res)
    return 0
