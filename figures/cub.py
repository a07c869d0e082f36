"""Figures of the CUB suite (004 Figs. 5, 6), drawn from saved run directories only.

* Fig. 5: test images with the receptive-field box (blue), the transformed box (red) and
  the ground truth (green), 004's colours, from each CSTN run's ``gallery.npz``; CAM's box
  (red) beside them where a CAM run saved one.
* Fig. 6: ground-truth box-area histograms (10 equal bins of the image area): number of
  test images per bin and the fraction localized (GT-known, IoU >= 0.5) with the transformed
  (red) and the receptive-field (blue) box, one panel per network (fine level, coarse
  level, both), from ``fig_data.json`` (seed of the first stored histogram).

Nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from figures.style import new_figure, save
from models.record import SuiteRecord

__all__ = ["draw_suite", "fig5_boxes", "fig6_histograms"]

_BOXES = (("rf_box", "tab:blue", "receptive-field box"), ("box", "tab:red", "transformed box"),
          ("gt_box", "tab:green", "ground truth"))


def _rect(ax, b, color):
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (float(v) for v in b)
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2, edgecolor=color))


def fig5_boxes(suite: SuiteRecord, path, *, nets=("CSTN", "CSTN-lam0", "CAM"), n: int = 6):
    """004 Fig. 5 (and Fig. 7 for ``CSTN-lam0``): one row per network, ``n`` test images."""
    rows = []
    for v, row in suite.runs.items():
        for net in nets:
            rec = row.get(net)
            g = rec.gallery() if rec is not None else None
            if g is not None and "images" in g:
                rows.append((f"{v}/{net}", g))
    if not rows:
        return None
    n = min(n, min(g["images"].shape[0] for _, g in rows))
    fig, axes = new_figure(len(rows), n, height=1.2 * len(rows) + 0.3)
    for r, (label, g) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(np.transpose(g["images"][i], (1, 2, 0)))
            for key, color, _ in _BOXES:
                if key in g:
                    _rect(ax, g[key][i], color)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle("blue: receptive-field box, red: transformed (CAM: CAM) box, green: ground "
                 "truth", fontsize=8)
    return save(fig, path)


def fig6_histograms(suite: SuiteRecord, path, *, nets=("CSTN-fine", "CSTN-coarse", "CSTN")):
    """004 Fig. 6: per network, images per box-area bin and the fraction localized."""
    panels = []
    for v, row in suite.runs.items():
        for net in nets:
            rec = row.get(net)
            fd = rec.fig_data() if rec is not None else None
            if fd and fd.get("fig6"):
                panels.append((f"{v}/{net}", fd["fig6"][0]))
    if not panels:
        return None
    fig, axes = new_figure(1, len(panels), height=2.4)
    for ax, (label, h) in zip(axes[0], panels):
        edges = np.asarray(h["transformed"]["edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        w = (edges[1] - edges[0]) / 3
        count = np.asarray(h["transformed"]["all"]["count"], dtype=float)
        ax.bar(centres - w, count / max(count.sum(), 1), w, color="tab:green",
               label="share of images")
        for k, (key, color) in enumerate((("untransformed", "tab:blue"),
                                          ("transformed", "tab:red"))):
            acc = [np.nan if a is None else a for a in h[key]["all"]["accuracy"]]
            ax.bar(centres + k * w, acc, w, color=color,
                   label=f"localized ({'receptive-field' if k == 0 else 'transformed'} box)")
        ax.set_title(f"{label} (seed {h['seed']})", fontsize=8)
        ax.set_xlabel("GT box area / image area")
        ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=6)
    return save(fig, path)


def draw_suite(suite: SuiteRecord, out_dir) -> dict[str, tuple[str, str]]:
    """Draw the suite's figures into ``out_dir``: ``{name: (path, caption)}`` of those written."""
    out_dir = Path(out_dir)
    made = {}
    for name, fn, caption in (
            ("fig5_boxes", fig5_boxes, "Fig. 5 (and Fig. 7 for lambda = 0): receptive-field "
             "box (blue), transformed box (red), ground truth (green)"),
            ("fig6_histograms", fig6_histograms, "Fig. 6: GT box-area histogram and the "
             "fraction localized per bin, one level vs two")):
        p = fn(suite, out_dir / f"{name}.png")
        if p is not None:
            made[name] = (str(p), caption)
    return made
