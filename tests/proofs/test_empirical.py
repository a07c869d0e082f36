"""The shared EMP evidence rules (proofs/claims/empirical.py): the statements, and an
ordering in a Bonferroni family. EMP-1's checks are tested in test_emp1.py."""

from __future__ import annotations

import pytest

from proofs.claims import empirical
from proofs.registry import load_all


def test_emp_statements_are_faithful_to_the_papers():
    claims = load_all()
    assert "helps the parameter-shared" in claims["EMP-2"].statement
    assert "improves STN-C0 and STN-DL2" in claims["EMP-2"].statement
    assert "21.8 %" in claims["EMP-2"].note
    assert "still degrades at 8x" in claims["EMP-3"].statement
    assert "6.08 -> 10.89" in claims["EMP-3"].note and "4.85 -> 4.86" in claims["EMP-3"].note
    assert "slightly behind on ILSVRC (Table V)" in claims["EMP-4"].statement
    assert "42.38" in claims["EMP-4"].note and claims["EMP-4"].source == "004 Tables I-V"
    for cid in ("EMP-1", "EMP-1F", "EMP-1S", "EMP-1T", "EMP-2", "EMP-3", "EMP-4"):
        assert claims[cid].kind == "empirical"


def test_an_ordering_in_a_family_fails_only_beyond_the_family_interval():
    prov = {"results": "r", "scale": "medium", "seeds": [0, 1, 2], "device": "cpu"}
    high, low = {0: 1.0, 1: 1.0, 2: 1.0}, {0: 1.4, 1: 1.3, 2: 1.2}  # high - low: -0.3 +- 0.1
    alone = empirical.ordering("x", high, low, prov=prov)
    in_three = empirical.ordering("x", high, low, prov=prov, family=3)
    assert alone.status == "failed"
    assert in_three.status == "inconclusive"  # t_{1-0.05/6, 2} * 0.1/sqrt(3) > 0.3
    assert in_three.numbers["x"]["fail_interval"]["level"] == pytest.approx(1 - 0.05 / 3)
    far = empirical.ordering("x", high, {k: v + 3 for k, v in low.items()}, prov=prov,
                             family=3)
    assert far.status == "failed"
