"""figures/cub.py: Fig. 5 boxes and Fig. 6 histograms from saved run data only."""

from __future__ import annotations

import json

import numpy as np

from figures.cub import draw_suite
from models.record import RunRecord, SuiteRecord


def _hist(acc):
    return {"edges": [i / 10 for i in range(11)],
            "all": {"count": [5] + [0] * 9, "correct": [2] + [0] * 9,
                    "accuracy": [acc] + [None] * 9}}


def test_draws_both_figures_from_saved_data(tmp_path):
    d = tmp_path / "standin" / "CSTN"
    d.mkdir(parents=True)
    RunRecord(d, {"variant": "standin", "net": "CSTN", "scale": "smoke"}).save()
    (d / "fig_data.json").write_text(json.dumps(
        {"net": "CSTN", "fig6": [{"seed": 0, "transformed": _hist(0.4),
                                  "untransformed": _hist(0.2)}]}))
    box = np.array([[2.0, 2.0, 10.0, 12.0]] * 2)
    np.savez(d / "gallery.npz", images=np.zeros((2, 3, 16, 16), np.uint8), box=box,
             rf_box=box, gt_box=box)
    made = draw_suite(SuiteRecord.load(tmp_path), tmp_path / "figures")
    assert set(made) == {"fig5_boxes", "fig6_histograms"}
    for path, caption in made.values():
        assert (tmp_path / "figures").joinpath(path.split("/")[-1]).stat().st_size > 1000
        assert caption


def test_nothing_saved_draws_nothing(tmp_path):
    d = tmp_path / "standin" / "CAM"
    d.mkdir(parents=True)
    RunRecord(d, {"variant": "standin", "net": "CAM", "scale": "smoke"}).save()
    assert draw_suite(SuiteRecord.load(tmp_path), tmp_path / "figures") == {}
