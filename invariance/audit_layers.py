"""Layers of any ``nn.Module`` for the audit: find them by forward hooks, calibrate their frames.

* :func:`capture` runs a model with a forward hook on every sub-module and returns each
  4-D output (``(N, C, h, w)``) and each 2-D output (``(N, D)``, pooled / vector outputs),
  in call order. Tuples, lists and dicts are unpacked (``name.0``, ``name.key``); a module
  called twice gives two layers (``name#1``, ``name#2``); outputs are cloned in the hook,
  so an in-place ReLU that runs later cannot overwrite what was captured. A container that
  only passes on its last child's output (same storage, same version counter) is not
  counted twice.
* :func:`calibrate` measures each layer's coordinate frame: the input-pixel position
  ``u = stride * i + offset`` of the receptive-field centre of feature pixel ``i``, per axis.

Calibration (measured, not assumed):
    For feature pixels ``0``, ``1`` and ``h - 1`` of a layer, the support of
    ``∂ Σ_c Γ_c(x)[i] / ∂ x`` over a few random inputs (zero-padded networks: the receptive
    field cut at the image border) gives, along each axis, the right edge ``R_0`` of pixel
    0, ``R_1`` of pixel 1 and the left edge ``L_{h-1}`` of pixel ``h - 1``. For a
    translation-covariant layer ``R_i = s i + o + r`` and ``L_i = s i + o - r``, so
    ``s = R_1 - R_0`` and ``o = (R_0 + L_{h-1} - s (h - 1)) / 2``, whatever the padding. When
    those edges are cut by the border, the measurement is repeated on a larger canvas
    (2x, 4x; the offset does not depend on the input size for fixed paddings); a model that
    only runs at one size keeps its layers measured there, or marks them ``assumed``.

Convention:
    Input pixel ``u`` has its centre at normalized ``(2u + 1) / W - 1`` (``align_corners=False``,
    :mod:`invariance.warps`); feature pixel ``i`` at ``(2i + 1) / w - 1`` in its own frame.
    :meth:`Frame.input_from_feature` is the affine map between the two normalized frames.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

__all__ = ["Captured", "Frame", "capture", "calibrate", "frame_matrix", "model_input_channels",
           "fx_module_calls"]


@dataclass
class Captured:
    """One captured output: ``name`` (module path, ``.k`` for tuple items, ``#n`` per call),
    ``module`` (its class name), ``tensor`` (a clone; ``(N, C, h, w)`` or ``(N, D)``)."""

    name: str
    module: str
    tensor: torch.Tensor


def _items(out, prefix=""):
    """``(suffix, tensor)`` of every tensor in ``out`` (tuples, lists, dicts unpacked)."""
    if isinstance(out, torch.Tensor):
        yield prefix, out
    elif isinstance(out, (tuple, list)):
        for i, o in enumerate(out):
            yield from _items(o, f"{prefix}.{i}")
    elif isinstance(out, dict):
        for k, o in out.items():
            yield from _items(o, f"{prefix}.{k}")


def capture(model: nn.Module, x: torch.Tensor, *, grad: bool = False,
            allow_failure: bool = False) -> tuple[list[Captured], Exception | None]:
    """Run ``model(x)`` with a forward hook on every module; return the 4-D and 2-D outputs.

    Args:
        model: any module (put in eval mode by the caller).
        x: ``(N, c, H, W)`` input.
        grad: keep the autograd graph (for :func:`calibrate`); else ``torch.no_grad``.
        allow_failure: return what was captured before ``model(x)`` raised (with the
            exception) instead of raising.

    Returns:
        ``(captured in call order, exception or None)``.

    Raises:
        ValueError: the model could not be hooked, or it raised and ``allow_failure`` is off
            (the message names the module that raised, when known).
    """
    seen: dict[int, tuple] = {}  # id -> (weakref, version): a freed id may be reused
    calls: dict[str, int] = {}
    raw: list[tuple[str, str, int, str, torch.Tensor]] = []
    running: list[str] = []
    names = {m: (n or "<model>") for n, m in model.named_modules(remove_duplicate=False)}

    def pre(mod, _inp):
        running.append(names.get(mod, type(mod).__name__))

    def hook(mod, _inp, output):
        name = running.pop() if running else names.get(mod, "?")
        calls[name] = calls.get(name, 0) + 1
        for suffix, t in _items(output):
            if not t.is_floating_point() or t.dim() not in (2, 4):
                continue
            prev = seen.get(id(t))
            if prev is not None and prev[0]() is t and prev[1] == t._version:
                continue  # a container passing on a child's output: counted once
            seen[id(t)] = (weakref.ref(t), t._version)
            raw.append((name, suffix, calls[name], type(mod).__name__,
                        t.clone() if grad else t.detach().clone()))

    handles = []
    try:
        for m in names:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(hook))
    except RuntimeError as e:
        for h in handles:
            h.remove()
        raise ValueError(f"audit: cannot hook {type(model).__name__}: {e}") from None
    err = None
    try:
        with torch.set_grad_enabled(grad):
            model(x)
    except Exception as e:  # noqa: BLE001 - reported as one line, or returned
        err = e
    finally:
        for h in handles:
            h.remove()
    out = [Captured(f"{n}{suf}" + (f"#{k}" if calls[n] > 1 else ""), cls, t)
           for n, suf, k, cls, t in raw]
    if err is not None and not allow_failure:
        where = running[-1] if running else type(model).__name__
        raise ValueError(f"audit: the model raised in module {where or '<model>'!r} on input "
                         f"{tuple(x.shape)}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}")
    return out, err


def model_input_channels(model: nn.Module) -> int | None:
    """``in_channels`` of the first ``nn.Conv2d`` (registration order), or None."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


@dataclass
class Frame:
    """A layer's frame: input pixel ``u = stride * i + offset`` per axis ``(y, x)``.

    Attributes:
        stride: ``(sy, sx)`` input pixels per feature pixel.
        offset: ``(oy, ox)`` input pixel of feature pixel 0's receptive-field centre.
        method: ``"measured"`` (canvas side recorded in ``canvas``) or ``"assumed"``.
        canvas: input side the measurement used.
        note: why a frame is assumed.
    """

    stride: tuple
    offset: tuple
    method: str = "measured"
    canvas: int = 0
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def centred(self, in_hw, out_hw, tol: float = 1e-6) -> bool:
        """True when the map's centre is the image's centre on both axes."""
        return all(abs(s * (h - 1) / 2 + o - (big - 1) / 2) <= tol
                   for s, o, h, big in zip(self.stride, self.offset, out_hw, in_hw))


def frame_matrix(frame: Frame, in_hw, out_hw, *, dtype=torch.float64) -> torch.Tensor:
    """``(1, 2, 3)`` input-normalized from feature-normalized coordinates ``(x, y)``.

    With ``i = ((x + 1) w - 1) / 2`` and ``u = s i + o``: ``X = (2u + 1) / W - 1``.
    """
    rows = []
    for axis, (s, o, h, big) in enumerate(zip(frame.stride, frame.offset, out_hw, in_hw)):
        a = s * h / big
        b = (s * h - s + 2 * o + 1) / big - 1
        rows.append((axis, a, b))
    (_, ay, by), (_, ax, bx) = rows
    return torch.tensor([[[ax, 0.0, bx], [0.0, ay, by]]], dtype=dtype)


def _edges(g: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Support ``((y_lo, y_hi), (x_lo, x_hi))`` of an ``(H, W)`` gradient magnitude."""
    nz = g > 0
    if not bool(nz.any()):
        return None
    ys = nz.any(1).nonzero()[:, 0]
    xs = nz.any(0).nonzero()[:, 0]
    return (int(ys[0]), int(ys[-1])), (int(xs[0]), int(xs[-1]))


def _measure(model, channels: int, side: int, dtype, seed: int, reps: int = 2, only=None):
    """Frames of every 4-D layer at one canvas side: ``{name: (Frame | None, shape)}``."""
    gen = torch.Generator().manual_seed(seed)
    # Batch: (pixel k in {0, 1, last}) x reps random images; element b's loss reads pixel k.
    x = torch.randn(5 * reps, channels, side, side, generator=gen, dtype=dtype)
    x.requires_grad_(True)
    caps, _ = capture(model, x, grad=True, allow_failure=True)
    out = {}
    for c in caps:
        t = c.tensor
        if only is not None and c.name not in only:
            continue
        if t.dim() != 4 or not t.requires_grad:
            out[c.name] = (None, tuple(t.shape))
            continue
        h, w = t.shape[-2:]
        if h < 2 or w < 2:
            out[c.name] = (None, tuple(t.shape))
            continue
        cy, cx = (h - 1) // 2, (w - 1) // 2
        idx = [(0, 0), (1, 1), (h - 1, w - 1), (cy, cx), (cy + 1, cx + 1)]
        # A random channel weighting (a plain sum is constant for a softmax over channels).
        wc = torch.rand(t.shape[1], generator=gen, dtype=t.dtype) + 0.5  # (C,)
        loss = sum((t[k * reps:(k + 1) * reps, :, iy, ix] * wc).sum()
                   for k, (iy, ix) in enumerate(idx))
        (g,) = torch.autograd.grad(loss, x, retain_graph=True, allow_unused=True)
        if g is None:
            out[c.name] = (None, tuple(t.shape))
            continue
        mag = g.abs().sum(1)  # (B, H, W)
        e = [_edges(mag[k * reps:(k + 1) * reps].sum(0)) for k in range(len(idx))]
        if any(v is None for v in e):
            out[c.name] = (None, tuple(t.shape))
            continue
        res = []
        ok = True
        for axis, n in ((0, h), (1, w)):
            (lc, hc), (lc1, hc1) = e[3][axis], e[4][axis]
            ci = (cy, cx)[axis]
            if lc > 0 and hc1 < side - 1:  # interior pixels: support not cut by the border
                s = (lc1 + hc1 - lc - hc) / 2
                o = (lc + hc) / 2 - s * ci
            else:  # corner pixels: right edges of 0 and 1, left edge of the last
                r0, r1, l_last = e[0][axis][1], e[1][axis][1], e[2][axis][0]
                ok = ok and not (r1 >= side - 1 or l_last <= 0)
                s = r1 - r0
                o = (r0 + l_last - s * (n - 1)) / 2
            res.append((float(s), round(2 * o) / 2))
        frame = Frame((res[0][0], res[1][0]), (res[0][1], res[1][1]), "measured", side)
        out[c.name] = (frame if ok and frame.stride[0] > 0 and frame.stride[1] > 0 else None,
                       tuple(t.shape))
    return out


def calibrate(model: nn.Module, channels: int, side: int, *, dtype=torch.float64,
              seed: int = 0, canvases=(1, 2, 4), max_side: int = 512) -> dict[str, Frame]:
    """Measure the frame of every 4-D layer (see the module docstring).

    Args:
        model: the model in eval mode.
        channels: input channels.
        side: the audit's input side (square inputs).
        dtype: computation dtype (the model's).
        seed: random inputs.
        canvases: multiples of ``side`` tried in turn while some layer is still cut.
        max_side: largest canvas.

    Returns:
        ``{layer name: Frame}`` for the layers captured at ``side``.
    """
    frames: dict[str, Frame] = {}
    names_at_side: list[str] | None = None
    shapes_at_side: dict[str, tuple] = {}
    for mult in canvases:
        big = side * mult
        if big > max_side and mult > 1:
            break
        todo = None if names_at_side is None else {
            n for n in names_at_side if n not in frames and len(shapes_at_side[n]) == 4}
        meas = _measure(model, channels, big, dtype, seed, only=todo)
        if names_at_side is None:
            names_at_side = list(meas)
            shapes_at_side = {k: v[1] for k, v in meas.items()}
        for name, (fr, _) in meas.items():
            if name in names_at_side and name not in frames and fr is not None:
                frames[name] = fr
        if all(n in frames for n in names_at_side if len(shapes_at_side[n]) == 4):
            break
    for n in names_at_side or []:
        shp = shapes_at_side[n]
        if len(shp) == 4 and n not in frames:
            h, w = shp[-2:]
            sy, sx = side / h, side / w
            frames[n] = Frame((sy, sx), ((sy - 1) / 2, (sx - 1) / 2), "assumed", side,
                              "receptive field cut by the border at every canvas the model "
                              "runs on (or map under 2 px): the shared frame is assumed")
    return frames


def fx_module_calls(model: nn.Module) -> tuple[list[str] | None, str]:
    """The module calls of ``model`` in order, from ``torch.fx.symbolic_trace``.

    A cross-check of :func:`capture`'s call order (fx also sees functional adds, which hooks
    cannot: they appear as ``call_function`` nodes and are not listed here). Returns
    ``(None, reason)`` when the model cannot be traced (data-dependent control flow, ...).
    """
    try:
        import torch.fx as fx

        g = fx.symbolic_trace(model).graph
    except Exception as e:  # noqa: BLE001 - untraceable models are common; say why
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return [str(n.target) for n in g.nodes if n.op == "call_module"], ""
