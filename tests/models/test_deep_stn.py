"""``models.deep_stn``: placement rule, sharing, composition, iterations (000 Sec. III-A)."""

from __future__ import annotations

import pytest
import torch

from models import plankton_nets as PN
from models import svhn_nets as SN
from models.deep_stn import DeepSTN, Slot, parse_net_name
from models.layer_nets import count_params
from sampling import geometry

W = 0.0625  # width multiplier: small and fast; depth (what is tested) unchanged

NETS = {
    "svhn": (lambda: SN.classifier(width=W), lambda net, x: SN.localizer("F32", depth=x, net=net),
             range(len(SN.CONV_WIDTHS) + 1)),
    "plankton": (lambda: PN.classifier(width=W), lambda net, x: PN.localizer(depth=x, net=net),
                 range(len(PN.CONV_WIDTHS) + 1)),
}


def _x(net, n=2, seed=0):
    return torch.rand(n, *net.in_shape, generator=torch.Generator().manual_seed(seed))


def _record_warps(stn):
    calls = []
    orig = stn.warp

    def warp(source, theta):
        calls.append((source, theta))
        return orig(source, theta)

    stn.warp = warp
    return calls


def _randomize(loc, seed, scale=0.05):
    """Non-identity localizer output (eq. 17 starts at zero weights)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        loc.out.weight.copy_(scale * torch.randn(loc.out.weight.shape, generator=g))
        loc.out.bias.copy_(scale * torch.randn(6, generator=g))


@pytest.mark.parametrize("name", list(NETS))
def test_placement_rule_every_depth(name):
    """STN-CX warps exactly the map after layers[:st_position(X)] (the App. A.3 / A.4 rule,
    tabulated in ST_POSITIONS) and the classifier continues from there; DLX / SLX localizers
    see a map of that shape computed from the warped input."""
    torch.manual_seed(0)
    make_net, make_loc, depths = NETS[name]
    table = {"svhn": SN.ST_POSITIONS, "plankton": PN.ST_POSITIONS}[name]
    for x_depth in depths:
        net = make_net().eval()
        x = _x(net)
        stn = DeepSTN(net, [Slot("C", x_depth)], [make_loc(net, x_depth)]).eval()
        assert stn.positions == [table[x_depth]]
        calls = _record_warps(stn)
        out = stn(x)
        (src, theta), = calls
        expected = net.run(x, 0, table[x_depth])
        assert torch.equal(src, expected), (name, x_depth)
        # identity at init (eq. 17): the output is the plain CNN's up to resampling
        # rounding (a priori: float32, align_corners=True identity grid, 1e-4 absolute)
        torch.testing.assert_close(out, net(x), atol=1e-4, rtol=0)
        if x_depth == 0:
            continue
        for kind in ("DL", "SL"):
            seen = []
            loc = make_loc(net, x_depth)
            loc.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1:]))
            DeepSTN(net, [Slot(kind, x_depth)], [loc]).eval()(x)
            assert seen == [net.shape_at_depth(x_depth)], (name, kind, x_depth)


def test_sl_shares_the_very_parameter_tensors_and_dl_copies():
    torch.manual_seed(0)
    net = SN.classifier(width=W)
    sl = DeepSTN(net, [Slot("SL", 3)], [SN.localizer("F32", depth=3, net=net)])
    sl_ids = {id(p) for p in sl.parameters()}
    assert {id(p) for p in net.parameters()} <= sl_ids
    assert len(sl.loc_prefix) == 0
    assert count_params(sl) == SN.param_counts(width=W)["STN-SL3"]
    # the localizer's parameters reach the classifier's conv1: its gradient through theta
    _randomize(sl.locs[0], 1)
    x = _x(net)
    _, (theta,) = sl(x, return_theta=True)
    g = torch.autograd.grad(theta.sum(), net.layers.conv1.weight)[0]
    assert g.abs().sum() > 0
    dl = DeepSTN(net, [Slot("DL", 3)], [SN.localizer("F32", depth=3, net=net)])
    copied = list(dl.loc_prefix.parameters())
    assert copied and not ({id(p) for p in copied} & {id(p) for p in net.parameters()})
    assert not torch.equal(dl.loc_prefix["0"][0].weight, net.layers.conv1.weight)
    assert count_params(dl) == SN.param_counts(width=W)["STN-DL3"]


def _homog(m):
    bottom = torch.tensor([0.0, 0.0, 1.0]).expand(m.shape[0], 1, 3)
    return torch.cat([m, bottom], 1)


@pytest.mark.parametrize("kind,depth", [("C", 0), ("SL", 3), ("DL", 3), ("C", 3)])
def test_iterated_parameters_are_the_product_of_the_steps(kind, depth):
    torch.manual_seed(0)
    net = SN.classifier(width=W).eval()
    loc = SN.localizer("F32", depth=depth, net=net)
    _randomize(loc, 2)
    steps = []
    loc.register_forward_hook(lambda m, a, out: steps.append(out.detach()))
    stn = DeepSTN(net, [Slot(kind, depth)], [loc], iterations=3).eval()
    _, (theta,) = stn(_x(net), return_theta=True)
    assert len(steps) == 3
    prod = _homog(steps[0]) @ _homog(steps[1]) @ _homog(steps[2])
    # derived: 3 products of float32 3x3 matrices with entries O(1): ~10 eps32 = 1.2e-6
    torch.testing.assert_close(theta, prod[:, :2], atol=1e-5, rtol=0)
    assert not torch.allclose(theta, steps[-1], atol=1e-3)  # composition is not the last step


@pytest.mark.parametrize("kind,depth", [("C", 0), ("SL", 3), ("C", 3)])
def test_the_source_is_sampled_once_per_iteration_from_the_original(kind, depth):
    torch.manual_seed(0)
    net = SN.classifier(width=W).eval()
    loc = SN.localizer("F32", depth=depth, net=net)
    _randomize(loc, 3)
    steps = []
    loc.register_forward_hook(lambda m, a, out: steps.append(out.detach()))
    stn = DeepSTN(net, [Slot(kind, depth)], [loc], iterations=3).eval()
    calls = _record_warps(stn)
    x = _x(net)
    _, (theta,) = stn(x, return_theta=True)
    original = x if kind == "SL" or depth == 0 else net.run(x, 0, stn.positions[0])
    # iterations 2 and 3 sample the original with the composed parameters so far; the
    # final warp once more with all three composed: 3 samplings, every one from the original
    assert len(calls) == 3
    for src, _ in calls:
        torch.testing.assert_close(src, original, atol=0, rtol=0)
    torch.testing.assert_close(calls[0][1], steps[0])
    torch.testing.assert_close(calls[1][1], geometry.compose(steps[0], steps[1]))
    torch.testing.assert_close(calls[2][1], theta)


def test_sl0123_re_transforms_the_input_with_composed_parameters():
    torch.manual_seed(0)
    net = SN.classifier(width=W).eval()
    slots, iters = parse_net_name("STN-SL0123")
    assert [s.depth for s in slots] == [0, 1, 2, 3] and iters == 1
    locs = [SN.localizer("F32", depth=s.depth, net=net) for s in slots]
    steps = []
    for i, loc in enumerate(locs):
        _randomize(loc, 10 + i)
        loc.register_forward_hook(lambda m, a, out: steps.append(out.detach()))
    stn = DeepSTN(net, slots, locs).eval()
    calls = _record_warps(stn)
    x = _x(net)
    _, thetas = stn(x, return_theta=True)
    assert len(calls) == 4 and all(src is x for src, _ in calls)
    acc = steps[0]
    for k in range(1, 4):
        acc = geometry.compose(acc, steps[k])
        torch.testing.assert_close(thetas[k], acc)
    # STN-C0123: each ST transforms the feature map it sees (no composition)
    c = DeepSTN(net, parse_net_name("STN-C0123")[0], locs).eval()
    calls = _record_warps(c)
    c(x)
    assert [tuple(s.shape[1:]) for s, _ in calls] == [net.shape_at_depth(d) for d in range(4)]


@pytest.mark.parametrize("name,expected", [
    ("CNN", ((), 1)), ("STN-C10", ((Slot("C", 10),), 1)),
    ("STN-SL3-it2", ((Slot("SL", 3),), 2)), ("STN-C0-large", ((Slot("C", 0),), 1)),
])
def test_parse_net_name(name, expected):
    assert parse_net_name(name) == expected


@pytest.mark.parametrize("bad", ["STN-X3", "foo", "STN-C", "STN-C3-itx"])
def test_parse_net_name_rejects(bad):
    with pytest.raises(ValueError, match=r"deep_stn.parse_net_name: expected"):
        parse_net_name(bad)


def test_bad_construction_names_the_argument():
    net = SN.classifier(width=W)
    with pytest.raises(ValueError, match=r"DeepSTN: expected one localizer per slot"):
        DeepSTN(net, [Slot("C", 0)], [])
    with pytest.raises(ValueError, match=r"DeepSTN: expected slots in increasing depth"):
        DeepSTN(net, [Slot("C", 3), Slot("C", 0)], [SN.localizer("F32", depth=3, net=net),
                                                    SN.localizer("F32", depth=0, net=net)])
    with pytest.raises(ValueError, match=r"DeepSTN: expected iterations to be an int >= 1"):
        DeepSTN(net, [Slot("C", 0)], [SN.localizer("F32", depth=0, net=net)], iterations=0)
