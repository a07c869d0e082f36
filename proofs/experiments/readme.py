"""``README.md`` of a sampler-experiment result directory, rendered from its JSON files only.

One table per ``<experiment>.json`` found: recall at fixed thresholds and the AUC per
downsampling and sampler, with linearized minus each baseline as a 95% paired bootstrap
interval computed from the per-trial errors in the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sampling import experiments as ex

__all__ = ["write_readme"]


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _errors(cell) -> torch.Tensor:
    return torch.tensor([float(x) for x in cell["errors"]], dtype=torch.float64)


def _paired_table(r: dict, res: dict) -> list[str]:
    """Linearized minus each baseline: recall-AUC difference on the same trials, 95%
    paired bootstrap interval (computed here from the per-trial errors in the JSON)."""
    base = [m for m in r["methods"] if m != "linearized"]
    if "linearized" not in r["methods"] or not base:
        return []
    lines = ["Linearized minus baseline, recall AUC on the same trials (95% paired bootstrap "
             "interval, 2000 resamples; an interval containing 0 means the trials cannot "
             "tell the two apart):", "",
             "| d | " + " | ".join(f"linearized - {m}" for m in base) + " |",
             "|---|" + "---|" * len(base)]
    for d in r["downsamples"]:
        cells = []
        for m in base:
            c = ex.paired_auc_difference(_errors(res["linearized"][str(d)]),
                                         _errors(res[m][str(d)]),
                                         max_threshold=max(r["thresholds"]))
            cells.append(f"{c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]")
        lines.append(f"| {d}x | " + " | ".join(cells) + " |")
    return lines + [""]


def write_readme(out: Path, experiments, report_thresholds) -> Path:
    """Regenerate ``<out>/README.md``: one table per result JSON found in ``out``."""
    out = Path(out)
    lines = ["# Sampler experiments (003 Sec. 6.3-6.5)", "",
             "Written by `stnlab experiment` (`proofs/experiments/samplers.py`); numbers are "
             "ours, measured on the device and date stated per experiment. Errors and "
             "thresholds are in normalized units of the input image (full width = 2).", ""]
    for name in experiments:
        p = out / f"{name}.json"
        if not p.exists():
            continue
        r = json.loads(p.read_text())
        lines += [f"## {name}", "",
                  f"scale `{r['scale']}`, seed {r['seed']}, device {r['device']}, "
                  f"{r['date']}, {r['wall_seconds']} s. Figure: `{name}.png`.", ""]
        if name != "gradient-field":
            loss = r.get("config", {}).get("loss", "")
            if r.get("config", {}).get("target") == "common":
                lines += [f"Protocol: 003's, {loss}.", ""]
            else:
                lines += ["Protocol: **own target (a diagnostic, not 003's protocol)**: each "
                          "sampler is scored against its own rendering at the truth. One seed, "
                          "sampler noise stream fixed: the intervals below understate the "
                          "uncertainty.", ""]
        if name == "gradient-field":
            ds = r["downsamples"]
            lines += [f"Basin fraction (cos > 0.7, mean over {len(r['images'])} images: "
                      f"{', '.join(r['images'])}; {r['config']['field_grid']}^2 offsets in "
                      f"[-{r['config']['field_extent']}, {r['config']['field_extent']}]^2) / "
                      "basin radius:", "",
                      "| sampler | " + " | ".join(f"{d}x" for d in ds) + " |",
                      "|---|" + "---|" * len(ds)]
            for m in r["methods"]:
                cells = [f"{r['summary'][m][str(d)]['basin_fraction_mean']:.2f} / "
                         f"{r['summary'][m][str(d)]['basin_radius_mean']:.2f}" for d in ds]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
        elif name == "alignment":
            for dname, res in r["results"].items():
                if not res:
                    lines += [f"{dname}: skipped ({r['skipped'].get(dname, '')})", ""]
                    continue
                lines += [f"{dname} ({r['trials'][dname]} trials per cell, "
                          f"{r['config']['steps']} Adam steps, lr {r['config']['lr']}): recall at "
                          f"thresholds {', '.join(f'{t:g}' for t in report_thresholds)}; AUC over "
                          f"[0, {max(r['thresholds']):g}]", "",
                          "| d | sampler | " + " | ".join(f"R@{t:g}" for t in report_thresholds)
                          + " | AUC |", "|---|---|" + "---|" * (len(report_thresholds) + 1)]
                for d in r["downsamples"]:
                    for m in r["methods"]:
                        c = res[m][str(d)]
                        lines.append(f"| {d}x | {m} | " + " | ".join(
                            _fmt(c["recall_at"][f"{t:g}"]) for t in report_thresholds)
                            + f" | {c['auc']:.2f} |")
                lines.append("")
                lines += _paired_table(r, res)
        else:
            lines += [f"{r['title']}, {r['trials']} trials per setting:", "",
                      "| setting | " + " | ".join(f"R@{t:g}" for t in report_thresholds)
                      + " | AUC |", "|---|" + "---|" * (len(report_thresholds) + 1)]
            for e in r["entries"]:
                lines.append(f"| {e['label']} | " + " | ".join(
                    _fmt(e["recall_at"][f"{t:g}"]) for t in report_thresholds)
                    + f" | {e['auc']:.2f} |")
        lines.append("")
    p = out / "README.md"
    p.write_text("\n".join(lines).rstrip() + "\n")
    return p

