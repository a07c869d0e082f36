"""benchmarks/plans/emp2_v2_power.py: 000's effects come from the suites' copies of its tables
and the decidability arithmetic is proofs.plan's (the numbers the pilots' COMMANDS.md quote)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from proofs.plan import halfwidth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def power():
    spec = importlib.util.spec_from_file_location("emp2_v2_power",
                                                  ROOT / "benchmarks/plans/emp2_v2_power.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paper_effects_are_000s(power):
    sv, pl = power.paper_errors("svhn"), power.paper_errors("plankton")
    # 000 Table IV C8 4.00 %* - SL8 3.26 %; Table III CNN 3.88 %; Sec. IV-B4 SL3-it2 3.38 %
    assert sv["STN-C8"] - sv["STN-SL8"] == pytest.approx(0.0074)
    assert sv["CNN"] == pytest.approx(0.0388) and sv["STN-SL3-it2"] == pytest.approx(0.0338)
    assert pl["STN-DL10"] - pl["STN-DL2"] == pytest.approx(0.011)
    assert "STN-SL4-it2" not in pl  # 000 says only 'worse': no number to use
    with pytest.raises(ValueError, match="paper error"):
        power._pct("worse than N=1")


def test_budget_and_sd_max(power, capsys):
    out = power.main(["--data", "svhn", "--seed-step-s", "0.43"])
    assert out["steps"] == 1600 and out["affordable_seeds"] == 15  # 10 800 / (1600 x 0.43)
    row = next(r for r in out["rows"] if r["id"] == "svhn_deepest_cx_worse_than_slx")
    assert row["paper_effect"] == pytest.approx(0.0074)
    # sd max: the spread whose 15-seed 95 % half-width equals the effect
    assert halfwidth(row["sd_max_at_afford"], 15) == pytest.approx(0.0074)
    assert "15 seeds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        power.main(["--data", "svhn", "--seed-step-s", "-1"])
