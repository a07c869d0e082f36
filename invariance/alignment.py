"""The alignment error of a feature extractor (000 Sec. II-B, eq. 4).

For a feature extractor ``Γ`` (any module mapping images ``(N, 1|3, H, W)`` to
feature maps ``(N, C, h, w)``), an image transform ``T_h`` and a spatial
transform ``T_g`` of the feature maps,

    E(T_g; Γ, T_h, f) = ‖T_g Γ(T_h f) − Γ f‖ / ‖Γ f‖,

measured over a central disk of the feature map where both sides are defined
(boundary effects of the warp and of zero padding excluded; the region is
reported). ``E = 0`` for every ``f`` is *feature map alignment* (eq. 4).

Convention:
    ``T_h`` and ``T_g`` are ``(N, 2, 3)`` (or ``(2, 3)``) maps in the normalized
    frame shared by images and feature maps (see :mod:`invariance.warps`);
    ``(T f)(x) = f(T^{-1} x)``, so ``T_g`` is applied by sampling with
    ``input_from_output = T_g^{-1}``. Errors are computed in the dtype of the
    images.

Modes (strongest last):
    * ``"spatial"``: ``T_g Γ(T_h f)`` as is (what a spatial transformer does);
    * ``"permutation"``: then the best channel permutation (one for the batch);
    * ``"mix"``: then the best linear channel mix ``M`` (one ``C × C`` for the batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sampling.checks import check_choice, check_shape

from . import channels as ch
from .warps import central_mask, region_info, transform

__all__ = [
    "MODES",
    "AlignmentError",
    "relative_error",
    "align_channels",
    "alignment_error",
    "as_extractor_input",
    "feature_alignment_error",
]

MODES = ("spatial", "permutation", "mix")


@dataclass
class AlignmentError:
    """Result of an alignment-error measurement.

    Attributes:
        total: relative error over the batch, all channels, the region (float).
        per_channel: ``(C,)`` relative error of each channel (``‖a_c − b_c‖ / ‖b_c‖``;
            ``nan`` where the reference channel is zero in the region).
        per_image: ``(N,)`` relative error of each image.
        region: the region description (:func:`invariance.warps.region_info`).
        mode: ``"spatial"``, ``"permutation"`` or ``"mix"``.
        permutation: ``(C,)`` found permutation (mode ``"permutation"``), else None.
        mix: ``(C, C)`` found mix (mode ``"mix"``), else None.
        aligned: ``(N, C, h, w)`` the aligned feature maps.
    """

    total: float
    per_channel: torch.Tensor
    per_image: torch.Tensor
    region: dict
    mode: str = "spatial"
    permutation: torch.Tensor | None = None
    mix: torch.Tensor | None = None
    aligned: torch.Tensor | None = field(default=None, repr=False)


def check_feature_pair(reference, transformed, mode: str, *, fn: str) -> dict[str, int]:
    """Validate two ``(N, C, h, w)`` feature maps of equal shape and an alignment ``mode``."""
    dims = check_shape(reference, "N C h w", name="reference", fn=fn)
    check_shape(transformed, "N C h w", name="transformed", fn=fn, dims=dims)
    check_choice(mode, MODES, name="mode", fn=fn)
    return dims


def relative_error(aligned: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor):
    """Relative errors of ``aligned`` against ``ref`` inside ``mask``.

    Args:
        aligned: ``(N, C, h, w)``.
        ref: ``(N, C, h, w)``.
        mask: ``(h, w)`` boolean.

    Returns:
        ``(total, per_channel (C,), per_image (N,))`` as tensors.
    """
    fn = "relative_error"
    dims = check_shape(ref, "N C h w", name="ref", fn=fn)
    check_shape(aligned, "N C h w", name="aligned", fn=fn, dims=dims)
    check_shape(mask, "h w", name="mask", fn=fn, dims=dims)
    d = (aligned - ref)[..., mask]  # (N, C, P)
    r = ref[..., mask]  # (N, C, P)
    d2, r2 = d * d, r * r
    tiny = torch.finfo(ref.dtype).tiny
    total = (d2.sum() / r2.sum().clamp_min(tiny)).sqrt()
    rc = r2.sum((0, 2))
    per_channel = torch.where(
        rc > 0, (d2.sum((0, 2)) / rc.clamp_min(tiny)).sqrt(), torch.full_like(rc, float("nan"))
    )
    per_image = (d2.sum((1, 2)) / r2.sum((1, 2)).clamp_min(tiny)).sqrt()
    return total, per_channel, per_image


def align_channels(aligned: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor, mode: str):
    """Apply the best channel alignment of ``mode`` to spatially aligned maps.

    Returns:
        ``(aligned', permutation or None, mix or None)``.
    """
    check_choice(mode, MODES, name="mode", fn="align_channels")
    if mode == "spatial":
        return aligned, None, None
    a = ch.flatten_region(aligned, mask)  # (C, N * P)
    b = ch.flatten_region(ref, mask)  # (C, N * P)
    if mode == "permutation":
        perm = ch.best_permutation(b, a)
        return ch.apply_permutation(aligned, perm), perm, None
    mix = ch.best_channel_mix(b, a)
    return ch.apply_mix(aligned, mix), None, mix


def feature_alignment_error(
    transformed: torch.Tensor,
    reference: torch.Tensor,
    t_g: torch.Tensor | None,
    *,
    radius: float = 0.35,
    mode: str = "spatial",
) -> AlignmentError:
    """``E`` for precomputed feature maps: ``transformed = Γ(T_h f)``, ``reference = Γ f``.

    Args:
        transformed: ``(N, C, h, w)``.
        reference: ``(N, C, h, w)``.
        t_g: ``(N, 2, 3)`` / ``(2, 3)`` spatial transform of the feature maps, or
            ``None`` when ``transformed`` is already spatially aligned (e.g. by an
            exact index permutation such as ``torch.rot90``).
        radius: radius of the central disk in normalized units.
        mode: ``"spatial"``, ``"permutation"`` or ``"mix"``.

    Returns:
        :class:`AlignmentError`.
    """
    dims = check_feature_pair(reference, transformed, mode, fn="feature_alignment_error")
    mask = central_mask(dims["h"], dims["w"], radius, device=reference.device)
    aligned = transformed if t_g is None else transform(transformed, t_g)
    aligned, perm, mix = align_channels(aligned, reference, mask, mode)
    total, per_c, per_i = relative_error(aligned, reference, mask)
    return AlignmentError(
        float(total), per_c, per_i, region_info(mask, radius), mode, perm, mix, aligned
    )


def as_extractor_input(extractor: torch.nn.Module, images: torch.Tensor, *,
                       fn: str = "as_extractor_input") -> torch.Tensor:
    """``images`` in the floating dtype ``extractor`` computes in (its first floating
    parameter or buffer; unchanged for a module without any): float64 images into a
    float32 network are converted, as the network would round them anyway.

    Raises:
        ValueError: ``images`` are not floating point (e.g. uint8: scale them first).
    """
    if not torch.is_floating_point(images):
        raise ValueError(f"{fn}: expected images of a floating dtype (e.g. uint8 / 255.0), "
                         f"got {images.dtype}")
    tensors = (*extractor.parameters(), *extractor.buffers()) \
        if isinstance(extractor, torch.nn.Module) else ()
    dtype = next((t.dtype for t in tensors if torch.is_floating_point(t)), None)
    return images if dtype is None or images.dtype == dtype else images.to(dtype)


def alignment_error(
    extractor: torch.nn.Module,
    images: torch.Tensor,
    t_h: torch.Tensor,
    t_g: torch.Tensor,
    *,
    radius: float = 0.35,
    mode: str = "spatial",
) -> AlignmentError:
    """``E(T_g; Γ, T_h, f) = ‖T_g Γ(T_h f) − Γ f‖ / ‖Γ f‖`` over a central disk, batched.

    Convention:
        ``T_h`` is applied to the images and ``T_g`` to the feature maps, both as
        ``(T f)(x) = f(T^{-1} x)`` with bilinear sampling, zero padding and
        ``align_corners=False`` in the shared normalized frame.

    Args:
        extractor: ``Γ``, ``(N, c, H, W) -> (N, C, h, w)``.
        images: ``(N, c, H, W)`` images ``f``, floating point; converted to the
            extractor's dtype (:func:`as_extractor_input`), e.g. float64 into a float32
            network.
        t_h: ``(N, 2, 3)`` / ``(2, 3)`` image transform.
        t_g: ``(N, 2, 3)`` / ``(2, 3)`` feature-map transform.
        radius: central disk radius (normalized).
        mode: ``"spatial"``, ``"permutation"`` or ``"mix"``.

    Returns:
        :class:`AlignmentError` (total, per channel, per image, region).

    Example:
        >>> import torch
        >>> from invariance.extractors import random_cnn
        >>> from sampling.geometry import identity
        >>> g = random_cnn(depth=2, channels=4, seed=0)
        >>> f = torch.rand(2, 1, 32, 32)
        >>> alignment_error(g, f, identity(1), identity(1)).total < 1e-5
        True
    """
    check_shape(images, "N c H W", name="images", fn="alignment_error")
    images = as_extractor_input(extractor, images, fn="alignment_error")
    with torch.no_grad():
        ref = extractor(images)
        moved = extractor(transform(images, t_h))
    return feature_alignment_error(moved, ref, t_g, radius=radius, mode=mode)
