"""Figures of the MNIST STN suite (000 Figs. 5, 6), drawn from saved run directories only.

A suite directory holds ``<variant>/<net>/`` run directories (see :mod:`models.train`);
the figures read ``gallery.npz`` (Fig. 5), ``fig_data.json`` (Fig. 6) and ``log.jsonl``
(training curves). Nothing is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from figures.style import SEQUENCE_COLORS, new_figure, save

__all__ = ["fig5_gallery", "fig6_rotation", "training_curves", "draw_suite"]

VARIANTS = ("R", "T", "S")
NETS = ("CNN", "STN-C0", "STN-C1", "STN-DL1", "STN-SL1")


def _load_gallery(run_dir: Path) -> dict | None:
    p = run_dir / "gallery.npz"
    if not p.exists():
        return None
    with np.load(p) as z:
        return {k: z[k] for k in z.files}


def fig5_gallery(suite_dir, path, *, nets=("STN-C1", "STN-SL1"), per_variant: int = 3):
    """000 Fig. 5: perturbed test digits (top) and what each ST makes of them (rows below).

    STN-C1 warps a feature map; as in 000 its row shows its matrix applied to the input,
    with the translation rescaled to input pixels. Returns the written path, or None if no
    gallery was saved.
    """
    suite_dir = Path(suite_dir)
    cols = []  # (variant, index)
    galleries = {}
    for v in VARIANTS:
        for n in nets:
            g = _load_gallery(suite_dir / v / n)
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


def fig6_rotation(suite_dir, path, *, nets=("STN-C1", "STN-SL1", "STN-C0", "STN-DL1")):
    """000 Fig. 6: rotation predicted by the ST vs rotation applied on (R), with the
    orthogonal-regression line. Returns the written path, or None without data."""
    suite_dir = Path(suite_dir)
    data = []
    for n in nets:
        p = suite_dir / "R" / n / "fig_data.json"
        if p.exists():
            d = json.loads(p.read_text()).get("fig6")
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


def training_curves(suite_dir, path):
    """Training loss (running mean over each log interval) per network and variant."""
    suite_dir = Path(suite_dir)
    present = [v for v in VARIANTS if (suite_dir / v).is_dir()]
    if not present:
        return None
    fig, axes = new_figure(1, len(present), width=2.3 * len(present), height=2.0)
    for ax, v in zip(axes[0], present):
        for k, n in enumerate(NETS):
            p = suite_dir / v / n / "log.jsonl"
            if not p.exists():
                continue
            rows = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
            steps = [r["step"] for r in rows]
            loss = [float(np.mean(r["loss"])) for r in rows]
            ax.plot(steps, loss, color=SEQUENCE_COLORS[k % len(SEQUENCE_COLORS)], label=n,
                    linewidth=0.9)
        ax.set_yscale("log")
        ax.set_title(f"({v})")
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("training loss")
    axes[0, -1].legend(fontsize=6)
    return save(fig, path)


def draw_suite(suite_dir, out_dir) -> dict[str, str]:
    """Draw every figure of a suite into ``out_dir``; ``{name: path}`` of those written."""
    out_dir = Path(out_dir)
    made = {}
    for name, fn in (("fig5_gallery", fig5_gallery), ("fig6_rotation", fig6_rotation),
                     ("training_curves", training_curves)):
        p = fn(suite_dir, out_dir / f"{name}.png")
        if p is not None:
            made[name] = str(p)
    return made
