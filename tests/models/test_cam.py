"""Tests of models/cam.py: CAM identity, largest component, thresholded boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import cam, cstn
from tests.tolerances import tol


def test_cam_mean_plus_bias_is_the_logit():
    # Zhou et al.: GAP then linear, so the spatial mean of M_c plus b_c is the logit of c.
    torch.manual_seed(0)
    net = cstn.build("CAM", num_classes=4, width=4).double().eval()
    x = torch.randn(2, 3, 32, 48, dtype=torch.float64)
    out = net(x)
    assert out.features.shape == (2, 16, 4, 6)
    m = torch.einsum("ck,bkhw->bchw", net.classifier.weight, out.features)
    torch.testing.assert_close(m.mean(dim=(2, 3)) + net.classifier.bias, out.logits,
                               **tol(torch.float64))
    maps = cam.class_activation_maps(net, out, torch.tensor([1, 3]))
    assert maps.shape == (2, 32, 48)
    # Upsampling keeps the location of the maximum cell (nearest cell centre to the argmax).
    i, j = divmod(int(maps[0].argmax()), 48)
    ci, cj = divmod(int(m[0, 1].argmax()), 6)
    assert (i // 8, j // 8) == (ci, cj)


def test_largest_component_box_hand_made():
    mask = np.zeros((10, 12), dtype=bool)
    mask[1:3, 1:3] = True  # 4 pixels
    mask[5:9, 4:6] = True  # 8 pixels
    mask[9, 6] = True  # diagonal neighbour of (8, 5): joins with 8-connectivity -> 9 pixels
    assert cam.largest_component_box(mask) == (4.0, 5.0, 7.0, 10.0)
    assert cam.largest_component_box(np.zeros((4, 5), bool)) == (0.0, 0.0, 5.0, 4.0)
    with pytest.raises(ValueError, match="largest_component_box: expected a 2-D mask"):
        cam.largest_component_box(np.zeros(3, bool))


def test_cam_boxes_threshold_hand_made():
    # A CAM that is 0 except a 1.0 plateau at rows 2..3, cols 1..4 and a 0.3 ring around
    # rows 1..4, cols 0..5: after min-max (min 0, max 1) tau = 0.2 takes the ring too,
    # tau = 0.5 only the plateau; a separate 0.9 pixel is a smaller component.
    c = torch.zeros(1, 8, 8)
    c[0, 1:5, 0:6] = 0.3
    c[0, 2:4, 1:5] = 1.0
    c[0, 7, 7] = 0.9
    boxes = cam.cam_boxes(c + 5.0, (0.2, 0.5))  # an offset changes nothing (min-max)
    torch.testing.assert_close(boxes[:, 0], torch.tensor([[0.0, 1.0, 6.0, 5.0],
                                                          [1.0, 2.0, 5.0, 4.0]]))
    assert cam.CAM_THRESHOLD == 0.2
    with pytest.raises(ValueError, match=r"cam_boxes: expected thresholds in \[0, 1\]"):
        cam.cam_boxes(c, (1.5,))
