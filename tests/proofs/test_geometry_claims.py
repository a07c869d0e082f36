"""GEO-1..3 verify on the real code and fail on deliberately broken geometry."""

from __future__ import annotations

import pytest
import torch

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
    monkeypatch.setattr(g, "pixel_units", lambda w, align_corners=False: w / 2)
    assert geo.geo2_units(ctx).status == "failed"


def test_geo3_verifies(ctx):
    ev = geo.geo3_compose_and_identity(ctx)
    assert ev.status == "verified", ev.numbers


def test_geo3_fails_on_swapped_composition(ctx, monkeypatch):
    real = g.compose
    monkeypatch.setattr(g, "compose", lambda a, b: real(b, a))
    assert geo.geo3_compose_and_identity(ctx).status == "failed"


def test_geo3_fails_on_wrong_identity(ctx, monkeypatch):
    monkeypatch.setattr(g, "offsets_to_matrix",
                        lambda o: o.view(-1, 2, 3) + torch.tensor([[1.0, 0, 0.01], [0, 1.0, 0]],
                                                                  dtype=o.dtype))
    assert geo.geo3_compose_and_identity(ctx).status == "failed"
