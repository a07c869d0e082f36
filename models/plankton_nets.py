"""The PlanktonSet networks of 000 App. A.4: the classifier, its localizer, LR multipliers.

Classifier (``build("CNN")``, a :class:`models.layer_nets.LayerNet` on ``(1, 95, 95)``)::

    C(32)-C(32)-MP-C(64)-C(64)-MP-C(128)-C(128)-C(128)-MP-C(256)-C(256)-C(256)-MP-
    F(512)-F(512)-F(121)

``C(N)`` is a 3x3 convolution with "same" padding (1; ours, 000 does not say), MP a 3x3
max-pool with stride 2 (no padding: 95 -> 47 -> 23 -> 11 -> 5), leaky ReLU with negative
slope 1/3 after every conv and hidden F layer, dropout 0.5 before each of the last three F
layers; the last F gives the logits (``n_classes``, 121; the stand-in uses 10). The
``width`` multiplier scales every conv and hidden F width, never depth, kernels, classes or
the localizer.

Layer list and the ST placement rule (000 App. A.4: "after any max-pooling layer at depth
X"; we use App. A.3's general form, right before the next conv, flatten or F layer, which
for X = 10 also puts the ST after the dropout that precedes the first F layer; that dropout
acts on the 256 x 5 x 5 map before ``flatten``). ``position`` = number of layers before the
ST; :data:`ST_POSITIONS` holds the table, the tests check it against the built network::

    idx  layer           idx  layer           idx  layer
     0   conv1 C(32)     12   conv6 C(128)    24   drop11
     1   act1            13   act6            25   flatten
     2   conv2 C(32)     14   conv7 C(128)    26   fc11 F(512)
     3   act2            15   act7            27   act11
     4   pool2           16   pool7           28   drop12
     5   conv3 C(64)     17   conv8 C(256)    29   fc12 F(512)
     6   act3            18   act8            30   act12
     7   conv4 C(64)     19   conv9 C(256)    31   drop13
     8   act4            20   act9            32   fc13 F(121)  (logits)
     9   pool4           21   conv10 C(256)
    10   conv5 C(128)    22   act10
    11   act5            23   pool10

    X         0      1     2      3     4      5     6     7      8     9     10
    position  0      2     5      7    10     12    14    17     19    21     25
    after     input  act1  pool2  act3  pool4  act5  act6  pool7  act8  act9  drop11
              (-)    (1)   (4)    (6)   (9)    (11)  (13)  (16)   (18)  (20)  (24)  <- index
    000's depths {0, 2, 4, 7, 10} see maps 1x95x95, 32x47x47, 64x23x23, 128x11x11,
    256x5x5 (width 1).

Localizer: ``localizer(depth=X)`` = F(64)-F(64) with plain ReLU on the map at X, then the
zero-initialized 6-output layer (eq. 17). 000 states no parameter counts for PlanktonSet;
:func:`param_counts` reports ours.
"""

from __future__ import annotations

from torch import nn

from models.errors import ConfigError as UsageError

from .layer_nets import LayerNet, Localizer, count_params, numel, scaled

__all__ = [
    "IN_SHAPE",
    "N_CLASSES",
    "CONV_WIDTHS",
    "POOL_AFTER",
    "FC_WIDTHS",
    "LEAK",
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

IN_SHAPE = (1, 95, 95)
N_CLASSES = 121
CONV_WIDTHS = (32, 32, 64, 64, 128, 128, 128, 256, 256, 256)
POOL_AFTER = (2, 4, 7, 10)
FC_WIDTHS = (512, 512)
KERNEL = 3
LEAK = 1 / 3
DROPOUT = 0.5
#: Depths of 000 Table V.
DEPTHS = (0, 2, 4, 7, 10)
#: X -> number of layers before the ST (see the module docstring's table).
ST_POSITIONS = {0: 0, 1: 2, 2: 5, 3: 7, 4: 10, 5: 12, 6: 14, 7: 17, 8: 19, 9: 21, 10: 25}
#: X -> name of the layer the ST follows (``None``: the input).
ST_AFTER = {0: None, 1: "act1", 2: "pool2", 3: "act3", 4: "pool4", 5: "act5", 6: "act6",
            7: "pool7", 8: "act8", 9: "act9", 10: "drop11"}
NETS = (("CNN",) + tuple(f"STN-C{x}" for x in DEPTHS)
        + tuple(f"STN-{k}{x}" for k in ("DL", "SL") for x in DEPTHS if x > 0))

#: Localization learning-rate multipliers chosen on the validation set in 000 App. A.4,
#: by number of iterations (searched in 0.01..1 by factors of ~3). Two iterations: DL4 and
#: SL4 were still worse than one iteration; three iterations only for C0 (worse than two).
LOC_LR_MULTIPLIERS = {
    1: {"STN-C0": 0.3, "STN-C2": 0.3, "STN-C4": 0.3, "STN-C7": 0.03, "STN-C10": 0.1,
        "STN-SL2": 0.1, "STN-SL4": 0.1, "STN-SL7": 0.03, "STN-SL10": 0.03,
        "STN-DL2": 0.3, "STN-DL4": 1.0, "STN-DL7": 1.0, "STN-DL10": 1.0},
    2: {"STN-C0": 0.1, "STN-DL2": 0.3, "STN-SL2": 0.01, "STN-SL7": 0.003, "STN-DL4": 0.1,
        "STN-SL4": 0.03},
    3: {"STN-C0": 0.03},
}
#: SL's shared layers: not stated for PlanktonSet; we take App. A.3's rule (the
#: classifier's rate) -- an assumption.
SHARED_LR_MULTIPLIER = 1.0
#: 000 App. A.4 training.
PAPER_SCHEDULE = {"batch": 64, "iterations": 215_000, "lr": 0.003,
                  "lr_divided_by_10_at": (180_000, 205_000), "nesterov_momentum": 0.8,
                  "weight_decay": 2e-4, "seeds": 4}


def _check_width(width, fn: str) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ValueError(f"{fn}: expected width (a multiplier of every conv / F width) in "
                         f"(0, 4], got {width!r}")
    return float(width)


def classifier(*, width: float = 1.0, n_classes: int = N_CLASSES, dropout: float = DROPOUT,
               in_shape=IN_SHAPE) -> LayerNet:
    """The App. A.4 classifier (``"CNN"``) as a :class:`LayerNet`.

    Args:
        width: multiplier of every conv and hidden F width (never the depth).
        n_classes: outputs of the last F layer (121; 10 on the stand-in).
        dropout: probability of the dropouts before the last three F layers (0.5).
        in_shape: ``(C, 95, 95)`` (the spatial size is the paper's; C may differ).

    Returns:
        a :class:`LayerNet`; ``forward(x (N, 1, 95, 95)) -> (N, n_classes)``.
    """
    fn = "plankton_nets.classifier"
    width = _check_width(width, fn)
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"{fn}: expected n_classes to be an int >= 2, got {n_classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"{fn}: expected dropout in [0, 1), got {dropout!r}")
    layers, c, side = [], in_shape[0], in_shape[1]
    for i, w in enumerate(CONV_WIDTHS, start=1):
        cw = scaled(w, width)
        layers += [(f"conv{i}", nn.Conv2d(c, cw, KERNEL, padding=KERNEL // 2)),
                   (f"act{i}", nn.LeakyReLU(LEAK))]
        if i in POOL_AFTER:
            layers.append((f"pool{i}", nn.MaxPool2d(3, stride=2)))
            side = (side - 3) // 2 + 1
        c = cw
    n = len(CONV_WIDTHS)
    layers += [(f"drop{n + 1}", nn.Dropout(dropout)), ("flatten", nn.Flatten())]
    f = c * side * side
    for i, w in enumerate(FC_WIDTHS, start=n + 1):
        fw = scaled(w, width)
        layers += [(f"fc{i}", nn.Linear(f, fw)), (f"act{i}", nn.LeakyReLU(LEAK)),
                   (f"drop{i + 1}", nn.Dropout(dropout))]
        f = fw
    layers.append((f"fc{n + len(FC_WIDTHS) + 1}", nn.Linear(f, n_classes)))
    return LayerNet(in_shape, layers)


def localizer(*, depth: int = 0, width: float = 1.0, net: LayerNet | None = None,
              in_shape=IN_SHAPE) -> Localizer:
    """000 App. A.4's base localizer F(64)-F(64) (plain ReLU) on the map at ``depth``.

    Returns:
        :class:`models.layer_nets.Localizer`: ``(N, *map) -> (N, 2, 3)``, identity at init.
    """
    net = classifier(width=width, in_shape=in_shape) if net is None else net
    layers: list[nn.Module] = [nn.Flatten()]
    f = numel(net.shape_at_depth(depth))
    for u in (64, 64):
        layers += [nn.Linear(f, u), nn.ReLU()]
        f = u
    return Localizer(nn.Sequential(*layers), f)


def build(net: str, **config) -> nn.Module:
    """Build a network by name: ``"CNN"`` (``width``, ``n_classes``, ``dropout``,
    ``in_shape``) or ``"loc-F64"`` (``depth``, ``width``, ``in_shape``).

    The STN variants of :data:`NETS` are assembled from these by the placement objects
    (issue 11); asking for one here is an error that says so.
    """
    if net == "CNN":
        return classifier(**config)
    if net == "loc-F64":
        return localizer(**config)
    raise UsageError(f"plankton_nets.build: expected net 'CNN' or 'loc-F64' (STN variants are "
                     f"assembled by the placement objects), got {net!r}")


def lr_multipliers(net: str, *, iterations: int = 1) -> dict[str, float]:
    """Per-module learning-rate multipliers of ``net`` (000 App. A.4), as configuration.

    Returns:
        ``{"classifier": 1.0}`` for the CNN; for an STN also ``"localizer"`` and, for SL,
        ``"shared"``.

    Raises:
        UsageError: unknown ``net`` or an (iterations, net) pair 000 gives no value for.
    """
    fn = "plankton_nets.lr_multipliers"
    if net not in NETS:
        raise UsageError(f"{fn}: expected net in {list(NETS)}, got {net!r}")
    if net == "CNN":
        return {"classifier": 1.0}
    table = LOC_LR_MULTIPLIERS.get(iterations, {})
    if net not in table:
        listed = sorted((it, n) for it, t in LOC_LR_MULTIPLIERS.items() for n in t)
        raise UsageError(f"{fn}: expected (iterations, net) among 000's settings {listed}, got "
                         f"({iterations!r}, {net!r})")
    out = {"classifier": 1.0, "localizer": table[net]}
    if net.startswith("STN-SL"):
        out["shared"] = SHARED_LR_MULTIPLIER
    return out


def param_counts(*, width: float = 1.0, n_classes: int = N_CLASSES) -> dict[str, int]:
    """Learnable parameters of every network of Table V, composed from the parts.

    ``STN-CX`` = ``STN-SLX`` = CNN + F64 localizer at X (SL shares, adds none);
    ``STN-DLX`` = CNN + copies of the layers before position(X) + F64 at X.
    """
    cnn = classifier(width=width, n_classes=n_classes)
    n_cnn = count_params(cnn)
    loc = {x: count_params(localizer(depth=x, net=cnn)) for x in DEPTHS}
    out = {"CNN": n_cnn}
    for x in DEPTHS:
        out[f"STN-C{x}"] = n_cnn + loc[x]
    for x in DEPTHS[1:]:
        out[f"STN-DL{x}"] = n_cnn + count_params(cnn.prefix(x)) + loc[x]
        out[f"STN-SL{x}"] = n_cnn + loc[x]
    return out
