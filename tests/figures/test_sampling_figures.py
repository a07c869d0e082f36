"""Every sampler figure renders from a saved result dict (no recomputation) to a non-empty PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest

from figures import sampling as figs
from figures import style

METHODS = ["bilinear", "linearized", "multiscale"]
DS = [1, 2, 4, 8]


def _field(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t = np.linspace(-0.6, 0.6, 5)
    off = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    desc = -off + 0.2 * rng.standard_normal(off.shape)
    n = np.linalg.norm(desc, axis=1) * np.linalg.norm(off, axis=1)
    cos = [None if v == 0 else float(c) for v, c in
           zip(n, (desc * -off).sum(1) / np.where(n == 0, 1, n))]
    return {"offsets": off.tolist(), "descent": desc.tolist(), "cosine": cos,
            "loss": [0.0] * len(off), "basin_fraction": 0.8, "basin_radius": 0.3,
            "radius_is_lower_bound": False, "output_size": [8, 8], "cos_threshold": 0.7}


@pytest.fixture
def field_result():
    res = {"experiment": "gradient-field", "methods": METHODS, "downsamples": DS,
           "images": ["img"], "config": {"crop": 2 / 3, "cos_threshold": 0.7},
           "fields": {"img": {m: {str(d): _field(d) for d in DS} for m in METHODS}},
           "thumbnails": {"img": np.random.default_rng(0).random((16, 16)).tolist()},
           "summary": {m: {str(d): {"basin_fraction_mean": 0.5, "basin_fraction_per_image": [0.5],
                                    "basin_radius_mean": 0.3, "basin_radius_per_image": [0.3]}
                           for d in DS} for m in METHODS}}
    return json.loads(json.dumps(res))  # exactly what a saved JSON gives back


def _recall(rng, th):
    e = rng.random(20) * 0.6
    return {"recall": [float((e <= t).mean()) for t in th], "auc": 0.5}


def test_gradient_field_and_basin_figures(field_result, tmp_path):
    p = figs.gradient_field_figure(field_result, tmp_path / "gf.png")
    assert p.exists() and p.stat().st_size > 0
    q = figs.basin_figure(field_result, tmp_path / "basin.png")
    assert q.stat().st_size > 0


def test_alignment_figure_skips_missing_dataset(tmp_path):
    th = list(np.linspace(0, 0.5, 11))
    rng = np.random.default_rng(0)
    res = {"methods": METHODS, "downsamples": DS, "thresholds": th, "trials": {"natural": 20},
           "results": {"natural": {m: {str(d): _recall(rng, th) for d in DS} for m in METHODS},
                       "mnist": {}}}
    p = figs.alignment_figure(json.loads(json.dumps(res)), tmp_path / "align.png")
    assert p.stat().st_size > 0


def test_ablation_figure(tmp_path):
    th = list(np.linspace(0, 0.5, 11))
    rng = np.random.default_rng(1)
    entries = [{"label": f"{u}x up, {v}", "group": f"{u}x", "variant": v, **_recall(rng, th)}
               for u in (1, 2, 4) for v in ("on", "off")]
    res = {"title": "collapse", "thresholds": th, "entries": entries}
    p = figs.ablation_figure(res, tmp_path / "sub" / "abl.png")
    assert p.stat().st_size > 0


def test_style_helpers():
    fig, axes = style.new_figure(2, 3)
    assert axes.shape == (2, 3)
    style.plt.close(fig)
    assert style.method_style("linearized")["linestyle"] == "-"
    assert style.method_style("unknown")["label"] == "unknown"
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"


def test_smoke_alignment_figure_says_it_is_not_a_result(tmp_path, monkeypatch):
    import matplotlib.text

    drawn = []
    real_save = figs.save
    monkeypatch.setattr(figs, "save", lambda fig, path: drawn.append(fig) or real_save(fig, path))
    th = list(np.linspace(0, 0.5, 11))
    zero = {"recall": [0.0] * len(th), "auc": 0.0}
    res = {"scale": "smoke", "methods": METHODS, "downsamples": DS, "thresholds": th,
           "trials": {"natural": 4},
           "results": {"natural": {m: {str(d): zero for d in DS} for m in METHODS}}}
    assert figs.alignment_figure(res, tmp_path / "align.png").stat().st_size > 0
    texts = [t.get_text() for t in drawn[-1].findobj(matplotlib.text.Text)]
    assert any("smoke: not a result" in t and "recall 0" in t for t in texts), texts
    # a result at another scale carries no such note
    rng = np.random.default_rng(0)
    res = {**res, "scale": "small",
           "results": {"natural": {m: {str(d): _recall(rng, th) for d in DS} for m in METHODS}}}
    figs.alignment_figure(res, tmp_path / "align2.png")
    texts = [t.get_text() for t in drawn[-1].findobj(matplotlib.text.Text)]
    assert not any("not a result" in t for t in texts)
