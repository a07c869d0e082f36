"""The precision A/B: both modes trained for the same seeds, paired intervals, verdicts."""

from __future__ import annotations

import json

import pytest
import torch

from models.data.perturb import PerturbedMNIST
from proofs.precision_ab import format_report, main, precision_ab


@pytest.fixture(scope="module")
def data_r():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 28, 28)
    x[:, 8:20, 10:18] = torch.rand(64, 12, 8, generator=g)
    d = PerturbedMNIST("R", (x * 255).to(torch.uint8), torch.randint(0, 10, (64,),
                                                                     generator=g))
    return {"R": (d, d)}


def test_ab_at_smoke_pairs_the_seeds_of_both_modes(tmp_path, data_r):
    rep = precision_ab(tmp_path, variant="R", nets=["STN-C0"], scale="smoke", seeds=2,
                       mode="bf16", data=data_r, progress=False, test_perturb=1)
    row = rep["nets"]["STN-C0"]
    for key in ("final_loss", "error"):
        a, b = row[key]["fp32"], row[key]["bf16"]
        assert len(a) == len(b) == 2
        d = row[key]["difference"]
        assert d["method"] == "paired student-t over 2 seeds" and d["n"] == 2
        assert d["estimate"] == pytest.approx(sum(b) / 2 - sum(a) / 2, abs=1e-12)
        assert d["lo"] <= d["estimate"] <= d["hi"]
    # The modes really ran: their runs record their precision and their losses differ.
    cfg = json.loads((tmp_path / "bf16" / "R" / "STN-C0" / "config.json").read_text())
    assert cfg["precision"] == "bf16"
    assert row["final_loss"]["fp32"] != row["final_loss"]["bf16"]
    assert row["verdict"] in ("indistinguishable", "different")
    assert json.loads((tmp_path / "ab.json").read_text()) == rep
    assert (tmp_path / "ab.md").read_text() == format_report(rep) + "\n"
    assert "STN-C0" in format_report(rep) and "Student-t" in format_report(rep)
    ips = row["images_per_s"]
    assert ips["fp32"] > 0 and ips["bf16"] > 0
    assert ips["ratio"] == pytest.approx(ips["bf16"] / ips["fp32"])


def test_identical_modes_are_indistinguishable_and_a_shift_is_not(tmp_path, data_r,
                                                                   monkeypatch):
    """Control: fp32 against channels_last (same values to fp32 rounding) is
    indistinguishable; a loss shifted by 1 in the second mode is reported as different."""
    rep = precision_ab(tmp_path / "same", variant="R", nets=["CNN"], scale="smoke", seeds=3,
                       mode="channels_last", data=data_r, progress=False, test_perturb=1)
    assert rep["nets"]["CNN"]["verdict"] == "indistinguishable"
    import proofs.precision_ab as ab

    real = ab._final_losses
    monkeypatch.setattr(ab, "_final_losses", lambda rd: [
        v + (1.0 if "channels_last" in str(rd) else 0.0) for v in real(rd)])
    rep = precision_ab(tmp_path / "same", variant="R", nets=["CNN"], scale="smoke", seeds=3,
                       mode="channels_last", data=data_r, progress=False, resume=True,
                       test_perturb=1)
    assert rep["nets"]["CNN"]["verdict"] == "different"
    assert not rep["nets"]["CNN"]["final_loss"]["within_seed_noise"]


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"precision_ab: expected seeds to be an int >= 2"):
        precision_ab(tmp_path, variant="R", nets=["CNN"], seeds=1)
    with pytest.raises(ValueError, match="precision_ab: expected mode to differ"):
        precision_ab(tmp_path, variant="R", nets=["CNN"], mode="fp32")
    with pytest.raises(ValueError, match=r"precision_ab: expected precision in .*'fp8'"):
        precision_ab(tmp_path, variant="R", nets=["CNN"], mode="fp8")
    assert main(["--variant", "R", "--net", "XX", "--out", str(tmp_path)]) == 2
    assert "expected --net" in capsys.readouterr().err
