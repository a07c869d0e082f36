"""Figures of an invariance audit (``stnlab audit``), drawn from ``audit.json``'s content only.

* ``audit_heatmap.png`` -- error / interpolation floor, layers x transforms, one panel per
  mode (log colour scale centred on the alignable threshold 2; exact operations, whose
  floor is 0, are drawn at 1 when alignable and hatched grey when n/a);
* ``audit_vs_angle.png`` / ``audit_vs_log_scale.png`` -- error / floor against the rotation
  angle and against |log s|, one curve per (sampled) layer, spatial mode with the best
  ``T_g`` (search when it ran); exact operations (floor 0, e.g. ``rot90`` on a centred map)
  have no ratio and appear in the heatmap only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .style import new_figure, save

__all__ = ["plot_audit", "audit_heatmap", "audit_curves"]

_PANEL_MODES = ("spatial", "spatial_search", "permutation", "mix", "lie", "lie_mix",
                "invariance")


def _value(r: dict) -> float:
    """error / floor (``nan`` for n/a); an exact row: 1 if alignable else 40."""
    if r["verdict"] == "n/a":
        return float("nan")
    if r.get("exact"):
        return 1.0 if r["verdict"] == "alignable" else 40.0
    ratio = r.get("ratio") or {}
    return float(ratio["mean"]) if ratio.get("mean") is not None else float("nan")


def audit_heatmap(report: dict, path) -> Path:
    """Layers x transforms heatmap of error / floor per mode."""
    from matplotlib.colors import LogNorm

    rows = report["rows"]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    transforms = list(dict.fromkeys(r["transform"] for r in rows))
    modes = [m for m in _PANEL_MODES if any(r["mode"] == m for r in rows)]
    height = max(3.0, 0.12 * len(layers) + 1.5)
    fig, axes = new_figure(1, len(modes), width=max(7.0, 1.6 * len(modes)), height=height)
    im = None
    for ax, mode in zip(axes[0], modes):
        cols = [t for t in transforms if any(r["mode"] == mode and r["transform"] == t
                                             for r in rows)]
        grid = np.full((len(layers), len(cols)), np.nan)
        for r in rows:
            if r["mode"] == mode:
                grid[layers.index(r["layer"]), cols.index(r["transform"])] = _value(r)
        # log scale 0.1 .. 40, geometric centre 2 (the alignable threshold)
        im = ax.imshow(np.clip(grid, 0.1, 40.0), aspect="auto", cmap="RdBu_r",
                       norm=LogNorm(vmin=0.1, vmax=40.0), interpolation="none")
        ax.set_title(mode)
        ax.set_xticks(range(len(cols)), cols, rotation=90)
        ax.grid(False)
        if ax is axes[0][0]:
            step = max(1, len(layers) // 40)
            ax.set_yticks(range(0, len(layers), step), layers[::step], fontsize=5)
        else:
            ax.set_yticks([])
    if im is not None:
        cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
        cb.set_label("error / interpolation floor (alignable <= 2)")
    fig.suptitle(f"{report['meta']['model']}: where can a spatial transform align the features?")
    return save(fig, path)


def audit_curves(report: dict, path, kind: str) -> Path | None:
    """error / floor against the angle (``kind="rot"``) or |log s| (``"scale"``)."""
    ts = [t for t in report["meta"]["transforms"] if t["kind"] == kind]
    if not ts:
        return None
    xs = {t["name"]: (t["value"] if kind == "rot" else abs(math.log(t["value"]))) for t in ts}
    best: dict = {}
    for r in report["rows"]:
        if r["transform"] in xs and r["mode"] in ("spatial", "spatial_search") and \
                not r.get("exact"):  # exact operations have no floor: in the heatmap only
            v = _value(r)
            key = (r["layer"], r["transform"])
            if not math.isnan(v):
                best[key] = min(best.get(key, v), v)
    layers = list(dict.fromkeys(k[0] for k in best))
    if not layers:
        return None
    pick = layers if len(layers) <= 8 else [layers[i] for i in
                                             np.linspace(0, len(layers) - 1, 8).astype(int)]
    fig, axes = new_figure(1, 1, width=4.5, height=3.2)
    ax = axes[0, 0]
    for name in pick:
        pts = sorted((xs[t], best[(name, t)]) for t in xs if (name, t) in best)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=name)
    ax.axhline(2.0, color="k", lw=0.8, ls="--", label="alignable threshold (2)")
    ax.set_yscale("log")
    ax.set_xlabel("rotation angle (degrees)" if kind == "rot" else "|log s|")
    ax.set_ylabel("best spatial error / floor")
    ax.legend(fontsize=5)
    return save(fig, path)


def plot_audit(report: dict, out_dir) -> list[Path]:
    """All audit figures into ``out_dir``; returns the written paths."""
    out = Path(out_dir)
    paths = [audit_heatmap(report, out / "audit_heatmap.png")]
    for kind, fname in (("rot", "audit_vs_angle.png"), ("scale", "audit_vs_log_scale.png")):
        p = audit_curves(report, out / fname, kind)
        if p is not None:
            paths.append(p)
    return paths
