"""Figures of the GTSRB suite (003 Fig. 6), drawn from saved run directories only.

:func:`fig6_class_means` reads the ``class_mean`` array each ``d = 8`` ST run saved in its
``gallery.npz`` (the average test image per class after the learned transform, applied at
50x50 so that zooming is visible) and shows bilinear above linearized, as 003 Fig. 6 does.
Nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path

from figures.style import image_grid
from models.record import SuiteRecord

__all__ = ["fig6_class_means", "draw_suite"]


def fig6_class_means(suite: SuiteRecord, path, *, d: int = 8, max_classes: int = 10):
    """003 Fig. 6: per-class average transformed image, bilinear (top) vs linearized, per
    network kind (STN, IC-STN) and variant. Returns the path, or None if nothing was saved."""
    rows = []  # (label, class_mean (K, C, H, W), counts)
    for v in suite.runs:
        for kind in ("STN", "ICSTN"):
            for sampler in ("bilinear", "linearized"):
                rec = suite.get(v, f"{kind}-{sampler}-d{d}")
                g = rec.gallery() if rec is not None else None
                if g is not None and "class_mean" in g:
                    rows.append((f"{v} {kind} {sampler}", g["class_mean"], g["class_count"]))
    if not rows:
        return None
    present = [k for k in range(rows[0][1].shape[0]) if rows[0][2][k] > 0][:max_classes]
    return image_grid([(label, [means[k] for k in present]) for label, means, _ in rows],
                      [f"class {k}" for k in present],
                      f"Average transformed test image per class at {d}x downsampling", path,
                      row_height=0.75, label_size=5)


def draw_suite(suite: SuiteRecord, out_dir) -> dict[str, str]:
    """Every figure of the suite into ``out_dir``; ``{name: path}`` of those written."""
    p = fig6_class_means(suite, Path(out_dir) / "fig6_class_means.png")
    return {} if p is None else {"fig6_class_means": str(p)}
