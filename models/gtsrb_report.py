"""The GTSRB suite's report tables (003 Table 1), paper numbers alongside.

Pure Markdown from loaded records (:class:`models.record.SuiteRecord`); ``stnlab report``
(:mod:`proofs.suite_report`) writes the files and draws Fig. 6. 003's numbers are in
columns labelled "paper"; ours come from the saved ``metrics.json`` files only.
"""

from __future__ import annotations

from . import gtsrb_nets as G
from .record import SuiteRecord
from .runio import NOT_FINITE, pct

__all__ = ["ROWS", "load_records", "suite_tables", "table1", "throughput_table",
           "zoom_table"]

#: Table 1's rows: (label, kind, sampler, key of :data:`models.gtsrb_nets.TABLE_1_ERROR`).
ROWS = ([("no STN", "none", None, "none")]
        + [(f"STN {s}", "STN", s, f"STN/{s}") for s in G.SAMPLERS]
        + [(f"IC-STN {s}", "ICSTN", s, f"ICSTN/{s}") for s in G.SAMPLERS])


#: The suite's variants and networks (:mod:`models.suites.gtsrb` imports this module, not
#: the other way round).
VARIANTS = ("table1", "control", "standin-v2", "standin-v2-digits", "control-v2")
NETS = tuple(f"none-d{d}" for d in G.DOWNSAMPLES) + tuple(
    f"{k}-{s}-d{d}" for k in ("STN", "ICSTN") for s in G.SAMPLERS for d in G.DOWNSAMPLES)


def _name(kind, sampler, d):
    return f"none-d{d}" if kind == "none" else f"{kind}-{sampler}-d{d}"


def load_records(path, variant: str | None = None) -> SuiteRecord:
    """The finished runs under ``path`` (smoke included; the header names the scale)."""
    return SuiteRecord.load(path, variants=VARIANTS, nets=NETS)


def _cell(rec) -> str:
    if rec is None:
        return "–"
    e = rec.metrics["error"]
    s = pct(e["mean"], unit="")
    if len(e["per_seed"]) > 1 and s != NOT_FINITE:
        s += f" ± {pct(e['std'], unit='')}"
    return s


def table1(suite: SuiteRecord, variant: str) -> list[str]:
    """Table 1's layout: test error in %, ours (mean ± std over seeds) | paper."""
    counts = G.param_counts()["none"]
    head = " | ".join(f"d={d} ours | d={d} paper" for d in G.DOWNSAMPLES)
    lines = ["| network | " + head + " |", "|---|" + "---:|---:|" * len(G.DOWNSAMPLES),
             "| classifier params | " + " | ".join(
                 f"{counts[d]['classifier']:,} | {G.TABLE_1_CLASSIFIER_PARAMS[d] // 1000}k"
                 for d in G.DOWNSAMPLES) + " |"]
    for label, kind, sampler, key in ROWS:
        cells = []
        for d in G.DOWNSAMPLES:
            cells += [_cell(suite.get(variant, _name(kind, sampler, d))),
                      f"{G.TABLE_1_ERROR[key][d]:.2f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _metric_table(suite, variant, title, get, fmt) -> list[str]:
    lines = [title, "", "| network | " + " | ".join(f"d={d}" for d in G.DOWNSAMPLES) + " |",
             "|---|" + "---:|" * len(G.DOWNSAMPLES)]
    for label, kind, sampler, _ in ROWS:
        cells = []
        for d in G.DOWNSAMPLES:
            r = suite.get(variant, _name(kind, sampler, d))
            v = get(r.metrics) if r is not None else None
            cells.append("–" if v is None else fmt(v))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def throughput_table(suite, variant) -> list[str]:
    """Training images per second (all seeds together), from each run's own timing."""
    return _metric_table(
        suite, variant, "Training throughput, images/s (forward + backward + Adam, all seeds "
        "of the run together; same runs as the table above)",
        lambda m: (m.get("train") or {}).get("images_per_s"), lambda v: f"{v:.0f}")


def zoom_table(suite, variant) -> list[str]:
    """Mean ``sqrt|det|`` of the learned matrix (< 1: the ST zooms in)."""
    return _metric_table(
        suite, variant, "Mean ST scale sqrt|det(A)| on the test set (< 1 zooms in; 1 = "
        "identity)", lambda m: (m.get("mean_scale") or {}).get("mean"), lambda v: f"{v:.3f}")


def suite_tables(path) -> list[str]:
    """Markdown lines for every variant present under ``path``."""
    suite = load_records(path)
    lines = []
    for v, row in suite.runs.items():
        recs = list(row.values())
        data = sorted({r.metrics.get("dataset", "?") for r in recs})
        scales = sorted({str(r.scale) for r in recs})
        seeds = sorted({len(r.metrics.get("seeds", [])) for r in recs})
        steps = sorted({int(r.metrics.get("steps", 0)) for r in recs})
        title = ("003 Table 1: test error (%) under downsampling d" if v == "table1" else
                 "003 App. A.2 textureless control: test error (%)")
        lines += [f"### {title} [{v}]", "",
                  f"Data set: {'; '.join(data)}. Scale: {', '.join(scales)}; seeds per run: "
                  f"{', '.join(map(str, seeds))}; steps per run: {', '.join(map(str, steps))}; "
                  f"{len(recs)} of {len(G.DOWNSAMPLES) * len(ROWS)} networks finished. "
                  "Columns labelled *paper* are 003 Table 1 (GTSRB, 43 classes), for "
                  "comparison only; ours: mean ± std over seeds.", ""]
        lines += table1(suite, v) + [""]
        lines += throughput_table(suite, v) + [""]
        lines += zoom_table(suite, v) + [""]
    return lines
