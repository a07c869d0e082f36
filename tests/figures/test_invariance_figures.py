"""figures.invariance: every figure draws from saved data (no recomputation), checks input."""

from __future__ import annotations

import json

import pytest

from figures import invariance as fig


def _is_png(path) -> bool:
    """A real PNG file with some content (a blank canvas is smaller than 2 kB)."""
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_alignment_landscape(tmp_path):
    data = {
        "T_h_inverse": {"angle_deg": -30.0, "log_scale": 0.2},
        "found": {"angle_deg": -28.0},
        "rotation_error_spatial": {"angle_deg": [-60, -30, 0, 30], "error": [0.4, 0.1, 0.3, 0.5]},
        "rotation_error_permutation": {
            "angle_deg": [-60, -30, 0, 30],
            "error": [0.3, 0.0, 0.2, 0.4],
        },
        "scale_error_mix": {"log_scale": [-0.2, 0.0, 0.2], "error": [0.3, 0.2, 0.1]},
    }
    assert _is_png(fig.alignment_landscape(data, tmp_path / "a.png"))


def test_alignment_landscape_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="rotation_error"):
        fig.alignment_landscape({}, tmp_path / "a.png")


def test_heatmap_error_curve_feature_maps(tmp_path):
    sim = [[1.0 if i == (j + 1) % 4 else 0.1 for j in range(4)] for i in range(4)]
    assert _is_png(
        fig.channel_shift_heatmap(
            {"before": sim, "after": sim, "permutation": [1, 2, 3, 0]}, tmp_path / "h.png"
        )
    )
    rows = [
        {
            "s": s,
            "abs_log_s": abs(__import__("math").log(s)),
            "spatial_error": e * 1.5,
            "mix_error": e,
        }
        for s, e in ((0.5, 0.2), (1.0, 0.0), (2.0, 0.15))
    ]
    assert _is_png(fig.error_vs_log_scale({"rows": rows, "floor": 0.02}, tmp_path / "e.png"))
    maps = [[[float(i * j) for j in range(8)] for i in range(8)]] * 2
    assert _is_png(
        fig.feature_maps(
            {
                "reference": maps,
                "aligned": maps,
                "permuted": maps,
                "image": maps[0],
                "rotated_image": maps[0],
            },
            tmp_path / "f.png",
        )
    )


def test_draw_from_report(tmp_path):
    rows = [
        {"s": 1.0, "abs_log_s": 0.0, "mix_error": 0.0},
        {"s": 2.0, "abs_log_s": 0.69, "mix_error": 0.1},
    ]
    report = {
        "claims": [
            {"id": "INV-5", "evidence": [{"data": {"rows": rows}}]},
            {"id": "INV-1", "evidence": [{"data": {}}]},
        ]
    }
    p = tmp_path / "report.json"
    p.write_text(json.dumps(report))
    drawn = fig.draw_from_report(p, tmp_path / "out")
    assert [d.name for d in drawn] == ["inv5_error_vs_log_scale.png"]
    assert _is_png(drawn[0])


def test_scale_landscape_from_inv5_data(tmp_path):
    land = {"log_scale": [-0.9, -0.7, -0.5, 0.0], "error": [0.3, 0.1, 0.2, 0.4]}
    rows = [
        {"s": 1.0, "landscape": land, "spatial_found_log_scale": 0.0},
        {"s": 2.0, "landscape": land, "spatial_found_log_scale": -0.7},
    ]
    assert _is_png(fig.scale_landscape({"rows": rows}, tmp_path / "s.png"))
