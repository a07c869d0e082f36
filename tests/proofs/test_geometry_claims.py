"""GEO-1..3 verify on the real code and fail on deliberately broken geometry."""

from __future__ import annotations

import pytest

import proofs.claims.geometry as geo
from proofs.registry import CheckContext
from sampling import geometry as g


@pytest.fixture
def ctx(tmp_path):
    return CheckContext(out_dir=tmp_path, quick=True, seed=0)


def test_geo1_verifies(ctx):
    ev = geo.geo1_sympy_and_numeric(ctx)
    assert ev.status == "verified", ev.numbers
    assert ev.numbers["symbolic_u"] == "a11/2 + a22/2"


def test_geo1_fails_on_wrong_sign(ctx, monkeypatch):
    real = g.similarity_fit

    def wrong(m):
        s, phi = real(m)
        return s, -phi

    monkeypatch.setattr(g, "similarity_fit", wrong)
    assert geo.geo1_sympy_and_numeric(ctx).status == "failed"


def test_geo2_verifies_and_fails_on_wrong_units(ctx, monkeypatch):
    assert geo.geo2_units(ctx).status == "verified"
    # a model frame with the align_corners=False unit (W s / 2 = 26 px, not 25)
    from models import placements

    real = placements.FeatureMap.frame

    def wrong_frame(self, net):
        f = real(self, net)
        return {**f, "half_width_px": f["width"] * f["stride"] / 2}

    monkeypatch.setattr(placements.FeatureMap, "frame", wrong_frame)
    ev = geo.geo2_units(ctx)
    assert ev.status == "failed" and ev.numbers["stn_c1_T_half_width_px"] == 26.0


def test_geo3_verifies(ctx):
    ev = geo.geo3_compose_and_identity(ctx)
    assert ev.status == "verified", ev.numbers


def test_geo3_fails_on_swapped_composition(ctx, monkeypatch):
    real = g.compose
    monkeypatch.setattr(g, "compose", lambda a, b: real(b, a))
    assert geo.geo3_compose_and_identity(ctx).status == "failed"


def test_geo3_fails_on_wrong_identity(ctx, monkeypatch):
    """The models' own initialization is what GEO-3 warps with: a bias that is not the
    identity (a 0.01 shift) fails it."""
    import models.stn as stn

    monkeypatch.setattr(stn, "IDENTITY_BIAS", (1.0, 0.0, 0.01, 0.0, 1.0, 0.0))
    ev = geo.geo3_compose_and_identity(ctx)
    assert ev.status == "failed"
    assert ev.numbers["identity_init_max_abs_error"]["min"] > 1e-3
