"""Pose metrics (000 App. A.2): a perfect ST gives final pose 0, known spreads come back."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from models.data.perturb import perturb
from models.metrics import (DEG, classification_error, final_pose, mean_determinant,
                            orthogonal_regression_slope, pose_std_per_label,
                            theta_in_input_frame)
from sampling.warp import affine_grid
from sampling.geometry import params_to_matrix, rotation_matrix


def _batch(seed, n=32):
    g = torch.Generator().manual_seed(seed)
    angle = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * math.pi
    scale = torch.exp((torch.rand(n, generator=g, dtype=torch.float64) * 3 - 1) * math.log(2))
    trans = torch.randint(-16, 17, (n, 2), generator=g).double()
    return angle, scale, trans


@given(seed=st.integers(0, 2**31 - 1), residual=st.floats(-0.5, 0.5))
def test_pose_recovers_known_rotation(seed, residual):
    angle, _, _ = _batch(seed)
    # An ST that undoes the rotation up to a constant residual: theta = R(angle - residual).
    theta = torch.cat([rotation_matrix(angle - residual), torch.zeros(32, 2, 1,
                                                                      dtype=torch.float64)], -1)
    final = final_pose("R", theta, angle=angle)
    torch.testing.assert_close(final, torch.full_like(final, residual * DEG))
    # No ST (identity): the final pose is the perturbation itself.
    eye = torch.eye(2, 3, dtype=torch.float64).expand(32, 2, 3)
    torch.testing.assert_close(final_pose("R", eye, angle=angle), angle * DEG)


@given(seed=st.integers(0, 2**31 - 1), m=st.sampled_from([29.5, 25.0]))
def test_pose_recovers_known_translation_and_scale(seed, m):
    _, scale, trans = _batch(seed)
    theta = params_to_matrix(torch.zeros(32, dtype=torch.float64),
                             torch.log(scale), 0.0, trans / m)
    torch.testing.assert_close(final_pose("T", theta, translation=trans, m=m),
                               torch.zeros(32, 2, dtype=torch.float64))
    torch.testing.assert_close(final_pose("S", theta, scale=scale),
                               torch.zeros(32, dtype=torch.float64))
    # the sign matters: a transform in the wrong direction doubles the pose instead
    wrong = theta.clone()
    wrong[:, :, 2] *= -1
    torch.testing.assert_close(final_pose("T", wrong, translation=trans, m=m), 2 * trans)


def _digit():
    x = torch.zeros(1, 28, 28)
    x[0, 6:22, 12:15] = 1.0  # a vertical bar, off centre so that signs show
    x[0, 6:9, 15:20] = 1.0
    return x


def test_sign_conventions_on_rendered_digits():
    """The theta that the metrics call perfect really undoes the data's perturbation."""
    g = torch.Generator().manual_seed(3)
    digit = _digit()

    def rotate_back(images, a):
        theta = torch.cat([rotation_matrix(a), torch.zeros(4, 2, 1)], -1)
        return F.grid_sample(images, affine_grid(theta, (28, 28), align_corners=True), align_corners=True)

    # (R): rotate back with theta = R(angle) (input_from_output); R(-angle) rotates further.
    b = perturb("R", digit.expand(4, -1, -1), torch.arange(4), generator=g, normalize=False)
    err_back = (rotate_back(b.images, b.angle) - digit).abs().mean()
    err_wrong = (rotate_back(b.images, -b.angle) - digit).abs().mean()
    assert err_back < 0.5 * err_wrong
    theta = torch.cat([rotation_matrix(b.angle), torch.zeros(4, 2, 1)], -1)
    assert torch.allclose(final_pose("R", theta.double(), angle=b.angle.double()),
                          torch.zeros(4, dtype=torch.float64), atol=1e-4)  # float32 theta
    # (T): translate back with theta = [I | translation / 29.5]: the ink returns to the centre.
    bt = perturb("T", digit.expand(4, -1, -1), torch.arange(4), generator=g, n_clutter=0,
                 normalize=False)
    theta_t = torch.cat([torch.eye(2).expand(4, 2, 2), (bt.translation / 29.5)[:, :, None]], -1)
    centred = F.grid_sample(bt.images, affine_grid(theta_t, (60, 60), align_corners=True), align_corners=True)
    ys, xs = torch.meshgrid(torch.arange(60.0), torch.arange(60.0), indexing="ij")
    mass = centred[:, 0].sum((1, 2))
    com = torch.stack([(centred[:, 0] * xs).sum((1, 2)), (centred[:, 0] * ys).sum((1, 2))],
                      -1) / mass[:, None]
    com_digit = torch.tensor([(digit[0] * torch.arange(28.0)).sum() / digit.sum(),
                              (digit[0] * torch.arange(28.0)[:, None]).sum() / digit.sum()])
    torch.testing.assert_close(com, (com_digit + 16).expand(4, 2), atol=0.05, rtol=0)
    assert torch.allclose(final_pose("T", theta_t.double(), translation=bt.translation.double(),
                                     m=29.5), torch.zeros(4, 2, dtype=torch.float64), atol=1e-4)


def test_pose_std_per_label_known_values_and_failure():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    final = torch.tensor([1.0, -1.0, 1.0, -1.0, 5.0, 5.0, 5.0, 5.0])
    sp = pose_std_per_label(final, labels)
    assert sp.per_label == {0: 1.0, 1: 0.0} and sp.mean == 0.5
    # Standard distance deviation: points on a circle of radius r about any centre -> r.
    t = torch.linspace(0, 2 * math.pi, 9)[:-1]
    pts = torch.stack([3 + 2 * torch.cos(t), -1 + 2 * torch.sin(t)], -1)
    assert pose_std_per_label(pts, torch.zeros(8, dtype=torch.long)).mean == pytest.approx(2.0)
    # The per-label split matters: pooling both labels would see the offset between them.
    pooled = pose_std_per_label(final, torch.zeros(8, dtype=torch.long)).mean
    assert pooled > sp.mean


@given(a=st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3), seed=st.integers(0, 1000))
def test_orthogonal_regression_slope_recovers_lines(a, seed):
    x = torch.randn(50, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert orthogonal_regression_slope(x, a * x + 3) == pytest.approx(a, rel=1e-9)


def test_orthogonal_regression_slope_is_symmetric_unlike_least_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=g, dtype=torch.float64)
    y = x + 0.5 * torch.randn(4000, generator=g, dtype=torch.float64)
    s = orthogonal_regression_slope(x, y)
    assert s == pytest.approx(1 / orthogonal_regression_slope(y, x), rel=1e-9)
    assert orthogonal_regression_slope(x, torch.zeros_like(x)) == 0.0
    assert orthogonal_regression_slope(torch.zeros_like(x), x) == math.inf


def test_frame_conversion_and_determinant():
    theta = torch.tensor([[[0.5, 0.1, 0.59], [0.0, 0.8, -0.295]]], dtype=torch.float64)
    conv = theta_in_input_frame(theta, 25.0, 29.5)
    torch.testing.assert_close(conv[:, :, :2], theta[:, :, :2])
    torch.testing.assert_close(conv[:, :, 2], theta[:, :, 2] * 25 / 29.5)
    assert mean_determinant(theta) == pytest.approx(0.4)


def test_classification_error():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert classification_error(logits, torch.tensor([0, 1, 1])) == pytest.approx(1 / 3)


@pytest.mark.parametrize("call, match", [
    (lambda: final_pose("Q", torch.zeros(2, 2, 3)), "variant"),
    (lambda: final_pose("T", torch.eye(2, 3)[None], translation=torch.zeros(1, 2)), "m"),
    (lambda: final_pose("S", torch.zeros(1, 2, 3), scale=torch.ones(1)),
     r"final_pose: expected theta with det > 0 for log2 det, got 1 with det <= 0"),
    # one det 0 and one det 1/4: only the first is counted
    (lambda: final_pose("S", torch.stack([torch.zeros(2, 3), 0.5 * torch.eye(2, 3)]),
                        scale=torch.ones(2)),
     r"final_pose: expected theta with det > 0 for log2 det, got 1 with det <= 0"),
    (lambda: final_pose("R", torch.zeros(2, 3)), "theta"),
    (lambda: pose_std_per_label(torch.zeros(3, 2, 2), torch.arange(3)),
     r"pose_std_per_label: expected final of shape \(N,\) or \(N, 2\), got \(3, 2, 2\)"),
    (lambda: pose_std_per_label([0.0, 1.0], torch.arange(2)),
     r"pose_std_per_label: expected final of shape \(N,\) or \(N, 2\), got \[0.0, 1.0\]"),
    (lambda: pose_std_per_label(torch.zeros(3), torch.arange(3)), "at least one label"),
    (lambda: orthogonal_regression_slope(torch.zeros(1), torch.zeros(1)), "2 points"),
])
def test_bad_inputs_have_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pose_std_skips_single_image_labels_and_counts_pairs():
    """Labels with one image are skipped, labels with two count (ddof = 0: half the gap)."""
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    final = torch.tensor([1.0, 3.0, 100.0, 0.0, 0.0, 3.0])
    sp = pose_std_per_label(final, labels)
    assert set(sp.per_label) == {0, 2}
    assert sp.per_label[0] == pytest.approx(1.0)
    assert sp.per_label[2] == pytest.approx(math.sqrt(2.0))  # mean 1: (1 + 1 + 4) / 3 = 2
    assert sp.mean == pytest.approx((1.0 + math.sqrt(2.0)) / 2)
    # (N, 2): the standard distance deviation of (0, 0), (2, 0), (0, 2), (2, 2) is sqrt(2)
    pts = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert pose_std_per_label(pts, torch.zeros(4, dtype=torch.long)).mean == pytest.approx(
        math.sqrt(2.0))


def test_orthogonal_regression_slope_isotropic_and_negative():
    """sxy = 0 with sxx = syy (an isotropic cross): the horizontal line (0, not inf);
    a negative correlation gives a negative slope."""
    x = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)
    y = torch.tensor([0.0, 0.0, 1.0, -1.0], dtype=torch.float64)
    assert orthogonal_regression_slope(x, y) == 0.0
    # points exactly on y = -2 x + 1: slope -2
    t = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    assert orthogonal_regression_slope(t, -2 * t + 1) == pytest.approx(-2.0, rel=1e-12)


def test_final_pose_translation_and_scale_known_values():
    theta = torch.tensor([[[2.0, 0.0, 0.1], [0.0, 2.0, -0.2]]], dtype=torch.float64)
    t = final_pose("T", theta, translation=torch.tensor([[3.0, -5.0]]), m=10.0)
    torch.testing.assert_close(t, torch.tensor([[2.0, -3.0]], dtype=torch.float64))
    s = final_pose("S", theta, scale=torch.tensor([2.0]))  # log2(4) - log2(det 4) = 0
    torch.testing.assert_close(s, torch.zeros(1, dtype=torch.float64))
    s = final_pose("S", theta, scale=torch.tensor([4.0]))  # log2(16) - log2(4) = 2
    torch.testing.assert_close(s, torch.tensor([2.0], dtype=torch.float64))
    # det in (0, 1) (an ST that zooms in) is a valid pose, not an error: log2(1/4) - log2(1/4)
    small = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(final_pose("S", small, scale=torch.tensor([0.5])),
                               torch.zeros(1, dtype=torch.float64))
    # m in (0, 1): a valid (if coarse) unit, not an error
    t = final_pose("T", theta, translation=torch.tensor([[3.0, -5.0]]), m=0.5)
    torch.testing.assert_close(t, torch.tensor([[2.95, -4.9]], dtype=torch.float64))
    for bad_m in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"final_pose: expected m > 0"):
            final_pose("T", theta, translation=torch.zeros(1, 2), m=bad_m)


def test_orthogonal_regression_slope_two_points():
    """Two points are enough: the line through them."""
    x, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0])
    assert orthogonal_regression_slope(x, y) == pytest.approx(0.5, rel=1e-12)


def test_degrees_are_degrees():
    """DEG against its value, not against itself: a 90-degree rotation left uncompensated
    is a final pose of 90 (the tests above compare with ``x * DEG`` and cannot see DEG)."""
    assert DEG == pytest.approx(57.29577951308232, rel=1e-15)
    eye = torch.eye(2, 3, dtype=torch.float64)[None]
    out = final_pose("R", eye, angle=torch.tensor([math.pi / 2], dtype=torch.float64))
    assert float(out) == pytest.approx(90.0, rel=1e-12)


def test_pose_spread_is_a_frozen_record():
    import dataclasses

    sp = pose_std_per_label(torch.tensor([0.0, 2.0]), torch.zeros(2, dtype=torch.long))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sp.mean = 0.0
