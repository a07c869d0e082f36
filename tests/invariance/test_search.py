"""invariance.search: the grid + refinement recovers T_h^{-1} on random CNNs; permutation mode."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import Phase, example, given, settings, strategies as st

from invariance.extractors import IsotropicBank, OrientedBank, random_cnn
from invariance.search import SearchSpace, search_alignment
from invariance.warps import transform
from sampling import geometry


def _images(n=2, size=48, seed=0):
    """Smooth random images (sum of Gaussian blobs), ``(n, 1, size, size)`` float64."""
    gen = torch.Generator().manual_seed(seed)
    ax = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    out = torch.zeros(n, 1, size, size, dtype=torch.float64)
    for i in range(n):
        for _ in range(12):
            c = torch.rand(2, generator=gen, dtype=torch.float64) * 1.4 - 0.7
            w = 0.05 + 0.15 * torch.rand(1, generator=gen, dtype=torch.float64)
            a = torch.rand(1, generator=gen, dtype=torch.float64) * 2 - 1
            out[i, 0] += a * torch.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2) / (2 * w**2))
    return out


def _tg(angle, log_scale, tx=0.0, ty=0.0):
    d = torch.float64
    return geometry.params_to_matrix(
        torch.tensor([angle], dtype=d),
        torch.tensor([log_scale], dtype=d),
        0.0,
        torch.tensor([[tx, ty]], dtype=d),
    )


SPACE = SearchSpace.affine(
    max_angle_deg=45,
    angle_step_deg=15,
    max_log_scale=0.45,
    log_scale_step=0.15,
    shears=(0.0,),
    refine=("angle", "log_scale", "tx", "ty"),
)
# Stated tolerance for random CNNs: their spatial-only minimiser is pulled off T_h^{-1} by
# channel shifts (random CNN features are not rotation covariant), towards identity and in
# proportion to the angle: up to 10.7° at 29° for seed 461909 below (37 %), 0.047 in
# log-scale and 0.8 px over 31 draws. Hence angle within 2° + 40 % of |angle|.
TOL_ANGLE_DEG, TOL_ANGLE_REL, TOL_LOG_SCALE, TOL_T_PX = 2.0, 0.4, 0.075, 2.0


@settings(max_examples=6, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@example(seed=461909, angle=29.0, log_scale=-0.0913, tx=0.0008, ty=-0.05, depth=2)
@given(
    seed=st.integers(0, 2**31 - 1),
    angle=st.floats(-30, 30),
    log_scale=st.floats(-0.3, 0.3),
    tx=st.floats(-0.05, 0.05),
    ty=st.floats(-0.05, 0.05),
    depth=st.integers(1, 3),
)
def test_search_recovers_T_h_inverse_on_random_cnns(seed, angle, log_scale, tx, ty, depth):
    net = random_cnn(depth, 6, seed=seed, dtype=torch.float64)
    f = _images(2, 48, seed)
    tg_true = _tg(math.radians(angle), log_scale, tx, ty)
    moved = net(transform(f, geometry.invert(tg_true)))
    res = search_alignment(moved, net(f), SPACE, refine_iters=30)
    assert abs(math.degrees(res.params["angle"]) - angle) <= TOL_ANGLE_DEG + TOL_ANGLE_REL * abs(
        angle
    )
    assert abs(res.params["log_scale"] - log_scale) <= TOL_LOG_SCALE
    assert max(abs(res.params["tx"] - tx), abs(res.params["ty"] - ty)) * 48 / 2 <= TOL_T_PX


def test_search_exact_on_isotropic_bank():
    bank = IsotropicBank((1.5,), dtype=torch.float64)
    f = _images(2, 48, 1)
    tg_true = _tg(math.radians(20), 0.2, 0.03, -0.02)
    res = search_alignment(bank(transform(f, geometry.invert(tg_true))), bank(f), SPACE)
    assert abs(math.degrees(res.params["angle"]) - 20) <= 1.0
    assert abs(res.params["log_scale"] - 0.2) <= 0.02
    assert res.error < res.coarse_error + 1e-12  # refinement never makes it worse


def test_translation_search_exact_on_grid():
    net = random_cnn(2, 4, seed=0, dtype=torch.float64)
    f = _images(2, 32, 2)
    step = 2 / 32
    t = (3 * step, -2 * step)
    moved = net(transform(f, _tg(0.0, 0.0, *t)))
    grid = tuple(k * step for k in range(-4, 5))
    res = search_alignment(moved, net(f), SearchSpace(tx=grid, ty=grid, refine=()))
    assert res.error <= 1e-10
    assert res.params["tx"] == pytest.approx(-t[0]) and res.params["ty"] == pytest.approx(-t[1])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_permutation_mode_recovers_rotation_and_shift(k):
    bank = OrientedBank((1.0,), dtype=torch.float64)
    f = _images(2, 32, 3)
    th = _tg(k * math.pi / 2, 0.0)
    space = SearchSpace(angles=[math.radians(a) for a in range(-180, 180, 30)], refine=())
    res = search_alignment(
        bank(transform(f, th)), bank(f), space, mode="permutation", landscape_modes=("spatial",)
    )
    found = round(math.degrees(res.params["angle"])) % 360
    assert found == (-90 * k) % 360
    assert res.error < 1e-9
    # transform by +k·90° in the (x, y) frame is rot90 by -k on screen (y down)
    assert torch.equal(res.permutation, bank.orientation_shift(-k % 4))
    assert res.landscape["error_spatial"].min() > 0.3


def test_search_rejects_bad_input():
    x = torch.rand(1, 2, 8, 8)
    with pytest.raises(ValueError, match="mode"):
        search_alignment(x, x, mode="best")
    with pytest.raises(ValueError, match="refine"):
        SearchSpace(refine=("zoom",))
    with pytest.raises(ValueError, match="transformed"):
        search_alignment(torch.rand(1, 3, 8, 8), x)
