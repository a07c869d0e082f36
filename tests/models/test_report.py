"""``models.report`` tables and ``figures.models`` drawings, from saved run directories."""

from __future__ import annotations

import json

import pytest
import torch

from figures.models import fig5_gallery, fig6_rotation, training_curves
from models.data.perturb import PerturbedMNIST
from models.record import SuiteRecord
from models.report import PAPER_TABLE_I, PAPER_TABLE_II, load_suite
from models.train import run_suite
from proofs.cli import main
from proofs.suite_report import render_run, render_suite


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(48, 28, 28, generator=g) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (48,), generator=g)
    ds = PerturbedMNIST("R", x, y)
    run_suite(["R"], ["CNN", "STN-C1", "STN-SL1"], out, scale="smoke", progress=False,
              data={"R": (ds, ds)}, test_perturb=1, eval_batch=48)
    return out


def test_report_tables_show_ours_and_paper(suite, tmp_path):
    md = tmp_path / "r" / "report.md"
    text = render_suite(suite, md)
    assert "| R ours | R paper |" in text
    assert f"{PAPER_TABLE_II['R']['STN-C1'][0]:.2f}% ({PAPER_TABLE_II['R']['STN-C1'][1]:.2f})" \
        in text
    assert f"{PAPER_TABLE_I['R']['STN-C1']:.1f}" in text
    ours = json.loads((suite / "R" / "STN-C1" / "metrics.json").read_text())
    assert f"{100 * ours['error']['mean']:.2f}%" in text
    assert f"{ours['pose_std']['mean']:.1f}" in text
    assert "3 of 15 networks finished" in text
    # the test protocol and its binomial sampling error, per run
    n = ours["test"]["images"]
    assert f"{n} test images per seed" in text
    p = ours["error"]["mean"]
    assert f"| {n} | {100 * (p * (1 - p) / n) ** 0.5:.2f} |" in text
    rep = json.loads(md.with_suffix(".json").read_text())
    assert set(rep["runs"]["R"]) == {"CNN", "STN-C1", "STN-SL1"}
    for name in ("fig5_gallery", "fig6_rotation", "training_curves"):
        assert (tmp_path / "r" / "figures" / f"{name}.png").stat().st_size > 1000
        assert f"figures/{name}.png" in text


def test_report_of_one_run_and_cli(suite, tmp_path, capsys):
    text = render_run(suite / "R" / "STN-SL1")
    assert "STN-SL1 on (R)" in text and "| parameters | 53984 | 53984 |" in text
    assert main(["report", str(suite), "--out", str(tmp_path / "x.md"), "--no-figures"]) == 0
    assert (tmp_path / "x.md").exists() and not (tmp_path / "figures").exists()


def test_sampling_sd_known_values():
    from models.report import sampling_sd

    assert sampling_sd(0.01, 10_000) == pytest.approx(0.000994987, rel=1e-6)
    assert sampling_sd(0.0, 100) == 0.0 and sampling_sd(0.5, 100) == pytest.approx(0.05)


def test_figures_return_none_without_data(tmp_path):
    empty = SuiteRecord.load(tmp_path)
    assert fig5_gallery(empty, tmp_path / "a.png") is None
    assert fig6_rotation(empty, tmp_path / "b.png") is None
    assert training_curves(empty, tmp_path / "c.png") is None
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        render_suite(tmp_path)
    assert load_suite(tmp_path) == {}


def test_a_smoke_report_says_first_that_it_is_not_a_result(suite, tmp_path):
    """Issue 12 item 8: a smoke report showed 67.5 % error beside the paper's numbers
    without a word; now its first lines (before any table) say smoke runs are not results."""
    from proofs.suite_report import scale_notes

    for text in (render_suite(suite, None), render_run(suite / "R" / "CNN")):
        head = text.splitlines()[:4]
        assert any("Smoke run: not a result" in line for line in head), head
        assert text.index("not a result") < text.index("|")  # before the first table
    assert scale_notes(["small"]) == [] and scale_notes(["paper"]) == []
    assert len(scale_notes(["smoke", "small"])) == 2  # the note and a blank line
