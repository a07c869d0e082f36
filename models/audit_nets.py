"""Networks to audit (``stnlab audit``): a ResNet-18, MTCNN's P/R/O-Net, 000's MNIST STNs.

torchvision does not import beside the CPU torch build here and no model hub is
reachable, so the networks are defined in the project:

* :class:`ResNet18` -- He et al. 2016's ResNet-18 (the torchvision layout and parameter
  names: 7x7/2 stem, 3x3/2 max-pool, four stages of two :class:`BasicBlock`\\ s, global
  average pool, linear head; 11,689,512 parameters with 1000 classes), random
  initialisation (Kaiming-normal convs, BatchNorm 1 / 0) from a seed.
* :class:`PNet`, :class:`RNet`, :class:`ONet` -- MTCNN (Zhang et al. 2016) in the layout and
  parameter names of ``facenet-pytorch`` 2.6.0, whose pretrained state_dicts
  (:mod:`models.data.facenet`) load into them with ``weights_only=True``. The
  ``facenet-pytorch`` input convention (RGB in ``[0, 255]``, ``(x - 127.5) / 128``) is the
  first module, :class:`MTCNNInput`, so these nets take images in ``[0, 1]``.
* ``stn-c0`` / ``stn-c1``: 000's MNIST (R) networks from :mod:`models.mnist_nets`.

:data:`BUILTINS` maps each built-in name to ``(factory, input channels, default side,
description)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import UsageError

__all__ = ["BasicBlock", "ResNet18", "MTCNNInput", "PNet", "RNet", "ONet", "BUILTINS",
           "build_builtin", "resnet18", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` (the add is in-place)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)  # used twice per forward, as in torchvision
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, cin, H, W) -> (N, cout, H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 (torchvision's layout), random init from ``seed``.

    Args:
        num_classes: head outputs.
        in_channels: image channels.
        seed: initialisation seed.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, seed: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = (64, 128, 256, 512)
        cin = 64
        for i, c in enumerate(chans):
            s = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, c, s), BasicBlock(c, c)))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen)
                                   * (2.0 / fan_out) ** 0.5)
                elif isinstance(m, nn.Linear):
                    bound = 1 / m.in_features ** 0.5
                    m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
                    m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, c, H, W) -> (N, classes)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class MTCNNInput(nn.Module):
    """``facenet-pytorch``'s input convention: ``(255 x - 127.5) / 128`` for ``x`` in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0 - 127.5) * 0.0078125


class PNet(nn.Module):
    """MTCNN P-Net (fully convolutional): returns ``(box regression, face probability)``."""

    def __init__(self):
        super().__init__()
        self.input = MTCNNInput()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(self.input(x))))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """MTCNN R-Net (24 x 24 inputs): returns ``(box regression, face probability)``."""

    def __init__(self):
        super().__init__()
        self.input = MTCNNInput()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(self.input(x))))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # (N, w, h, C), facenet-pytorch's order
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """MTCNN O-Net (48 x 48 inputs): ``(box regression, landmarks, face probability)``."""

    def __init__(self):
        super().__init__()
        self.input = MTCNNInput()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(self.input(x))))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _mtcnn(cls, name: str) -> nn.Module:
    from .data.facenet import load_mtcnn_state_dict

    net = cls()
    net.load_state_dict(load_mtcnn_state_dict(name), strict=True)  # raises on any mismatch
    return net.eval()


def resnet18() -> nn.Module:
    """The project's ResNet-18, random init (seed 0), 1000 classes, RGB."""
    return ResNet18(seed=0).eval()


def mtcnn_pnet() -> nn.Module:
    """MTCNN P-Net with facenet-pytorch 2.6.0's pretrained weights."""
    return _mtcnn(PNet, "pnet")


def mtcnn_rnet() -> nn.Module:
    """MTCNN R-Net with facenet-pytorch 2.6.0's pretrained weights (24 x 24 inputs)."""
    return _mtcnn(RNet, "rnet")


def mtcnn_onet() -> nn.Module:
    """MTCNN O-Net with facenet-pytorch 2.6.0's pretrained weights (48 x 48 inputs)."""
    return _mtcnn(ONet, "onet")


def _stn(net: str):
    def make() -> nn.Module:
        from .mnist_nets import build

        torch.manual_seed(0)
        return build("R", net).eval()

    make.__doc__ = f"000's MNIST (R) {net}, PyTorch default init under torch.manual_seed(0)."
    return make


#: name -> (factory, input channels, default input side, description)
BUILTINS = {
    "resnet18": (resnet18, 3, 64, "ResNet-18 defined in the project, random init (seed 0)"),
    "mtcnn-pnet": (mtcnn_pnet, 3, 64, "MTCNN P-Net, facenet-pytorch 2.6.0 weights"),
    "mtcnn-rnet": (mtcnn_rnet, 3, 24, "MTCNN R-Net, facenet-pytorch 2.6.0 weights"),
    "mtcnn-onet": (mtcnn_onet, 3, 48, "MTCNN O-Net, facenet-pytorch 2.6.0 weights"),
    "stn-c0": (_stn("STN-C0"), 1, 28, "000's MNIST (R) STN-C0, untrained"),
    "stn-c1": (_stn("STN-C1"), 1, 28, "000's MNIST (R) STN-C1, untrained"),
}


def build_builtin(name: str) -> nn.Module:
    """Build a built-in network by name (:data:`BUILTINS`)."""
    if name not in BUILTINS:
        raise UsageError(f"audit: expected MODEL to be one of {list(BUILTINS)}, "
                         f"package.module:factory or a file, got {name!r}")
    return BUILTINS[name][0]()
