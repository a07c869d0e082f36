"""Channel-aware alignment: the best channel permutation and the best linear channel mix.

On top of a spatial alignment ``A = T_g Γ(T_h f)`` of a reference ``B = Γ f``,
this module finds

* the permutation ``π`` minimising ``Σ_i ‖A_{π(i)} − B_i‖²`` (Hungarian method,
  :func:`scipy.optimize.linear_sum_assignment` on the channel distance matrix);
* the matrix ``M`` (``C × C``) minimising ``‖M A − B‖²`` (least squares): the
  strongest alignment a purely spatial ST followed by any *per-location*
  channel re-mixing (a ``1 × 1`` convolution) can achieve.

Both are fitted jointly over every image of a batch and every pixel of the
central region (one ``π`` or ``M`` for all of them, as a fixed network layer
would be). Inputs here are already flattened to ``(..., C, P)``: ``P`` is the
number of (image, pixel) samples; see :func:`flatten_region`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from sampling.checks import check_shape

__all__ = [
    "flatten_region",
    "channel_similarity",
    "channel_distances",
    "best_permutation",
    "best_permutations",
    "best_channel_mix",
    "apply_permutation",
    "apply_mix",
]


def flatten_region(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(..., N, C, H, W)`` and an ``(H, W)`` mask -> ``(..., C, N * P)`` region samples."""
    fn = "flatten_region"
    if x.dim() < 4:
        raise ValueError(f"{fn}: expected x of shape (..., N, C, H, W), got {tuple(x.shape)}")
    check_shape(mask, "H W", name="mask", fn=fn, dims={"H": x.shape[-2], "W": x.shape[-1]})
    sel = x[..., mask]  # (..., N, C, P)
    sel = sel.transpose(-3, -2)  # (..., C, N, P)
    return sel.reshape(*sel.shape[:-2], -1)  # (..., C, N * P)


def channel_similarity(ref: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``S[i, j] = <ref_i, cand_j> / (|ref_i| |cand_j|)``.

    Args:
        ref: ``(C, P)`` reference channels (``Γ f`` in the region).
        cand: ``(C, P)`` spatially aligned channels (``T_g Γ T_h f``).

    Returns:
        ``(C, C)``; channels that are identically zero have similarity 0.
    """
    fn = "channel_similarity"
    dims = check_shape(ref, "C P", name="ref", fn=fn)
    check_shape(cand, "C P", name="cand", fn=fn, dims=dims)
    rn = ref / ref.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(ref.dtype).tiny)
    cn = cand / cand.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(cand.dtype).tiny)
    return rn @ cn.T


def channel_distances(ref: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Squared distances ``D[..., i, j] = ‖ref_i − cand_j‖²``.

    Args:
        ref: ``(C, P)``.
        cand: ``(..., C, P)`` (a batch of candidates allowed).

    Returns:
        ``(..., C, C)``.
    """
    rr = (ref * ref).sum(-1)  # (C,)
    cc = (cand * cand).sum(-1)  # (..., C)
    cross = torch.einsum("ip,...jp->...ij", ref, cand)  # (..., C, C)
    return (rr[:, None] + cc[..., None, :] - 2 * cross).clamp_min(0)


def best_permutations(dist: torch.Tensor) -> torch.Tensor:
    """Solve one assignment per ``(C, C)`` cost matrix of ``dist`` ``(G, C, C)``.

    Returns:
        ``(G, C)`` long tensor ``perm`` with ``aligned_i = cand_{perm[i]}``.
    """
    d = dist.detach().cpu().numpy()
    out = np.empty(d.shape[:2], dtype=np.int64)
    for g in range(d.shape[0]):
        rows, cols = linear_sum_assignment(d[g])
        out[g, rows] = cols
    return torch.from_numpy(out).to(dist.device)


def best_permutation(ref: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """The channel permutation that best aligns ``cand`` to ``ref`` (least squares).

    Args:
        ref: ``(C, P)`` reference.
        cand: ``(C, P)`` candidate.

    Returns:
        ``(C,)`` long tensor ``perm``: reference channel ``i`` is matched with
        candidate channel ``perm[i]``.
    """
    fn = "best_permutation"
    dims = check_shape(ref, "C P", name="ref", fn=fn)
    check_shape(cand, "C P", name="cand", fn=fn, dims=dims)
    return best_permutations(channel_distances(ref, cand)[None])[0]


def best_channel_mix(ref: torch.Tensor, cand: torch.Tensor, *, ridge: float = 1e-9) -> torch.Tensor:
    """Least-squares channel mix ``M = argmin ‖M cand − ref‖²`` (batched, differentiable).

    Solved by the normal equations ``M^T = (A A^T + λ I)^{-1} A B^T`` with a tiny
    ridge ``λ = ridge · tr(A A^T) / C`` so that dead (all-zero) channels do not make
    the system singular.

    Args:
        ref: ``(C, P)`` reference ``B``.
        cand: ``(..., C, P)`` candidates ``A``.
        ridge: relative ridge.

    Returns:
        ``(..., C, C)`` mixes ``M`` with ``aligned = M @ cand``.
    """
    gram = cand @ cand.transpose(-1, -2)  # (..., C, C)
    c = gram.shape[-1]
    lam = ridge * gram.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-30) / c  # (...,)
    eye = torch.eye(c, dtype=cand.dtype, device=cand.device)
    rhs = cand @ ref.T  # (..., C, C) = A B^T
    mt = torch.linalg.solve(gram + lam[..., None, None] * eye, rhs)  # (..., C, C) = M^T
    return mt.transpose(-1, -2)


def apply_permutation(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``x[:, perm]`` for ``(N, C, H, W)`` (aligned channel ``i`` = ``x`` channel ``perm[i]``)."""
    return x[:, perm]


def apply_mix(x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Per-location channel mix ``(M x)_i = Σ_j M_ij x_j`` for ``(N, C, H, W)``."""
    return torch.einsum("ij,njhw->nihw", mix.to(x.dtype), x)
