"""``stnlab prove``: run every check of the claims catalogue, write the report.

    stnlab prove                   # every claim; prove-out/report.md, report.json, figures/
    stnlab prove --quick           # the CI-sized subset
    stnlab prove --only INV-4 --only GEO-1,GEO-2
    stnlab prove --json [PATH]     # the JSON summary on stdout ('-', no PATH) or to PATH
    stnlab prove --device cuda     # checks that compute on tensors use this device

Exit status: 0 if no check failed ("not run" is not a failure, and never counts as
verified), 1 if any check failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from models import runio

from .registry import CheckContext, load_all, run_claims
from .report import Progress, summarize, write_report

__all__ = ["add_arguments", "run", "parse_only"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stnlab prove``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run only the CI-sized subset of checks (the others are 'not run')",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="ID[,ID]",
        default=None,
        help="run only these claims (repeatable, comma-separated), e.g. INV-4",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("prove-out"),
        help="output directory for report.md, report.json, figures/ (default: prove-out)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every check (default: 0)")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="directory of committed empirical results the EMP claims read (default: results/)",
    )
    runio.add_json_argument(parser, "the summary (id, status, key numbers)")
    parser.add_argument(
        "--device",
        default="cpu",
        help="device of the checks that train or sample on tensors: cpu or cuda[:i] "
        "(default: cpu)",
    )


def parse_only(values: list[str] | None) -> list[str] | None:
    """``["INV-4", "GEO-1,geo-2"]`` -> ``["INV-4", "GEO-1", "GEO-2"]`` (None: all)."""
    if not values:
        return None
    ids = []
    for v in values:
        for part in v.split(","):
            part = part.strip().upper()
            if part and part not in ids:
                ids.append(part)
    if not ids:
        raise ValueError("--only: expected claim ids such as INV-4, got nothing")
    return ids


def _count_checks(only: list[str] | None, quick: bool) -> int:
    claims = load_all()
    return sum(
        1
        for cid, c in claims.items()
        for ch in c.checks
        if (only is None or cid in only) and (not quick or ch.quick)
    )


def run(args: argparse.Namespace) -> int:
    """Run the selected checks and write the report; 1 if any check failed."""
    only = parse_only(args.only)
    if args.seed < 0:
        raise ValueError(f"--seed: expected a non-negative int, got {args.seed}")
    device = str(args.device)
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"--device: expected cpu or cuda[:i], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out: expected a directory, got the file {out}")
    ctx = CheckContext(
        out_dir=out,
        quick=bool(args.quick),
        seed=int(args.seed),
        device=device,
        results_dir=Path(args.results),
    )
    progress = Progress(_count_checks(only, ctx.quick))
    t0 = time.perf_counter()
    claims = run_claims(ctx, only, progress)
    elapsed = progress.done()
    meta = {
        "command": "stnlab prove " + " ".join(sys.argv[2:])
        if sys.argv[1:2] == ["prove"]
        else "stnlab prove",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": ctx.seed,
        "quick": ctx.quick,
        "only": only,
        "elapsed_s": elapsed,
        "wall_s": time.perf_counter() - t0,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "git": runio.git_commit(short=True),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }
    md, js = write_report(claims, out, meta)
    summ = summarize(claims)
    if args.json is not None:
        from .report import key_numbers

        runio.emit_json(
            args.json,
            {
                "summary": summ,
                "report": str(js),
                "claims": [
                    {"id": c["id"], "status": c["status"], "key_numbers": key_numbers(c)}
                    for c in claims
                ],
            },
        )
    if args.json != "-":
        width = max((len(c["id"]) for c in claims), default=5)
        for c in claims:
            print(f"{c['id']:<{width}}  {c['status']}")
        print(
            f"{summ['verified']} verified, {summ['failed']} failed, {summ['not run']} not run "
            f"in {elapsed:.1f}s; wrote {md} and {js}"
        )
    return 1 if summ["failed"] else 0
