"""The GTSRB networks of 003 Sec. 6.2 / Table 1: no STN, STN and IC-STN under downsampling.

Three networks share one classifier and one localizer design; a spatial transformer (ST)
produces an output of ``50 / d`` pixels for the classifier, ``d`` in ``{1, 2, 4, 8}``.

* **Localizer** (003 Sec. 6.2): ``C(4) R C(8) R P C(16) R P C(32) R P C(1024)``, every conv
  7x7 with padding 3 ("same", so the shapes work on 50x50; without padding the third
  pool would see a 6x6 map and the last conv nothing), ``P`` a 2x2 / stride-2 max-pool
  (floor), then a max over each channel of the last map (1024 features), ``FC(48) R`` and
  ``FC(4)`` to the similarity parameters. On 50x50 the maps are 50, 50, 25, 12 and 6 px.
  003 puts no ReLU after ``C(1024)``; we follow it.
* **Parameterization** of the localizer's 4 outputs ``(t_x, t_y, log s, angle)``::

      input_from_output = sampling.geometry.params_to_matrix(angle, log s, 0, (t_x, t_y))
                        = [s R(angle) | t]

  (isotropic scale ``s = exp(log s)``, rotation in radians, translation in normalized
  units of the input). The last layer's weights and bias are zero, so every ST starts at
  the identity; ``s < 1`` samples a smaller region, i.e. zooms in.
* **Classifier** (003 Sec. 6.2): ``Flatten -> FC(128) R -> FC(num_classes)`` on the ST's
  ``(channels, 50 // d, 50 // d)`` output. Table 1's counts (966k / 246k / 61k / 19k, 43
  classes, 3 channels) pin the size to the *floor* of ``50 / d``: 50, 25, 12, 6 give
  965,675 / 245,675 / 60,971 / 19,499, each Table 1's number to the nearest thousand (the
  table prints no more digits); rounding up (13, 7) would give 70,571 / 24,491.
* **STN**: the localizer sees the 50x50 input, the input is warped once to ``50 // d``.
* **IC-STN** (Lin & Lucey 2017): ``M_0 = I``; for ``k = 0 .. n-1`` the *original* image is
  warped by ``M_k`` at the localizer's resolution (50x50), the localizer predicts an update
  ``dM_k`` and ``M_{k+1} = M_k dM_k`` (``sampling.geometry.compose(M_k, dM_k)``: the update
  acts in the frame of the image the localizer saw, so if ``dM_k`` aligns that image the
  product aligns the original). The classifier sees the original warped once by ``M_n`` at
  ``50 // d``: every warp resamples the original, no image is resampled twice. The
  localizer's weights are shared across iterations. ``n = 4`` by default
  (:data:`ICSTN_ITERATIONS`): the number of recurrent warps of Lin & Lucey's traffic-sign
  code (``warpN`` default 4), whose implementation 003 says it uses (App. A.2); 003 does not
  state it. Each iteration costs one localizer pass (most of the network's compute).
  Lin & Lucey's traffic-sign code multiplies on the other side (``dM_k M_k``, the update
  acting in the original image's frame); we compose in the frame the localizer sees.
* **No STN**: the classifier on the input resized to ``50 // d`` by area averaging
  (``F.interpolate(mode="area")``, an anti-aliased average over the pixels each output
  pixel covers; no warp).

Convention:
    Matrices are ``input_from_output`` ``(N, 2, 3)`` in normalized coordinates with
    ``align_corners=False`` (the package default: ``+-1`` are the outer edges of the corner
    pixels), points ``(x, y)``, angles in radians; out-of-image samples are zero
    (``padding_mode="zeros"``; 003 Sec. 6.1 masks out-of-bound samples). Every warp goes
    through :func:`sampling.warp.warp_affine` with the network's sampler.

Samplers (003 Sec. 6): ``"bilinear"``; ``"linearized"`` with ``K = 8`` auxiliary samples
(``num_samples=8``, 003 Sec. 6.1); ``"multiscale"`` with Gaussian levels ``sigma = 1, 5,
10`` px (003 Sec. 6, the sampler's default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sampling import registry
from sampling.checks import check_choice, check_shape
from sampling.geometry import compose, identity, params_to_matrix
from sampling.warp import warp_affine

__all__ = [
    "NETS",
    "DOWNSAMPLES",
    "SAMPLERS",
    "INPUT_SIZE",
    "ICSTN_ITERATIONS",
    "ALIGN_CORNERS",
    "PADDING_MODE",
    "SAMPLER_OPTIONS",
    "TABLE_1_CLASSIFIER_PARAMS",
    "TABLE_1_ERROR",
    "Localizer",
    "Classifier",
    "NoSTN",
    "STN",
    "ICSTN",
    "build",
    "output_size",
    "count_params",
    "param_counts",
    "param_groups",
    "make_optimizer",
]

#: Network names (CLI ``--net``).
NETS = ("none", "STN", "ICSTN")
#: Downsampling rates of Table 1.
DOWNSAMPLES = (1, 2, 4, 8)
#: Samplers of Table 1 (``bilinear`` baseline, ``multiscale`` baseline, ``linearized`` = ours),
#: read from :mod:`sampling.registry` in Table 1's row order (any other sampler after them).
SAMPLERS = registry.names(first=("bilinear", "multiscale"))
#: 003 Sec. 6.2: images are cropped and resized to 50x50.
INPUT_SIZE = 50
#: IC-STN recurrent warps (Lin & Lucey's traffic-sign code default; see the module docstring).
ICSTN_ITERATIONS = 4
ALIGN_CORNERS = False
PADDING_MODE = "zeros"
#: Sampler options of 003: K = 8 (Sec. 6.1); sigmas 1, 5, 10 px (Sec. 6).
SAMPLER_OPTIONS = {"bilinear": {}, "linearized": {"num_samples": 8},
                   "multiscale": {"sigmas": (1.0, 5.0, 10.0)}}
#: 003 Table 1, "# classif. network param." (paper, printed to the nearest thousand).
TABLE_1_CLASSIFIER_PARAMS = {1: 966_000, 2: 246_000, 4: 61_000, 8: 19_000}
#: 003 Table 1, test error in percent (paper): row -> {d: error}.
TABLE_1_ERROR = {
    "none": {1: 12.37, 2: 12.88, 4: 20.85, 8: 45.88},
    "STN/bilinear": {1: 6.29, 2: 6.50, 4: 7.95, 8: 15.31},
    "STN/multiscale": {1: 6.83, 2: 6.70, 4: 8.30, 8: 15.00},
    "STN/linearized": {1: 6.08, 2: 6.48, 4: 7.13, 8: 10.89},
    "ICSTN/bilinear": {1: 5.68, 2: 5.00, 4: 6.52, 8: 9.80},
    "ICSTN/multiscale": {1: 5.40, 2: 5.95, 4: 6.06, 8: 10.19},
    "ICSTN/linearized": {1: 4.85, 2: 4.68, 4: 4.86, 8: 6.10},
}

_LOC_CHANNELS = (4, 8, 16, 32, 1024)
_LOC_POOL_AFTER = (False, True, True, True, False)  # C(4) R C(8) R P C(16) R P C(32) R P C(1024)
_LOC_KERNEL = 7
_LOC_HIDDEN = 48
_CLS_HIDDEN = 128


def output_size(downsample: int, *, input_size: int = INPUT_SIZE) -> int:
    """Side of the ST output / resized input: ``input_size // downsample`` (50, 25, 12, 6)."""
    fn = "output_size"
    if isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"{fn}: expected downsample to be an int >= 1, got {downsample!r}")
    if input_size // downsample < 1:
        raise ValueError(f"{fn}: expected downsample <= input_size ({input_size}), got "
                         f"{downsample}")
    return input_size // downsample


class Localizer(nn.Module):
    """003's localization network: image ``(N, C, H, W)`` -> similarity ``(N, 2, 3)``.

    Convention:
        Returns ``input_from_output = params_to_matrix(angle, log_scale, 0, (t_x, t_y))``
        (normalized coordinates, ``(x, y)``, radians); identity at initialisation.

    Args:
        channels: input channels.
        width: channels of the last conv (003: 1024). The CPU
            stand-in v2 (:mod:`models.data.gtsrb_standin_v2`) narrows it to 128, a
            deviation from 003 it names in every result (issue 27's probe: a 1024-wide
            last conv on 50x50 costs most of the step).
    """

    def __init__(self, channels: int = 3, width: int = 1024):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"Localizer: expected width to be an int >= 1, got {width!r}")
        layers: list[nn.Module] = []
        c_in = channels
        widths = _LOC_CHANNELS[:-1] + (width,)
        for i, (c, pool) in enumerate(zip(widths, _LOC_POOL_AFTER)):
            layers.append(nn.Conv2d(c_in, c, _LOC_KERNEL, padding=_LOC_KERNEL // 2))
            if i < len(_LOC_CHANNELS) - 1:
                layers.append(nn.ReLU())
            if pool:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.width = width
        self.fc = nn.Sequential(nn.Linear(width, _LOC_HIDDEN), nn.ReLU())
        self.head = nn.Linear(_LOC_HIDDEN, 4)  # (t_x, t_y, log_scale, angle)
        with torch.no_grad():  # identity at initialisation
            self.head.weight.zero_()
            self.head.bias.zero_()

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, 4)`` raw outputs ``(t_x, t_y, log_scale, angle)``."""
        f = self.features(x)  # (N, width, h, w)
        f = torch.amax(f, dim=(-2, -1))  # (N, width): max over each channel
        return self.head(self.fc(f))  # (N, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> input_from_output (N, 2, 3)``."""
        p = self.params(x)  # (N, 4)
        return params_to_matrix(p[:, 3], p[:, 2], 0.0, p[:, 0:2])


class Classifier(nn.Module):
    """003's classifier: ``Flatten -> FC(128) -> ReLU -> FC(num_classes)`` on ``(C, s, s)``."""

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        self.in_shape = (channels, size, size)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, _CLS_HIDDEN),
                                 nn.ReLU(), nn.Linear(_CLS_HIDDEN, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, s, s) -> logits (N, num_classes)``."""
        check_shape(x, "N C s s", name="x", fn="Classifier",
                    dims={"C": self.in_shape[0], "s": self.in_shape[1]})
        return self.net(x)


class _Base(nn.Module):
    """Shared bits: the classifier, the sizes, input checks; ``localizer`` is ``None`` here."""

    net_name = ""

    def __init__(self, *, downsample: int, channels: int, num_classes: int,
                 input_size: int = INPUT_SIZE):
        super().__init__()
        self.downsample = downsample
        self.channels = channels
        self.num_classes = num_classes
        self.input_size = input_size
        self.out_size = output_size(downsample, input_size=input_size)
        self.classifier = Classifier(channels, self.out_size, num_classes)
        self.localizer: Localizer | None = None
        self.sampler: str | None = None

    def _check(self, x: torch.Tensor) -> None:
        check_shape(x, "N C H W", name="x", fn=type(self).__name__,
                    dims={"C": self.channels, "H": self.input_size, "W": self.input_size})

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (N, C, 50, 50) -> (classifier input (N, C, s, s), input_from_output (N, 2, 3))``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, C, 50, 50) -> logits (N, num_classes)``."""
        return self.classifier(self.transform(x)[0])


class NoSTN(_Base):
    """The "Baseline w/o STN" row: the classifier on the input resized to ``50 // d``.

    The resize is area averaging (``F.interpolate(mode="area")``); no warp.
    """

    net_name = "none"

    def transform(self, x):
        self._check(x)
        s = self.out_size
        out = x if s == self.input_size else F.interpolate(x, size=(s, s), mode="area")
        return out, identity(x.shape[0], dtype=x.dtype, device=x.device)


class _Warping(_Base):
    def __init__(self, *, sampler: str, downsample: int, channels: int, num_classes: int,
                 input_size: int = INPUT_SIZE, sampler_options: dict | None = None,
                 localizer_width: int = 1024):
        super().__init__(downsample=downsample, channels=channels, num_classes=num_classes,
                         input_size=input_size)
        check_choice(sampler, SAMPLERS, name="sampler", fn=type(self).__name__)
        self.sampler = sampler
        self.sampler_options = dict(SAMPLER_OPTIONS[sampler] if sampler_options is None
                                    else sampler_options)
        self.localizer = Localizer(channels, localizer_width)

    def warp(self, x: torch.Tensor, input_from_output: torch.Tensor, size: int) -> torch.Tensor:
        """Warp ``x`` ``(N, C, H, W)`` to ``(N, C, size, size)`` with this network's sampler.

        Convention:
            see the module docstring (normalized ``input_from_output``,
            ``align_corners=False``, zeros outside).
        """
        return warp_affine(x, input_from_output, (size, size), method=self.sampler,
                           align_corners=ALIGN_CORNERS, padding_mode=PADDING_MODE,
                           **self.sampler_options)


class STN(_Warping):
    """STN (003 Sec. 6.2): one warp of the input to ``50 // d`` through the chosen sampler."""

    net_name = "STN"

    def transform(self, x):
        self._check(x)
        m = self.localizer(x)  # (N, 2, 3)
        return self.warp(x, m, self.out_size), m


class ICSTN(_Warping):
    """IC-STN (Lin & Lucey 2017; 003 Sec. 6.2): ``iterations`` compositional updates.

    ``M_{k+1} = M_k dM_k`` with ``dM_k = localizer(warp(x, M_k, 50))``; the classifier sees
    ``warp(x, M_n, 50 // d)``. Every warp samples the original ``x``.

    Args:
        iterations: ``n >= 1`` (default :data:`ICSTN_ITERATIONS`).
    """

    net_name = "ICSTN"

    def __init__(self, *, iterations: int = ICSTN_ITERATIONS, **kw):
        super().__init__(**kw)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"ICSTN: expected iterations to be an int >= 1, got {iterations!r}")
        self.iterations = iterations

    def steps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The composed matrix and the updates: ``(M_n (N, 2, 3), [dM_0, ..., dM_{n-1}])``."""
        self._check(x)
        m = identity(x.shape[0], dtype=x.dtype, device=x.device)  # M_0
        updates = []
        for _ in range(self.iterations):
            seen = self.warp(x, m, self.input_size)  # the original, resampled by M_k
            dm = self.localizer(seen)  # (N, 2, 3)
            updates.append(dm)
            m = compose(m, dm)  # M_{k+1} = M_k dM_k
        return m, updates

    def transform(self, x):
        m, _ = self.steps(x)
        return self.warp(x, m, self.out_size), m


def build(net: str, *, downsample: int, sampler: str | None = None, num_classes: int = 43,
          channels: int = 3, input_size: int = INPUT_SIZE, iterations: int = ICSTN_ITERATIONS,
          sampler_options: dict | None = None, localizer_width: int = 1024) -> nn.Module:
    """Build a Table 1 network (fresh PyTorch default initialisation, identity ST).

    Args:
        net: ``"none"``, ``"STN"`` or ``"ICSTN"``.
        downsample: ``d``; the classifier sees ``input_size // d`` pixels a side.
        sampler: ``"bilinear"``, ``"multiscale"`` or ``"linearized"``; required for STN and
            IC-STN; must be ``None`` for ``"none"`` (it does not warp).
        num_classes: 43 for GTSRB, 10 for the stand-ins.
        channels: input channels.
        input_size: input side (003: 50).
        iterations: IC-STN's recurrent warps (ignored by the others).
        sampler_options: override :data:`SAMPLER_OPTIONS` for the chosen sampler.
        localizer_width: the localizer's last conv (003: 1024; see :class:`Localizer`).

    Returns:
        An ``nn.Module`` with ``forward(x (N, C, 50, 50)) -> logits (N, num_classes)``,
        ``transform(x) -> (classifier input, input_from_output)``, and the attributes
        ``classifier``, ``localizer`` (``None`` for ``"none"``), ``sampler``, ``out_size``.

    Raises:
        ValueError: an unknown name, a bad size, or a sampler missing / given where it
            does not belong.

    Example:
        >>> m = build("STN", downsample=4, sampler="bilinear")
        >>> m(torch.zeros(2, 3, 50, 50)).shape
        torch.Size([2, 43])
    """
    fn = "build"
    check_choice(net, NETS, name="net", fn=fn)
    for name, v in (("num_classes", num_classes), ("channels", channels),
                    ("input_size", input_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{fn}: expected {name} to be an int >= 1, got {v!r}")
    output_size(downsample, input_size=input_size)
    kw = dict(downsample=downsample, channels=channels, num_classes=num_classes,
              input_size=input_size)
    if net == "none":
        if sampler is not None:
            raise ValueError(f"{fn}: expected sampler=None for net 'none' (it does not warp), "
                             f"got {sampler!r}")
        return NoSTN(**kw)
    if sampler is None:
        raise ValueError(f"{fn}: expected sampler to be one of {list(SAMPLERS)} for net "
                         f"{net!r}, got None")
    check_choice(sampler, SAMPLERS, name="sampler", fn=fn)
    kw.update(sampler_options=sampler_options, localizer_width=localizer_width)
    if net == "STN":
        return STN(sampler=sampler, **kw)
    return ICSTN(sampler=sampler, iterations=iterations, **kw)


def count_params(module: nn.Module | None) -> int:
    """Learnable parameters of ``module`` (0 for ``None``)."""
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def param_counts(*, num_classes: int = 43, channels: int = 3) -> dict:
    """Parameter counts of every Table 1 network.

    Returns:
        ``{net: {d: {"classifier": int, "localizer": int, "total": int}}}`` for ``net`` in
        :data:`NETS` and ``d`` in :data:`DOWNSAMPLES` (counts do not depend on the sampler;
        IC-STN shares one localizer across its iterations).
    """
    out: dict = {}
    for net in NETS:
        out[net] = {}
        for d in DOWNSAMPLES:
            m = build(net, downsample=d, sampler=None if net == "none" else "bilinear",
                      num_classes=num_classes, channels=channels)
            c, loc = count_params(m.classifier), count_params(m.localizer)
            out[net][d] = {"classifier": c, "localizer": loc, "total": count_params(m)}
    return out


def param_groups(model: nn.Module, *, lr_st: float = 1e-5, lr_classifier: float = 1e-3
                 ) -> list[dict]:
    """003's optimizer groups: the ST modules at ``1e-5``, the classifier at ``1e-3``.

    Returns:
        ``[{"name": "st", "params": [...], "lr": lr_st}, {"name": "classifier", ...}]`` for
        :class:`torch.optim.Adam`; the ``"st"`` group is left out when the model has no
        localizer (``"none"``).

    Raises:
        ValueError: ``model`` has no ``classifier``, or a learnable parameter belongs to
            neither the localizer nor the classifier (it would silently not train).
    """
    fn = "param_groups"
    cls = getattr(model, "classifier", None)
    if not isinstance(cls, nn.Module):
        raise ValueError(f"{fn}: expected a model built by gtsrb_nets.build (with a "
                         f"classifier), got {type(model).__name__}")
    loc = getattr(model, "localizer", None)
    st_params = [] if loc is None else [p for p in loc.parameters() if p.requires_grad]
    cls_params = [p for p in cls.parameters() if p.requires_grad]
    known = {id(p) for p in st_params + cls_params}
    stray = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in known]
    if stray:
        raise ValueError(f"{fn}: expected every parameter in the localizer or the classifier, "
                         f"got others: {stray}")
    groups = [{"name": "st", "params": st_params, "lr": float(lr_st)}] if st_params else []
    return groups + [{"name": "classifier", "params": cls_params, "lr": float(lr_classifier)}]


def make_optimizer(model: nn.Module, **kw) -> torch.optim.Adam:
    """Adam over :func:`param_groups` (003 Sec. 6.2)."""
    return torch.optim.Adam(param_groups(model, **kw))

