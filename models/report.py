"""The MNIST suite's report tables (000 Tables I, II, VI, Fig. 6), paper numbers alongside.

Pure Markdown from loaded records (:class:`models.record.SuiteRecord`); the command that
writes files and draws figures is :mod:`proofs.suite_report` (``stnlab report``).
Numbers from 000 are shown in columns labelled "paper"; ours come from the saved
``metrics.json`` files only.
"""

from __future__ import annotations

import math

from .data.perturb import VARIANTS
from .mnist_nets import NETS, TABLE_VI_PARAMS
from .record import RunRecord, SuiteRecord
from .runio import NOT_FINITE, pct

__all__ = ["PAPER_TABLE_I", "PAPER_TABLE_II", "load_suite", "load_records", "suite_tables",
           "run_table", "sampling_sd"]

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


def load_records(path) -> SuiteRecord:
    """The MNIST suite's finished runs under ``path``, in 000's variant and network order."""
    return SuiteRecord.load(path, variants=VARIANTS, nets=NETS)


def load_suite(path) -> dict:
    """``{variant: {net: metrics + {"config"}}}`` of the MNIST runs under ``path``."""
    rec = load_records(path)
    return {v: {n: r for n, r in row.items() if n in NETS}
            for v, row in rec.as_dicts().items() if v in VARIANTS}


def _fmt(x, digits=2):
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if math.isfinite(x) else NOT_FINITE


def _err(rec):
    e = rec.get("error")
    if not e:
        return "–"
    s = pct(e["mean"])
    if len(e["per_seed"]) > 1 and math.isfinite(e["mean"]):
        s += f" ({pct(e['std'], unit='')})"
    return s


def sampling_sd(error: float, images: int) -> float:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of an error rate ``p`` on ``n`` test
    images: how much one seed's test error moves with the test sample alone."""
    return (error * (1.0 - error) / images) ** 0.5


def _sampling_sd(rec) -> str:
    n = rec.get("test", {}).get("images")
    e = rec.get("error", {}).get("mean")
    return "–" if not n or e is None else f"{100 * sampling_sd(e, n):.2f}"


def _table_ii(runs) -> list[str]:
    images = sorted({r.get("test", {}).get("images") for row in runs.values()
                     for r in row.values() if r.get("test", {}).get("images")})
    lines = ["### Classification error (000 Table II)", "",
             "Ours: mean over seeds (std over seeds when > 1 seed). Paper: 10 seeds, "
             "100 000 test images (10 000 digits x 10 perturbations). Ours: "
             f"{' / '.join(map(str, images)) or '?'} test images per seed (see the runs "
             "table); the binomial sampling error of one seed's error rate p on n images is "
             "sqrt(p (1 - p) / n), listed per run there (0.10 pp at p = 1 %, n = 10 000).", "",
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
             "rotates, STN-SL1 counter-rotates). Mean det θ of the ST matrix, θ = "
             "input_from_output (it maps an output location to where it samples the input): "
             "det θ > 1 means each output pixel covers more input, i.e. the image is scaled "
             "down. 000 reports 0.74 for STN-C1, which it says 'corresponds to scaling down "
             "the image' -- the determinant of the image's transformation, 1 / det θ in our "
             "convention (0.74 there is det θ ≈ 1.35 here); > 1 for its other STNs.", "",
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
             "test images | sampling sd (pp) | train img/s | train wall (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
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
                f"{_sampling_sd(rec)} | {t.get('images_per_s', '–')} | {t.get('wall_s', '–')} |")
    return lines


def suite_tables(runs: dict) -> list[str]:
    """Markdown lines of every table, ``runs`` as from :func:`load_suite`."""
    return (_table_ii(runs) + [""] + _table_i(runs) + [""] + _table_det_slope(runs) + [""]
            + _table_runs(runs) + [""])


def run_table(rec: RunRecord) -> list[str]:
    """Markdown lines for a single run: ours beside the paper's."""
    m = rec.metrics
    v, n = m["variant"], m["net"]
    p = PAPER_TABLE_II[v][n]
    lines = [f"# {n} on ({v}), scale {m.get('scale')}", "",
             "| quantity | ours | paper |", "|---|---:|---:|",
             f"| test error | {_err(m)} | {p[0]:.2f}% ({p[1]:.2f}) |"]
    if "pose_std" in m:
        lines.append(f"| final-pose std ({m['pose_std']['unit']}) | "
                     f"{m['pose_std']['mean']:.3f} | {PAPER_TABLE_I[v][n]} |")
        lines.append(f"| mean det | {m['mean_det']['mean']:.3f} | – |")
    if "fig6_slope" in m:
        lines.append(f"| Fig. 6 slope | {m['fig6_slope']['mean']:.2f} | – |")
    lines.append(f"| parameters | {m.get('n_params')} | {TABLE_VI_PARAMS[v][n]} |")
    return lines
