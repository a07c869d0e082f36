"""Deep STNs on a :class:`models.layer_nets.LayerNet`: several STs, composition, iterations.

This generalizes the single-ST placements of :mod:`models.placements` (one warp depth, one
localizer) to 000's deep networks (Sec. III-A, IV-B, IV-C): a network carries an ordered
list of **slots**, each a placement ``(kind, depth)`` with its own localizer, and a number
of **iterations**. One rule serves every network of Tables III-V:

* a slot has a *source* (the tensor it resamples) and *features* (what its localizer sees,
  computed from the warped source);
* ``C`` (:class:`WarpMap`): the source is the classifier's feature map at depth X, the
  localizer sees that (warped) map, the warped map continues through the classifier.
  STN-C0123 is four ``C`` slots at X = 0, 1, 2, 3, each transforming the map it sees;
* ``DL`` (:class:`WarpInputCopied`) / ``SL`` (:class:`WarpInputShared`): the source is the
  network **input**; the localizer sees a copy of (DL) or the classifier's very own (SL)
  layers up to depth X applied to the warped input; after the slot the classifier runs
  from the start on the warped input. Input-warping slots **compose** their parameters
  with the previous input-warping slot's, so the input is always sampled once from the
  original (STN-SL0123 = four ``SL`` slots at X = 0..3, 000 Fig. 4);
* **iterations** ``N``: the slot's localizer runs ``N`` times; before iteration ``i > 1``
  the source is sampled from the *original* source with the composed parameters so far,
  and the new parameters are composed on top
  (``input_from_out_i = compose(input_from_out_{i-1}, out_{i-1}_from_out_i)``).

A new kind is one class registered with :func:`register_slot_kind`.

Convention:
    Matrices are ``input_from_output`` ``(N, 2, 3)`` in normalized coordinates of the tensor
    being warped (``align_corners=True``: +-1 are the centres of the border pixels, as the
    MNIST STNs of :mod:`models.stn`), points ``(x, y)``; the output has the source's size.
    Composition is :func:`sampling.geometry.compose` (``b`` first, then ``a``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

import sampling
from sampling import geometry

from .layer_nets import LayerNet

__all__ = ["Slot", "SlotKind", "WarpMap", "WarpInputCopied", "WarpInputShared",
           "SLOT_KINDS", "register_slot_kind", "DeepSTN", "parse_net_name",
           "input_frame_theta"]


@dataclass(frozen=True)
class Slot:
    """One ST: ``kind`` in :data:`SLOT_KINDS` (``"C"``, ``"DL"``, ``"SL"``) at depth X."""

    kind: str
    depth: int


class SlotKind:
    """How a slot warps and what its localizer sees (the placement protocol for LayerNets)."""

    kind = ""
    warps_input = False

    def build(self, stn: "DeepSTN", index: int, slot: Slot) -> None:
        """Create the slot's own modules on ``stn`` (default: none)."""

    def features(self, stn: "DeepSTN", index: int, slot: Slot, warped: torch.Tensor
                 ) -> torch.Tensor:
        """What the localizer sees, from the warped source."""
        return warped


class WarpMap(SlotKind):
    """``C``: warp the classifier's feature map at depth X; the localizer sees it."""

    kind = "C"


class WarpInputCopied(SlotKind):
    """``DL``: warp the input; the localizer runs freshly initialized copies of the layers
    before depth X."""

    kind = "DL"
    warps_input = True

    def build(self, stn, index, slot):
        pre = copy.deepcopy(stn.net.prefix(slot.depth))
        for m in pre.modules():  # own parameters, freshly drawn
            if hasattr(m, "reset_parameters") and m is not pre:
                m.reset_parameters()
        stn.loc_prefix[str(index)] = pre

    def features(self, stn, index, slot, warped):
        return stn.loc_prefix[str(index)](warped)


class WarpInputShared(SlotKind):
    """``SL``: warp the input; the localizer runs the classifier's own layers before X."""

    kind = "SL"
    warps_input = True

    def features(self, stn, index, slot, warped):
        return stn.net.run(warped, 0, stn.positions[index])  # the very same modules


#: kind -> slot strategy.
SLOT_KINDS: dict[str, SlotKind] = {}


def register_slot_kind(kind: SlotKind) -> SlotKind:
    """Register a slot strategy under ``kind.kind`` (a second one under a kind is an error)."""
    if not kind.kind or kind.kind in SLOT_KINDS:
        raise ValueError(f"deep_stn.register_slot_kind: expected a new non-empty kind, got "
                         f"{kind.kind!r} (registered: {sorted(SLOT_KINDS)})")
    SLOT_KINDS[kind.kind] = kind
    return kind


for _k in (WarpMap(), WarpInputCopied(), WarpInputShared()):
    register_slot_kind(_k)


def parse_net_name(name: str) -> tuple[tuple[Slot, ...], int]:
    """``"STN-SL3-it2"`` -> ``((Slot("SL", 3),), 2)``; ``"STN-C0123"`` -> four ``C`` slots;
    ``"CNN"`` -> ``((), 1)``. ``-large`` suffixes are the caller's (the localizer choice).

    Raises:
        ValueError: a name of no such form.
    """
    fn = "deep_stn.parse_net_name"
    if name == "CNN":
        return (), 1
    body = name
    iters = 1
    if not body.startswith("STN-"):
        raise ValueError(f"{fn}: expected 'CNN' or 'STN-<kind><depths>[-large][-itN]', got "
                         f"{name!r}")
    body = body[4:]
    if "-it" in body:
        body, _, n = body.rpartition("-it")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"{fn}: expected -itN with N >= 1, got {name!r}")
        iters = int(n)
    body = body.removesuffix("-large")
    kind = body.rstrip("0123456789")
    digits = body[len(kind):]
    if kind not in SLOT_KINDS or not digits:
        raise ValueError(f"{fn}: expected kind in {sorted(SLOT_KINDS)} and depth digits, got "
                         f"{name!r}")
    # "C0123" = depths 0, 1, 2, 3; a single depth may have two digits ("C10")
    depths = [int(d) for d in digits] if len(digits) > 2 else [int(digits)]
    return tuple(Slot(kind, d) for d in depths), iters


class DeepSTN(nn.Module):
    """A :class:`LayerNet` classifier with STs in ``slots`` (see the module docstring).

    Args:
        net: the classifier.
        slots: the STs, in order of depth (input-warping and map-warping may not interleave
            so that a map-warping slot would follow an input-warping one at a lower depth).
        localizers: one :class:`Localizer` per slot, for the features that slot sees.
        iterations: default iterations of every slot's localizer (000 trains with 1 or 2).
        padding_mode: sampler padding (SVHN ``"zeros"``, PlanktonSet ``"border"``).
        method: the :mod:`sampling` method.

    Shapes:
        ``forward(x (N, C, H, W))`` -> the classifier's output; with ``return_theta`` also
        ``[theta (N, 2, 3) per slot]``.
    """

    def __init__(self, net: LayerNet, slots, localizers, *, iterations: int = 1,
                 padding_mode: str = "zeros", method: str = "bilinear"):
        super().__init__()
        fn = "DeepSTN"
        slots = tuple(slots)
        if len(slots) != len(localizers):
            raise ValueError(f"{fn}: expected one localizer per slot, got {len(slots)} slots "
                             f"and {len(localizers)} localizers")
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"{fn}: expected iterations to be an int >= 1, got {iterations!r}")
        for s in slots:
            if s.kind not in SLOT_KINDS:
                raise ValueError(f"{fn}: expected slot kind in {sorted(SLOT_KINDS)}, got "
                                 f"{s.kind!r}")
        depths = [s.depth for s in slots]
        if depths != sorted(depths) or len(set(depths)) != len(depths):
            raise ValueError(f"{fn}: expected slots in increasing depth, got {depths}")
        self.net = net
        self.slots = slots
        self.positions = [net.st_position(s.depth) for s in slots]
        self.locs = nn.ModuleList(localizers)
        self.loc_prefix = nn.ModuleDict()
        self.iterations = iterations
        # iterations, and input-warping slots after the first (SL0123), compose matrices
        # through sampling.geometry.compose, whose NaN/Inf check is data-dependent control
        # flow that torch.func.vmap refuses: such networks train their seeds one by one
        n_input = sum(SLOT_KINDS[s.kind].warps_input for s in slots)
        self.vmappable = iterations == 1 and n_input <= 1
        self.padding_mode = padding_mode
        self.method = method
        for i, s in enumerate(slots):
            SLOT_KINDS[s.kind].build(self, i, s)

    def warp(self, source: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Resample ``source`` through ``theta`` (same size; the one place STs sample)."""
        return sampling.warp_affine(source, theta, tuple(source.shape[-2:]), method=self.method,
                                    padding_mode=self.padding_mode, align_corners=True)

    def _iterate(self, i: int, source: torch.Tensor, theta, n: int) -> torch.Tensor:
        """``n`` iterations of slot ``i``'s localizer from ``theta`` (None: identity)."""
        slot = self.slots[i]
        kind = SLOT_KINDS[slot.kind]
        for _ in range(n):
            warped = source if theta is None else self.warp(source, theta)
            new = self.locs[i](kind.features(self, i, slot, warped))
            theta = new if theta is None else geometry.compose(theta, new)
        return theta

    def forward(self, x: torch.Tensor, *, iterations: int | None = None,
                return_theta: bool = False):
        n = self.iterations if iterations is None else iterations
        h, pos, theta_in, thetas = x, 0, None, []
        pending = False  # the input warp of the last input-warping slot, not yet sampled
        for i, slot in enumerate(self.slots):
            if SLOT_KINDS[slot.kind].warps_input:
                theta_in = self._iterate(i, x, theta_in, n)  # composed with earlier slots
                thetas.append(theta_in)
                pending, pos = True, 0
            else:
                if pending:
                    h, pending = self.warp(x, theta_in), False
                p = self.positions[i]
                h = self.net.run(h, pos, p)
                theta = self._iterate(i, h, None, n)
                thetas.append(theta)
                h, pos = self.warp(h, theta), p
        if pending:  # sampled once, from the original input
            h = self.warp(x, theta_in)
        out = self.net.output(self.net.run(h, pos))
        return (out, thetas) if return_theta else out

    def module_groups(self) -> dict[str, str]:
        """``{parameter name: "classifier" | "localizer"}`` (the lr-multiplier groups; SL's
        shared layers are the classifier's)."""
        return {k: ("classifier" if k.startswith("net.") else "localizer")
                for k, _ in self.named_parameters()}


def input_frame_theta(model: DeepSTN, thetas: list[torch.Tensor]) -> torch.Tensor:
    """One ``input_from_output`` matrix for all of a network's slots, to show on the input.

    An input-warping slot's matrix is already composed with the earlier ones (it replaces
    the running one); a map-warping slot's matrix (in its feature map's normalized frame) is
    composed on top, as 000's Fig. 7 and our MNIST Fig. 5 show STN-CX: its matrix applied
    to the input. Feature maps here cover the input's field of view (``same`` convolutions,
    pooling that halves), so the normalized frames agree up to the half-pixel offsets of
    ``align_corners=True`` at each map's size.
    """
    cur = None
    for slot, th in zip(model.slots, thetas):
        if SLOT_KINDS[slot.kind].warps_input or cur is None:
            cur = th
        else:
            cur = geometry.compose(cur, th)
    return cur
