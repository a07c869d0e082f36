"""Feature extractors ``Γ`` to test feature-map alignment on.

* :func:`random_cnn` -- randomly initialised CNNs of configurable depth
  (conv / ReLU / 2×2 max-pool; circular or zero padding);
* :class:`OrientedBank` -- a rotation-closed bank of oriented Gaussian-derivative
  filters at 0°, 90°, 180°, 270°, built by exact index rotation (``torch.rot90``)
  so that 90° rotations permute its channels *exactly*;
* :class:`IsotropicBank` -- radially symmetric filters (Gaussian, ±Laplacian of
  Gaussian, difference of Gaussians), invariant to rotations;
* :class:`FeatureHook` -- the feature map after a named layer of any network
  (e.g. a trained model from :mod:`models`).

Convention:
    Extractors map ``(N, c, H, W)`` images to ``(N, C, H / s, W / s)`` feature maps
    (``s`` = :attr:`stride`). Convolutions are ``same``-padded with odd kernels and
    pooling uses non-overlapping ``s × s`` windows, so with ``align_corners=False``
    feature maps share the image's normalized frame (see :mod:`invariance.warps`).
    Orientation angles are on screen (``torch.rot90(w, k, dims=(-2, -1))`` turns a
    filter by ``k`` quarter turns counter-clockwise as displayed with row 0 on top).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F

from sampling.checks import check_choice, check_positive

__all__ = ["FeatureExtractor", "random_cnn", "OrientedBank", "IsotropicBank", "FeatureHook",
           "gaussian_kernel"]


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the invariance measurements need of a ``Γ``: a total stride and a forward.

    Every extractor here satisfies it (``random_cnn``'s ``nn.Sequential`` carries
    ``stride``; the banks and :class:`FeatureHook` define it).

    Attributes:
        stride: ``s``, the feature map's pixel size in image pixels.
    """

    stride: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, c, H, W)`` images -> ``(N, C, H / s, W / s)`` feature maps."""

PADDINGS = ("zeros", "circular")


def random_cnn(
    depth: int = 3,
    channels: int = 8,
    *,
    kernel_size: int = 3,
    pool_after: tuple[int, ...] = (),
    padding_mode: str = "zeros",
    in_channels: int = 1,
    seed: int = 0,
    dtype=torch.float32,
) -> nn.Sequential:
    """A randomly initialised CNN ``[conv -> ReLU (-> maxpool 2)] × depth``.

    Args:
        depth: number of conv layers (>= 1).
        channels: channels of every conv layer.
        kernel_size: odd kernel size (``same`` padding).
        pool_after: indices (0-based) of the conv layers followed by a 2×2 max-pool.
        padding_mode: ``"zeros"`` or ``"circular"`` (exactly translation covariant
            for integer shifts, INV-1).
        in_channels: image channels.
        seed: weights are drawn from ``torch.Generator().manual_seed(seed)``
            (He-normal weights, biases ``N(0, 0.1²)``).
        dtype: parameter dtype.

    Returns:
        ``nn.Sequential`` with an attribute ``stride`` (``2 ** len(pool_after)``).
    """
    fn = "random_cnn"
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"{fn}: expected depth to be an int >= 1, got {depth!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"{fn}: expected kernel_size to be an odd positive int, got {kernel_size!r}"
        )
    check_positive(channels, name="channels", fn=fn)
    check_choice(padding_mode, PADDINGS, name="padding_mode", fn=fn)
    bad = [i for i in pool_after if not (isinstance(i, int) and 0 <= i < depth)]
    if bad:
        raise ValueError(
            f"{fn}: expected pool_after indices in [0, {depth}), got {list(pool_after)}"
        )
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    cin = in_channels
    for i in range(depth):
        conv = nn.Conv2d(
            cin,
            channels,
            kernel_size,
            padding=kernel_size // 2,
            padding_mode=padding_mode,
            dtype=dtype,
        )
        with torch.no_grad():
            std = math.sqrt(2.0 / (cin * kernel_size * kernel_size))
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=dtype) * std)
            conv.bias.copy_(torch.randn(channels, generator=gen, dtype=dtype) * 0.1)
        layers += [conv, nn.ReLU()]
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
        cin = channels
    net = nn.Sequential(*layers)
    net.stride = 2 ** len(set(pool_after))
    net.requires_grad_(False)
    return net


def gaussian_kernel(size: int, sigma: float, *, dtype=torch.float64) -> tuple[torch.Tensor, ...]:
    """Sampled 2-D Gaussian on a centred odd grid: returns ``(g, x, y)``, each ``(size, size)``.

    ``x`` runs along columns (W), ``y`` along rows (H); ``g`` sums to 1.
    """
    r = size // 2
    ax = torch.arange(-r, r + 1, dtype=dtype)
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    g = torch.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return g / g.sum(), x, y


class _Bank(nn.Module):
    """Fixed filter bank ``conv (same padding) -> ReLU``; filters in a buffer."""

    def __init__(self, weight: torch.Tensor, padding_mode: str, dtype):
        super().__init__()
        check_choice(padding_mode, PADDINGS, name="padding_mode", fn=type(self).__name__)
        self.register_buffer("weight", weight.to(dtype))  # (C, 1, k, k)
        self.padding_mode = padding_mode
        self.stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, H, W) -> (N, C, H, W)
        """Filter and rectify: ``ReLU(w_c ⋆ x)``."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                f"{type(self).__name__}: expected x of shape (N, 1, H, W), got {tuple(x.shape)}"
            )
        p = self.weight.shape[-1] // 2
        w = self.weight.to(x.dtype)
        if self.padding_mode == "circular":
            return F.relu(F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), w))
        return F.relu(F.conv2d(x, w, padding=p))


class OrientedBank(_Bank):
    """Rotation-closed bank of oriented first-order Gaussian-derivative filters.

    For each ``sigma`` a base filter ``w_0 = ∂_x G_σ`` is turned by ``r`` quarter
    turns, ``w_r = rot90(w_0, direction · r)`` for ``r = 0..3`` (channels
    ``[σ_0: 0°, 90°, 180°, 270°, σ_1: ...]``), followed by ReLU. Since the rotation
    is an index permutation, rotating an image by ``k`` quarter turns permutes
    the channels exactly: ``Γ(rot_k f)_{(σ, r)} = rot_k(Γ(f)_{(σ, r − k)})``.

    Args:
        sigmas: Gaussian scales in pixels.
        size: odd kernel size (default ``2 ⌈3 max σ⌉ + 1``).
        padding_mode: ``"zeros"`` or ``"circular"``.
        direction: ``+1``; ``-1`` builds a deliberately *broken* bank whose filters
            turn the wrong way while :attr:`angles_deg` still declares ``90° r``
            (used to show the INV-4 check can fail).
        dtype: filter dtype.
    """

    def __init__(
        self,
        sigmas=(1.0, 2.0),
        *,
        size: int | None = None,
        padding_mode: str = "zeros",
        direction: int = 1,
        dtype=torch.float32,
    ):
        sigmas = tuple(float(s) for s in sigmas)
        for s in sigmas:
            check_positive(s, name="sigmas", fn="OrientedBank")
        size = size or 2 * math.ceil(3 * max(sigmas)) + 1
        if size % 2 == 0:
            raise ValueError(f"OrientedBank: expected an odd size, got {size}")
        if direction not in (1, -1):
            raise ValueError(f"OrientedBank: expected direction +1 or -1, got {direction!r}")
        filters = []
        for s in sigmas:
            g, x, _ = gaussian_kernel(size, s)
            base = -x / (s * s) * g  # ∂_x G_σ, (k, k)
            base = base / base.abs().sum()
            filters += [torch.rot90(base, direction * r, dims=(0, 1)) for r in range(4)]
        super().__init__(torch.stack(filters)[:, None], padding_mode, dtype)  # (4S, 1, k, k)
        self.sigmas = sigmas
        self.angles_deg = [90 * r for _ in sigmas for r in range(4)]

    def orientation_shift(self, k: int) -> torch.Tensor:
        """Expected permutation after rotating the image by ``k`` quarter turns.

        Returns:
            ``(C,)`` long ``perm`` with ``rot_{-k}(Γ(rot_k f))_{perm[i]} = Γ(f)_i``:
            the channel declared at angle ``θ`` matches the one declared at ``θ + 90° k``
            of the same scale.
        """
        perm = []
        for si in range(len(self.sigmas)):
            perm += [4 * si + (r + k) % 4 for r in range(4)]
        return torch.tensor(perm, dtype=torch.long)


class IsotropicBank(_Bank):
    """Rotation-invariant (radially symmetric) filters at one or more scales.

    Per ``sigma``: Gaussian ``G_σ``, ``+∇²G_σ`` and ``−∇²G_σ`` (rectified separately),
    and a difference of Gaussians ``G_σ − G_{1.6σ}``; followed by ReLU.

    Args:
        sigmas: scales in pixels.
        size: odd kernel size (default ``2 ⌈3 · 1.6 max σ⌉ + 1``).
        padding_mode: ``"zeros"`` or ``"circular"``.
        dtype: filter dtype.
    """

    def __init__(
        self,
        sigmas=(1.5,),
        *,
        size: int | None = None,
        padding_mode: str = "zeros",
        dtype=torch.float32,
    ):
        sigmas = tuple(float(s) for s in sigmas)
        for s in sigmas:
            check_positive(s, name="sigmas", fn="IsotropicBank")
        size = size or 2 * math.ceil(3 * 1.6 * max(sigmas)) + 1
        if size % 2 == 0:
            raise ValueError(f"IsotropicBank: expected an odd size, got {size}")
        filters = []
        for s in sigmas:
            g, x, y = gaussian_kernel(size, s)
            r2 = x * x + y * y
            log = (r2 - 2 * s * s) / s**4 * g
            log = log - log.mean()  # zero DC after truncation
            log = log / log.abs().sum()
            g2, _, _ = gaussian_kernel(size, 1.6 * s)
            dog = g - g2
            dog = dog / dog.abs().sum()
            filters += [g, log, -log, dog]
        super().__init__(torch.stack(filters)[:, None], padding_mode, dtype)
        self.sigmas = sigmas


class FeatureHook(nn.Module):
    """The feature map after layer ``layer`` of ``model``: ``Γ(x) = model[..layer](x)``.

    Runs ``model(x)`` and returns the output of the named sub-module (a forward
    hook captures it), so any network -- e.g. a trained STN classifier from
    :mod:`models` -- becomes a feature extractor.

    Args:
        model: any ``nn.Module``.
        layer: a name from ``model.named_modules()``, e.g. ``"features.3"``.
        stride: the total stride of that layer's feature map (for reporting).

    Raises:
        ValueError: ``layer`` is not a sub-module name of ``model``.
    """

    def __init__(self, model: nn.Module, layer: str, *, stride: int = 1):
        super().__init__()
        modules = dict(model.named_modules())
        if layer not in modules or layer == "":
            names = [n for n in modules if n][:20]
            raise ValueError(f"FeatureHook: expected layer to be one of {names}, got {layer!r}")
        self.model = model
        self.layer = layer
        self.stride = stride
        self._target = modules[layer]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the model and return the hooked layer's output."""
        captured: list[torch.Tensor] = []

        def hook(_mod, _inp, out):
            captured.append(out)

        handle = self._target.register_forward_hook(hook)
        try:
            self.model(x)
        finally:
            handle.remove()
        if not captured or not isinstance(captured[0], torch.Tensor) or captured[0].dim() != 4:
            raise ValueError(
                f"FeatureHook: expected layer {self.layer!r} to output an "
                f"(N, C, h, w) tensor, got "
                f"{type(captured[0]).__name__ if captured else 'nothing'}"
            )
        return captured[0]
