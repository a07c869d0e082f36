"""Figures of the sampler experiments (003 Figs. 7-10), drawn from saved result dicts.

Every function takes the JSON dict a driver in :mod:`proofs.experiments.samplers`
wrote (or the ``data`` of a claim's evidence) and a PNG path; nothing is
recomputed. Units: offsets, thresholds and errors are in normalized units of the
input image (its full width is 2), as in :mod:`sampling.experiments`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import (COLUMN, SEQUENCE_COLORS, TEXT_WIDTH, METHOD_LABELS, method_style, new_figure,
                    save)

__all__ = [
    "gradient_field_figure",
    "basin_figure",
    "alignment_figure",
    "ablation_figure",
]


def _cos_color(cos):
    """Green (descent points at the truth) to red (points away); grey where undefined."""
    from matplotlib import colormaps

    cmap = colormaps["RdYlGn"]
    return [cmap((c + 1) / 2) if c is not None else (0.5, 0.5, 0.5, 1.0) for c in cos]


def gradient_field_figure(result: dict, path, *, image: str | None = None) -> Path:
    """003 Fig. 8: the negative-gradient field per sampler (rows) and downsampling (columns).

    Each arrow sits at an initial offset ``t`` of the crop window (its centre, in
    input normalized coordinates, over the input image) and points along the
    normalized descent direction ``-dL/dt``; colour is the cosine with the
    direction to the truth (the centre), green = 1, red = -1. The dashed square
    is the true crop.

    Args:
        result: the ``gradient-field`` result dict (keys ``methods``,
            ``downsamples``, ``fields``, ``images``, optional ``thumbnails``).
        path: PNG path.
        image: which image's fields to draw (default: the first).
    """
    methods, ds = result["methods"], result["downsamples"]
    name = image or result["images"][0]
    fields = result["fields"][name]
    crop = result["config"].get("crop", 2 / 3)
    fig, axes = new_figure(len(methods), len(ds), width=TEXT_WIDTH,
                           height=TEXT_WIDTH / len(ds) * len(methods) * 1.05)
    thumb = (result.get("thumbnails") or {}).get(name)
    for i, m in enumerate(methods):
        for j, d in enumerate(ds):
            ax = axes[i, j]
            f = fields[m][str(d)]
            if thumb is not None:
                ax.imshow(np.asarray(thumb), cmap="gray", extent=(-1, 1, 1, -1), alpha=0.6)
            off = np.asarray(f["offsets"])
            v = np.asarray(f["descent"])
            nv = np.linalg.norm(v, axis=1, keepdims=True)
            u = np.divide(v, nv, out=np.zeros_like(v), where=nv > 0)
            ax.quiver(off[:, 0], off[:, 1], u[:, 0], u[:, 1], color=_cos_color(f["cosine"]),
                      angles="xy", scale_units="xy", scale=1 / (0.85 * _spacing(off)),
                      width=0.012)
            ax.plot([-crop, crop, crop, -crop, -crop], [-crop, -crop, crop, crop, -crop],
                    "w--", lw=0.6)
            ext = max(1.0, float(np.abs(off).max()) * 1.1)
            ax.set_xlim(-ext, ext)
            ax.set_ylim(ext, -ext)  # y points down, as in the image
            ax.set_aspect("equal")
            ax.grid(False)
            ax.set_title(f"{METHOD_LABELS.get(m, m)}, {d}x down\n"
                         f"basin {f['basin_fraction']:.2f}, r {f['basin_radius']:.2f}")
            if j == 0:
                ax.set_ylabel("offset $t_y$ (normalized)")
            if i == len(methods) - 1:
                ax.set_xlabel("offset $t_x$ (normalized)")
    fig.suptitle(f"Negative gradient of the L2 alignment loss ({name}; green: cos > 0 "
                 f"with the direction to the truth)", fontsize=8)
    return save(fig, path)


def _spacing(off: np.ndarray) -> float:
    xs = np.unique(np.round(off[:, 0], 9))
    return float(np.diff(xs).min()) if xs.size > 1 else 1.0


def basin_figure(result: dict, path) -> Path:
    """Basin fraction and basin radius vs downsampling, one line per sampler (mean over images).

    Thin markers are the individual images.
    """
    methods, ds = result["methods"], result["downsamples"]
    summ = result["summary"]
    fig, axes = new_figure(1, 2, width=TEXT_WIDTH, height=TEXT_WIDTH * 0.36)
    for key, ax, ylabel in (("basin_fraction", axes[0, 0], "basin fraction (cos > "
                             f"{result['config'].get('cos_threshold', 0.7):g})"),
                            ("basin_radius", axes[0, 1], "basin radius (normalized units)")):
        for m in methods:
            st = method_style(m)
            mean = [summ[m][str(d)][f"{key}_mean"] for d in ds]
            ax.plot(ds, mean, marker="o", **st)
            for k, d in enumerate(ds):
                per = summ[m][str(d)][f"{key}_per_image"]
                ax.scatter([d] * len(per), per, s=6, color=st["color"], alpha=0.4)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ds)
        ax.set_xticklabels([f"{d}x" for d in ds])
        ax.set_xlabel("downsampling factor d")
        ax.set_ylabel(ylabel)
    axes[0, 0].set_ylim(0, 1.02)
    axes[0, 0].legend(loc="lower left")
    return save(fig, path)


#: What a figure drawn from a ``--scale smoke`` result says across each panel.
SMOKE_NOTE = "smoke: not a result"


def _note(ax, result: dict, curves) -> None:
    """Write across ``ax`` why it may look empty: a smoke run (a handful of trials to check
    the pipeline, whose curves lie on recall 0) or every curve at recall 0."""
    flat = [v for c in curves for v in c]
    lines = []
    if result.get("scale") == "smoke":
        lines.append(SMOKE_NOTE)
    if flat and max(flat) == 0:
        lines.append("every curve at recall 0")
    if lines:
        ax.text(0.5, 0.55, "\n".join(lines), transform=ax.transAxes, ha="center",
                va="center", fontsize=11, color="0.35")


def alignment_figure(result: dict, path) -> Path:
    """003 Fig. 7: recall vs corner-error threshold; colour = downsampling, line style = sampler.

    One panel per dataset (skipped datasets are omitted). A smoke result (``"scale":
    "smoke"``) and a panel whose curves all sit at recall 0 say so across the panel
    (:data:`SMOKE_NOTE`) instead of looking blank.
    """
    th = np.asarray(result["thresholds"])
    datasets = [k for k, v in result["results"].items() if v]
    ds = result["downsamples"]
    n = max(1, len(datasets))
    fig, axes = new_figure(1, n, width=COLUMN * n if n > 1 else COLUMN * 1.3,
                           height=COLUMN * 0.9)
    for ax, name in zip(axes[0], datasets):
        res = result["results"][name]
        curves = []
        for k, d in enumerate(ds):
            for m in result["methods"]:
                r = res.get(m, {}).get(str(d))
                if r is None:
                    continue
                st = method_style(m)
                ax.plot(th, r["recall"], color=SEQUENCE_COLORS[k % len(SEQUENCE_COLORS)],
                        linestyle=st["linestyle"])
                curves.append(r["recall"])
        _note(ax, result, curves)
        ax.set_title(f"{name} ({result['trials'][name]} trials per curve)")
        ax.set_xlabel("threshold on mean corner error (normalized units)")
        ax.set_ylabel("recall")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(th.min(), th.max())
    _two_legends(axes[0, 0], [f"{d}x down" for d in ds], result["methods"])
    return save(fig, path)


def _two_legends(ax, group_labels, methods):
    from matplotlib.lines import Line2D

    h1 = [Line2D([], [], color=SEQUENCE_COLORS[k % len(SEQUENCE_COLORS)], label=lab)
          for k, lab in enumerate(group_labels)]
    h2 = [Line2D([], [], color="grey", linestyle=method_style(m)["linestyle"],
                 label=METHOD_LABELS.get(m, m)) for m in methods]
    leg = ax.legend(handles=h1, loc="upper left", title=None)
    ax.add_artist(leg)
    ax.legend(handles=h2, loc="lower right")


def ablation_figure(result: dict, path) -> Path:
    """003 Figs. 9a / 10: recall vs threshold for each ablation setting.

    ``result["entries"]`` is a list of ``{"label", "group", "variant", "recall",
    "auc"}``: colour by ``group`` (e.g. sigma, K, or the upsampling factor), line
    style by ``variant`` (e.g. collapse prevention on/off, or ``bilinear`` for
    the baseline).
    """
    th = np.asarray(result["thresholds"])
    entries = result["entries"]
    groups = list(dict.fromkeys(e["group"] for e in entries))
    variants = list(dict.fromkeys(e["variant"] for e in entries))
    styles = ["-", "--", ":", "-."]
    fig, axes = new_figure(1, 1, width=COLUMN * 1.3, height=COLUMN)
    ax = axes[0, 0]
    for e in entries:
        ax.plot(th, e["recall"], color=SEQUENCE_COLORS[groups.index(e["group"]) % 6],
                linestyle=styles[variants.index(e["variant"]) % len(styles)],
                label=f"{e['label']} (AUC {e['auc']:.2f})")
    ax.set_xlabel("threshold on mean corner error (normalized units)")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(th.min(), th.max())
    ax.set_title(result.get("title", result.get("experiment", "")))
    ax.legend(loc="lower right")
    _note(ax, result, [e["recall"] for e in entries])
    return save(fig, path)
