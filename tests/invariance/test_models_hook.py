"""The invariance tools work on the networks of `models` (feature map after layer X)."""

from __future__ import annotations

import math

import torch

from invariance.alignment import alignment_error
from invariance.extractors import FeatureHook
from models.mnist_nets import build
from sampling import geometry as g


def _digits(n=4, size=28, seed=0):
    """Smooth blob 'digits' (no data download needed): sums of anisotropic Gaussians."""
    gen = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(3):
            c = (torch.rand(2, generator=gen) - 0.5) * 0.8
            s = 0.1 + 0.2 * torch.rand(2, generator=gen)
            out[i, 0] += torch.exp(-((x - c[0]) / s[0]) ** 2 - ((y - c[1]) / s[1]) ** 2)
    return out


def test_hook_on_mnist_stn_takes_the_classifier_stage():
    torch.manual_seed(0)
    net = build("R", "STN-SL1").eval()
    hook = FeatureHook(net, "stages.0", stride=2)
    f = _digits()
    feats = hook(f)
    assert feats.shape == (4, 16, 10, 10)  # 28 -> conv9 -> 20 -> pool -> 10
    # SL1 shares stage 0 with its localizer; at identity init the ST is the identity, so
    # the hooked stage sees the (warped = original) image.
    torch.testing.assert_close(feats, net.stages[0](f), rtol=1e-4, atol=1e-5)


def test_mnist_cnn_first_layer_cannot_be_aligned_for_rotation_but_can_for_shifts():
    torch.manual_seed(0)
    hook = FeatureHook(build("R", "CNN").eval(), "stages.0", stride=2)
    f = _digits(6)
    ident = g.identity(1)
    rot = g.params_to_matrix(torch.tensor([math.pi / 2]), torch.zeros(1))
    # T_g = T_h^{-1} (here as input_from_output matrices: the inverse of the image's).
    rot_err = alignment_error(hook, f, rot, g.invert(rot)).total
    # A 4-px input shift (a multiple of the pooling stride) is aligned by the inverse
    # shift *expressed in the feature map's frame*: the valid 9x9 conv + 2x2 pool maps
    # input pixel 2u + 4.5 to feature pixel u, so 4 input px are 2 feature px, i.e.
    # 2 / 5 normalized units of the 10-px map (not 4 / 14 of the 28-px image).
    shift = g.params_to_matrix(torch.zeros(1), torch.zeros(1), 0.0, torch.tensor([[4 / 14, 0.0]]))
    t_g = g.params_to_matrix(torch.zeros(1), torch.zeros(1), 0.0, torch.tensor([[-0.4, 0.0]]))
    shift_err = alignment_error(hook, f, shift, t_g).total
    naive_err = alignment_error(hook, f, shift, g.invert(shift)).total  # wrong frame
    assert alignment_error(hook, f, ident, ident).total < 1e-6
    assert shift_err < 1e-5
    assert naive_err > 0.1
    assert rot_err > 0.3
