"""Figures of the invariance claims (INV-3..6), each a function of saved results.

Every function takes the ``data`` dict a check saved (it is stored in ``report.json``
under ``claims[i].evidence[j].data``) and a PNG path; nothing is recomputed.
:func:`draw_from_report` redraws all of them from a ``report.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .style import COLUMN, TEXT_WIDTH, new_figure, save

__all__ = [
    "scale_landscape",
    "alignment_landscape",
    "channel_shift_heatmap",
    "error_vs_log_scale",
    "feature_maps",
    "draw_from_report",
]

_MODE_STYLE = {
    "spatial": ("C0", r"spatial $T_g$ only"),
    "permutation": ("C2", r"$T_g$ + best permutation"),
    "mix": ("C3", r"$T_g$ + best channel mix"),
}


def alignment_landscape(data: dict, path) -> Path:
    """Alignment error over T_g: rotation and/or scale slices, with T_h^-1 and the minimiser marked.

    ``data`` keys: ``rotation_error_<mode>`` ``{angle_deg, error}`` and/or
    ``scale_error_<mode>`` ``{log_scale, error}``; ``T_h_inverse`` / ``found`` with
    ``angle_deg`` / ``log_scale``.
    """
    panels = [p for p in ("rotation", "scale") if any(k.startswith(p + "_error_") for k in data)]
    if not panels:
        raise ValueError("alignment_landscape: expected rotation_error_* or scale_error_* in data")
    fig, axes = new_figure(1, len(panels), width=3.3 * len(panels), height=2.9)
    for ax, panel in zip(axes[0], panels):
        xkey = "angle_deg" if panel == "rotation" else "log_scale"
        for key in sorted(k for k in data if k.startswith(panel + "_error_")):
            mode = key.rsplit("_", 1)[-1]
            color, label = _MODE_STYLE.get(mode, ("k", mode))
            ax.plot(data[key][xkey], data[key]["error"], "-o", ms=2.5, color=color, label=label)
        tinv = data.get("T_h_inverse", {}).get(xkey)
        if tinv is not None:
            ax.axvline(tinv, color="k", ls="--", lw=1, label=r"$T_h^{-1}$")
        found = data.get("found", {}).get(xkey)
        if found is not None:
            ax.axvline(found, color="C1", ls=":", lw=1.2, label="found minimiser")
        ax.set_xlabel(
            "rotation angle of $T_g$ (deg)"
            if panel == "rotation"
            else r"log-scale of $T_g$ ($\ln s_g$)"
        )
        ax.set_ylabel(r"alignment error $E(T_g)$ (relative)")
        ax.set_ylim(
            bottom=0,
            top=1.35 * max(max(data[k]["error"]) for k in data if k.startswith(panel + "_error_"))
            + 1e-12,
        )
        ax.legend(frameon=False, fontsize=6, loc="upper center", ncol=2)
    return save(fig, path)


def scale_landscape(data: dict, path) -> Path:
    """INV-5: the error over the log-scale of T_g for the largest s, with T_h^-1 marked.

    ``data``: INV-5's saved data (``rows`` with ``s``, ``landscape`` and
    ``spatial_found_log_scale``).
    """
    r = max(data["rows"], key=lambda r: r["s"])
    return alignment_landscape(
        {
            "T_h_inverse": {"log_scale": -math.log(r["s"])},
            "found": {"log_scale": r["spatial_found_log_scale"]},
            "scale_error_spatial": r["landscape"],
        },
        path,
    )


def channel_shift_heatmap(data: dict, path) -> Path:
    """Channel similarity (cosine) of Γf vs T_g Γ(T_h f), before and after the found permutation."""
    before, after = np.asarray(data["before"]), np.asarray(data["after"])
    labels = data.get("channel_labels") or [str(i) for i in range(len(before))]
    fig, axes = new_figure(1, 2, width=TEXT_WIDTH, height=3.6)
    axes = axes[0]
    for ax, m, title in (
        (axes[0], before, "before (spatial alignment only)"),
        (axes[1], after, "after the found channel permutation"),
    ):
        ax.grid(False)
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title)
        ax.set_xlabel(r"channel of $T_g\,\Gamma(T_h f)$")
        ax.set_ylabel(r"channel of $\Gamma f$")
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="cosine similarity over the region")
    fig.suptitle(
        f"rotation by {90 * data.get('quarter_turns', 1)}°; found permutation "
        f"{data.get('permutation')}",
        fontsize=8,
    )
    return save(fig, path)


def error_vs_log_scale(data: dict, path) -> Path:
    """INV-5: best alignment error vs |log s|, with and without the channel mix."""
    rows = data["rows"]
    fig, axes = new_figure(1, 1, width=COLUMN + 0.2, height=2.8)
    ax = axes[0, 0]
    for mode in ("spatial", "mix"):
        key = f"{mode}_error"
        if all(key in r for r in rows):
            color, label = _MODE_STYLE[mode]
            for side, marker in (("s<1", "v"), ("s>=1", "^")):
                pts = [(r["abs_log_s"], r[key]) for r in rows if (r["s"] < 1) == (side == "s<1")]
                if pts:
                    px, py = zip(*sorted(pts))
                    ax.plot(
                        px,
                        py,
                        marker=marker,
                        color=color,
                        ls="-" if side == "s>=1" else "--",
                        label=f"{label} ({side.replace('>=', '≥')})",
                    )
    for r in rows:
        if r["s"] != 1.0:
            ax.annotate(
                f"s={r['s']:g}",
                (r["abs_log_s"], r.get("mix_error", r.get("spatial_error"))),
                textcoords="offset points",
                xytext=(4, -8),
                fontsize=6,
            )
    if data.get("floor") is not None:
        ax.axhline(
            data["floor"], color="gray", lw=0.8, ls=":", label="interpolation floor (½-px shift)"
        )
    ax.set_xlabel(r"$|\ln s|$ of the image scaling $T_h$")
    ax.set_ylabel(r"best alignment error $\min_{T_g} E$")
    ax.set_xlim(left=-0.03)
    ax.set_ylim(bottom=0)
    ax.set_title(data.get("extractor", ""), fontsize=7)
    ax.legend(frameon=False, fontsize=6)
    return save(fig, path)


def feature_maps(data: dict, path) -> Path:
    """Original vs transformed image and feature maps: Γf, T_g Γ(T_h f), and after permutation."""
    ref, al = np.asarray(data["reference"]), np.asarray(data["aligned"])
    perm = np.asarray(data["permuted"]) if "permuted" in data else None
    labels = data.get("channel_labels") or [str(i) for i in range(ref.shape[0])]
    rows = [(r"$\Gamma f$", ref), (r"$T_g\,\Gamma(T_h f)$", al)]
    if perm is not None:
        rows.append((r"permuted $T_g\,\Gamma(T_h f)$", perm))
    c = ref.shape[0]
    fig, axes = new_figure(len(rows), c + 1, width=TEXT_WIDTH * (c + 1) / 6, height=1.3 * len(rows))
    images = [data.get("image"), data.get("rotated_image"), None]
    vmax = max(float(np.max(ref)), 1e-12)
    for i, (name, maps) in enumerate(rows):
        ax = axes[i][0]
        if images[i] is None:
            ax.set_frame_on(False)
        else:
            ax.imshow(np.asarray(images[i]), cmap="gray")
            ax.set_title("f" if i == 0 else r"$T_h f$")
        ax.set_ylabel(name, fontsize=7)
        for j in range(c):
            axes[i][j + 1].imshow(maps[j], cmap="magma", vmin=0, vmax=vmax)
            if i == 0:
                axes[i][j + 1].set_title(f"ch. {labels[j]}", fontsize=7)
        for ax in axes[i]:
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{data.get('source', '')}: {data.get('transform', '')}", fontsize=7)
    return save(fig, path)


def draw_from_report(report_json, out_dir) -> list[Path]:
    """Redraw every invariance figure from a saved ``report.json`` into ``out_dir``."""
    report = json.loads(Path(report_json).read_text())
    out = Path(out_dir)
    drawn = []
    for c in report["claims"]:
        for ev in c["evidence"]:
            d = ev.get("data") or {}
            if c["id"] == "INV-3" and d.get("rows"):
                if "landscape" in d["rows"][0]:
                    drawn.append(
                        alignment_landscape(d["rows"][0]["landscape"], out / "inv3_landscape.png")
                    )
            if c["id"] == "INV-4" and "heatmap" in d:
                drawn.append(channel_shift_heatmap(d["heatmap"], out / "inv4_channel_shift.png"))
                drawn.append(feature_maps(d["feature_maps"], out / "inv4_feature_maps.png"))
            if c["id"] == "INV-4" and "landscape" in d:
                drawn.append(
                    alignment_landscape(d["landscape"], out / "inv4_rotation_landscape.png")
                )
            if c["id"] == "INV-5" and d.get("rows"):
                drawn.append(error_vs_log_scale(d, out / "inv5_error_vs_log_scale.png"))
                if all("landscape" in r for r in d["rows"]):
                    drawn.append(scale_landscape(d, out / "inv5_scale_landscape.png"))
    return drawn
