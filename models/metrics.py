"""Metrics of the MNIST STN suite: error, final-pose spread, Fig. 6 slope, determinant.

Pose metrics follow 000 App. A.2 with the "Note on the predicted transformation matrix".

Convention:
    * ``theta`` is the ST's ``input_from_output`` matrix ``(N, 2, 3)`` in normalized
      coordinates with ``align_corners=True`` (see :mod:`models.stn`). The image itself is
      transformed by ``theta^{-1}``, so the ST's *compensation* has the opposite sign of
      what one reads off ``theta``.
    * Perturbations come from :class:`models.data.perturb.PerturbedBatch`: ``angle`` in
      radians with the sign convention of :mod:`sampling.geometry` (the perturbed image is
      ``f(R(angle)^{-1} x)``), ``translation`` ``(x, y)`` in pixels (digit centre minus
      canvas centre), ``scale`` the linear scale factor applied to the digit.
    * Final pose (perturbation + compensation, 0 for a perfect ST up to a per-label constant):

      - (R) rotation, degrees: ``angle - phi`` where ``phi = atan2(a21 - a12, a11 + a22)``
        is the least-squares rotation of ``theta`` (eqs. 12-14,
        :func:`sampling.geometry.similarity_fit`);
      - (T) translation, pixels: ``translation - m * (a13, a23)`` with ``m`` the pixels per
        normalized unit of the warped tensor, measured in input pixels (29.5 for the 60 px
        input, 25 for STN-C1's 26 px feature map; eq. 16 reduces to ``m * a_t`` because
        ``theta`` is already the inverse of the image transformation);
      - (S) scale, log2: ``log2(scale^2) - log2(det theta)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sampling.checks import check_choice, check_shape
from sampling.geometry import determinant, similarity_fit

__all__ = [
    "classification_error",
    "final_pose",
    "pose_std_per_label",
    "orthogonal_regression_slope",
    "mean_determinant",
    "theta_in_input_frame",
    "PoseSpread",
    "DEG",
]

DEG = 180.0 / math.pi


def classification_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of wrong argmax predictions; ``logits (N, K)``, ``labels (N,)``."""
    fn = "classification_error"
    dims = check_shape(logits, "N K", name="logits", fn=fn)
    check_shape(labels, "N", name="labels", fn=fn, dims=dims)
    return float((logits.argmax(1) != labels).float().mean())


def theta_in_input_frame(theta: torch.Tensor, feature_half_width: float,
                         input_half_width: float) -> torch.Tensor:
    """Express a feature-map ``theta`` in the input's normalized frame (for STN-CX).

    The warped feature map and the input share their centre; one normalized unit is
    ``feature_half_width`` input pixels on the feature map and ``input_half_width`` on the
    input. Conjugating by ``diag(r, r)``, ``r = feature_half_width / input_half_width``,
    leaves the linear part unchanged and multiplies the translation by ``r`` (000 App. A.2:
    ``25 / 29.5`` for STN-C1 on (T)).

    Args:
        theta: ``(N, 2, 3)``.
        feature_half_width, input_half_width: pixels per normalized unit (input pixels).

    Returns:
        ``(N, 2, 3)``.
    """
    check_shape(theta, "N 2 3", name="theta", fn="theta_in_input_frame")
    r = feature_half_width / input_half_width
    out = theta.clone()
    out[:, :, 2] = theta[:, :, 2] * r
    return out


def final_pose(variant: str, theta: torch.Tensor, *, angle=None, translation=None, scale=None,
               m: float | None = None) -> torch.Tensor:
    """Per-image final pose after the ST (see the module docstring for the formulas).

    Args:
        variant: ``"R"``, ``"T"`` or ``"S"``.
        theta: ``(N, 2, 3)`` ``input_from_output`` matrices.
        angle: ``(N,)`` radians (R).
        translation: ``(N, 2)`` pixels (T).
        scale: ``(N,)`` linear scale factor (S).
        m: pixels per normalized unit of the warped tensor (T).

    Returns:
        ``(N,)`` degrees (R), ``(N, 2)`` pixels (T) or ``(N,)`` log2 units (S).
    """
    fn = "final_pose"
    check_choice(variant, ("R", "T", "S"), name="variant", fn=fn)
    dims = check_shape(theta, "N 2 3", name="theta", fn=fn)
    theta = theta.double()
    if variant == "R":
        check_shape(angle, "N", name="angle", fn=fn, dims=dims)
        _, phi = similarity_fit(theta)
        return (angle.double() - phi) * DEG
    if variant == "T":
        check_shape(translation, "N 2", name="translation", fn=fn, dims=dims)
        if m is None or not m > 0:
            raise ValueError(f"{fn}: expected m > 0 (pixels per normalized unit), got {m!r}")
        return translation.double() - m * theta[:, :, 2]
    check_shape(scale, "N", name="scale", fn=fn, dims=dims)
    det = determinant(theta)
    if bool((det <= 0).any()):
        bad = int((det <= 0).sum())
        raise ValueError(f"{fn}: expected theta with det > 0 for log2 det, got {bad} with det <= 0")
    return torch.log2(scale.double() ** 2) - torch.log2(det)


@dataclass(frozen=True)
class PoseSpread:
    """Spread of the final pose, per label and averaged over labels."""

    mean: float
    per_label: dict[int, float]


def pose_std_per_label(final: torch.Tensor, labels: torch.Tensor) -> PoseSpread:
    """Standard deviation of the final pose for each label, then the mean over labels.

    ``final (N,)``: population standard deviation (ddof = 0). ``final (N, 2)``: standard
    distance deviation ``sqrt(mean_i ||p_i - mean(p)||^2)`` (000 App. A.2, (T)).
    Labels with fewer than 2 images are skipped.
    """
    fn = "pose_std_per_label"
    if not isinstance(final, torch.Tensor) or final.dim() not in (1, 2):
        raise ValueError(f"{fn}: expected final of shape (N,) or (N, 2), got "
                         f"{tuple(final.shape) if isinstance(final, torch.Tensor) else final!r}")
    check_shape(labels, "N", name="labels", fn=fn, dims={"N": final.shape[0]})
    f = final.double().reshape(final.shape[0], -1)  # (N, D)
    per = {}
    for lab in torch.unique(labels).tolist():
        sel = f[labels == lab]
        if sel.shape[0] < 2:
            continue
        per[int(lab)] = float(((sel - sel.mean(0)) ** 2).sum(1).mean().sqrt())
    if not per:
        raise ValueError(f"{fn}: expected at least one label with 2 or more images, got none")
    return PoseSpread(sum(per.values()) / len(per), per)


def orthogonal_regression_slope(x: torch.Tensor, y: torch.Tensor) -> float:
    """Slope of the total-least-squares line through ``(x, y)`` (000 Fig. 6, red line).

    The principal direction of the centred point cloud; ``inf`` for a vertical line.
    """
    fn = "orthogonal_regression_slope"
    dims = check_shape(x, "N", name="x", fn=fn)
    check_shape(y, "N", name="y", fn=fn, dims=dims)
    if dims["N"] < 2:
        raise ValueError(f"{fn}: expected at least 2 points, got {dims['N']}")
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    sxx, syy, sxy = float((x * x).mean()), float((y * y).mean()), float((x * y).mean())
    # Principal eigenvector of [[sxx, sxy], [sxy, syy]]: slope = (syy - sxx + sqrt(.)) / (2 sxy).
    if sxy == 0.0:
        return 0.0 if sxx >= syy else math.inf
    return (syy - sxx + math.sqrt((syy - sxx) ** 2 + 4 * sxy * sxy)) / (2 * sxy)


def mean_determinant(theta: torch.Tensor) -> float:
    """Mean ``det`` of the linear part of ``theta (N, 2, 3)`` (000: 0.74 for STN-C1)."""
    check_shape(theta, "N 2 3", name="theta", fn="mean_determinant")
    return float(determinant(theta.double()).mean())
