"""The SVHN networks of 000 App. A.3: the classifier, its localizers, learning-rate multipliers.

Classifier (``build("CNN")``, a :class:`models.layer_nets.LayerNet` on ``(3, 64, 64)``)::

    C(48)-MP-C(64)-C(128)-MP-C(160)-C(192)-MP-C(192)-C(192)-MP-C(192)-F(3072)-F(3072)-F(3072)

followed by five parallel ``F(11)`` heads (digit 0..9 or 10 = "none" per position,
:data:`models.data.svhn.NONE_CLASS`): output ``(N, 5, 11)``. ``C(N)`` is a 5x5 convolution
with "same" padding (2; ours -- 000 does not say, but it makes the last map 192 x 4 x 4 =
3072, the width of the first F layer), MP a 2x2/2 max-pool, ReLU after every conv and F
layer, dropout 0.5 after every layer but the first (after its pool where it has one). The
``width`` multiplier scales every conv and hidden F width (``round(n * width)``, at least
1); depth, kernels, heads and localizers are never changed.

Layer list and the ST placement rule (000 App. A.3: "after the first X convolutional layers
and after any max pooling or dropout layers that follow the last of those", i.e. right
before the next conv or F layer). ``position`` is the number of layers before the ST
(:meth:`LayerNet.st_position`); :data:`ST_POSITIONS` holds this table as data and the
tests check it against the built network::

    idx  layer           idx  layer           idx  layer
     0   conv1 C(48)     13   conv5 C(192)    27   flatten
     1   relu1           14   relu5           28   fc9 F(3072)
     2   pool1           15   pool5           29   relu9
     3   conv2 C(64)     16   drop5           30   drop9
     4   relu2           17   conv6 C(192)    31   fc10 F(3072)
     5   drop2           18   relu6           32   relu10
     6   conv3 C(128)    19   drop6           33   drop10
     7   relu3           20   conv7 C(192)    34   fc11 F(3072)
     8   pool3           21   relu7           35   relu11
     9   drop3           22   pool7           36   drop11
    10   conv4 C(160)    23   drop7           + heads: 5 x F(11)
    11   relu4           24   conv8 C(192)
    12   drop4           25   relu8
                         26   drop8

    X         0      1      2      3      4      5      6      7      8
    position  0      3      6     10     13     17     20     24     27
    after     input  pool1  drop2  drop3  drop4  drop5  drop6  drop7  drop8
              (-)    (2)    (5)    (9)    (12)   (16)   (19)   (23)   (26)   <- layer index
    map seen  3x64x64, 48x32x32, 64x32x32, 128x16x16, 160x16x16, 192x8x8, 192x8x8,
              192x4x4, 192x4x4                     (width 1)

000 uses X in {0, 3, 6, 8} (Table IV) and STs at 0, 1, 2, 3 for STN-C0123 / SL0123
(Table III).

Localizers (ReLU, no dropout; the 6-output layer is zero-initialized per eq. 17,
:class:`models.layer_nets.Localizer`):

* ``localizer("C0-large")``: C(32)-MP-C(32)-F(32)-F(32) on the input (5x5 "same" convs,
  2x2/2 pool: 32 x 32 x 32 = 32768 features into the first F(32));
* ``localizer("F32", depth=X)``: F(32)-F(32) on the map at depth X (STN-C0123 / SL0123 and
  all of Sec. IV-B3's CX / DLX / SLX).

Parameter counts: :func:`param_counts`. 000 states none for SVHN (its Table VI is MNIST
only), so there is nothing to compare with; the counts are reported as measured.
"""

from __future__ import annotations

from torch import nn

from models.errors import ConfigError as UsageError

from .layer_nets import LayerNet, Localizer, count_params, numel, scaled

__all__ = [
    "IN_SHAPE",
    "CONV_WIDTHS",
    "POOL_AFTER",
    "FC_WIDTHS",
    "HEADS",
    "HEAD_CLASSES",
    "DEPTHS",
    "ST_POSITIONS",
    "ST_AFTER",
    "NETS",
    "LOC_LR_MULTIPLIERS",
    "SHARED_LR_MULTIPLIER",
    "PAPER_SCHEDULE",
    "classifier",
    "localizer",
    "build",
    "lr_multipliers",
    "param_counts",
]

IN_SHAPE = (3, 64, 64)
CONV_WIDTHS = (48, 64, 128, 160, 192, 192, 192, 192)
#: Convolutions (1-based) followed by a 2x2/2 max-pool.
POOL_AFTER = (1, 3, 5, 7)
FC_WIDTHS = (3072, 3072, 3072)
HEADS = 5
HEAD_CLASSES = 11
KERNEL = 5
DROPOUT = 0.5
#: Depths of 000 Table IV.
DEPTHS = (0, 3, 6, 8)
#: X -> number of layers before the ST (see the module docstring's table).
ST_POSITIONS = {0: 0, 1: 3, 2: 6, 3: 10, 4: 13, 5: 17, 6: 20, 7: 24, 8: 27}
#: X -> name of the layer the ST follows (``None``: the input).
ST_AFTER = {0: None, 1: "pool1", 2: "drop2", 3: "drop3", 4: "drop4", 5: "drop5", 6: "drop6",
            7: "drop7", 8: "drop8"}
#: Network names of Tables III and IV.
NETS = (("CNN", "STN-C0-large", "STN-C0123", "STN-SL0123")
        + tuple(f"STN-C{x}" for x in DEPTHS)
        + tuple(f"STN-{k}{x}" for k in ("DL", "SL") for x in DEPTHS if x > 0))

#: Learning-rate multiplier of the localization layers (the localizer's own layers and, for
#: DL, the copied classifier layers), relative to the base rate; by number of iterations
#: (000 App. A.3). One iteration: 0.01 except DL3 0.3, DL6 / DL8 0.1. Two iterations: the
#: values found best in 000's search ("SL8" and "DL3" were still worse than one iteration).
LOC_LR_MULTIPLIERS = {
    1: {"default": 0.01, "STN-DL3": 0.3, "STN-DL6": 0.1, "STN-DL8": 0.1},
    2: {"STN-C0": 0.001, "STN-SL3": 0.01, "STN-SL6": 0.003, "STN-SL8": 0.0003,
        "STN-DL3": 0.03},
}
#: SL: the layers shared with the classifier keep the classifier's rate (000 App. A.3).
SHARED_LR_MULTIPLIER = 1.0
#: 000 App. A.3 training (momentum is not stated there).
PAPER_SCHEDULE = {"batch": 128, "phases": ((120_000, 0.03), (120_000, 0.003), (60_000, 0.0003)),
                  "weight_decay": 2e-4, "seeds": 3}


def _check_width(width, fn: str) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ValueError(f"{fn}: expected width (a multiplier of every conv / F width) in "
                         f"(0, 4], got {width!r}")
    return float(width)


def classifier(*, width: float = 1.0, dropout: float = DROPOUT) -> LayerNet:
    """The App. A.3 classifier (``"CNN"``) as a :class:`LayerNet` with five ``F(11)`` heads.

    Args:
        width: multiplier of every conv and hidden F width (never the depth).
        dropout: dropout probability after every layer but the first (0.5 in 000).

    Returns:
        a :class:`LayerNet`; ``forward(x (N, 3, 64, 64)) -> (N, 5, 11)``.
    """
    fn = "svhn_nets.classifier"
    width = _check_width(width, fn)
    if not 0 <= dropout < 1:
        raise ValueError(f"{fn}: expected dropout in [0, 1), got {dropout!r}")
    layers, c = [], IN_SHAPE[0]
    for i, w in enumerate(CONV_WIDTHS, start=1):
        cw = scaled(w, width)
        layers += [(f"conv{i}", nn.Conv2d(c, cw, KERNEL, padding=KERNEL // 2)),
                   (f"relu{i}", nn.ReLU())]
        if i in POOL_AFTER:
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
        if i > 1:
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        c = cw
    side = IN_SHAPE[1] // 2 ** len(POOL_AFTER)
    layers.append(("flatten", nn.Flatten()))
    f = c * side * side
    for i, w in enumerate(FC_WIDTHS, start=len(CONV_WIDTHS) + 1):
        fw = scaled(w, width)
        layers += [(f"fc{i}", nn.Linear(f, fw)), (f"relu{i}", nn.ReLU()),
                   (f"drop{i}", nn.Dropout(dropout))]
        f = fw
    heads = [nn.Linear(f, HEAD_CLASSES) for _ in range(HEADS)]
    return LayerNet(IN_SHAPE, layers, heads)


def _fc_body(in_shape, units) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    f = numel(in_shape)
    for u in units:
        layers += [nn.Linear(f, u), nn.ReLU()]
        f = u
    return nn.Sequential(*layers), f


def localizer(kind: str, *, depth: int = 0, width: float = 1.0, net: LayerNet | None = None
              ) -> Localizer:
    """A localization network of 000 App. A.3 (zero-initialized last layer, eq. 17).

    Args:
        kind: ``"C0-large"`` (C(32)-MP-C(32)-F(32)-F(32) on the input) or ``"F32"``
            (F(32)-F(32) on the map at ``depth``).
        depth: X for ``"F32"`` (the map it sees is the classifier's at X).
        width: the classifier's width multiplier (sets the map's channels; the localizer's
            own widths are the paper's).
        net: the classifier, to read the map shape from (built if omitted).

    Returns:
        :class:`models.layer_nets.Localizer`: ``(N, *map) -> (N, 2, 3)``.
    """
    fn = "svhn_nets.localizer"
    if kind == "C0-large":
        c = IN_SHAPE[0]
        body = nn.Sequential(nn.Conv2d(c, 32, KERNEL, padding=KERNEL // 2), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(32, 32, KERNEL, padding=KERNEL // 2),
                             nn.ReLU())
        side = IN_SHAPE[1] // 2
        fc, f = _fc_body((32, side, side), (32, 32))
        return Localizer(nn.Sequential(*body, *fc), f)
    if kind == "F32":
        net = classifier(width=width) if net is None else net
        body, f = _fc_body(net.shape_at_depth(depth), (32, 32))
        return Localizer(body, f)
    raise UsageError(f"{fn}: expected kind 'C0-large' or 'F32', got {kind!r}")


def build(net: str, **config) -> nn.Module:
    """Build a network by name: ``"CNN"`` (the classifier; ``config``: ``width``,
    ``dropout``), or a localizer: ``"loc-C0-large"``, ``"loc-F32"`` (``depth``, ``width``).

    The STN variants of :data:`NETS` are assembled from these by the placement objects
    (issue 11); asking for one here is an error that says so.
    """
    if net == "CNN":
        return classifier(**config)
    if net == "loc-C0-large":
        return localizer("C0-large", **config)
    if net == "loc-F32":
        return localizer("F32", **config)
    raise UsageError(f"svhn_nets.build: expected net 'CNN', 'loc-C0-large' or 'loc-F32' (STN "
                     f"variants are assembled by the placement objects), got {net!r}")


def lr_multipliers(net: str, *, iterations: int = 1) -> dict[str, float]:
    """Per-module learning-rate multipliers of ``net`` (000 App. A.3), as configuration.

    Returns:
        ``{"classifier": 1.0}`` for the CNN; for an STN also ``"localizer"`` (its own layers
        and, for DL, the copied ones) and, for SL, ``"shared": 1.0``.

    Raises:
        UsageError: unknown ``net``, or an iteration count 000 gives no multiplier for.
    """
    fn = "svhn_nets.lr_multipliers"
    if net not in NETS:
        raise UsageError(f"{fn}: expected net in {list(NETS)}, got {net!r}")
    if net == "CNN":
        return {"classifier": 1.0}
    table = LOC_LR_MULTIPLIERS.get(iterations)
    if table is None or (net not in table and "default" not in table):
        listed = sorted((it, n) for it, t in LOC_LR_MULTIPLIERS.items() for n in t)
        raise UsageError(f"{fn}: expected (iterations, net) among 000's settings {listed}, got "
                         f"({iterations!r}, {net!r})")
    out = {"classifier": 1.0, "localizer": table.get(net, table.get("default"))}
    if net.startswith("STN-SL"):
        out["shared"] = SHARED_LR_MULTIPLIER
    return out


def param_counts(*, width: float = 1.0) -> dict[str, int]:
    """Learnable parameters of every network of Tables III / IV, composed from the parts.

    ``CNN`` = the classifier; ``STN-C0-large`` = CNN + the large localizer; ``STN-C0123`` =
    ``STN-SL0123`` = CNN + F32 localizers at X = 0, 1, 2, 3 (SL shares the classifier's
    layers, adding none); ``STN-CX`` = ``STN-SLX`` = CNN + F32 at X; ``STN-DLX`` = CNN +
    copies of the first X convs (their layers before position(X)) + F32 at X.
    """
    cnn = classifier(width=width)
    n_cnn = count_params(cnn)
    loc = {x: count_params(localizer("F32", depth=x, net=cnn)) for x in range(len(CONV_WIDTHS) + 1)}
    out = {"CNN": n_cnn,
           "STN-C0-large": n_cnn + count_params(localizer("C0-large")),
           "STN-C0123": n_cnn + sum(loc[x] for x in range(4)),
           "STN-SL0123": n_cnn + sum(loc[x] for x in range(4))}
    for x in DEPTHS:
        out[f"STN-C{x}"] = n_cnn + loc[x]
    for x in DEPTHS[1:]:
        out[f"STN-DL{x}"] = n_cnn + count_params(cnn.prefix(x)) + loc[x]
        out[f"STN-SL{x}"] = n_cnn + loc[x]
    return out
