"""The from-scratch backbone shared by the convolutional STN (:mod:`models.cstn`) and the
CAM baseline (:mod:`models.cam`): a small CNN and a two-level feature pyramid.

004 uses FPN on an ImageNet-pretrained ResNet-101; no pretrained weights are reachable
here, so this backbone is trained from scratch (:data:`BACKBONE_DEVIATION`, quoted in every
result). It lives apart so that CAM and CSTN share it without importing each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BACKBONE_NAME", "BACKBONE_DEVIATION", "SmallBackbone", "TwoLevelFPN"]

BACKBONE_NAME = "small-cnn-fpn2 (from scratch)"
BACKBONE_DEVIATION = ("backbone: a small CNN with a two-level FPN trained from scratch, not "
                      "004's FPN on ImageNet-pretrained ResNet-101 (no pretrained weights "
                      "are reachable here)")
#: Network names: the CSTN of 004, its ablations, and the CAM baseline (:mod:`models.cam`).

def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SmallBackbone(nn.Module):
    """A from-scratch CNN with outputs at strides 8 and 16 (stand-in for 004's ResNet-101).

    Stages (each ``conv3x3 -> BN -> ReLU``, twice, then 2x2/2 max-pool, the last one without
    its pool on the way out): widths ``(w, 2w, 4w, 8w)``; ``C3`` is the stride-8 map after
    stage 3's convs, ``C4`` the stride-16 map after stage 4's. Input sides must be
    multiples of 16.

    Layers (for :func:`theoretical_receptive_field`): :attr:`LAYERS` lists
    ``(kernel, stride)`` per conv / pool in order.
    """

    def __init__(self, in_channels: int = 3, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn(in_channels, w), nn.MaxPool2d(2),
                                  _conv_bn(w, 2 * w), nn.MaxPool2d(2),
                                  _conv_bn(2 * w, 4 * w), _conv_bn(4 * w, 4 * w),
                                  nn.MaxPool2d(2))
        self.stage3 = nn.Sequential(_conv_bn(4 * w, 4 * w))  # stride 8
        self.stage4 = nn.Sequential(nn.MaxPool2d(2), _conv_bn(4 * w, 8 * w),
                                    _conv_bn(8 * w, 8 * w))  # stride 16
        self.channels = (4 * w, 8 * w)
        self.strides = (8, 16)

    #: ``(kernel, stride)`` of each layer up to C3 and up to C4.
    LAYERS_C3 = ((3, 1), (2, 2), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1))
    LAYERS_C4 = LAYERS_C3 + ((2, 2), (3, 1), (3, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` -> ``(C3 (B, 4w, H/8, W/8), C4 (B, 8w, H/16, W/16))``."""
        c3 = self.stage3(self.stem(x))
        return c3, self.stage4(c3)


class TwoLevelFPN(nn.Module):
    """Feature pyramid over the backbone's last two levels (Lin et al. 2017, as 004 IV-A).

    ``P4 = lat4(C4)``, ``P3 = lat3(C3) + up2(P4)`` (nearest), then each level gets a
    ``conv3x3 -> BN`` (004's "additional convolution (3x3, padding 1) and batch norm") and
    a ReLU. Returns ``[P3, P4]`` (fine to coarse), each with ``channels`` channels.
    """

    def __init__(self, in_channels: tuple[int, int], channels: int = 64):
        super().__init__()
        self.lat3 = nn.Conv2d(in_channels[0], channels, 1)
        self.lat4 = nn.Conv2d(in_channels[1], channels, 1)
        self.out3 = _conv_bn(channels, channels)
        self.out4 = _conv_bn(channels, channels)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor) -> list[torch.Tensor]:
        p4 = self.lat4(c4)
        p3 = self.lat3(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return [self.out3(p3), self.out4(p4)]
