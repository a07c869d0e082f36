"""Measuring whether CNN feature maps can be aligned by a spatial transform (000 Sec. II).

The theory says a spatial transformer acting on feature maps ``Γ(T_h f)`` can undo
translations but, in general, not rotations, scalings or shears: the only candidate
is ``T_g = T_h^{-1}``, and it fails because channels shift (rotations) and receptive
fields change (scalings). This package measures it numerically:

* :mod:`invariance.warps` -- ``(T f)(x) = f(T^{-1} x)`` on images and feature maps,
  the central region;
* :mod:`invariance.alignment` -- ``E(T_g; Γ, T_h, f) = ‖T_g Γ(T_h f) − Γ f‖ / ‖Γ f‖``;
* :mod:`invariance.search` -- the best ``T_g`` over a dense affine family, with its
  error landscape;
* :mod:`invariance.channels` -- best channel permutation / linear channel mix;
* :mod:`invariance.conjugacy` -- whether a 2x2 map is conjugate to an orthogonal one
  (the exact criterion behind compactly supported invariant receptive fields);
* :mod:`invariance.extractors` -- random CNNs, oriented and isotropic filter banks,
  hooks into trained networks;
* :mod:`invariance.audit` -- a per-layer audit of any ``nn.Module`` (layers by hooks,
  frames calibrated, every mode with a floor and an interval; ``stnlab audit``).

Depends on :mod:`sampling` only; no file I/O, no plotting.
"""

from .alignment import MODES, AlignmentError, alignment_error, feature_alignment_error
from .audit import AuditReport, audit
from .channels import best_channel_mix, best_permutation, channel_similarity
from .conjugacy import conjugacy_report, is_conjugate_to_orthogonal
from .extractors import FeatureExtractor, FeatureHook, IsotropicBank, OrientedBank, random_cnn
from .search import SearchResult, SearchSpace, search_alignment
from .warps import central_mask, transform, warp

__all__ = [
    "AuditReport",
    "audit",
    "FeatureExtractor",
    "MODES",
    "AlignmentError",
    "alignment_error",
    "feature_alignment_error",
    "best_channel_mix",
    "best_permutation",
    "channel_similarity",
    "conjugacy_report",
    "is_conjugate_to_orthogonal",
    "FeatureHook",
    "IsotropicBank",
    "OrientedBank",
    "random_cnn",
    "SearchResult",
    "SearchSpace",
    "search_alignment",
    "central_mask",
    "transform",
    "warp",
]
