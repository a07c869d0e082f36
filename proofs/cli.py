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
exit status 2; set ``STNLAB_DEBUG=1`` for the traceback. Ctrl-C stops any command
with one line and exit status 130 (see :func:`main`).
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
    "audit": ("proofs.audit_cli", "per-layer invariance audit of any PyTorch model: where "
              "could a spatial transformer live?"),
    "experiment": ("proofs.experiments.cli",
                   "run a sampler experiment (gradient field, alignment, ablations)"),
}

# Sub-commands added to a command whose own module defines its sub-commands:
# ``stnlab bench train`` (proofs.bench_train) beside ``stnlab bench sampler`` (proofs.bench).
SUBCOMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "bench": {"train": ("proofs.bench_train", "time a training step in each precision / "
                        "compile mode (images/s, speedup over fp32)")},
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
        for sub_name, (sub_module, sub_help) in SUBCOMMANDS.get(name, {}).items():
            _add_subcommand(p, sub_name, _load(sub_module), sub_help)
    return parser


def _add_subcommand(parser, name: str, mod, help_: str) -> None:
    """Add ``name`` (``mod.add_arguments`` / ``mod.run``) to ``parser``'s sub-commands
    (none if the command's module defines no sub-commands: nothing is added)."""
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                  None)
    if action is None:
        return
    p = action.add_parser(name, help=help_, description=help_)
    mod.add_arguments(p)
    p.set_defaults(_run=mod.run)  # a sub-parser's default overrides the parent's


def _main(argv: list[str] | None) -> int:
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


def _raise_interrupt_at_next_line(frame) -> None:
    """Raise :class:`KeyboardInterrupt` at the next line that ``frame`` or one of its
    callers executes (a line-trace on exactly those frames, removed when it fires)."""
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    previous = sys.gettrace()

    def on_line(fr, event, arg):
        if event != "line":
            return on_line
        sys.settrace(previous)
        for f in frames:
            f.f_trace = None
        raise KeyboardInterrupt

    for f in frames:
        f.f_trace = on_line
    sys.settrace(previous or (lambda fr, event, arg: None))  # line events need a global tracer


def _interrupt_reraiser(previous):
    """An ``sys.unraisablehook`` that does not let Ctrl-C be swallowed.

    Python runs the SIGINT handler (which raises :class:`KeyboardInterrupt`) in
    whatever Python code the main thread executes next -- sometimes a weakref or
    finalizer callback (e.g. ``WeakKeyDictionary``'s ``remove``, run when the
    garbage collector frees a key), where an exception cannot propagate: Python
    prints ``Exception ignored in: ... KeyboardInterrupt`` and the run goes on. This
    hook drops that message and raises the interrupt again at the next line of the
    code that was running (not in the hook itself, where it would be swallowed too).
    """

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _raise_interrupt_at_next_line(sys._getframe(1))
            return
        previous(unraisable)

    return hook


def main(argv: list[str] | None = None) -> int:
    """Run ``stnlab argv``; returns the exit status.

    Ctrl-C anywhere (also while the sub-commands are imported, and when it lands in
    a callback that cannot raise: :func:`_interrupt_reraiser`) ends the command with
    one line on stderr and status 130.
    """
    previous = sys.unraisablehook
    sys.unraisablehook = _interrupt_reraiser(previous)
    interrupted = False
    try:
        status = _main(argv)
        interrupted = status == 130
        return status
    except KeyboardInterrupt:
        interrupted = True
        print("stnlab: interrupted", file=sys.stderr)
        return 130
    finally:
        # After Ctrl-C, objects half-built when the interrupt landed (e.g. an image reader
        # interrupted in its constructor) fail in their finalizers at exit; those messages
        # are consequences of the interrupt, not news: keep "interrupted" the last line.
        sys.unraisablehook = (lambda unraisable: None) if interrupted else previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
