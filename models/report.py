"""``stnlab report``: render a run directory or a suite as Markdown, paper numbers alongside.

``stnlab report results/mnist-small`` writes ``results/mnist-small/report.md`` (and
``report.json``) plus ``figures/*.png`` next to it; ``--out FILE.md`` puts them elsewhere.
Numbers from 000 are shown in columns labelled "paper"; ours are computed from the
saved ``metrics.json`` files only.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .mnist_nets import NETS, TABLE_VI_PARAMS

__all__ = ["PAPER_TABLE_I", "PAPER_TABLE_II", "load_suite", "render_suite", "render_run",
           "add_arguments", "run"]

VARIANTS = ("R", "T", "S")
STNS = NETS[1:]

#: 000 Table I (paper): average std of the final pose (R degrees, T pixels, S log2 det).
PAPER_TABLE_I = {
    "R": {"STN-C0": 23.2, "STN-C1": 47.2, "STN-DL1": 26.8, "STN-SL1": 18.7},
    "T": {"STN-C0": 1.16, "STN-C1": 1.15, "STN-DL1": 1.08, "STN-SL1": 1.32},
    "S": {"STN-C0": 0.319, "STN-C1": 0.508, "STN-DL1": 0.291, "STN-SL1": 0.330},
}
#: 000 Table II (paper): test error in % (std over 10 seeds).
PAPER_TABLE_II = {
    "R": {"CNN": (1.71, 0.07), "STN-C0": (1.08, 0.05), "STN-C1": (1.32, 0.04),
          "STN-DL1": (1.05, 0.02), "STN-SL1": (0.98, 0.06)},
    "T": {"CNN": (1.61, 0.06), "STN-C0": (1.10, 0.11), "STN-C1": (1.16, 0.03),
          "STN-DL1": (1.08, 0.07), "STN-SL1": (1.13, 0.04)},
    "S": {"CNN": (1.38, 0.04), "STN-C0": (0.85, 0.06), "STN-C1": (0.96, 0.04),
          "STN-DL1": (0.77, 0.04), "STN-SL1": (0.82, 0.06)},
}
POSE_UNITS = {"R": "degrees", "T": "pixels", "S": "log2(det)"}


def load_suite(path) -> dict:
    """``{variant: {net: metrics}}`` from a suite directory's run directories.

    Reads ``<variant>/<net>/metrics.json`` (finished runs only) and ``config.json``.
    """
    path = Path(path)
    runs: dict = {}
    for v in VARIANTS:
        for n in NETS:
            m = path / v / n / "metrics.json"
            if m.exists():
                rec = json.loads(m.read_text())
                cfg = path / v / n / "config.json"
                if cfg.exists():
                    rec["config"] = json.loads(cfg.read_text())
                runs.setdefault(v, {})[n] = rec
    return runs


def _fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def _err(rec):
    e = rec.get("error")
    if not e:
        return "–"
    s = f"{100 * e['mean']:.2f}%"
    if len(e["per_seed"]) > 1:
        s += f" ({100 * e['std']:.2f})"
    return s


def _table_ii(runs) -> list[str]:
    lines = ["### Classification error (000 Table II)", "",
             "Ours: mean over seeds (std over seeds when > 1 seed). Paper: 10 seeds, "
             "100 000 test images.", "",
             "| network | " + " | ".join(f"{v} ours | {v} paper" for v in VARIANTS) + " |",
             "|---|" + "---:|---:|" * len(VARIANTS)]
    for n in NETS:
        cells = []
        for v in VARIANTS:
            rec = runs.get(v, {}).get(n)
            p = PAPER_TABLE_II[v][n]
            cells += [_err(rec) if rec else "–", f"{p[0]:.2f}% ({p[1]:.2f})"]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def _table_i(runs) -> list[str]:
    lines = ["### Final-pose standard deviation (000 Table I)", "",
             "Per label, then averaged over labels and seeds: (R) degrees, (T) pixels "
             "(standard distance deviation), (S) log2 det. Smaller = a more canonical pose.", "",
             "| network | " + " | ".join(f"{v} ours | {v} paper" for v in VARIANTS) + " |",
             "|---|" + "---:|---:|" * len(VARIANTS)]
    digits = {"R": 1, "T": 2, "S": 3}
    for n in STNS:
        cells = []
        for v in VARIANTS:
            rec = runs.get(v, {}).get(n)
            ps = rec.get("pose_std") if rec else None
            cells += [_fmt(ps["mean"], digits[v]) if ps else "–",
                      _fmt(PAPER_TABLE_I[v][n], digits[v])]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def _table_det_slope(runs) -> list[str]:
    lines = ["### Fig. 6 slope and mean determinant", "",
             "Fig. 6 slope: orthogonal-regression slope of the ST's rotation vs the applied "
             "rotation on (R) (1 = full compensation, 0 = none; paper: STN-C1 barely "
             "rotates, STN-SL1 counter-rotates). Mean det of the ST matrix "
             "(paper, over its networks: 0.74 for STN-C1, > 1 for the others).", "",
             "| network | Fig. 6 slope (R) | " + " | ".join(f"mean det {v}" for v in VARIANTS)
             + " |", "|---|---:|" + "---:|" * len(VARIANTS)]
    for n in STNS:
        r = runs.get("R", {}).get(n)
        slope = r.get("fig6_slope", {}).get("mean") if r else None
        dets = []
        for v in VARIANTS:
            rec = runs.get(v, {}).get(n)
            dets.append(_fmt(rec["mean_det"]["mean"], 3) if rec and "mean_det" in rec else "–")
        lines.append(f"| {n} | {_fmt(slope)} | " + " | ".join(dets) + " |")
    return lines


def _table_runs(runs) -> list[str]:
    lines = ["### Runs", "",
             "| variant | network | params (ours / paper) | seeds | steps | batch | lr | "
             "test images | train img/s | train wall (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for v in VARIANTS:
        for n in NETS:
            rec = runs.get(v, {}).get(n)
            if not rec:
                continue
            c = rec.get("config", {})
            t = rec.get("train", {})
            lines.append(
                f"| {v} | {n} | {rec.get('n_params')} / {TABLE_VI_PARAMS[v][n]} | "
                f"{len(rec.get('seeds', []))} | {rec.get('steps')} | {c.get('batch_size', '–')} | "
                f"{c.get('lr', '–')} | {rec.get('test', {}).get('images', '–')} | "
                f"{t.get('images_per_s', '–')} | {t.get('wall_s', '–')} |")
    return lines


def render_suite(suite_dir, out_md=None, *, figures: bool = True) -> str:
    """Markdown for a suite directory; writes ``out_md`` (+ ``.json``, figures) if given."""
    suite_dir = Path(suite_dir)
    runs = load_suite(suite_dir)
    if not runs:
        raise FileNotFoundError(f"report: no finished runs (*/*/metrics.json) under {suite_dir}")
    scales = sorted({r.get("scale", "?") for row in runs.values() for r in row.values()})
    n_done = sum(len(r) for r in runs.values())
    lines = [f"# MNIST STN suite: {suite_dir.name}", "",
             f"Scale: {', '.join(scales)}; {n_done} of 15 networks finished. Paper = "
             "Finnveden et al. 000 (columns labelled *paper* are copied from its tables for "
             "comparison, never used as ours).", ""]
    lines += _table_ii(runs) + [""] + _table_i(runs) + [""] + _table_det_slope(runs) + [""]
    lines += _table_runs(runs) + [""]
    figs = {}
    if figures and out_md is not None:
        from figures.models import draw_suite  # drawing lives in figures/ (matplotlib)

        fig_dir = Path(out_md).parent / "figures"
        figs = draw_suite(suite_dir, fig_dir)
        if figs:
            lines += ["### Figures", ""]
            captions = {"fig5_gallery": "Fig. 5: perturbed test digits (top) and the ST "
                        "outputs (STN-C1: its matrix applied to the input)",
                        "fig6_rotation": "Fig. 6: predicted vs applied rotation on (R)",
                        "training_curves": "Training loss"}
            for name, p in figs.items():
                rel = os.path.relpath(p, Path(out_md).parent)
                lines += [f"![{captions.get(name, name)}]({rel})", ""]
    text = "\n".join(lines)
    if out_md is not None:
        out_md = Path(out_md)
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(text)
        out_md.with_suffix(".json").write_text(json.dumps(
            {"suite": str(suite_dir), "runs": runs, "figures": figs,
             "paper": {"table_i": PAPER_TABLE_I, "table_ii": PAPER_TABLE_II}}, indent=1) + "\n")
    return text


def render_run(run_dir, out_md=None) -> str:
    """Markdown for a single run directory (``metrics.json`` and ``config.json``)."""
    run_dir = Path(run_dir)
    rec = json.loads((run_dir / "metrics.json").read_text())
    v, n = rec["variant"], rec["net"]
    p = PAPER_TABLE_II[v][n]
    lines = [f"# {n} on ({v}), scale {rec.get('scale')}", "",
             "| quantity | ours | paper |", "|---|---:|---:|",
             f"| test error | {_err(rec)} | {p[0]:.2f}% ({p[1]:.2f}) |"]
    if "pose_std" in rec:
        lines.append(f"| final-pose std ({POSE_UNITS[v]}) | {rec['pose_std']['mean']:.3f} | "
                     f"{PAPER_TABLE_I[v][n]} |")
        lines.append(f"| mean det | {rec['mean_det']['mean']:.3f} | – |")
    if "fig6_slope" in rec:
        lines.append(f"| Fig. 6 slope | {rec['fig6_slope']['mean']:.2f} | – |")
    lines.append(f"| parameters | {rec.get('n_params')} | {TABLE_VI_PARAMS[v][n]} |")
    text = "\n".join(lines) + "\n"
    if out_md is not None:
        Path(out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(out_md).write_text(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stnlab report``."""
    parser.add_argument("path", help="a suite directory (<variant>/<net>/ runs) or one run")
    parser.add_argument("--out", default=None,
                        help="Markdown file to write (default: PATH/report.md)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")


def run(args: argparse.Namespace) -> int:
    """Run ``stnlab report``."""
    path = Path(args.path)
    if not path.is_dir():
        raise FileNotFoundError(f"report: {path} is not a directory")
    out = Path(args.out) if args.out else path / "report.md"
    if (path / "metrics.json").exists():
        text = render_run(path, out)
    else:
        text = render_suite(path, out, figures=not args.no_figures)
    print(text)
    print(f"stnlab report: wrote {out}", file=__import__("sys").stderr)
    return 0
