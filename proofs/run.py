"""``stnlab prove``: run every check of the claims catalogue, write the report.

    stnlab prove                   # every claim; prove-out/report.md, report.json, figures/
    stnlab prove --quick           # the CI-sized subset
    stnlab prove --only INV-4 --only GEO-1,GEO-2
    stnlab prove --json [PATH]     # the JSON summary on stdout ('-', no PATH) or to PATH
    stnlab prove --device cuda     # checks that compute on tensors use this device
    stnlab prove --seed 7 --seeds 3   # seeds 7, 1007, 2007 (default: 5 full, 2 --quick)
    stnlab prove --catalogue CLAIMS.md  # write the claims catalogue; run nothing

Committed records (the EMP claims) are read from ``--results``, else ``$STNLAB_RESULTS``,
else ``results/`` next to the installed package (:func:`proofs.registry.default_results_dir`),
whatever the working directory.

Exit status: 0 if no check failed ("inconclusive" and "not run" are not failures, and
never count as verified), 1 if any check failed, 2 on a usage error.
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

from .registry import (
    DEFAULT_SEEDS,
    RESULTS_ENV,
    CheckContext,
    default_results_dir,
    load_all,
    prove_seeds,
    run_claims,
)
from .report import Progress, status_reason, summarize, write_report

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
    parser.add_argument("--seed", type=int, default=0,
                        help="first seed; the checks run over S, S+1000, ... (default: 0)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help=f"number of seeds (default: {DEFAULT_SEEDS['full']}, "
                        f"{DEFAULT_SEEDS['quick']} with --quick)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"directory of committed empirical results the EMP claims read (default: "
        f"${RESULTS_ENV}, else results/ next to the installed package)",
    )
    parser.add_argument("--catalogue", type=Path, default=None, metavar="PATH",
                        help="write the claims catalogue (CLAIMS.md) to PATH and exit; "
                        "runs no check")
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


def _writable_out(path) -> Path:
    """``--out`` made and written to once before any check runs (a report that cannot be
    written is known in a second, not after the checks' minutes).

    Raises:
        ConfigError: ``path`` (or a parent) is a file, or the directory cannot be made or
            written (one line naming ``--out``).
    """
    import tempfile

    from models.errors import ConfigError

    out = runio.check_output_dir(path, arg="--out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ConfigError(f"--out {out}: expected a directory prove can write its report "
                          f"into, but {e.strerror or e} ({e.filename or out}); choose "
                          f"another --out") from None
    return out


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
    if args.catalogue is not None:
        from .catalogue import write_catalogue

        path = write_catalogue(args.catalogue)
        print(f"wrote {path}")
        return 0
    only = parse_only(args.only)
    if args.seed < 0:
        raise ValueError(f"--seed: expected a non-negative int, got {args.seed}")
    n_seeds = args.seeds if args.seeds is not None else DEFAULT_SEEDS[
        "quick" if args.quick else "full"]
    if n_seeds < 1:
        raise ValueError(f"--seeds: expected a positive int, got {n_seeds}")
    results = Path(args.results) if args.results is not None else default_results_dir()
    device = str(args.device)
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"--device: expected cpu or cuda[:i], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = _writable_out(args.out)
    ctx = CheckContext(
        out_dir=out,
        quick=bool(args.quick),
        seed=int(args.seed),
        seeds=prove_seeds(int(args.seed), int(n_seeds)),
        device=device,
        results_dir=results,
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
        "seeds": list(ctx.seeds),
        "results": str(results),
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
            why = status_reason(c)
            print(f"{c['id']:<{width}}  {c['status']}" + (f" -- {why}" if why else ""))
        print(
            f"{summ['verified']} verified, {summ['failed']} failed, {summ['inconclusive']} "
            f"inconclusive, {summ['not run']} not run in {elapsed:.1f}s; wrote {md} and {js}"
        )
    return 1 if summ["failed"] else 0
