"""``audit``: where in a network could a spatial transformer live? A per-layer invariance audit.

For every layer of any ``nn.Module`` (found by forward hooks, :mod:`invariance.audit_layers`),
every image transform ``T_h`` (:mod:`invariance.audit_metrics`) and every mode, the audit
measures how well ``Γ(T_h f)`` can be aligned with ``Γ f`` (000 eq. 4), relative to an
interpolation floor, with a 95 % interval over images:

* ``spatial`` -- ``T_g = T_h^{-1}`` in the layer's *calibrated* frame
  (``T_g = F^{-1} T_h^{-1} F``, ``F`` = :func:`invariance.audit_layers.frame_matrix`), an
  exact index operation where the frame allows it (``rot90`` on a centred square map, a
  shift by a multiple of the stride); ``spatial_search`` -- then a local search over
  ``T_g`` around it (:func:`invariance.search.search_alignment`, on the first
  ``search_images`` images), with the distance of the found ``T_g`` from ``T_h^{-1}``;
* ``permutation`` -- the best channel permutation on top of the best spatial ``T_g``
  (:func:`invariance.channels.best_permutation`, one for all images) and whether it is a
  product of equal cycles (an orientation shift);
* ``mix`` -- a ridge channel mix fitted on the first half of the images and scored on the
  other half (skipped with a reason when the fit has fewer than 5 samples per channel
  weight, ``samples < 5 C``); its floor also holds the ridge's own bias (the held-out error
  of the mix fitted from ``Γ f`` to itself), so a mix is never judged in the exact regime;
* ``lie`` / ``lie_mix`` -- the Lie derivative ``(A(ε) − A(−ε)) / 2ε`` of
  ``A(t) = T_g(t) Γ(T_h(t) f)`` (central finite differences; torch has no forward-mode
  rule for ``grid_sampler_2d``), relative to ``‖Γ f‖``, and its residual after the best
  (held-out) channel-mix generator; transforms ``lie:rot`` and ``lie:scale``;
* ``invariance`` -- ``‖Γ(T_h f) − Γ f‖ / ‖Γ f‖`` for 2-D (pooled / vector) outputs.

Floor: per image, the larger of the image round trip ``‖Γ(T_h^{-1} T_h f) − Γ f‖`` and the
feature-map round trip ``‖T_g T_h Γ f − Γ f‖`` (0 for an exact operation), relative to
``‖Γ f‖`` over the same region; for ``lie`` both divided by ``ε``. The region is the disk
``|X| <= radius`` in *input* normalized coordinates, mapped into each feature map.

The result is a plain :class:`AuditReport`; drawing is :func:`figures.audit.plot_audit`,
files and images are the driver's (``stnlab audit``, :mod:`proofs.audit_cli`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from sampling import geometry

from . import channels as ch
from .audit_layers import Frame, calibrate, capture, frame_matrix
from .audit_metrics import (DEFAULT_TRANSFORMS, FLOOR_FACTOR, Transform, interval,
                            parse_transforms, verdict)
from .measures import similarity
from .search import SearchSpace, search_alignment
from .warps import pixel_centres, transform

__all__ = ["SCHEMA", "MODES", "AuditReport", "audit", "auto_size", "model_hash", "tensor_hash"]

SCHEMA = "stnlab.audit/1"
MODES = ("spatial", "permutation", "mix", "lie")
LIE_EPS = {"rot": math.radians(2.0), "scale": 0.02}
MIN_PIXELS = 4
#: a floor this large (relative error of interpolation alone) makes "alignable" vacuous:
#: marked † in audit.md
COARSE_FLOOR = 0.25


def tensor_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, CPU)."""
    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def model_hash(model: nn.Module) -> str:
    """sha256 over the state_dict's names and tensor bytes, in order."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        if isinstance(v, torch.Tensor):
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _round(x, sig: int = 8):
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.{sig}g}")
    if isinstance(x, dict):
        return {k: _round(v, sig) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, sig) for v in x]
    return x


@dataclass
class AuditReport:
    """The audit's result: ``meta``, ``layers`` (name, shape, frame), ``rows`` (one per
    layer x transform x mode), ``summary`` (one line per transform)."""

    meta: dict
    layers: list
    rows: list
    summary: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return _round({"schema": SCHEMA, "meta": self.meta, "layers": self.layers,
                       "rows": self.rows, "summary": self.summary})

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, 8 significant digits; no timings)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        """A layers x modes table per transform, and the summary lines."""
        return markdown(self.to_dict())


def _fmt(r: dict) -> str:
    if r.get("verdict") == "n/a":
        return "n/a"
    ratio = r.get("ratio")
    mark = {"alignable": "✓", "not alignable": "✗", "undecided": "?"}.get(r["verdict"], "")
    coarse = (r.get("floor") or {}).get("mean") or 0.0
    if ratio and ratio.get("mean") is not None:
        return f"{ratio['mean']:.2f} {mark}" + (" †" if coarse >= COARSE_FLOOR else "")
    e = r["error"]["mean"]
    return f"{e:.1e} {mark}" if e is not None else "n/a"


def markdown(d: dict) -> str:
    """Render a report dict (:meth:`AuditReport.to_dict`, or a loaded ``audit.json``)."""
    m = d["meta"]
    lines = [f"# Invariance audit: {m['model']}", "",
             f"{m['n_images']} images ({m['images']}, {m['size']} px, sha256 "
             f"{m['images_sha256'][:12]}), seed {m['seed']}, torch {m['torch']}, search "
             f"{m['search']}. Cells: error / interpolation floor (mean over images), ✓ "
             f"alignable (95 % interval <= {FLOOR_FACTOR:g}), ✗ not alignable, ? undecided; "
             "an exact operation (floor 0) shows the error itself; † marks a floor >= "
             f"{COARSE_FLOOR:g} (interpolation alone loses that much: the cell cannot resolve "
             "a misalignment smaller than that; smoother images or a larger --size lower it).",
             "", "## Where an ST could live", ""]
    for s in d["summary"]:
        lines.append(f"- **{s['transform']}**: {s['line']}")
    modes = []
    for r in d["rows"]:
        if r["mode"] not in modes:
            modes.append(r["mode"])
    by_t: dict = {}
    for r in d["rows"]:
        by_t.setdefault(r["transform"], {}).setdefault(r["layer"], {})[r["mode"]] = r
    for t, layers in by_t.items():
        cols = [mo for mo in modes if any(mo in v for v in layers.values())]
        lines += ["", f"## {t}", "", "| layer | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for name, cells in layers.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(cells[c]) if c in cells else ""
                                                     for c in cols) + " |")
    na = sorted({(r["layer"], r["reason"]) for r in d["rows"] if r.get("reason")})
    if na:
        lines += ["", "## Notes", ""] + [f"- {n}: {why}" for n, why in na[:40]]
    return "\n".join(lines) + "\n"


def _region(frame_f: torch.Tensor, hw, radius: float) -> torch.Tensor:
    """``(h, w)`` mask of feature pixels whose input-normalized centre is in the disk."""
    p = pixel_centres(hw[0], hw[1], dtype=torch.float64)  # (h, w, 2)
    a = frame_f[0, :, :2]
    b = frame_f[0, :, 2]
    q = p @ a.T + b  # (h, w, 2) input-normalized
    return (q * q).sum(-1) <= radius * radius


def _per_image(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(N,)`` relative errors ``‖a − b‖ / ‖b‖`` over the region."""
    d = (a - b)[..., mask]
    r = b[..., mask]
    tiny = torch.finfo(b.dtype).tiny
    return ((d * d).sum((1, 2)) / (r * r).sum((1, 2)).clamp_min(tiny)).sqrt()


def _cycles(perm: list[int]) -> list[int]:
    seen, lens = set(), []
    for i in range(len(perm)):
        if i in seen:
            continue
        n, j = 0, i
        while j not in seen:
            seen.add(j)
            j = perm[j]
            n += 1
        lens.append(n)
    return sorted(lens)


class _Layer:
    """What the audit knows of one 4-D layer: its frame, matrices and region."""

    def __init__(self, name: str, module: str, shape, frame: Frame, side: int, radius: float):
        self.name, self.module, self.shape, self.frame = name, module, tuple(shape), frame
        hw = self.shape[-2:]
        self.hw = hw
        self.F = frame_matrix(frame, (side, side), hw)  # (1, 2, 3) input <- feature
        self.mask = _region(self.F, hw, radius)
        self.pixels = int(self.mask.sum())
        self.centred = frame.centred((side, side), hw) and hw[0] == hw[1] and \
            frame.stride[0] == frame.stride[1]

    def feature_tg(self, th: torch.Tensor) -> torch.Tensor:
        """``T_g = F^{-1} T_h^{-1} F`` in the feature map's normalized frame."""
        return geometry.compose(geometry.invert(self.F), geometry.compose(
            geometry.invert(th), self.F))

    def feature_th(self, th: torch.Tensor) -> torch.Tensor:
        return geometry.compose(geometry.invert(self.F), geometry.compose(th, self.F))

    def info(self) -> dict:
        return {"name": self.name, "module": self.module, "shape": list(self.shape[1:]),
                "stride": list(self.frame.stride), "offset": list(self.frame.offset),
                "calibration": self.frame.method, "calibration_canvas": self.frame.canvas,
                "calibration_note": self.frame.note, "centred": self.centred,
                "pixels": self.pixels}


def _exact_back(t: Transform, layer: _Layer):
    """The exact index operation undoing ``t`` on this layer's maps, or None."""
    if t.kind == "rot" and t.value % 90 == 0 and layer.centred:
        k = int(t.value // 90) % 4
        return lambda x: torch.rot90(x, -k, dims=(-2, -1))
    if t.kind == "shift":
        s = layer.frame.stride[1]
        if s == int(s) and int(t.value) % int(s) == 0:
            return lambda x: torch.roll(x, -int(t.value) // int(s), dims=-1)
    return None


def auto_size(model: nn.Module, channels: int, frames: dict[str, Frame], target: int, *,
              dtype=torch.float64, span: int = 64) -> int:
    """The input side in ``[target, target + span]`` where the most 4-D layers have a centred
    square frame (``rot90`` exact), ties to the smallest; sides where the model fails skip."""
    best, best_n = None, -1
    for side in range(max(target, 8), target + span + 1):
        x = torch.zeros(1, channels, side, side, dtype=dtype)
        try:
            caps, err = capture(model, x, allow_failure=True)
        except ValueError:
            continue
        if err is not None:
            continue
        n = sum(1 for c in caps if c.tensor.dim() == 4 and c.name in frames and
                frames[c.name].method == "measured" and
                c.tensor.shape[-1] == c.tensor.shape[-2] and
                frames[c.name].centred((side, side), c.tensor.shape[-2:]))
        if n > best_n:
            best, best_n = side, n
    if best is None:
        raise ValueError(f"audit: the model runs at no input side in [{target}, "
                         f"{target + span}] (--size auto)")
    return best


def _progress(cb, msg):
    if cb is not None:
        cb(msg)


def audit(model: nn.Module, images: torch.Tensor, *, transforms=DEFAULT_TRANSFORMS,
          layers="auto", modes=MODES, seed: int = 0, search: str = "local",
          radius: float = 0.5, search_images: int = 16, ridge: float = 1e-6,
          frames: dict[str, Frame] | None = None, name: str = "model",
          progress=None) -> AuditReport:
    """Audit every layer of ``model`` on ``images`` (see the module docstring).

    Args:
        model: any module taking ``(N, c, H, W)``; put in eval mode here.
        images: ``(N, c, S, S)`` square images (the model's dtype is used).
        transforms: names (:func:`invariance.audit_metrics.parse_transforms`).
        layers: ``"auto"`` (every 4-D and 2-D output) or a list of layer names.
        modes: subset of ``("spatial", "permutation", "mix", "lie")``.
        seed: intervals and calibration inputs.
        search: ``"local"`` or ``"none"``.
        radius: region disk in input normalized units.
        search_images: images the local search fits on.
        ridge: relative ridge of the held-out mix.
        frames: precomputed frames (:func:`invariance.audit_layers.calibrate`).
        name: the model's name for the report.
        progress: ``callable(str)`` for progress lines.

    Returns:
        :class:`AuditReport`.

    Raises:
        ValueError: bad images, transforms, modes, layers; a model without a 4-D layer.
    """
    fn = "audit"
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or \
            images.shape[-1] != images.shape[-2] or images.shape[0] < 2:
        raise ValueError(f"{fn}: expected images of shape (N >= 2, C, S, S), got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else images!r}")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"{fn}: expected modes in {MODES}, got {bad}")
    if search not in ("local", "none"):
        raise ValueError(f"{fn}: expected search 'local' or 'none', got {search!r}")
    tlist = parse_transforms(transforms)
    model.eval()
    p = next(iter(model.parameters()), None)
    b = next(iter(model.buffers()), None)
    dtype = p.dtype if p is not None else (b.dtype if b is not None and b.is_floating_point()
                                           else images.dtype)
    x = images.to(dtype)
    n, c, side, _ = x.shape
    torch.manual_seed(seed)
    ref_caps, _ = capture(model, x)
    four = [cp for cp in ref_caps if cp.tensor.dim() == 4]
    if not four:
        raise ValueError(f"{fn}: {type(model).__name__} has no module with a 4-D (N, C, h, w) "
                         "output to audit")
    if layers != "auto":
        want = [layers] if isinstance(layers, str) else list(layers)
        known = [cp.name for cp in ref_caps]
        missing = [w for w in want if w not in known]
        if missing:
            raise ValueError(f"{fn}: expected layer names from {known[:12]}..., got "
                             f"{missing}")
        ref_caps = [cp for cp in ref_caps if cp.name in want]
    if frames is None:
        _progress(progress, f"calibrating the frames of {len(four)} layers ...")
        frames = calibrate(model, c, side, dtype=dtype, seed=seed)
    for t in tlist:
        if t.kind == "shift" and t.value == 0:
            # the largest measured stride <= side / 8: a larger roll puts the wrap-around seam
            # of a zero-padded network into the central region
            strides = [int(f.stride[1]) for f in frames.values() if f.method == "measured"
                       and f.stride[1] == int(f.stride[1]) and f.stride[1] <= side / 8]
            object.__setattr__(t, "value", float(max(strides or [1])))
    layer_objs: dict[str, _Layer] = {}
    for cp in ref_caps:
        if cp.tensor.dim() == 4:
            hh, ww = cp.tensor.shape[-2:]
            fr = frames.get(cp.name) or Frame(
                (side / hh, side / ww), ((side / hh - 1) / 2, (side / ww - 1) / 2), "assumed",
                side, "not measured at any canvas: the shared frame is assumed")
            layer_objs[cp.name] = _Layer(cp.name, cp.module, cp.tensor.shape, fr, side, radius)
    refs = {cp.name: cp.tensor for cp in ref_caps}
    rows: list[dict] = []
    # Held-out split for the mix: first half fits, second half scores.
    n_fit = n // 2

    def row(layer, tname, mode, err, floor, exact, extra=None, reason=""):
        e = interval(err.tolist(), seed=seed) if err is not None else interval([])
        fl = interval(floor.tolist(), seed=seed) if floor is not None else None
        ratio = None
        if err is not None and floor is not None and not exact:
            ratio = interval((err / floor.clamp_min(1e-300)).tolist(), seed=seed)
        v = "n/a" if reason else verdict(e, ratio, exact, dtype)
        r = {"layer": layer, "transform": tname, "mode": mode, "error": e, "floor": fl,
             "ratio": ratio, "exact": bool(exact), "verdict": v, "reason": reason}
        if layer in layer_objs:  # the frame the row was measured in
            r["stride"] = list(layer_objs[layer].frame.stride)
            r["offset"] = list(layer_objs[layer].frame.offset)
        r.update(extra or {})
        rows.append(r)

    for ti, t in enumerate(tlist):
        _progress(progress, f"[{ti + 1}/{len(tlist)}] {t.name}: forward passes ...")
        th = t.matrix(side).to(torch.float64)
        moved = {cp.name: cp.tensor for cp in capture(model, t.apply(x))[0]}
        rt = None if t.exact_on_image else \
            {cp.name: cp.tensor for cp in capture(model, t.round_trip(x))[0]}
        for li, (lname, ref0) in enumerate(refs.items()):
            if lname not in moved or moved[lname].shape != ref0.shape:
                continue
            ref = ref0.to(torch.float64)
            mv = moved[lname].to(torch.float64)
            if ref.dim() == 2:  # pooled / vector output: invariance at T_g = id
                err = (mv - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-300)
                floor = torch.zeros(n, dtype=torch.float64) if rt is None else \
                    (rt[lname].to(torch.float64) - ref).norm(dim=1) / \
                    ref.norm(dim=1).clamp_min(1e-300)
                row(lname, t.name, "invariance", err, floor, rt is None)
                continue
            L = layer_objs[lname]
            if L.pixels < MIN_PIXELS:
                row(lname, t.name, "spatial", None, None, False,
                    reason=f"{L.pixels} pixels in the region (need {MIN_PIXELS}) of a "
                    f"{L.hw[0]}x{L.hw[1]} map")
                continue
            back = _exact_back(t, L)
            tg = L.feature_tg(th)
            aligned = back(mv) if back is not None else transform(mv, tg)
            exact = back is not None and t.exact_on_image
            # floor: image round trip and feature round trip
            f_img = torch.zeros(n, dtype=torch.float64) if rt is None else \
                _per_image(rt[lname].to(torch.float64), ref, L.mask)
            f_feat = torch.zeros(n, dtype=torch.float64) if back is not None else \
                _per_image(transform(transform(ref, L.feature_th(th)), tg), ref, L.mask)
            floor = torch.maximum(f_img, f_feat)
            base = {"pixels": L.pixels, "T_g": "exact index operation" if back is not None
                    else "T_h^-1 (calibrated frame)"}
            if "spatial" in modes:
                row(lname, t.name, "spatial", _per_image(aligned, ref, L.mask), floor, exact,
                    base)
            best = aligned
            if "spatial" in modes and search == "local" and back is None:
                best, extra = _local_search(mv, ref, L, tg, search_images)
                row(lname, t.name, "spatial_search", _per_image(best, ref, L.mask), floor,
                    False, {**base, **extra})
                if float(_per_image(best, ref, L.mask).mean()) > \
                        float(_per_image(aligned, ref, L.mask).mean()):
                    best = aligned
            a = ch.flatten_region(best, L.mask)  # (C, N P)
            bflat = ch.flatten_region(ref, L.mask)
            if "permutation" in modes:
                perm = ch.best_permutation(bflat, a)
                pl = [int(v) for v in perm]
                cyc = _cycles(pl)
                row(lname, t.name, "permutation",
                    _per_image(ch.apply_permutation(best, perm), ref, L.mask), floor, exact,
                    {**base, "permutation": pl, "cycle_lengths": cyc,
                     "identity": all(i == v for i, v in enumerate(pl)),
                     "is_cycle": len(set(cyc)) == 1 and cyc[0] > 1})
            if "mix" in modes:
                cch = ref.shape[1]
                samples = n_fit * L.pixels
                if samples < 5 * cch:
                    row(lname, t.name, "mix", None, None, False,
                        reason=f"held-out mix skipped: {samples} fit samples < 5 x {cch} "
                        "channels")
                else:
                    af = ch.flatten_region(best[:n_fit], L.mask)
                    bf = ch.flatten_region(ref[:n_fit], L.mask)
                    mix = ch.best_channel_mix(bf, af, ridge=ridge)
                    err = _per_image(ch.apply_mix(best[n_fit:], mix), ref[n_fit:], L.mask)
                    # the mix's own floor: what the ridge fit leaves when nothing moved
                    own = _per_image(ch.apply_mix(ref[n_fit:], ch.best_channel_mix(
                        bf, bf, ridge=ridge)), ref[n_fit:], L.mask)
                    row(lname, t.name, "mix", err, torch.maximum(floor[n_fit:], own), False,
                        {**base, "fit_images": n_fit, "scored_images": n - n_fit,
                         "ridge": ridge, "ridge_floor": float(own.mean())})
        del moved, rt
        _progress(progress, f"[{ti + 1}/{len(tlist)}] {t.name}: {len(refs)} layers done")
    if "lie" in modes:
        kinds = [k for k in ("rot", "scale") if any(t.kind == k for t in tlist)]
        for k in kinds:
            _progress(progress, f"Lie derivative ({k}) ...")
            _lie(model, x, k, refs, layer_objs, n_fit, ridge, row)
    meta = {"model": name, "model_class": type(model).__name__,
            "model_sha256": model_hash(model), "images_sha256": tensor_hash(images),
            "n_images": n, "channels": c, "size": side, "dtype": str(dtype).replace("torch.", ""),
            "seed": seed, "torch": torch.__version__, "search": search, "radius": radius,
            "search_images": min(search_images, n), "ridge": ridge,
            "transforms": [{"name": t.name, "kind": t.kind, "value": t.value,
                            "exact_on_image": t.exact_on_image} for t in tlist],
            "modes": list(modes), "floor_factor": FLOOR_FACTOR,
            "floor_factor_source": "proofs.claims.invariance.FLOOR_FACTOR (INV-5/6/8): "
                                   "'bounded away from 0' = at least 2x the interpolation floor",
            "interval": "95 % over images: student-t (n < 30), percentile bootstrap (n >= 30)",
            "images": ""}
    layers_info = [layer_objs[k].info() for k in layer_objs] + \
        [{"name": k, "module": next(cp.module for cp in ref_caps if cp.name == k),
          "shape": list(v.shape[1:]), "vector": True} for k, v in refs.items() if v.dim() == 2]
    return AuditReport(meta, layers_info, rows, summarize(rows, list(layer_objs), tlist))


def _local_search(mv, ref, L: _Layer, tg, n_search: int):
    """Search ``T_g`` near ``T_h^{-1}`` (3 x 3 grid in angle and log-scale, translations
    refined by L-BFGS), on the first ``n_search`` images; returns the aligned maps of all
    images and the found ``T_g`` with its distance from ``T_h^{-1}``."""
    pr = geometry.matrix_to_params(tg)
    a0, ls0 = float(pr.angle[0]), float(pr.log_scale[0].mean())
    t0 = pr.translation[0].tolist()
    space = SearchSpace(angles=(a0 - math.radians(4), a0, a0 + math.radians(4)),
                        log_scales=(ls0 - 0.08, ls0, ls0 + 0.08), shears=(0.0,),
                        tx=(t0[0],), ty=(t0[1],), refine=("angle", "log_scale", "tx", "ty"))
    r = search_alignment(mv[:n_search], ref[:n_search], space, mode="spatial",
                         radius=0.5, refine_iters=15)
    found = r.matrix.to(torch.float64)
    aligned = transform(mv, found)
    # distance in the input frame: F T_g F^{-1} vs T_h^{-1}
    fin = geometry.compose(L.F, geometry.compose(found, geometry.invert(L.F)))
    fin0 = geometry.compose(L.F, geometry.compose(tg, geometry.invert(L.F)))
    p1, p0 = geometry.matrix_to_params(fin), geometry.matrix_to_params(fin0)
    side_px = L.frame.stride[1] * L.hw[1]
    extra = {"T_g": "local search", "found_T_g": fin[0].tolist(),
             "distance_from_T_h_inverse": {
                 "angle_deg": math.degrees(float(p1.angle[0] - p0.angle[0])),
                 "log_scale": float((p1.log_scale - p0.log_scale)[0].mean()),
                 "translation_px": float((p1.translation - p0.translation)[0].norm()) *
                 side_px / 2}}
    return aligned, extra


def _lie(model, x, kind, refs, layer_objs, n_fit, ridge, row):
    """Lie-derivative rows for one generator (``rot`` or ``scale``)."""
    eps = LIE_EPS[kind]
    side = x.shape[-1]

    def mat(t):
        return similarity(-t) if kind == "rot" else similarity(0.0, t)

    caps = {}
    for sgn in (1, -1):
        th = mat(sgn * eps).to(x.dtype)
        caps[sgn] = {cp.name: cp.tensor for cp in capture(model, transform(x, th))[0]}
        caps[f"rt{sgn}"] = {cp.name: cp.tensor for cp in capture(
            model, transform(transform(x, th), geometry.invert(th)))[0]}
    tname = f"lie:{kind}"
    for lname, L in layer_objs.items():
        ref = refs[lname].to(torch.float64)
        if L.pixels < MIN_PIXELS or lname not in caps[1]:
            row(lname, tname, "lie", None, None, False,
                reason=f"{L.pixels} pixels in the region (need {MIN_PIXELS})")
            continue
        al, rti, rtf = {}, {}, {}
        for sgn in (1, -1):
            th = mat(sgn * eps).to(torch.float64)
            al[sgn] = transform(caps[sgn][lname].to(torch.float64), L.feature_tg(th))
            rti[sgn] = caps[f"rt{sgn}"][lname].to(torch.float64)
            rtf[sgn] = transform(transform(ref, L.feature_th(th)), L.feature_tg(th))
        # floor: the finite difference of the round trips (what interpolation leaves in the
        # central difference after the symmetric blur of +eps and -eps cancels)
        floor = torch.maximum(_per_image(ref + (rti[1] - rti[-1]) / (2 * eps), ref, L.mask),
                              _per_image(ref + (rtf[1] - rtf[-1]) / (2 * eps), ref, L.mask))
        lie = (al[1] - al[-1]) / (2 * eps)  # (N, C, h, w)
        err = _per_image(lie + ref, ref, L.mask)  # ‖lie‖ / ‖ref‖
        row(lname, tname, "lie", err, floor, False, {"pixels": L.pixels, "eps": eps})
        cch = ref.shape[1]
        samples = n_fit * L.pixels
        if samples < 5 * cch:
            row(lname, tname, "lie_mix", None, None, False,
                reason=f"held-out mix skipped: {samples} fit samples < 5 x {cch} channels")
            continue
        gen = ch.best_channel_mix(ch.flatten_region(lie[:n_fit], L.mask),
                                  ch.flatten_region(ref[:n_fit], L.mask), ridge=ridge)
        resid = lie[n_fit:] - ch.apply_mix(ref[n_fit:], gen)
        err = _per_image(resid + ref[n_fit:], ref[n_fit:], L.mask)
        row(lname, tname, "lie_mix", err, floor[n_fit:], False,
            {"pixels": L.pixels, "eps": eps, "fit_images": n_fit})


_RANK = {"alignable": 3, "undecided": 2, "not alignable": 1, "n/a": 0}


def summarize(rows: list[dict], order: list[str], tlist) -> list[dict]:
    """Per transform and kind of alignment (spatially, by permutation, by mix): the deepest
    layer (call order) that is alignable and the first that is not (a layer's verdict is
    the best of its modes of that kind)."""
    out = []
    names = [t.name for t in tlist] + sorted({r["transform"] for r in rows
                                              if r["transform"].startswith("lie:")})
    kinds = (("spatially", ("spatial", "spatial_search", "lie")),
             ("by permutation", ("permutation",)), ("by mix", ("mix", "lie_mix")))
    for tn in names:
        deep, first_fail, parts = {}, {}, []
        for label, modes in kinds:
            best: dict[str, str] = {}
            for r in rows:
                if r["transform"] == tn and r["mode"] in modes and r["layer"] in order:
                    v = best.get(r["layer"], "n/a")
                    best[r["layer"]] = max(v, r["verdict"], key=_RANK.__getitem__)
            ok = [order.index(k) for k, v in best.items() if v == "alignable"]
            bad = [order.index(k) for k, v in best.items() if v == "not alignable"]
            deep[label] = order[max(ok)] if ok else None
            first_fail[label] = order[min(bad)] if bad else None
            if best:
                parts.append(f"{label}: deepest alignable {deep[label] or 'none'}, first not "
                             f"alignable {first_fail[label] or 'none'}")
        out.append({"transform": tn, "deepest": deep, "first_not_alignable": first_fail,
                    "line": "; ".join(parts)})
    return out
