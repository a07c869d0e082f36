"""000 Table VI: architectures, shapes and parameter counts of the 15 MNIST networks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.mnist_nets import (NETS, SPECS, TABLE_VI_PARAMS, VARIANT_SHAPES, build,
                               count_params, param_counts, spec)
from models.stn import ConvSpec, STNNet

# (T) STN-C1 / DL1 / SL1 come out 20 above Table VI (one 20-unit bias; see mnist_nets).
T_KNOWN_EXCESS = {"STN-C1": 20, "STN-DL1": 20, "STN-SL1": 20}


@pytest.fixture(scope="module")
def counts():
    return param_counts()


@pytest.mark.parametrize("variant", list(VARIANT_SHAPES))
def test_param_counts_equal_table_vi(counts, variant):
    for net in NETS:
        diff = counts[variant][net] - TABLE_VI_PARAMS[variant][net]
        if variant == "T" and net in T_KNOWN_EXCESS:
            assert diff == T_KNOWN_EXCESS[net], net
        else:
            assert diff == 0, (variant, net, diff)


def test_param_count_check_can_fail():
    """Pooling after the last (T) localization conv (which App. A.1 rules out) changes the count."""
    s = spec("T", "STN-DL1")
    loc = list(s.localization)
    loc[1] = ConvSpec(20, 5, pool=True)
    m = STNNet(VARIANT_SHAPES["T"], s.classifier, placement=s.placement, localization=loc,
               st_out_scale=s.st_out_scale)
    assert count_params(m) != TABLE_VI_PARAMS["T"]["STN-DL1"] + 20


@pytest.mark.parametrize("variant", list(VARIANT_SHAPES))
def test_shapes_of_every_network(variant):
    x = torch.randn(3, *VARIANT_SHAPES[variant])
    for net in NETS:
        m = build(variant, net)
        logits, theta = m(x, return_theta=True)
        assert logits.shape == (3, 10) and theta.shape == (3, 2, 3)


def test_table_vi_layout():
    r = spec("R", "CNN")
    assert [(c.channels, c.kernel) for c in r.classifier] == [(32, 9), (32, 7)]
    assert [(c.channels, c.kernel) for c in spec("T", "CNN").classifier] == [(21, 9), (32, 7)]
    assert [(c.channels, c.kernel) for c in spec("S", "CNN").classifier] == [(23, 9), (21, 7)]
    for (v, n), s in SPECS.items():
        convs = [c for c in s.localization if isinstance(c, ConvSpec)]
        assert all(c.kernel == 5 for c in convs)
        last_pools = convs[-1].pool if convs else None
        if v == "T" and n in ("STN-C1", "STN-DL1", "STN-SL1"):
            assert last_pools is False
        elif convs:
            assert last_pools is True
        assert s.st_out_scale == (0.5 if v == "T" and n != "CNN" else 1.0)
        assert s.loc_downsample == (2 if (v, n) == ("S", "STN-C0") else 1)
    assert dataclasses.is_dataclass(r)


@pytest.mark.parametrize("variant, net, match", [("R", "STN-C2", "net"), ("X", "CNN", "variant")])
def test_unknown_names(variant, net, match):
    with pytest.raises(ValueError, match=match):
        build(variant, net)
