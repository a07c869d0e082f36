"""How images are transformed: affine geometry, grids and samplers.

The bottom of the package graph: depends on torch and numpy only.

Public names: :func:`grid_sample` (a drop-in for
``torch.nn.functional.grid_sample`` with ``method="bilinear" | "linearized" |
"multiscale"``, the samplers of :mod:`sampling.registry`, where each name is defined
once; :data:`METHODS` lists them), :func:`linearized_grid_sample`, :func:`multiscale_grid_sample`, and
the affine core :mod:`sampling.geometry`, and the one warp every caller uses,
:func:`affine_grid` / :func:`warp_affine` (:mod:`sampling.warp`).
"""

from . import geometry, registry
from .api import METHODS, grid_sample
from .checks import ShapeError
from .linearized import linearized_grid_sample
from .multiscale import multiscale_grid_sample
from .warp import affine_grid, warp_affine

__all__ = [
    "geometry",
    "registry",
    "affine_grid",
    "warp_affine",
    "grid_sample",
    "linearized_grid_sample",
    "multiscale_grid_sample",
    "METHODS",
    "ShapeError",
]
