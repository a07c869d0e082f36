"""The MNIST networks of 000 Table VI as data: one spec table, one builder.

Every network is an :class:`models.stn.STNNet`; the table below fixes its classifier
convs, the ST placement and the localization layers (000 App. A.1):

* classifier convs are 9x9 then 7x7, localization convs 5x5, all unpadded;
* every conv is followed by ReLU and a 2x2/2 max-pool, except the last localization conv
  of STN-C1 / DL1 / SL1 on (T);
* the ST on (T) outputs half the pixel width of what it warps;
* on (S), STN-C0's localization network sees the 112x112 input downsampled 2x (we use a
  2x2 average pool);
* ReLU everywhere; the final classifier layer is a 10-way linear layer (softmax in the loss),
  the final localization layer a 6-output linear layer initialised to the identity.

Parameter counts (``param_counts()``) reproduce Table VI exactly on (R) and (S) and for
CNN / STN-C0 on (T). STN-C1 / DL1 / SL1 on (T) come out 20 above the table (67108 / 66820 /
65508 vs 67088 / 66800 / 65488). 20 is exactly the bias vector of one 20-unit layer (the
C(20) convs or the F(20) layer of those localization networks); all other layer sizes are
forced by the table and the text (the 7x7x20 map before F(20) follows from "no pool after
the last localization conv"), so our reading is that 000's code had one bias-free 20-unit
layer there. We keep biases everywhere rather than guess which layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

from .stn import ConvSpec as Conv
from .stn import DenseSpec as Dense
from .stn import Placement, STNNet

__all__ = ["VARIANT_SHAPES", "NETS", "NetSpec", "SPECS", "TABLE_VI_PARAMS", "build",
           "spec", "param_counts"]

#: Input (C, H, W) of each perturbed MNIST variant (000 Sec. IV-A).
VARIANT_SHAPES = {"R": (1, 28, 28), "T": (1, 60, 60), "S": (1, 112, 112)}
NETS = ("CNN", "STN-C0", "STN-C1", "STN-DL1", "STN-SL1")

#: 000 Table VI, parameter counts (paper).
TABLE_VI_PARAMS = {
    "R": {"CNN": 54122, "STN-C0": 53744, "STN-C1": 53984, "STN-DL1": 55296, "STN-SL1": 53984},
    "T": {"CNN": 66692, "STN-C0": 67138, "STN-C1": 67088, "STN-DL1": 66800, "STN-SL1": 65488},
    "S": {"CNN": 136674, "STN-C0": 136448, "STN-C1": 137072, "STN-DL1": 138384,
          "STN-SL1": 137072},
}


@dataclass(frozen=True)
class NetSpec:
    """One row of 000 Table VI."""

    variant: str
    name: str
    classifier: tuple
    placement: Placement | None = None
    localization: tuple = ()
    st_out_scale: float = 1.0
    loc_downsample: int = 1


def _cls(c1: int, c2: int) -> tuple:
    return (Conv(c1, 9), Conv(c2, 7))


def _table() -> dict[tuple[str, str], NetSpec]:
    C0, C1 = Placement("C", 0), Placement("C", 1)
    DL1, SL1 = Placement("DL", 1), Placement("SL", 1)
    rows = []
    # (R): 28x28; localization fully connected.
    fc16x3 = (Dense(16), Dense(16), Dense(16))
    rows += [
        NetSpec("R", "CNN", _cls(32, 32)),
        NetSpec("R", "STN-C0", _cls(16, 32), C0, (Dense(32), Dense(16), Dense(16))),
        NetSpec("R", "STN-C1", _cls(16, 32), C1, fc16x3),
        NetSpec("R", "STN-DL1", _cls(16, 32), DL1, fc16x3),
        NetSpec("R", "STN-SL1", _cls(16, 32), SL1, fc16x3),
    ]
    # (T): 60x60, ST output at half width; no pool after the last loc conv of C1/DL1/SL1.
    loc_t1 = (Conv(20, 5), Conv(20, 5, pool=False), Dense(20))
    rows += [
        NetSpec("T", "CNN", _cls(21, 32)),
        NetSpec("T", "STN-C0", _cls(16, 32), C0, (Conv(20, 5), Conv(20, 5), Dense(10)), 0.5),
        NetSpec("T", "STN-C1", _cls(16, 32), C1, loc_t1, 0.5),
        NetSpec("T", "STN-DL1", _cls(16, 32), DL1, loc_t1, 0.5),
        NetSpec("T", "STN-SL1", _cls(16, 32), SL1, loc_t1, 0.5),
    ]
    # (S): 112x112; STN-C0's localization input downsampled 2x.
    loc_s = (Conv(16, 5), Conv(16, 5), Dense(16))
    rows += [
        NetSpec("S", "CNN", _cls(23, 21)),
        NetSpec("S", "STN-C0", _cls(16, 16), C0, loc_s, 1.0, 2),
        NetSpec("S", "STN-C1", _cls(16, 16), C1, loc_s),
        NetSpec("S", "STN-DL1", _cls(16, 16), DL1, loc_s),
        NetSpec("S", "STN-SL1", _cls(16, 16), SL1, loc_s),
    ]
    return {(r.variant, r.name): r for r in rows}


SPECS = _table()


def spec(variant: str, net: str) -> NetSpec:
    """The :class:`NetSpec` of ``net`` on ``variant``; clear error for unknown names."""
    if variant not in VARIANT_SHAPES:
        raise ConfigError(f"mnist_nets: expected variant to be one of {list(VARIANT_SHAPES)}, "
                         f"got {variant!r}")
    if net not in NETS:
        raise ConfigError(f"mnist_nets: expected net (architecture) to be one of {list(NETS)}, "
                         f"got {net!r}")
    return SPECS[(variant, net)]


def build(variant: str, net: str, *, method: str = "bilinear", padding_mode: str = "border",
          sampler_options: dict | None = None) -> STNNet:
    """Build ``net`` for ``variant`` (fresh PyTorch default initialisation, identity ST)."""
    s = spec(variant, net)
    return STNNet(VARIANT_SHAPES[variant], s.classifier, 10, placement=s.placement,
                  localization=s.localization, st_out_scale=s.st_out_scale,
                  loc_downsample=s.loc_downsample, method=method, padding_mode=padding_mode,
                  sampler_options=sampler_options)


def count_params(model) -> int:
    """Learnable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_counts() -> dict[str, dict[str, int]]:
    """``{variant: {net: n_params}}`` for all 15 networks."""
    return {v: {n: count_params(build(v, n)) for n in NETS} for v in VARIANT_SHAPES}
