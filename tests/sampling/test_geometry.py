"""Properties of the affine geometry core (sampling/geometry.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from sampling import geometry as g
from sampling.checks import ShapeError
from tests.tolerances import tol

seeds = st.integers(0, 2**31 - 1)
batch = st.integers(1, 6)


def random_params(seed: int, n: int, dtype=torch.float64, *, max_log_scale=1.0, max_shear=1.0):
    gen = torch.Generator().manual_seed(seed)
    angle = (torch.rand(n, generator=gen, dtype=dtype) * 2 - 1) * math.pi * 0.999
    log_scale = (torch.rand(n, 2, generator=gen, dtype=dtype) * 2 - 1) * max_log_scale
    shear = (torch.rand(n, generator=gen, dtype=dtype) * 2 - 1) * max_shear
    translation = torch.randn(n, 2, generator=gen, dtype=dtype)
    return angle, log_scale, shear, translation


def random_affine(seed: int, n: int, dtype=torch.float64) -> torch.Tensor:
    return g.params_to_matrix(*random_params(seed, n, dtype))


# --------------------------------------------------------------------------- round trips

@given(seed=seeds, n=batch)
def test_params_matrix_round_trip(seed, n):
    angle, log_scale, shear, translation = random_params(seed, n)
    p = g.matrix_to_params(g.params_to_matrix(angle, log_scale, shear, translation))
    torch.testing.assert_close(p.angle, angle, **tol(torch.float64, 1e3))
    torch.testing.assert_close(p.log_scale, log_scale, **tol(torch.float64, 1e3))
    torch.testing.assert_close(p.shear, shear, **tol(torch.float64, 1e3))
    torch.testing.assert_close(p.translation, translation)


@given(seed=seeds, n=batch)
def test_matrix_params_round_trip(seed, n):
    m = random_affine(seed, n)
    torch.testing.assert_close(g.matrix_to_params(m).matrix(), m, **tol(torch.float64, 1e3))


def test_params_composition_order_is_rotation_shear_scale():
    m = g.params_to_matrix(torch.tensor([math.pi / 2]), torch.tensor([[math.log(2.0), 0.0]]),
                           torch.tensor([0.5]), torch.tensor([[1.0, -1.0]]))
    # R(90) @ H(0.5) @ diag(2, 1) = [[0, -1], [1, 0]] @ [[2, 0.5], [0, 1]] = [[0, -1], [2, 0.5]]
    expected = torch.tensor([[[0.0, -1.0, 1.0], [2.0, 0.5, -1.0]]])
    torch.testing.assert_close(m, expected, atol=1e-6, rtol=0)


def test_isotropic_log_scale_equals_equal_axes():
    a = torch.tensor([0.3, -1.0])
    iso = g.params_to_matrix(a, torch.tensor([0.2, -0.4]))
    aniso = g.params_to_matrix(a, torch.tensor([[0.2, 0.2], [-0.4, -0.4]]))
    torch.testing.assert_close(iso, aniso)


@given(seed=seeds, n=batch)
def test_compose_with_inverse_is_identity(seed, n):
    m = random_affine(seed, n)
    eye = g.identity(n, dtype=torch.float64)
    torch.testing.assert_close(g.compose(m, g.invert(m)), eye, **tol(torch.float64, 1e4))
    torch.testing.assert_close(g.compose(g.invert(m), m), eye, **tol(torch.float64, 1e4))


@given(seed=seeds, n=batch)
def test_compose_matches_homogeneous_product_and_is_associative(seed, n):
    a, b, c = (random_affine(seed + k, n) for k in range(3))
    h = g.to_homogeneous(a) @ g.to_homogeneous(b)
    torch.testing.assert_close(g.compose(a, b), g.from_homogeneous(h))
    torch.testing.assert_close(g.compose(g.compose(a, b), c), g.compose(a, g.compose(b, c)),
                               **tol(torch.float64, 1e3))


@given(seed=seeds, n=batch)
def test_compose_acts_b_first(seed, n):
    a, b = random_affine(seed, n), random_affine(seed + 1, n)
    x = torch.randn(n, 2, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))

    def apply(m, p):
        return m[:, :, :2] @ p + m[:, :, 2:]

    torch.testing.assert_close(apply(g.compose(a, b), x), apply(a, apply(b, x)))


def test_invert_matches_linalg_inv(dtype):
    m = random_affine(7, 5, dtype)
    ref = torch.linalg.inv(g.to_homogeneous(m))[:, :2, :]
    torch.testing.assert_close(g.invert(m), ref, **tol(dtype, 100))


def test_invert_is_differentiable():
    m = random_affine(3, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(g.invert, (m,))


def test_params_to_matrix_is_differentiable():
    args = [t.requires_grad_(True) for t in random_params(5, 3)]
    assert torch.autograd.gradcheck(g.params_to_matrix, tuple(args))


# --------------------------------------------------------------------------- eq. 17

def test_offsets_identity_initialization():
    o = torch.zeros(4, 6)
    torch.testing.assert_close(g.offsets_to_matrix(o), g.identity(4))
    m = random_affine(1, 3)
    torch.testing.assert_close(g.offsets_to_matrix(g.matrix_to_offsets(m)), m)


# --------------------------------------------------------------------------- pixel frames

@pytest.mark.parametrize("align_corners", [True, False])
@given(seed=seeds, h=st.integers(2, 64), w=st.integers(2, 64))
def test_pixel_normalized_round_trip(align_corners, seed, h, w):
    xy = torch.rand(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    pix = g.normalized_to_pixel(xy, (h, w), align_corners=align_corners)
    back = g.pixel_to_normalized(pix, (h, w), align_corners=align_corners)
    torch.testing.assert_close(back, xy)


@pytest.mark.parametrize("align_corners", [True, False])
def test_pixel_conventions_match_grid_sample(align_corners):
    """A ramp image f(px, py) = px + 100 py sampled at normalized points returns their pixel coords."""
    h, w = 7, 11
    py, px = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = (px + 100 * py)[None, None]
    gen = torch.Generator().manual_seed(0)
    # keep points inside the region where bilinear interpolation of a ramp is exact
    pix = torch.stack([torch.rand(20, generator=gen, dtype=torch.float64) * (w - 1),
                       torch.rand(20, generator=gen, dtype=torch.float64) * (h - 1)], -1)
    grid = g.pixel_to_normalized(pix, (h, w), align_corners=align_corners)
    out = F.grid_sample(ramp, grid[None, None], align_corners=align_corners).flatten()
    torch.testing.assert_close(out, pix[:, 0] + 100 * pix[:, 1])


def test_pixel_units_geo2_numbers():
    assert g.pixel_units(60, align_corners=True) == 29.5
    assert g.pixel_units(60, align_corners=False) == 30.0
    assert 2 * g.pixel_units(26, align_corners=True) == 25.0


@pytest.mark.parametrize("align_corners", [True, False])
def test_normalized_matrix_to_pixel_maps_pixels(align_corners):
    m = random_affine(11, 2)
    in_size, out_size = (9, 13), (5, 7)
    mp = g.normalized_matrix_to_pixel(m, in_size, out_size, align_corners=align_corners)
    uv = torch.rand(2, 6, 2, dtype=torch.float64) * 4
    via_norm = g.normalized_to_pixel(
        (m[:, None, :, :2] @ g.pixel_to_normalized(uv, out_size, align_corners=align_corners)
         [..., None]).squeeze(-1) + m[:, None, :, 2],
        in_size, align_corners=align_corners)
    direct = (mp[:, None, :, :2] @ uv[..., None]).squeeze(-1) + mp[:, None, :, 2]
    torch.testing.assert_close(direct, via_norm)


# --------------------------------------------------------------------------- App. A.2

@given(seed=seeds, n=batch)
def test_similarity_fit_recovers_similarity(seed, n):
    gen = torch.Generator().manual_seed(seed)
    angle = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi * 0.999
    log_s = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * 2
    m = g.params_to_matrix(angle, log_s, 0.0, torch.randn(n, 2, generator=gen, dtype=torch.float64))
    scale, phi = g.similarity_fit(m)
    torch.testing.assert_close(scale, log_s.exp())
    torch.testing.assert_close(phi, angle, **tol(torch.float64, 1e3))


@given(seed=seeds)
@example(seed=0)
def test_similarity_fit_is_least_squares_optimum(seed):
    """No similarity nearby fits a general matrix better (eq. 10)."""
    m = random_affine(seed, 1)
    s, phi = g.similarity_fit(m)

    def resid(s_, p_):
        r = s_ * g.rotation_matrix(p_)
        return ((m[:, :, :2] - r) ** 2).sum()

    best = resid(s, phi)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(20):
        ds, dp = torch.randn(2, generator=gen, dtype=torch.float64) * 1e-3
        assert resid(s + ds, phi + dp) >= best - 1e-15


def test_similarity_fit_eq12_closed_form():
    m = random_affine(2, 4)
    a11, a12, a21, a22 = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    s12 = 0.5 * torch.sqrt(a11**2 + a12**2 + a21**2 + a22**2 + 2 * (a11 * a22 - a12 * a21))
    s, _ = g.similarity_fit(m)
    torch.testing.assert_close(s, s12)


# --------------------------------------------------------------------------- scalars


def test_params_to_matrix_accepts_python_scalars_as_one_transform():
    """A scalar angle is one transform (N = 1); the result is the batched one, bit for bit
    (exact: the same operations on the same values)."""
    m = g.params_to_matrix(0.3, 0.0, 0.0, (1.0, 2.0))
    assert m.shape == (1, 2, 3)
    ref = g.params_to_matrix(torch.tensor([0.3]), torch.tensor([[0.0, 0.0]]), torch.tensor([0.0]),
                             torch.tensor([[1.0, 2.0]]))
    assert torch.equal(m, ref)
    assert torch.equal(g.params_to_matrix(torch.tensor(0.3), 0.0, 0.0, (1.0, 2.0)), ref)  # 0-d
    aniso = g.params_to_matrix(0.3, (0.1, -0.2))  # one (log sx, log sy) pair
    assert torch.equal(aniso, g.params_to_matrix(torch.tensor([0.3]),
                                                 torch.tensor([[0.1, -0.2]])))


def test_params_to_matrix_broadcasts_scalars_and_one_pair_over_a_batch():
    angle = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    full = g.params_to_matrix(angle, torch.full((3,), 0.2, dtype=torch.float64),
                              torch.full((3,), 0.1, dtype=torch.float64),
                              torch.tensor([[1.0, 2.0]] * 3, dtype=torch.float64))
    assert torch.equal(g.params_to_matrix(angle, 0.2, 0.1, (1.0, 2.0)), full)
    assert g.params_to_matrix(angle, 0.2).dtype == torch.float64  # scalars follow angle
    # A 1-d log_scale of length N stays isotropic (batched behaviour unchanged), also N = 2.
    two = g.params_to_matrix(torch.zeros(2), torch.tensor([0.2, -0.4]))
    assert torch.equal(two[:, 0, 0], two[:, 1, 1]) and not torch.equal(two[0], two[1])
    with pytest.raises(ValueError, match=r"params_to_matrix: expected log_scale of shape "
                                         r"\(N\) with N=3.*got \(2\)"):
        g.params_to_matrix(angle, (0.1, 0.2))  # a pair needs a scalar angle (else ambiguous)


def test_rotation_matrix_accepts_a_python_float():
    assert torch.equal(g.rotation_matrix(0.5), g.rotation_matrix(torch.tensor([0.5]))[0])


# --------------------------------------------------------------------------- bad input

def test_bad_shapes_name_the_argument():
    with pytest.raises(ShapeError, match=r"invert: expected m of shape \(N, 2, 3\), got \(2, 3\)"):
        g.invert(torch.eye(2, 3))
    with pytest.raises(ShapeError, match="compose: .*b .*N=2"):
        g.compose(g.identity(2), g.identity(3))
    with pytest.raises(ValueError, match="offsets_to_matrix: expected o"):
        g.offsets_to_matrix(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="translation"):
        g.params_to_matrix(torch.zeros(3), torch.zeros(3), 0.0, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="xy"):
        g.normalized_to_pixel(torch.zeros(4, 3), (5, 5))
    with pytest.raises(ValueError, match="size"):
        g.normalized_to_pixel(torch.zeros(4, 2), (5, 0))


def test_non_finite_values_are_refused():
    m = g.identity(2)
    m[1, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="invert: expected finite values in m"):
        g.invert(m)
    with pytest.raises(ValueError, match="angle"):
        g.params_to_matrix(torch.tensor([float("inf")]), torch.zeros(1))


def test_singular_and_reflected_matrices_are_refused():
    sing = torch.tensor([[[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]])
    with pytest.raises(ValueError, match="invert: expected m with an invertible linear part"):
        g.invert(sing)
    refl = torch.tensor([[[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]])
    with pytest.raises(ValueError, match="matrix_to_params: expected m with a positive determinant"):
        g.matrix_to_params(refl)
    torch.testing.assert_close(g.invert(refl), refl)  # a reflection is invertible


def test_integer_matrices_are_refused():
    with pytest.raises(ValueError, match="floating-point"):
        g.invert(torch.zeros(1, 2, 3, dtype=torch.int64))


def test_invert_singularity_is_relative_to_the_matrix_scale():
    """diag(1, 0) is singular whatever its norm (a clear ValueError, not inf/NaN);
    0.03 I is well conditioned in float32 (|det| = 9e-4 is small only in absolute terms)."""
    with pytest.raises(ValueError, match=r"invert: expected m with an invertible linear part, "
                                         r"got a singular matrix \(det=0\) at index 1"):
        g.invert(torch.tensor([[[1.0, 0, 0], [0, 1, 0]], [[1.0, 0, 0], [0, 0, 0]]]))
    for scale in (0.03, 1e-6, 1e6):
        m = scale * torch.eye(2, 3, dtype=torch.float32)[None]
        torch.testing.assert_close(g.invert(m), torch.eye(2, 3)[None] / scale, **tol(torch.float32))
    # nearly singular relative to its scale: condition number ~1e9 > 1 / (64 eps_32)
    with pytest.raises(ValueError, match="singular"):
        g.invert(torch.tensor([[[1.0, 0, 0], [0, 1e-9, 0]]]))
    g.invert(torch.tensor([[[1.0, 0, 0], [0, 1e-9, 0]]], dtype=torch.float64))  # fine in f64
    # the scale is the whole linear part's: here its second column (cond ~1e10)
    with pytest.raises(ValueError, match="singular"):
        g.invert(torch.tensor([[[1e-5, 1.0, 0], [0, 1e-5, 0]]]))


def test_invert_known_value_with_translation():
    m = torch.tensor([[[2.0, 1.0, 3.0], [0.0, 4.0, -2.0]]], dtype=torch.float64)
    # inverse linear part [[1/2, -1/8], [0, 1/4]]; t' = -A^{-1} t = -(3/2 + 2/8, -2/4)
    want = torch.tensor([[[0.5, -0.125, -1.75], [0.0, 0.25, 0.5]]], dtype=torch.float64)
    torch.testing.assert_close(g.invert(m), want, **tol(torch.float64))


@pytest.mark.parametrize("call, match", [
    (lambda: g.pixel_units(0), r"pixel_units: expected width to be a positive int, got 0"),
    (lambda: g.pixel_units(2.5), r"pixel_units: expected width to be a positive int, got 2.5"),
    (lambda: g.normalized_to_pixel(torch.zeros(2), (5,)), r"normalized_to_pixel: expected size"),
    (lambda: g.normalized_to_pixel(torch.zeros(2), (5, 2.0)), r"expected size to be \(H, W\)"),
    (lambda: g.normalized_to_pixel(torch.zeros(2), 5), r"expected size to be \(H, W\)"),
    (lambda: g.normalized_to_pixel([0.0, 0.0], (5, 5)), r"expected xy of shape \(\.\.\., 2\), "
                                                         r"got list"),
    (lambda: g.normalized_to_pixel(torch.tensor(0.0), (5, 5)), r"got \(\)"),
    (lambda: g.pixel_to_normalized(torch.zeros(2), (1, 5), align_corners=True), "size >= 2"),
    (lambda: g.pixel_to_normalized(torch.zeros(2), (5, 1), align_corners=True), "size >= 2"),
])
def test_pixel_conversions_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pixel_conversions_accept_edge_sizes_and_known_values():
    """1-pixel axes work without align_corners; list sizes work; hand values."""
    out = g.pixel_to_normalized(torch.tensor([0.0, 0.0]), [1, 1])  # the single pixel's centre
    torch.testing.assert_close(out, torch.zeros(2))
    # (H, W) = (3, 5): x = 1 is pixel 4 (ac) / 4.5 (no ac); y = -1 is pixel 0 / -0.5
    p = g.normalized_to_pixel(torch.tensor([1.0, -1.0]), (3, 5), align_corners=True)
    torch.testing.assert_close(p, torch.tensor([4.0, 0.0]))
    p = g.normalized_to_pixel(torch.tensor([1.0, -1.0]), (3, 5))
    torch.testing.assert_close(p, torch.tensor([4.5, -0.5]))
    mat = g.pixel_from_normalized_matrix((3, 5), align_corners=True, dtype=torch.float64)
    torch.testing.assert_close(mat, torch.tensor([[2.0, 0, 2], [0, 1, 1], [0, 0, 1]],
                                                 dtype=torch.float64))
    mat = g.pixel_from_normalized_matrix((3, 5), dtype=torch.float64)
    torch.testing.assert_close(mat, torch.tensor([[2.5, 0, 2], [0, 1.5, 1], [0, 0, 1]],
                                                 dtype=torch.float64))


def test_affine_params_are_immutable():
    import dataclasses

    p = g.matrix_to_params(g.identity(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.angle = torch.zeros(1)


def test_python_scalars_take_the_dtype_of_angle():
    """Scalar shear/translation are made in angle's dtype (float64 here), not the default
    float32: 0.1 stays the float64 0.1."""
    z = torch.zeros(1, dtype=torch.float64)
    m = g.params_to_matrix(z, z, 0.0, 0.1)
    assert m.dtype == torch.float64 and float(m[0, 0, 2]) == 0.1 and float(m[0, 1, 2]) == 0.1


def test_defaults_are_the_documented_ones():
    """Defaults, called without the keyword (the tests above always pass it): shear and
    translation 0 in params_to_matrix, align_corners=False in the pixel conversions."""
    a = torch.tensor([0.3], dtype=torch.float64)
    ls = torch.tensor([0.2], dtype=torch.float64)
    torch.testing.assert_close(g.params_to_matrix(a, ls),
                               g.params_to_matrix(a, ls, shear=0.0, translation=0.0))
    want = torch.cat([math.exp(0.2) * g.rotation_matrix(a),
                      torch.zeros(1, 2, 1, dtype=torch.float64)], -1)
    torch.testing.assert_close(g.params_to_matrix(a, ls), want)
    assert g.pixel_units(60) == 30.0  # W / 2
    m = random_affine(3, 2)
    for f in (g.normalized_matrix_to_pixel, g.pixel_matrix_to_normalized):
        torch.testing.assert_close(f(m, (7, 9), (5, 6)), f(m, (7, 9), (5, 6),
                                                           align_corners=False))
        assert not torch.allclose(f(m, (7, 9), (5, 6)), f(m, (7, 9), (5, 6),
                                                          align_corners=True))


def test_pixel_matrix_to_normalized_inverts_and_checks_its_input():
    m = random_affine(4, 3)
    for ac in (False, True):
        px = g.normalized_matrix_to_pixel(m, (7, 9), (5, 6), align_corners=ac)
        torch.testing.assert_close(g.pixel_matrix_to_normalized(px, (7, 9), (5, 6),
                                                                align_corners=ac), m)
    with pytest.raises(ValueError, match=r"pixel_matrix_to_normalized: .*input_from_output_px"):
        g.pixel_matrix_to_normalized(torch.zeros(3, 3, 3), (7, 9), (5, 6))


def test_singular_threshold_is_64_eps_of_the_squared_norm():
    """_singular: |det| <= 64 eps ||A||_F^2, equality included (the threshold invert's
    docstring states, pinned)."""
    eps = torch.finfo(torch.float64).eps

    def diag(t):
        return torch.tensor([[[1.0, 0.0, 0.0], [0.0, t, 0.0]]], dtype=torch.float64)

    # ||A||_F^2 = 1 + t^2 rounds to 1 in float64 for t ~ 64 eps
    assert bool(g._singular(diag(64 * eps)))  # on the threshold: singular
    assert bool(g._singular(diag(63.5 * eps)))
    assert not bool(g._singular(diag(64.5 * eps)))


def test_geometry_degrees_are_degrees():
    assert g.DEG == pytest.approx(57.29577951308232, rel=1e-15)


def test_pixel_units_of_one_pixel():
    """Width 1 is a valid axis: W / 2 = 0.5, (W - 1) / 2 = 0 (the validity bound is >= 1)."""
    assert g.pixel_units(1) == 0.5
    assert g.pixel_units(1, align_corners=True) == 0.0
    with pytest.raises(ValueError, match="pixel_units: expected width to be a positive int"):
        g.pixel_units(0)


def test_similarity_fit_takes_linear_parts_too():
    """(N, 2, 2) linear parts give what their (N, 2, 3) affine maps give."""
    m = random_affine(5, 4)
    s3, a3 = g.similarity_fit(m)
    s2, a2 = g.similarity_fit(m[:, :, :2].contiguous())
    torch.testing.assert_close(s2, s3)
    torch.testing.assert_close(a2, a3)
    with pytest.raises(ValueError, match="similarity_fit"):
        g.similarity_fit(torch.full((1, 2, 2), float("nan")))


def test_singularity_ignores_the_translation():
    """A small but regular linear part with a huge translation inverts: only the linear
    part enters the scale-relative test (with the translation in the norm, 64 eps * 1e12
    would swamp det = 1e-6)."""
    m = torch.tensor([[[1e-3, 0.0, 1e6], [0.0, 1e-3, -1e6]]], dtype=torch.float64)
    assert not bool(g._singular(m))
    torch.testing.assert_close(g.compose(m, g.invert(m)), g.identity(1, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_integer_inputs_become_floating_point():
    """Integer tensors are cast: to the default dtype without a reference tensor, to the
    reference's dtype with one (log_scale follows angle)."""
    m = g.params_to_matrix(torch.tensor([0]), torch.tensor([0]))
    assert m.dtype == torch.get_default_dtype()
    torch.testing.assert_close(m, g.identity(1))
    m64 = g.params_to_matrix(torch.tensor([0.0], dtype=torch.float64), torch.tensor([0]))
    assert m64.dtype == torch.float64


def test_errors_name_the_first_bad_index():
    ok = g.params_to_matrix(torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64),
                            torch.tensor([-0.35, 0.0, 0.0], dtype=torch.float64))  # det 0.5
    refl = ok.clone()
    refl[1, 1, 1] = -0.25  # det -0.25: a reflection, not singular
    refl[2, 1, 1] = -1.0
    with pytest.raises(ValueError, match=r"matrix_to_params: .*det=-0.25 at index 1"):
        g.matrix_to_params(refl)
    with pytest.raises(ValueError, match=r"matrix_to_params: .*det=-0.25 at index 0"):
        g.matrix_to_params(refl[1:2])  # a mild reflection alone (det in (-1, 0))
    sing = ok.clone()
    sing[1, :, :2] = 0.0
    sing[2, :, :2] = 0.0
    with pytest.raises(ValueError, match=r"invert: .* at index 1"):
        g.invert(sing)


def test_from_homogeneous_round_trip_and_bad_last_row():
    m = random_affine(6, 3)
    h = g.to_homogeneous(m)
    torch.testing.assert_close(h[:, 2, :], torch.tensor([0.0, 0.0, 1.0],
                                                       dtype=m.dtype).expand(3, 3))
    torch.testing.assert_close(g.from_homogeneous(h), m)
    bad = h.clone()
    bad[1, 2, 0] = 0.5
    with pytest.raises(ValueError, match=r"from_homogeneous: expected h with last row"):
        g.from_homogeneous(bad)
