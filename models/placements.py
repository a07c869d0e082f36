"""ST placements as objects: where the ST warps, what its localization network sees.

:class:`models.stn.STNNet` asks its placement strategy three things and has no
``if kind == ...`` of its own:

* ``warp_depth`` -- the classifier stage before which the ST warps (0 = the input);
* ``build(net, classifier)`` -- create the modules the placement owns on ``net`` (STN-DLX:
  the copied stages ``net.loc_prefix``) and return the localization input shape;
* ``predict(net, x, h)`` -- ``theta (N, 2, 3)`` from the input ``x`` and the tensor ``h``
  about to be warped;
* ``frame(net)`` -- where the warped tensor sits in input pixels.

The strategies of 000 Sec. III are :class:`FeatureMap` (``C``, STN-CX, X = 0 is STN-C0),
:class:`CopiedPrefix` (``DL``) and :class:`SharedPrefix` (``SL``). **A new placement is one
new class** registered with :func:`register` (e.g. an iterative / inverse-compositional ST
that calls ``net.st`` several times in ``predict``); :class:`models.stn.Placement` (the
``(kind, depth)`` spec in the network tables) looks its strategy up here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PlacementStrategy", "FeatureMap", "CopiedPrefix", "SharedPrefix", "STRATEGIES",
           "register", "strategy"]


class PlacementStrategy:
    """Base of every placement: the ST warps the input; its localization sees the input.

    Attributes:
        depth: X of the placement's name (``STN-<kind>X``).
    """

    kind = ""
    min_depth = 0

    def __init__(self, depth: int):
        self.depth = depth

    @property
    def warp_depth(self) -> int:
        """Classifier stage index before which the ST warps (0: the input)."""
        return 0

    def build(self, net: nn.Module, classifier, loc_in_shape) -> tuple:
        """Create the placement's own modules on ``net``; return the localization input shape.

        ``loc_in_shape`` is the shape after the first ``depth`` classifier stages; the
        net offers ``new_stage(spec, in_shape)`` and ``stage_input_shapes(classifier)``.
        """
        return loc_in_shape

    def loc_input(self, net: nn.Module, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """What the localization network sees (before ``net.loc_downsample``)."""
        return x

    def predict(self, net: nn.Module, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``theta (N, 2, 3)`` (``input_from_output``) for the tensor ``h`` the ST warps.

        Args:
            net: the :class:`models.stn.STNNet` (its ``st``, stages, ``loc_downsample``).
            x: the network input ``(N, C, H, W)``.
            h: the tensor about to be warped (``x`` itself when ``warp_depth == 0``).
        """
        loc = self.loc_input(net, x, h)
        if net.loc_downsample > 1:
            loc = F.avg_pool2d(loc, net.loc_downsample)
        return net.st.predict(loc)

    def frame(self, net: nn.Module) -> dict:
        """``{"stride", "width", "half_width_px"}`` of the warped tensor in input pixels."""
        w = net.in_shape[2]
        return {"stride": 1, "width": w, "half_width_px": (w - 1) / 2}


class FeatureMap(PlacementStrategy):
    """STN-CX: the ST warps the feature map after X stages; its localization sees that map."""

    kind = "C"

    @property
    def warp_depth(self) -> int:
        return self.depth

    def loc_input(self, net, x, h):
        return h

    def frame(self, net) -> dict:
        if self.depth == 0:
            return super().frame(net)
        stride, w = 1, net.in_shape[2]
        for stage in net.stages[: self.depth]:
            conv = stage[0]
            w = w - conv.kernel_size[1] + 1
            if len(stage) > 2:
                w, stride = w // 2, stride * 2
        return {"stride": stride, "width": w, "half_width_px": (w - 1) * stride / 2}


class CopiedPrefix(PlacementStrategy):
    """STN-DLX: the ST warps the input; the localization runs copies of the first X stages."""

    kind = "DL"
    min_depth = 1

    def build(self, net, classifier, loc_in_shape):
        # copies: same architecture, own parameters
        net.loc_prefix = nn.ModuleList(
            net.new_stage(s, sh) for s, sh in
            zip(classifier[: self.depth], net.stage_input_shapes(classifier)))
        return loc_in_shape

    def loc_input(self, net, x, h):
        for stage in net.loc_prefix:
            x = stage(x)
        return x


class SharedPrefix(PlacementStrategy):
    """STN-SLX: as DLX, but the localization shares the classifier's first X stages."""

    kind = "SL"
    min_depth = 1

    def loc_input(self, net, x, h):
        for stage in net.stages[: self.depth]:  # the very same modules (shared parameters)
            x = stage(x)
        return x


#: kind -> strategy class.
STRATEGIES: dict[str, type[PlacementStrategy]] = {}


def register(cls: type[PlacementStrategy]) -> type[PlacementStrategy]:
    """Register a placement strategy under ``cls.kind`` (a second one under a kind is an error)."""
    if not cls.kind or cls.kind in STRATEGIES:
        raise ValueError(f"placements.register: expected a new non-empty kind, got "
                         f"{cls.kind!r} (registered: {sorted(STRATEGIES)})")
    STRATEGIES[cls.kind] = cls
    return cls


for _cls in (FeatureMap, CopiedPrefix, SharedPrefix):
    register(_cls)


def strategy(kind: str, depth: int) -> PlacementStrategy:
    """The strategy object of placement ``(kind, depth)``."""
    return STRATEGIES[kind](depth)
