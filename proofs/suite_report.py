"""``stnlab report``: render a run directory or a suite as Markdown, paper numbers alongside.

``stnlab report runs/mnist-small`` writes ``runs/mnist-small/report.md`` (and
``report.json``) plus ``figures/*.png`` next to it; ``--out FILE.md`` puts them elsewhere.
A report that git tracks (``results/mnist-small/report.md``) is not rewritten unless
``--in-place`` says so.
The tables are the suite's (:mod:`models.report` for MNIST), the figures are
:mod:`figures.models`'; both read loaded records only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from models.errors import ConfigError
from models.record import RunRecord, SuiteRecord
from models.report import PAPER_TABLE_I, PAPER_TABLE_II, load_records, run_table, suite_tables
from models.runio import add_json_argument, atomic_write_json, emit_json

__all__ = ["render_suite", "render_run", "scale_notes", "SCALE_NOTES", "add_arguments", "run"]

_CAPTIONS = {"fig5_gallery": "Fig. 5: perturbed test digits (top) and the ST outputs "
             "(STN-C1: its matrix applied to the input)",
             "fig6_rotation": "Fig. 6: predicted vs applied rotation on (R)",
             "training_curves": "Training loss"}


#: What a report at a scale must say before any number (a scale not listed needs no word).
SCALE_NOTES = {
    "smoke": ("> **Smoke run: not a result.** `--scale smoke` trains each network for a handful "
              "of steps on a few hundred digits, to check that the pipeline runs end to end; "
              "its errors say nothing about the networks and are not comparable with the paper's numbers beside "
              "them. Results come from `--scale small` (short, CPU) or `--scale paper`."),
}


def scale_notes(scales) -> list[str]:
    """The :data:`SCALE_NOTES` lines (each followed by a blank line) for these scales."""
    return [line for sc in sorted(set(scales)) if sc in SCALE_NOTES
            for line in (SCALE_NOTES[sc], "")]


def render_suite(suite_dir, out_md=None, *, figures: bool = True) -> str:
    """Markdown for a suite directory; writes ``out_md`` (+ ``.json``, figures) if given."""
    suite_dir = Path(suite_dir)
    name = (SuiteRecord.load_index(suite_dir, "?").get("suite") or "mnist")
    _check_one_suite(suite_dir, name)
    if name != "mnist":
        return _render_other(name, suite_dir, out_md, figures=figures)
    suite = load_records(suite_dir)
    runs = {v: {n: r.with_config() for n, r in row.items()} for v, row in suite.runs.items()}
    if not runs:
        raise FileNotFoundError(f"report: no finished runs (*/*/metrics.json) under {suite_dir}")
    scales = sorted({r.get("scale", "?") for row in runs.values() for r in row.values()})
    n_done = sum(len(r) for r in runs.values())
    lines = [f"# MNIST STN suite: {suite_dir.name}", ""]
    lines += scale_notes(scales)
    lines += [f"Scale: {', '.join(scales)}; {n_done} of 15 networks finished. Paper = "
              "Finnveden, Jansson, Lindeberg, ICPR 2020 (called 000 in this repository; "
              "columns labelled *paper* are copied from its tables for comparison, never "
              "used as ours).", ""]
    lines += suite_tables(runs) + suite.stopped_lines() + suite.collapse_lines()
    figs = {}
    if figures and out_md is not None:
        from figures.models import draw_suite  # matplotlib only when drawing

        figs = draw_suite(suite, Path(out_md).parent / "figures")
        lines += _figure_lines({k: (p, _CAPTIONS.get(k, k)) for k, p in figs.items()}, out_md)
    return _write(lines, out_md, {"suite": str(suite_dir), "runs": runs, "figures": figs,
                                  "stopped": suite.stopped,
                                  "paper": {"table_i": PAPER_TABLE_I,
                                            "table_ii": PAPER_TABLE_II}})


def _check_one_suite(suite_dir: Path, name: str) -> None:
    """Refuse a directory whose runs come from another suite than its ``suite.json`` says
    (a mixed directory, as ``stnlab train --resume`` with another ``--suite`` once made).

    Raises:
        ConfigError: one line naming the first foreign run's ``metrics.json``.
    """
    for m in sorted(suite_dir.glob("*/*/metrics.json")):
        held = (RunRecord.load(m.parent).metrics or {}).get("suite")
        if held is not None and held != name:
            raise ConfigError(f"report: {m} is a {held} run, but {suite_dir / 'suite.json'} "
                              f"says the directory holds a {name} suite; move the {held} "
                              f"runs to their own directory")


def _render_other(name: str, suite_dir: Path, out_md, *, figures: bool) -> str:
    """A non-MNIST suite: its own tables (``Suite.report``) and figures
    (``figures.<name>.draw_suite(SuiteRecord, out_dir)``, if that module exists; it returns
    ``{name: path}`` or ``{name: (path, caption)}``)."""
    import importlib

    from models.suites import get_suite

    suite = get_suite(name)
    rec = SuiteRecord.load(suite_dir, variants=suite.variants, nets=suite.nets)
    if not len(rec):
        raise FileNotFoundError(f"report: no finished runs (*/*/metrics.json) under {suite_dir}")
    lines = [f"# {name} suite: {suite_dir.name}", ""] + list(suite.report(suite_dir))
    lines += rec.stopped_lines() + rec.collapse_lines()
    figs = {}
    if figures and out_md is not None:
        try:
            mod = importlib.import_module(f"figures.{name}")
        except ModuleNotFoundError:
            mod = None
        if mod is not None and hasattr(mod, "draw_suite"):
            figs = {k: (v if isinstance(v, tuple) else (v, k))
                    for k, v in mod.draw_suite(rec, Path(out_md).parent / "figures").items()}
            lines += _figure_lines(figs, out_md)
    return _write(lines, out_md, {
        "suite": str(suite_dir), "name": name, "runs": rec.as_dicts(), "stopped": rec.stopped,
        "figures": {k: str(v[0]) for k, v in figs.items()},
        "paper": getattr(importlib.import_module(type(suite).__module__), "PAPER", None)})


def _figure_lines(figs: dict, out_md) -> list[str]:
    """Markdown image lines for ``{name: (path, caption)}``, relative to ``out_md``."""
    if not figs:
        return []
    lines = ["### Figures", ""]
    for p, caption in figs.values():
        lines += [f"![{caption}]({os.path.relpath(p, Path(out_md).parent)})", ""]
    return lines


def _write(lines: list[str], out_md, payload: dict) -> str:
    """The report text; written with its JSON twin (``payload``) when ``out_md`` is given."""
    text = "\n".join(lines)
    if out_md is not None:
        out_md = Path(out_md)
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(text)
        atomic_write_json(out_md.with_suffix(".json"), payload)
    return text


def render_run(run_dir, out_md=None) -> str:
    """Markdown for a single run directory (``metrics.json`` and ``config.json``)."""
    rec = RunRecord.load(run_dir)
    lines = run_table(rec)  # a title, a blank line, the table
    lines[2:2] = scale_notes([rec.with_config().get("scale", "?")])
    text = "\n".join(lines) + "\n"
    if out_md is not None:
        Path(out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(out_md).write_text(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stnlab report``."""
    parser.add_argument("path", help="a suite directory (<variant>/<net>/ runs) or one run")
    parser.add_argument("--out", default=None,
                        help="Markdown file to write (default: PATH/report.md, unless that "
                             "file is tracked by git: then --out or --in-place is needed)")
    parser.add_argument("--in-place", action="store_true",
                        help="regenerate PATH/report.md (and figures/) even where git tracks "
                             "them (a committed report)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    add_json_argument(parser, "the report (suite: as report.json)")


def _tracked_by_git(path: Path) -> bool:
    """Whether git tracks ``path`` (False outside a work tree or without git)."""
    import subprocess

    if not path.exists():
        return False
    try:
        r = subprocess.run(["git", "ls-files", "--error-unmatch", path.name],
                           cwd=path.parent, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def run(args: argparse.Namespace) -> int:
    """Run ``stnlab report``."""
    path = Path(args.path)
    if not path.is_dir():
        raise FileNotFoundError(f"report: {path} is not a directory")
    out = Path(args.out) if args.out else path / "report.md"
    if args.out is None and not args.in_place and _tracked_by_git(out):
        raise ConfigError(f"report: {out} is committed (tracked by git); write elsewhere "
                          f"with --out FILE.md, or regenerate it with --in-place")
    if RunRecord.is_run(path):
        text = render_run(path, out)
        js = RunRecord.load(path).with_config()
    else:
        try:
            text = render_suite(path, out, figures=not args.no_figures)
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            # a record without a field the tables or figures read: one line, not a traceback
            raise ConfigError(f"report: a record under {path} lacks or mistypes a field "
                              f"the report reads ({type(e).__name__}: {e}); rerun with "
                              f"STNLAB_DEBUG=1 for the traceback") from e
        js = json.loads(out.with_suffix(".json").read_text())
    print(text, file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json is not None:
        emit_json(args.json, js)
    print(f"stnlab report: wrote {out}", file=sys.stderr)
    return 0
