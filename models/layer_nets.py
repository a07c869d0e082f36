"""Deep classifiers as one ordered list of layers, and identity-initialized localizers.

The SVHN and PlanktonSet networks of 000 (App. A.3, A.4; :mod:`models.svhn_nets`,
:mod:`models.plankton_nets`) are :class:`LayerNet` s: every operation (conv, activation,
pool, dropout, flatten, linear) is one named entry of ``layers``, so "the network up to
depth X" is a prefix ``layers[:p]`` and an ST can be inserted at any position ``p``. Where
it goes for a depth ``X`` is :meth:`LayerNet.st_position` (000 App. A.3: after the first
``X`` convolutions and any activation / pool / dropout that follows, i.e. right before the
next conv, flatten or linear layer). The placements themselves (C / DL / SL, C0123,
iterations) are built elsewhere on top of these pieces.

:class:`Localizer` is 000 eq. 17: the last layer's weights and biases are zero and the six
outputs ``o`` become ``[[o1 + 1, o2, o3], [o4, o5 + 1, o6]]``
(:func:`sampling.geometry.offsets_to_matrix`), so L2 regularization pulls towards the
identity.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from sampling import geometry
from sampling.checks import check_shape

__all__ = ["LayerNet", "Localizer", "scaled", "count_params", "he_init_", "INITS", "STOP_KINDS"]

#: Weight initializations of the deep suites' networks: ``"pytorch"`` (PyTorch's default
#: uniform bounds, which 000 App. A.3 / A.4 state) and ``"he"`` (He et al. 2015).
INITS = ("pytorch", "he")

#: Layer types before which an ST may stand: the next "real" layer after depth X.
STOP_KINDS = (nn.Conv2d, nn.Flatten, nn.Linear)


def scaled(n: int, width: float) -> int:
    """A width ``n`` times the multiplier, rounded, at least 1 (depth is never changed)."""
    return max(1, int(round(n * width)))


def count_params(module: nn.Module) -> int:
    """Learnable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class LayerNet(nn.Module):
    """A classifier as an ordered list of named layers (optionally with parallel heads).

    Args:
        in_shape: input ``(C, H, W)``.
        layers: ``[(name, module), ...]`` in execution order.
        heads: ``None`` (the last layer gives the logits) or parallel output layers, each
            applied to the last layer's output (000 App. A.3's five ``F(11)`` heads).

    Shapes:
        ``forward(x (N, C, H, W))`` -> ``(N, K)`` without heads, ``(N, n_heads, K)`` with.
    """

    def __init__(self, in_shape, layers, heads=None):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.layers = nn.Sequential(OrderedDict(layers))
        self.heads = None if heads is None else nn.ModuleList(heads)

    @property
    def names(self) -> list[str]:
        """Layer names in order."""
        return [n for n, _ in self.layers.named_children()]

    def n_convs(self) -> int:
        """Number of convolutional layers (the depths X run over ``0..n_convs()``)."""
        return sum(isinstance(m, nn.Conv2d) for m in self.layers)

    def st_position(self, depth: int) -> int:
        """Where an ST at depth ``X = depth`` goes: the number of layers before it.

        000 App. A.3: after the first ``X`` convolutions and any pool or dropout (and the
        activation) that follows the last of them, i.e. right before the next conv, flatten
        or linear layer; ``X = 0`` is before everything.

        Raises:
            ValueError: ``depth`` not an int in ``0..n_convs()``.
        """
        n = self.n_convs()
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= n:
            raise ValueError(f"LayerNet.st_position: expected depth X to be an int in "
                             f"0..{n} (the number of convolutions), got {depth!r}")
        if depth == 0:
            return 0
        seen = 0
        mods = list(self.layers)
        for i, m in enumerate(mods):
            if isinstance(m, nn.Conv2d):
                seen += 1
                if seen == depth:
                    j = i + 1
                    while j < len(mods) and not isinstance(mods[j], STOP_KINDS):
                        j += 1
                    return j
        raise AssertionError("unreachable: depth checked above")  # pragma: no cover

    def run(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Apply ``layers[start:stop]`` to ``h`` (a prefix, a suffix or a slice)."""
        for m in list(self.layers)[start:stop]:
            h = m(h)
        return h

    def prefix(self, depth: int) -> nn.Sequential:
        """The very modules (shared, not copies) before the ST at depth ``X``."""
        return self.layers[: self.st_position(depth)]

    def output(self, h: torch.Tensor) -> torch.Tensor:
        """Heads (if any) on the last layer's output: ``(N, n_heads, K)`` or ``h``."""
        if self.heads is None:
            return h
        return torch.stack([head(h) for head in self.heads], dim=1)  # (N, n_heads, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the plain classifier (no ST)."""
        check_shape(x, "N C H W", name="x", fn="LayerNet.forward",
                    dims=dict(zip("CHW", self.in_shape)))
        return self.output(self.layers(x))

    @torch.no_grad()
    def shape_at(self, position: int) -> tuple[int, ...]:
        """Per-example shape of the tensor entering ``layers[position]`` (a dry run)."""
        was = self.training
        self.eval()
        try:
            p = next(self.parameters())
            h = torch.zeros(1, *self.in_shape, dtype=p.dtype, device=p.device)
            return tuple(self.run(h, 0, position).shape[1:])
        finally:
            self.train(was)

    def shape_at_depth(self, depth: int) -> tuple[int, ...]:
        """Shape of the tensor an ST at depth ``X`` sees (and warps, for STN-CX)."""
        return self.shape_at(self.st_position(depth))


class Localizer(nn.Module):
    """A localization body and a zero-initialized 6-output layer -> ``input_from_output``.

    Convention:
        The six outputs ``o`` give ``input_from_output = [[o1 + 1, o2, o3], [o4, o5 + 1,
        o6]]`` (000 eq. 17) in normalized coordinates of the tensor being warped, ``(x, y)``
        order; at initialization (zero weights and bias) it is the identity.

    Args:
        body: maps the localization input to ``(N, features)``.
        features: width of ``body``'s output.

    Shapes:
        ``forward(h)`` -> ``(N, 2, 3)``.
    """

    def __init__(self, body: nn.Module, features: int):
        super().__init__()
        self.body = body
        self.out = nn.Linear(features, 6)
        with torch.no_grad():  # 000 eq. 17: zero weights and biases
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` -> ``input_from_output`` ``(N, 2, 3)``."""
        return geometry.offsets_to_matrix(self.out(self.body(h)))  # (N, 6) -> (N, 2, 3)


def numel(shape) -> int:
    """Product of a shape."""
    n = 1
    for s in shape:
        n *= int(s)
    return n


def he_init_(module: nn.Module, *, negative_slope: float = 0.0) -> nn.Module:
    """He (Kaiming) normal initialization, in place, of every ``Conv2d`` / ``Linear`` weight
    of ``module`` (fan-in, gain for a (leaky) ReLU of ``negative_slope``), biases zero;
    :class:`Localizer` output layers keep their zero initialization (000 eq. 17).

    Why: with PyTorch's default bounds each conv / F layer scales the forward variance by
    about 1/6 through a ReLU (weights ~ U(+-1/sqrt(fan_in)): variance 1/(3 fan_in), half
    of it passed), so an 11-layer classifier starts with its signal ~6^-11 of the input's;
    He's ``std = gain / sqrt(fan_in)`` keeps it at 1. Returns ``module``.
    """
    keep = {id(m.out) for m in module.modules() if isinstance(m, Localizer)}
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in keep:
                nn.init.kaiming_normal_(m.weight, a=negative_slope, nonlinearity="leaky_relu")
                if m.bias is not None:
                    m.bias.zero_()
    return module
