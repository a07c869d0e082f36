"""``stnlab train``: train the MNIST STN suite (000 Tables I, II), or list parameter counts.

Examples::

    stnlab train --suite mnist --list-params [--json]
    stnlab train --suite mnist --variant all --net all --scale small --out results/mnist-small
    stnlab train --suite mnist --variant R --net STN-C1 --scale paper --seeds 10 \\
        --device cuda --out runs/paper
    stnlab train ... --resume        # continue unfinished runs, keep finished ones
"""

from __future__ import annotations

import argparse
import json
import sys

from sampling.checks import UsageError

from .mnist_nets import NETS, TABLE_VI_PARAMS, VARIANT_SHAPES, param_counts
from .train import SCALES, TrainingDiverged, run_suite

SUITES = ("mnist",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stnlab train``."""
    parser.add_argument("--suite", default="mnist", help="experiment suite (only 'mnist')")
    parser.add_argument("--variant", default="all", help="R, T, S, a comma list, or all")
    parser.add_argument("--net", default="all",
                        help=f"one of {', '.join(NETS)}, a comma list, or all")
    parser.add_argument("--scale", default="small", help=f"one of {', '.join(SCALES)}")
    parser.add_argument("--seeds", type=int, default=None,
                        help="train seeds 0..N-1 together (default 1 at smoke/small, 3 at medium, 10 at paper)")
    parser.add_argument("--out", default=None, help="suite output directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue unfinished runs from their checkpoints")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--list-params", action="store_true",
                        help="print every network's parameter count (000 Table VI) and exit")
    parser.add_argument("--json", action="store_true", help="with --list-params: JSON output")
    g = parser.add_argument_group("overrides of the scale's preset")
    g.add_argument("--iters", type=int, default=None, help="steps at the initial lr")
    g.add_argument("--iters-low", type=int, default=None, help="steps at lr / 10")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None, help="initial learning rate")
    g.add_argument("--test-digits", type=int, default=None)
    g.add_argument("--test-perturb", type=int, default=None)
    g.add_argument("--checkpoint-every", type=int, default=None)
    g.add_argument("--method", default=None, help="ST sampler: bilinear, linearized, multiscale")
    g.add_argument("--no-vmap", action="store_true", help="train seeds one after another")
    parser.add_argument("--drop-checkpoints", action="store_true",
                        help="delete each run's checkpoint.pt once the run has finished "
                             "(for result directories committed without weights)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _pick(value: str, choices, what: str) -> list[str]:
    if value == "all":
        return list(choices)
    picked = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in picked if v not in choices]
    if bad or not picked:
        raise UsageError(f"expected --{what} to be 'all' or from {list(choices)}, got {value!r}")
    return picked


def _params_table(counts: dict) -> str:
    lines = ["| variant | network | params (ours) | params (paper, Table VI) | diff |",
             "|---|---|---:|---:|---:|"]
    for v, row in counts.items():
        for n, c in row.items():
            p = TABLE_VI_PARAMS[v][n]
            lines.append(f"| {v} | {n} | {c} | {p} | {c - p:+d} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``stnlab train``."""
    if args.suite not in SUITES:
        raise UsageError(f"expected --suite in {list(SUITES)}, got {args.suite!r}")
    if args.list_params:
        counts = param_counts()
        print(json.dumps(counts) if args.json else _params_table(counts))
        return 0
    if args.json:
        raise UsageError("--json goes with --list-params")
    if args.scale not in SCALES:
        raise UsageError(f"expected --scale in {list(SCALES)}, got {args.scale!r}")
    if args.out is None:
        raise UsageError("expected --out DIR for the suite's run directories")
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: CUDA is not available on this machine")
    variants = _pick(args.variant, VARIANT_SHAPES, "variant")
    nets = _pick(args.net, NETS, "net")
    n_seeds = args.seeds if args.seeds is not None else {"paper": 10, "medium": 3}.get(args.scale, 1)
    if n_seeds < 1:
        raise UsageError(f"expected --seeds >= 1, got {n_seeds}")
    overrides = dict(seeds=tuple(range(n_seeds)), device=args.device, iters=args.iters,
                     iters_low=args.iters_low, batch_size=args.batch_size, lr=args.lr,
                     test_digits=args.test_digits, test_perturb=args.test_perturb,
                     checkpoint_every=args.checkpoint_every, method=args.method)
    if args.no_vmap:
        overrides["vmap"] = False
    try:
        suite = run_suite(variants, nets, args.out, scale=args.scale, resume=args.resume,
                          progress=not args.quiet,
                          keep_checkpoints=not args.drop_checkpoints, **overrides)
    except TrainingDiverged as e:
        print(f"stnlab train: error: {e}", file=sys.stderr)
        return 1
    for v, row in suite["runs"].items():
        for n, r in row.items():
            if v in variants and n in nets and r:
                err = r.get("error", {}).get("mean")
                pose = r.get("pose_std", {}).get("mean")
                print(f"{v} {n:8s} error {100 * err:6.2f}%" if err is not None else f"{v} {n}",
                      f"pose std {pose:.3f} {r['pose_std']['unit']}" if pose is not None else "",
                      file=sys.stderr)
    print(f"stnlab train: wrote {args.out}/suite.json", file=sys.stderr)
    return 0
