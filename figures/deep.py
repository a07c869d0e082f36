"""000 Fig. 7 for the deep suites (SVHN, PlanktonSet), drawn from saved run directories only.

Each ST network's evaluation saved, in its ``gallery.npz``, one test image rotated by each
of :data:`models.suites._deep.FIG7_ANGLES` (``fig7_inputs``) and what the trained network
(seed 0) does to every rotated copy (``fig7_outputs``: the copy warped by the network's
matrices shown in the input frame, :func:`models.deep_stn.input_frame_theta`). The
figure puts the rotated inputs in the top row and, below, STN-CX, STN-DLX and STN-SLX at
a shallow and a deep X: a row whose object stands the same way in every column has
learned to undo the rotation (000: at X = 7 on PlanktonSet "only STN-SL7 finds a
canonical angle"). Nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path

from figures.style import image_grid
from models.record import SuiteRecord

__all__ = ["fig7_rotations", "draw_suite"]


def fig7_rotations(suite: SuiteRecord, path, *, depths, dataset: str = "") -> str | None:
    """Rotated inputs (top row) and each ``STN-{C,DL,SL}{X}`` for ``X`` in ``depths`` below.

    Rows of networks without a saved ``fig7_outputs`` are left out; returns the path, or
    None when no network saved one.
    """
    rows, inputs, angles = [], None, None
    for x in depths:
        for kind in ("C", "DL", "SL"):
            net = f"STN-{kind}{x}"
            rec = next((suite.get(v, net) for v in suite.runs if suite.get(v, net)), None)
            g = rec.gallery() if rec is not None else None
            if g is None or "fig7_outputs" not in g:
                continue
            rows.append((net, g["fig7_outputs"]))
            if inputs is None:
                inputs, angles = g["fig7_inputs"], g["fig7_angles"]
    if not rows:
        return None
    return image_grid([("input", inputs)] + rows, [f"rotated {a:+.0f}°" for a in angles],
                      "One test image rotated, and what each network's ST does to it (seed 0)"
                      + (f"; {dataset}" if dataset else ""), path)


def draw_suite(suite: SuiteRecord, out_dir, *, depths) -> dict[str, tuple[str, str]]:
    """The deep suites' figures into ``out_dir``: ``{name: (path, caption)}``."""
    data = sorted({str(r.metrics.get("dataset", "?")) for r in suite.records()})
    p = fig7_rotations(suite, Path(out_dir) / "fig7_rotations.png", depths=depths,
                       dataset=", ".join(data))
    if p is None:
        return {}
    caption = (f"Fig. 7 (000): one test image rotated, transformed by STN-C/DL/SL at "
               f"X = {', '.join(map(str, depths))} (data: {', '.join(data)})")
    return {"fig7_rotations": (str(p), caption)}
