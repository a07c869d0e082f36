"""Shared figure style: a display-free backend, paper-sized fonts, one colour per method.

Every figure module does::

    from figures.style import plt, new_figure, save

so the ``Agg`` backend is selected before pyplot is imported anywhere in
``figures`` (nothing here opens a window or needs a display).

Sizes are for a two-column paper: :data:`COLUMN` (one column) and
:data:`TEXT_WIDTH` (full width), in inches; fonts are 8 pt, readable when the
figure is printed at that width.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # display-free; must precede the pyplot import

import matplotlib.pyplot as plt  # noqa: E402

from sampling import registry  # noqa: E402

__all__ = [
    "plt",
    "COLUMN",
    "TEXT_WIDTH",
    "METHOD_COLORS",
    "METHOD_LINESTYLES",
    "METHOD_LABELS",
    "SEQUENCE_COLORS",
    "apply_style",
    "new_figure",
    "save",
    "show_image",
    "image_grid",
    "method_style",
    "plain_log_axis",
]

#: One column of a two-column paper, inches.
COLUMN = 3.4
#: Full text width of a two-column paper, inches.
TEXT_WIDTH = 7.0

#: Colour per sampler (colour-blind safe, Okabe-Ito).
METHOD_COLORS = {"bilinear": "#0072B2", "linearized": "#D55E00", "multiscale": "#009E73"}
#: Line style per sampler, as in 003 Fig. 7 (ours solid, bilinear dashed, multi-scale dotted).
METHOD_LINESTYLES = {"bilinear": "--", "linearized": "-", "multiscale": ":"}
#: How each sampler is spelled: the registry's label (sampling.registry).
METHOD_LABELS = {name: s.label for name, s in registry.SAMPLERS.items()}
#: Colours for an ordered sequence of settings (e.g. downsampling 1x, 2x, 4x, 8x).
SEQUENCE_COLORS = ("#000000", "#E69F00", "#56B4E9", "#CC79A7", "#009E73", "#0072B2")

_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.3,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "figure.dpi": 100,
}


def apply_style() -> None:
    """Set the shared rcParams (idempotent)."""
    plt.rcParams.update(_RC)


def show_image(img) -> np.ndarray:
    """``(C, H, W)`` standardized image (C = 1 or 3) -> ``(H, W, 3)`` in [0, 1], min-max per
    image (for ``imshow`` of network inputs and ST outputs, whatever their normalization)."""
    x = np.asarray(img, dtype=np.float64)
    x = (x - x.min()) / max(x.max() - x.min(), 1e-12)
    x = np.moveaxis(x, 0, -1)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def image_grid(rows, col_titles, title: str, path, *, row_height: float = 0.8,
               label_size: float = 6):
    """A grid of images, one row per ``(label, images)`` of ``rows`` (``images[c]`` is a
    ``(C, H, W)`` array, :func:`show_image`), ``col_titles`` above the first row; saved to
    ``path`` (:func:`save`), which is returned."""
    rows = list(rows)
    fig, axes = new_figure(len(rows), len(col_titles), height=row_height * len(rows) + 0.4)
    for r, (label, imgs) in enumerate(rows):
        for c in range(len(col_titles)):
            ax = axes[r, c]
            ax.imshow(show_image(imgs[c]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=label_size, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=7)
    return save(fig, path)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = TEXT_WIDTH,
               height: float | None = None, **kw):
    """``plt.subplots`` in the shared style; ``height`` defaults to square panels.

    Returns:
        ``(fig, axes)`` with ``axes`` always a 2-D array ``(nrows, ncols)``.
    """
    apply_style()
    if height is None:
        height = width / ncols * nrows
    kw.setdefault("layout", "constrained")
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    return fig, axes


def save(fig, path) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def method_style(method: str) -> dict:
    """``color``, ``linestyle`` and ``label`` keyword arguments for a sampler's curve."""
    return {"color": METHOD_COLORS.get(method, "black"),
            "linestyle": METHOD_LINESTYLES.get(method, "-"),
            "label": METHOD_LABELS.get(method, method)}


def plain_log_axis(ax, which: str = "y", base: float = 10) -> None:
    """A log-scaled axis whose tick labels are plain numbers (``0.2``, ``1``, ``2``).

    Matplotlib's default labels a log axis in mathtext (``2 x 10^0``, ``6 x 10^-1``), which
    is hard to read at 7 pt; here the same ticks (decades, and between them the subset
    matplotlib's own rule picks for a short range) are printed with ``%g``.

    Args:
        ax: a matplotlib ``Axes``.
        which: ``"x"`` or ``"y"``.
        base: the logarithm's base.
    """
    from matplotlib.ticker import LogFormatter

    if which not in ("x", "y"):
        raise ValueError(f"plain_log_axis: expected which to be 'x' or 'y', got {which!r}")

    class _Plain(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:g}"

    getattr(ax, f"set_{which}scale")("log", base=base)
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_formatter(_Plain(base, labelOnlyBase=False))
    axis.set_minor_formatter(_Plain(base, labelOnlyBase=False, minor_thresholds=(2, 0.4)))
