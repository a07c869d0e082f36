"""How images are transformed: affine geometry, grids and samplers.

The bottom of the package graph: depends on torch and numpy only.
"""

from . import geometry
from .api import METHODS, grid_sample
from .checks import ShapeError, UsageError

__all__ = ["geometry", "grid_sample", "METHODS", "ShapeError", "UsageError"]


def __getattr__(name):  # lazy: the samplers import only when asked for
    if name == "linearized_grid_sample":
        from .linearized import linearized_grid_sample
        return linearized_grid_sample
    if name == "multiscale_grid_sample":
        from .multiscale import multiscale_grid_sample
        return multiscale_grid_sample
    raise AttributeError(f"module 'sampling' has no attribute {name!r}")
