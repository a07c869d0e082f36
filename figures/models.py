"""Figures of the MNIST STN suite (000 Figs. 5, 6), drawn from saved run directories only.

Each function takes a loaded :class:`models.record.SuiteRecord` and reads what its runs
saved: ``gallery`` (Fig. 5), ``fig_data`` (Fig. 6) and ``log`` (training curves). Nothing
is recomputed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from figures.style import SEQUENCE_COLORS, new_figure, plain_log_axis, save
from models.record import SuiteRecord

__all__ = ["fig5_gallery", "fig6_rotation", "training_curves", "draw_suite"]


def fig5_gallery(suite: SuiteRecord, path, *, nets=("STN-C1", "STN-SL1"),
                 per_variant: int = 3):
    """000 Fig. 5: perturbed test digits (top) and what each ST makes of them (rows below).

    STN-C1 warps a feature map; as in 000 its row shows its matrix applied to the input,
    with the translation rescaled to input pixels. Returns the written path, or None if no
    gallery was saved.
    """
    cols = []  # (variant, index)
    galleries = {}
    for v in suite.runs:
        for n in nets:
            rec = suite.get(v, n)
            g = rec.gallery() if rec is not None else None
            if g is not None:
                galleries[(v, n)] = g
        ref = next((galleries[(v, n)] for n in nets if (v, n) in galleries), None)
        if ref is not None:
            cols += [(v, i) for i in range(min(per_variant, ref["inputs"].shape[0]))]
    if not cols:
        return None
    rows = ["input"] + list(nets)
    fig, axes = new_figure(len(rows), len(cols), width=7.0, height=7.0 / len(cols) * len(rows))
    for j, (v, i) in enumerate(cols):
        ref = next(galleries[(v, n)] for n in nets if (v, n) in galleries)
        for r, name in enumerate(rows):
            ax = axes[r, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if name == "input":
                img = ref["inputs"][i]
            elif (v, name) in galleries and "transformed" in galleries[(v, name)]:
                img = galleries[(v, name)]["transformed"][i]
            else:
                ax.set_axis_off()
                continue
            ax.imshow(np.asarray(img, dtype=np.float32), cmap="gray", interpolation="nearest")
            if r == 0:
                ax.set_title(f"({v})", fontsize=7)
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
    return save(fig, path)


def fig6_rotation(suite: SuiteRecord, path, *,
                  nets=("STN-C1", "STN-SL1", "STN-C0", "STN-DL1")):
    """000 Fig. 6: rotation predicted by the ST vs rotation applied on (R), with the
    orthogonal-regression line. Returns the written path, or None without data."""
    data = []
    for n in nets:
        rec = suite.get("R", n)
        fd = rec.fig_data() if rec is not None else None
        if fd:
            d = fd.get("fig6")
            if d:
                data.append((n, d))
    if not data:
        return None
    fig, axes = new_figure(1, len(data), width=1.9 * len(data), height=2.0)
    for ax, (n, d) in zip(axes[0], data):
        x, y = np.asarray(d["applied_deg"]), np.asarray(d["predicted_deg"])
        # vmin=0: a bin with one point is grey, not white (the heat map of 000 Fig. 6).
        ax.hist2d(x, y, bins=60, range=[[-90, 90], [-135, 135]], cmap="Greys", cmin=1, vmin=0)
        xs = np.array([-90.0, 90.0])
        ax.plot(xs, d["slope"] * (xs - x.mean()) + y.mean(), color="#D55E00",
                label=f"slope {d['slope']:.2f}")
        ax.plot(xs, xs, color="#0072B2", linestyle=":", linewidth=0.8, label="ideal")
        ax.set_xlim(-90, 90)
        ax.set_ylim(-135, 135)
        ax.set_title(f"{n} (seed {d['seed']})")
        ax.set_xlabel("applied rotation (deg)")
        ax.legend(loc="upper left", fontsize=6)
    axes[0, 0].set_ylabel("predicted rotation (deg)")
    return save(fig, path)


def training_curves(suite: SuiteRecord, path):
    """Training loss (running mean over each log interval) per network and variant."""
    present = list(suite.runs)
    if not present:
        return None
    fig, axes = new_figure(1, len(present), width=2.3 * len(present), height=2.0)
    for ax, v in zip(axes[0], present):
        for k, n in enumerate(suite.nets):  # colour by the suite's network order
            rec = suite.get(v, n)
            rows = [r for r in (rec.log() if rec is not None else []) if "loss" in r]
            if not rows:  # (rows without a loss, e.g. evaluation-only lines, are not drawn)
                continue
            steps = [r["step"] for r in rows]
            loss = [float(np.mean(r["loss"])) for r in rows]
            ax.plot(steps, loss, color=SEQUENCE_COLORS[k % len(SEQUENCE_COLORS)], label=n,
                    linewidth=0.9)
        plain_log_axis(ax, "y")  # 0.2, 1, 2 rather than 2 x 10^-1
        ax.set_title(f"({v})")
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("training loss")
    axes[0, -1].legend(fontsize=6)
    return save(fig, path)


def draw_suite(suite: SuiteRecord, out_dir) -> dict[str, str]:
    """Draw every figure of a suite into ``out_dir``; ``{name: path}`` of those written."""
    out_dir = Path(out_dir)
    made = {}
    for name, fn in (("fig5_gallery", fig5_gallery), ("fig6_rotation", fig6_rotation),
                     ("training_curves", training_curves)):
        p = fn(suite, out_dir / f"{name}.png")
        if p is not None:
            made[name] = str(p)
    return made
