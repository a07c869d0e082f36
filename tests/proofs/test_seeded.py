"""proofs.claims.seeded: a part must hold in every seed; per-seed numbers are kept."""

from __future__ import annotations

import pytest

from proofs.claims.seeded import Part, SeedRun, judge, over_seeds
from proofs.registry import CheckContext


@pytest.fixture
def ctx(tmp_path):
    return CheckContext(out_dir=tmp_path, quick=False, seed=3)


def test_every_seed_must_pass(ctx):
    def body(seed):
        v = 0.5 if seed != ctx.seeds[2] else 2.0  # one seed out of bound
        return SeedRun([Part("err", v, "<=", 1.0, "a priori: test")], {"v": v})

    ev = over_seeds(ctx, body)
    assert ev.status == "failed"
    assert ev.numbers["err"]["max"] == 2.0 and ev.numbers["err"]["min"] == 0.5
    assert ev.numbers["seeds"] == list(ctx.seeds)
    assert set(ev.numbers["per_seed"]) == {str(s) for s in ctx.seeds}
    ok = over_seeds(ctx, lambda s: SeedRun([Part("err", 0.5, "<=", 1.0, "a priori: t")]))
    assert ok.status == "verified"


def test_judge_keeps_parts_for_over_seeds(ctx):
    ev = over_seeds(ctx, lambda s: judge([Part("a", s, ">=", 0, "a priori: t"),
                                          Part("b", 1.0, "<=", 0.5, "a priori: t")]))
    assert ev.status == "failed" and ev.numbers["a"]["per_seed"][str(ctx.seeds[1])] == \
        ctx.seeds[1]


def test_parts_must_match_across_seeds(ctx):
    def body(seed):
        name = "x" if seed == ctx.seeds[0] else "y"
        return SeedRun([Part(name, 0.0, "<=", 1.0, "a priori: t")])

    with pytest.raises(ValueError, match="over_seeds: expected the parts"):
        over_seeds(ctx, body)
