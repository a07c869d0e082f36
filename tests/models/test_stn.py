"""The ST module and the C0 / CX / DLX / SLX placements."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.mnist_nets import NETS, VARIANT_SHAPES, build
from models.stn import ConvSpec, DenseSpec, Placement, SpatialTransformer, STNNet
from sampling.geometry import params_to_matrix
from tests.tolerances import tol


def _tiny(placement, **kw):
    return STNNet((1, 20, 20), (ConvSpec(4, 5), ConvSpec(6, 3)), 10, placement=placement,
                  localization=(DenseSpec(8),), **kw)


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_warp_reproduces_input_exactly(dtype, device, align_corners):
    x = torch.randn(2, 3, 11, 13, dtype=dtype, device=device)
    st_ = SpatialTransformer(torch.nn.Flatten(), 3 * 11 * 13, align_corners=align_corners
                             ).to(device=device, dtype=dtype)
    theta = torch.eye(2, 3, dtype=dtype, device=device).expand(2, 2, 3)
    torch.testing.assert_close(st_.warp(x, theta), x, **tol(dtype))
    shifted = theta.clone()
    # one pixel right: 2 / (W - 1) normalized units with align_corners=True, 2 / W without
    shifted[:, 0, 2] = 2 / 12 if align_corners else 2 / 13
    out = st_.warp(x, shifted)
    torch.testing.assert_close(out[..., :-1], x[..., 1:], **tol(dtype))
    torch.testing.assert_close(out[..., -1], x[..., -1], **tol(dtype))  # border padding


def test_000_networks_use_align_corners_true():
    """000 footnote 5: the MNIST networks' STs sample with align_corners=True."""
    net = build("R", "STN-C0")
    assert net.st.align_corners is True
    assert SpatialTransformer(torch.nn.Identity(), 5).align_corners is False  # package default


def test_identity_initialisation_is_app_a1():
    st_ = SpatialTransformer(torch.nn.Identity(), 5)
    assert torch.count_nonzero(st_.to_theta.weight) == 0
    assert st_.to_theta.bias.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("variant", list(VARIANT_SHAPES))
@pytest.mark.parametrize("net", NETS)
def test_every_stn_equals_its_cnn_path_at_step_0(variant, net):
    torch.manual_seed(0)
    model = build(variant, net)
    x = torch.randn(2, *VARIANT_SHAPES[variant])
    logits, theta = model(x, return_theta=True)
    torch.testing.assert_close(logits, model.cnn_path(x), rtol=0, atol=0)
    torch.testing.assert_close(theta, torch.eye(2, 3).expand(2, 2, 3), rtol=0, atol=0)
    if net != "CNN" and model.st.out_scale == 1.0:
        # the identity warp is exact, so the path is the bare classifier
        h = x
        for stage in model.stages:
            h = stage(h)
        torch.testing.assert_close(logits, model.head(h.flatten(1)), **tol(torch.float32))
    if net != "CNN":  # the check can fail: a non-identity ST changes the output
        with torch.no_grad():
            model.st.to_theta.bias[2] += 0.3
        assert not torch.allclose(model(x), model.cnn_path(x))


def _grad_norms(model, x):
    model.zero_grad()
    _, theta = model(x, return_theta=True)
    theta.sum().backward()  # a loss that depends only on the predicted transformation
    return {n: (p.grad.abs().sum().item() if p.grad is not None else 0.0)
            for n, p in model.named_parameters()}


def _perturbed(model):
    with torch.no_grad():  # leave the identity so gradients w.r.t. the localization flow
        model.st.to_theta.weight.normal_(0, 0.1)
    return model


def test_sl_shares_the_very_same_tensors_and_dl_copies_them():
    torch.manual_seed(0)
    sl, dl = _tiny(Placement("SL", 1)), _tiny(Placement("DL", 1))
    assert not any(n.startswith("loc_prefix") for n, _ in sl.named_parameters())
    assert dl.loc_prefix[0][0].weight is not dl.stages[0][0].weight
    n_conv1 = sum(p.numel() for p in dl.stages[0].parameters())
    n = [sum(p.numel() for p in m.parameters()) for m in (sl, dl)]
    assert n[1] - n[0] == n_conv1
    x = torch.randn(3, 1, 20, 20)
    g_sl = _grad_norms(_perturbed(sl), x)
    g_dl = _grad_norms(_perturbed(dl), x)
    assert g_sl["stages.0.0.weight"] > 0  # theta depends on the shared first stage
    assert g_dl["stages.0.0.weight"] == 0  # ... but not on the classifier's own copy
    assert g_dl["loc_prefix.0.0.weight"] > 0
    assert g_sl["stages.1.0.weight"] == g_dl["stages.1.0.weight"] == 0


def test_gradients_route_for_c0_and_cx():
    torch.manual_seed(0)
    c0, c1 = _perturbed(_tiny(Placement("C", 0))), _perturbed(_tiny(Placement("C", 1)))
    x = torch.randn(3, 1, 20, 20)
    g0, g1 = _grad_norms(c0, x), _grad_norms(c1, x)
    loc0 = sum(v for k, v in g0.items() if k.startswith("st.localization"))
    assert g0["stages.0.0.weight"] == 0 and loc0 > 0
    assert g1["stages.0.0.weight"] > 0  # the localization sees the first stage's features
    assert c0.warped_shape == (1, 20, 20)  # ST on the input
    assert c1.warped_shape == (4, 8, 8)  # ST on the feature map after stage 1


def test_classification_loss_reaches_the_localization_network():
    torch.manual_seed(0)
    for kind, depth in (("C", 0), ("C", 1), ("DL", 1), ("SL", 1)):
        m = _perturbed(_tiny(Placement(kind, depth)))
        F.cross_entropy(m(torch.randn(4, 1, 20, 20)), torch.arange(4)).backward()
        assert m.st.to_theta.weight.grad.abs().sum() > 0, kind


@pytest.mark.parametrize("kwargs, match", [
    (dict(placement=Placement("C", 3)), "depth"),
    (dict(placement="C1"), "placement"),
    (dict(loc_downsample=0), "loc_downsample"),
    (dict(method="nearest"), "method"),
])
def test_bad_architectures_have_clear_errors(kwargs, match):
    kw = dict(placement=Placement("C", 0))
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        _tiny(**kw)


@pytest.mark.parametrize("kind, depth, match", [("X", 1, "placement kind"),
                                                ("C", -1, "depth"), ("DL", 0, "depth")])
def test_bad_placements(kind, depth, match):
    with pytest.raises(ValueError, match=match):
        Placement(kind, depth)


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match="x"):
        _tiny(Placement("C", 0))(torch.randn(2, 1, 21, 20))


def test_nan_transformation_gives_nan_not_a_crash():
    st_ = SpatialTransformer(torch.nn.Flatten(), 16)
    x = torch.randn(2, 1, 4, 4, requires_grad=True)
    theta = torch.full((2, 2, 3), float("nan"), requires_grad=True)
    out = st_.warp(x, theta)
    assert torch.isnan(out).all()
    out.sum().backward()  # torch's border sampler alone would crash here


def test_warp_gradcheck_float64():
    st_ = SpatialTransformer(torch.nn.Flatten(), 16).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    theta = params_to_matrix(torch.tensor([0.3], dtype=torch.float64),
                             torch.tensor([-0.2], dtype=torch.float64), 0.1,
                             torch.tensor([[0.07, -0.05]], dtype=torch.float64))
    theta = theta.clone().requires_grad_(True)  # samples away from the pixel lattice
    assert torch.autograd.gradcheck(lambda a, t: st_.warp(a, t, (5, 5)), (x, theta))


def test_half_width_output_on_t_and_downsampled_localization_on_s():
    t_c0, t_c1 = build("T", "STN-C0"), build("T", "STN-C1")
    assert t_c0.st.out_size(60, 60) == (30, 30)
    assert t_c1.warped_shape == (16, 26, 26) and t_c1.st.out_size(26, 26) == (13, 13)
    s_c0 = build("S", "STN-C0")
    assert s_c0.loc_downsample == 2
    assert s_c0.st.localization[0][0].in_channels == 1
    frame = t_c1.warped_frame()
    assert frame["half_width_px"] == 25.0 and frame["stride"] == 2  # 000 App. A.2
    assert t_c0.warped_frame()["half_width_px"] == 29.5
    assert math.isclose(build("R", "STN-C1").warped_frame()["half_width_px"], 9.0)


def test_depth_is_a_parameter():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 20, 20)
    for kind in ("C", "DL", "SL"):
        m = _tiny(Placement(kind, 2))
        torch.testing.assert_close(m(x), m.cnn_path(x), rtol=0, atol=0)
    assert _tiny(Placement("C", 2)).warped_shape == (6, 3, 3)  # after both stages
    dl2, sl2 = _tiny(Placement("DL", 2)), _tiny(Placement("SL", 2))
    assert len(dl2.loc_prefix) == 2
    n = [sum(p.numel() for p in m.parameters()) for m in (sl2, dl2)]
    assert n[1] - n[0] == sum(p.numel() for p in dl2.stages.parameters())
    g = _grad_norms(_perturbed(sl2), x)
    assert g["stages.0.0.weight"] > 0 and g["stages.1.0.weight"] > 0
