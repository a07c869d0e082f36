"""The ``stnlab`` command line.

Each sub-command lives in the package it belongs to, as a module with two
functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

and is listed in :data:`COMMANDS`. Every listed module must import (a broken one is an
error, not a missing sub-command). Machine-readable output follows one convention:
``--json [PATH]`` writes JSON to PATH, or to stdout for ``-`` or no PATH
(:func:`models.runio.add_json_argument`).

User mistakes (:class:`ValueError`, including :class:`models.errors.UsageError`,
``FileNotFoundError``) are printed as one line ``stnlab <cmd>: error: ...`` with
exit status 2; set ``STNLAB_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("models.data.cli", "fetch and inspect datasets (MNIST, ...)"),
    "prove": ("proofs.run", "run the claims catalogue; write report.md/report.json and figures"),
    "train": ("models.cli", "train STN models (MNIST suite, ...)"),
    "report": ("proofs.suite_report", "render run directories or suites as Markdown + figures"),
    "bench": ("proofs.bench", "benchmark the samplers against F.grid_sample"),
    "experiment": ("proofs.experiments.cli",
                   "run a sampler experiment (gradient field, alignment, ablations)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that prints one line (not the usage block) on a bad argument."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def _load(module: str):
    """Import a sub-command's module; one that fails to import is an error, never hidden."""
    return importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stnlab", description="stnlab: when can a spatial transformer "
                     "make a CNN invariant? Executable claims from three STN papers.")
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("stnlab")
    except PackageNotFoundError:  # running from a source tree
        ver = "unknown"
    parser.add_argument("--version", action="version", version=f"stnlab {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        mod = _load(module)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # e.g. `stnlab data info --json | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        print(f"stnlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        if os.environ.get("STNLAB_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"stnlab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
