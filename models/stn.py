"""Spatial transformers and the four placements of 000 Sec. III / Fig. 3 as one design.

A network is a stack of classifier *stages* (conv -> ReLU -> optional 2x2 max-pool)
followed by a linear head. A spatial transformer (ST) is inserted according to a
:class:`Placement` ``(kind, depth)``:

* ``("C", 0)``  STN-C0: the ST transforms the input; its localization network sees the input.
* ``("C", X)``  STN-CX: the ST transforms the feature map after the first ``X`` stages; its
  localization network sees that feature map.
* ``("DL", X)`` STN-DLX: the ST transforms the input; the localization network starts with
  *copies* (same architecture, own parameters) of the first ``X`` classifier stages.
* ``("SL", X)`` STN-SLX: as DLX, but the localization network *shares* those stages (the very
  same parameter tensors) with the classifier.
* ``None``: the plain CNN.

Convention:
    * The localization network outputs six numbers; the last layer's weights are 0 and its
      bias is the identity ``(1, 0, 0, 0, 1, 0)`` (000 App. A.1), so every STN equals its
      CNN path at initialisation (for the same classifier weights).
    * ``theta`` is ``input_from_output`` (see :mod:`sampling.geometry`): ``(N, 2, 3)`` in
      normalized coordinates of the tensor being warped, ``(x, y)`` order. The output is
      ``out(p) = in(theta @ (p, 1))``.
    * The 000 networks (:class:`STNNet`) pass ``align_corners=True`` to their
      :class:`SpatialTransformer` (the semantics of PyTorch 1.3 used by 000, footnote 5): normalized ``+-1`` are the centres of the corner pixels, so one
      normalized unit is ``(W - 1) / 2`` pixels (29.5 on a 60 px canvas), as the pose metrics
      of 000 App. A.2 assume.
    * Out-of-image samples take the nearest edge value (``padding_mode="border"``, 000
      App. A.1) unless a caller asks for ``"zeros"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import sampling
from sampling.checks import check_choice, check_shape
from sampling.warp import warp_affine

from . import placements

__all__ = [
    "ConvSpec",
    "DenseSpec",
    "Placement",
    "SpatialTransformer",
    "STNNet",
    "PLACEMENT_KINDS",
    "IDENTITY_BIAS",
]

PLACEMENT_KINDS = tuple(placements.STRATEGIES)  # 000's; more may register later
IDENTITY_BIAS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class ConvSpec:
    """A valid (unpadded) ``kernel x kernel`` convolution, ReLU, then 2x2/2 max-pool if ``pool``."""

    channels: int
    kernel: int
    pool: bool = True


@dataclass(frozen=True)
class DenseSpec:
    """A fully connected layer with ``units`` outputs and ReLU (inputs are flattened)."""

    units: int


@dataclass(frozen=True)
class Placement:
    """Where the ST goes: ``kind`` (``"C"``, ``"DL"``, ``"SL"`` or any kind registered in
    :mod:`models.placements`) and ``depth`` = X. :meth:`strategy` is the object that
    :class:`STNNet` asks where to warp and what the localization sees."""

    kind: str
    depth: int

    def __post_init__(self):
        check_choice(self.kind, tuple(placements.STRATEGIES), name="placement kind",
                     fn="Placement")
        if not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"Placement: expected depth to be an int >= 0, got {self.depth!r}")
        if self.depth < placements.STRATEGIES[self.kind].min_depth:
            raise ValueError(f"Placement: expected depth >= 1 for {self.kind}X (DL0/SL0 are "
                             f"STN-C0), got {self.depth}")

    @property
    def name(self) -> str:
        return f"STN-{self.kind}{self.depth}"

    def strategy(self) -> placements.PlacementStrategy:
        """The :class:`models.placements.PlacementStrategy` of this placement."""
        return placements.strategy(self.kind, self.depth)


def _conv_stage(in_ch: int, spec: ConvSpec) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, spec.channels, spec.kernel), nn.ReLU()]
    if spec.pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _build_layers(specs, in_shape: tuple[int, int, int]) -> tuple[nn.Sequential, tuple]:
    """Build ConvSpec/DenseSpec layers on an input ``(C, H, W)``; return them and the output shape."""
    layers: list[nn.Module] = []
    shape: tuple = in_shape
    for spec in specs:
        if isinstance(spec, ConvSpec):
            if len(shape) != 3:
                raise ValueError(f"STNNet: expected a ConvSpec before any DenseSpec, got {spec}")
            c, h, w = shape
            if h < spec.kernel or w < spec.kernel:
                raise ValueError(f"STNNet: expected a feature map of at least {spec.kernel}x"
                                 f"{spec.kernel} for {spec}, got {h}x{w}")
            layers.append(_conv_stage(c, spec))
            h, w = h - spec.kernel + 1, w - spec.kernel + 1
            if spec.pool:
                h, w = h // 2, w // 2
            shape = (spec.channels, h, w)
        elif isinstance(spec, DenseSpec):
            n = 1
            for s in shape:
                n *= s
            if len(shape) == 3:
                layers.append(nn.Flatten())
            layers += [nn.Linear(n, spec.units), nn.ReLU()]
            shape = (spec.units,)
        else:
            raise ValueError(f"STNNet: expected ConvSpec or DenseSpec, got {spec!r}")
    return nn.Sequential(*layers), shape


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class SpatialTransformer(nn.Module):
    """Localization network -> 6 affine parameters -> grid -> pluggable sampler.

    Convention:
        ``theta`` is ``input_from_output`` in normalized coordinates (``align_corners`` as
        constructed); ``out(p) = in(theta @ (p, 1))``, i.e. the image is
        transformed by ``theta^{-1}``: ``(T f)(x) = f(T^{-1} x)`` with ``T = theta^{-1}``.

    Args:
        localization: a module mapping the localization input to ``(N, F)`` features.
        features: ``F``, the width of ``localization``'s output.
        out_scale: output size as a fraction of the warped tensor's ``(H, W)`` (0.5 on 000's
            (T): the ST outputs half the pixel width of its input).
        method: sampler for :func:`sampling.grid_sample` (``"bilinear"``, ``"linearized"``,
            ``"multiscale"``).
        padding_mode: ``"border"`` (nearest edge value, 000 App. A.1) or ``"zeros"``.
        sampler_options: passed to the sampler (e.g. ``num_samples`` for ``"linearized"``).
        align_corners: normalized-coordinate convention of the grid and the sampler
            (the package default ``False``; the 000 networks pass ``True``).
    """

    def __init__(self, localization: nn.Module, features: int, *, out_scale: float = 1.0,
                 method: str = "bilinear", padding_mode: str = "border",
                 sampler_options: dict | None = None, align_corners: bool = False):
        super().__init__()
        fn = "SpatialTransformer"
        check_choice(method, sampling.METHODS, name="method", fn=fn)
        check_choice(padding_mode, ("border", "zeros"), name="padding_mode", fn=fn)
        if not (isinstance(out_scale, (int, float)) and 0 < out_scale <= 4):
            raise ValueError(f"{fn}: expected out_scale in (0, 4], got {out_scale!r}")
        self.localization = localization
        self.to_theta = nn.Linear(features, 6)
        with torch.no_grad():  # identity initialisation, 000 App. A.1
            self.to_theta.weight.zero_()
            self.to_theta.bias.copy_(torch.tensor(IDENTITY_BIAS))
        self.out_scale = float(out_scale)
        self.method = method
        self.padding_mode = padding_mode
        self.sampler_options = dict(sampler_options or {})
        self.align_corners = bool(align_corners)

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """Output ``(h, w)`` for a warped tensor of size ``(h, w)``."""
        return max(1, round(h * self.out_scale)), max(1, round(w * self.out_scale))

    def predict(self, loc_input: torch.Tensor) -> torch.Tensor:
        """``loc_input -> theta`` of shape ``(N, 2, 3)`` (``input_from_output``)."""
        return self.to_theta(self.localization(loc_input)).view(-1, 2, 3)  # (N, 2, 3)

    def warp(self, x: torch.Tensor, theta: torch.Tensor, out_hw: tuple[int, int] | None = None
             ) -> torch.Tensor:
        """Sample ``x`` ``(N, C, H, W)`` at ``theta`` ``(N, 2, 3)`` -> ``(N, C, h, w)``."""
        n, c, h, w = x.shape
        oh, ow = out_hw if out_hw is not None else self.out_size(h, w)
        # sampling.grid_sample returns NaN at non-finite locations (no crash), so a
        # diverging run ends with the NaN-loss message.
        return warp_affine(x, theta, (oh, ow), method=self.method,
                           align_corners=self.align_corners, padding_mode=self.padding_mode,
                           **self.sampler_options)

    def forward(self, x: torch.Tensor, loc_input: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp ``x`` with the transformation predicted from ``loc_input`` (default ``x``).

        Returns:
            ``(warped (N, C, h, w), theta (N, 2, 3))``.
        """
        theta = self.predict(x if loc_input is None else loc_input)
        return self.warp(x, theta), theta


class STNNet(nn.Module):
    """A CNN classifier with an optional ST placed as C0 / CX / DLX / SLX (one design).

    Args:
        in_shape: input ``(C, H, W)``.
        classifier: the classifier's conv stages (each conv -> ReLU -> optional pool).
        n_classes: outputs of the final linear layer (no ReLU; use cross-entropy).
        placement: ``None`` for the plain CNN, else a :class:`Placement`.
        localization: the localization layers after the (copied / shared / feature-map)
            prefix, ending before the 6-output layer (which is added here).
        st_out_scale: ST output size relative to the warped tensor.
        loc_downsample: average-pool the localization input by this factor (000 App. A.1:
            STN-C0's localization network sees the (S) image downsampled 2x).
        method, padding_mode, sampler_options: the ST's sampler (see :class:`SpatialTransformer`).

    Raises:
        ValueError: an unknown placement kind, a depth beyond the classifier's stages, or
            layers that do not fit the input size.

    Shapes:
        ``forward(x (N, C, H, W)) -> logits (N, n_classes)``; with ``return_theta=True``
        ``(logits, theta (N, 2, 3))`` where ``theta`` is the identity for the CNN.
    """

    def __init__(self, in_shape: tuple[int, int, int], classifier, n_classes: int = 10, *,
                 placement: Placement | None = None, localization=(), st_out_scale: float = 1.0,
                 loc_downsample: int = 1, method: str = "bilinear", padding_mode: str = "border",
                 sampler_options: dict | None = None):
        super().__init__()
        fn = "STNNet"
        classifier = tuple(classifier)
        if not classifier or not all(isinstance(s, ConvSpec) for s in classifier):
            raise ValueError(f"{fn}: expected classifier to be a non-empty sequence of ConvSpec, "
                             f"got {classifier!r}")
        if placement is not None and not isinstance(placement, Placement):
            raise ValueError(f"{fn}: expected placement to be a Placement or None, got "
                             f"{placement!r}")
        if placement is not None and placement.depth > len(classifier):
            raise ValueError(f"{fn}: expected placement depth X <= {len(classifier)} (the "
                             f"classifier's conv stages), got {placement.name}")
        if not isinstance(loc_downsample, int) or loc_downsample < 1:
            raise ValueError(f"{fn}: expected loc_downsample to be an int >= 1, got "
                             f"{loc_downsample!r}")
        self.in_shape = tuple(in_shape)
        self.placement = placement
        self.strategy = placement.strategy() if placement is not None else None
        self.loc_downsample = loc_downsample
        x_depth = placement.depth if placement is not None else 0
        warp_depth = self.strategy.warp_depth if placement is not None else None

        # Classifier stages; shapes are tracked so that the ST output size is known.
        self.stages = nn.ModuleList()
        shape = self.in_shape
        self.warped_shape = None  # (C, H, W) of the tensor the ST warps
        for i, spec in enumerate(classifier):
            if i == warp_depth:
                shape = self._st_output_shape(shape, st_out_scale)
            seq, shape = _build_layers([spec], shape)
            self.stages.append(seq[0])
        if warp_depth == len(classifier):
            shape = self._st_output_shape(shape, st_out_scale)
        self.feature_shape = shape
        self.head = nn.Linear(_numel(shape), n_classes)

        self.st = None
        self.loc_prefix = None
        if placement is not None:
            # C: the localization sees the classifier's features after X stages; DL / SL: it
            # runs X stages itself (copies / the shared modules) on the input. Same shape.
            loc_in = self.strategy.build(self, classifier,
                                         _stage_shapes(self.in_shape, classifier[:x_depth]))
            if loc_downsample > 1:
                c, h, w = loc_in
                loc_in = (c, h // loc_downsample, w // loc_downsample)
            loc_layers, loc_out = _build_layers(tuple(localization), loc_in)
            if len(loc_out) == 3:
                loc_layers.append(nn.Flatten())
            self.st = SpatialTransformer(loc_layers, _numel(loc_out), out_scale=st_out_scale,
                                         method=method, padding_mode=padding_mode,
                                         sampler_options=sampler_options,
                                         align_corners=True)  # 000, footnote 5

    def new_stage(self, spec: ConvSpec, in_shape) -> nn.Module:
        """A fresh classifier stage for ``spec`` on ``in_shape`` (placements build with it)."""
        return _build_layers([spec], in_shape)[0][0]

    def stage_input_shapes(self, classifier) -> list:
        """Input ``(C, H, W)`` of each stage of ``classifier`` on this net's input."""
        return _prefix_shapes(self.in_shape, classifier)

    def _st_output_shape(self, shape, out_scale):
        c, h, w = shape
        self.warped_shape = (c, h, w)
        oh, ow = max(1, round(h * out_scale)), max(1, round(w * out_scale))
        return (c, oh, ow)

    # --- forward --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, return_theta: bool = False):
        """Logits ``(N, n_classes)`` (and ``theta (N, 2, 3)`` with ``return_theta``)."""
        return self._run(x, return_theta, identity=False)

    def cnn_path(self, x: torch.Tensor) -> torch.Tensor:
        """Logits with the ST forced to the identity (the localization network is skipped).

        With ``st_out_scale == 1`` and ``align_corners=True`` the identity warp samples
        exactly at pixel centres, so this is the bare classifier.
        """
        return self._run(x, False, identity=True)

    def _run(self, x: torch.Tensor, return_theta: bool, identity: bool):
        check_shape(x, "N C H W", name="x", fn="STNNet.forward",
                    dims=dict(zip("CHW", self.in_shape)))
        theta = None

        def eye(t):
            return torch.eye(2, 3, dtype=t.dtype, device=t.device).expand(t.shape[0], 2, 3)

        h = x
        if self.strategy is None:
            for stage in self.stages:
                h = stage(h)
        else:
            depth = self.strategy.warp_depth
            for stage in self.stages[:depth]:
                h = stage(h)
            theta = eye(h) if identity else self.strategy.predict(self, x, h)
            h = self.st.warp(h, theta)
            for stage in self.stages[depth:]:
                h = stage(h)
        logits = self.head(h.flatten(1))  # (N, C*H*W) -> (N, n_classes)
        if not return_theta:
            return logits
        return logits, (eye(x) if theta is None else theta)

    def warped_frame(self) -> dict:
        """Where the warped tensor sits in input pixels (for converting ``theta`` to the input).

        Returns:
            ``{"stride": s, "width": W, "half_width_px": (W - 1) * s / 2}``: the warped
            tensor's pixel ``i`` is centred at input pixel ``offset + s * i``; one normalized
            unit (``align_corners=True``) is ``half_width_px`` input pixels. For the input
            itself ``s = 1`` and ``half_width_px = (W - 1) / 2`` (29.5 on 60 px); for STN-C1
            on (T) after a 9x9 valid conv and 2x2 pool, ``s = 2``, ``W = 26``: 25 px
            (000 App. A.2).
        """
        if self.strategy is None:
            w = self.in_shape[2]
            return {"stride": 1, "width": w, "half_width_px": (w - 1) / 2}
        return self.strategy.frame(self)


def _stage_shapes(in_shape, specs) -> tuple[int, int, int]:
    """Shape after running ``specs`` (ConvSpec) on ``in_shape``."""
    _, shape = _build_layers(specs, in_shape)
    return shape


def _prefix_shapes(in_shape, specs):
    """Input shape of each stage in ``specs``."""
    shapes, shape = [], in_shape
    for s in specs:
        shapes.append(shape)
        shape = _stage_shapes(shape, [s])
    return shapes
