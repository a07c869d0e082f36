"""``stnlab audit MODEL``: a per-layer invariance audit of any PyTorch model.

::

    stnlab audit MODEL --images mnist|skimage|DIR|FILE.pt [--n 64] [--size auto|N]
        [--transforms rot90,rot30,scale1.41,...] [--layers a,b] [--search local|none]
        [--modes spatial,permutation,mix,lie] [--factory F] [--trust] [--seed 0]
        [--blur SIGMA] [--out DIR] [--json [PATH]] [--no-figures]

``MODEL`` is a built-in name (:data:`models.audit_nets.BUILTINS`: ``resnet18``,
``mtcnn-pnet``, ``mtcnn-rnet``, ``mtcnn-onet``, ``stn-c0``, ``stn-c1``), ``package.module:factory``
(called with no arguments), or a file: a ``state_dict`` (or a ``stnlab train``
checkpoint) loaded with ``weights_only=True`` into ``--factory`` (a built-in name or
``package.module:factory``; a ``stnlab train`` MNIST checkpoint names its own network);
a pickled module is loaded only with ``--trust`` (it runs arbitrary code: a warning is
printed).

Writes ``audit.json`` (:meth:`invariance.audit.AuditReport.to_json`), ``audit.md`` and the
figures (:func:`figures.audit.plot_audit`) to ``--out`` (default ``audit-out/<model>`` in
the working directory). The measuring is :func:`invariance.audit.audit`; this module only
loads the model and images and writes files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch

from models.errors import UsageError
from models.runio import add_json_argument, emit_json

__all__ = ["add_arguments", "run", "load_model", "load_images"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``audit`` arguments."""
    from invariance.audit_metrics import DEFAULT_TRANSFORMS

    parser.add_argument("model", metavar="MODEL",
                        help="built-in name (resnet18, mtcnn-pnet, mtcnn-rnet, mtcnn-onet, "
                        "stn-c0, stn-c1), package.module:factory, or a state_dict / checkpoint "
                        "file (with --factory)")
    parser.add_argument("--images", default="skimage", metavar="SRC",
                        help="mnist, skimage, a directory of image files, or a FILE.pt holding "
                        "an (N, C, H, W) tensor (default: skimage)")
    parser.add_argument("--n", type=int, default=64, help="images (default 64)")
    parser.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                        help="Gaussian smoothing of skimage crops, in pixels of the input side "
                        "(default 0; a smaller interpolation floor resolves smaller "
                        "misalignments)")
    parser.add_argument("--size", default=None, metavar="auto|N",
                        help="input side: N pixels, or auto (the side where most layers have "
                        "a centred frame, so 90° rotations are exact); default: the built-in's "
                        "side, else 28 for mnist and 64 otherwise")
    parser.add_argument("--transforms", default=",".join(DEFAULT_TRANSFORMS),
                        help="comma list of rotA, scaleS, shiftD, shift (default: %(default)s)")
    parser.add_argument("--layers", default="auto", help="comma list of layer names, or auto")
    parser.add_argument("--modes", default="spatial,permutation,mix,lie",
                        help="comma list (default: %(default)s)")
    parser.add_argument("--search", default="local", choices=("local", "none"),
                        help="local search over T_g around T_h^-1 (default local)")
    parser.add_argument("--factory", default=None,
                        help="for a state_dict file: a built-in name or package.module:factory")
    parser.add_argument("--trust", action="store_true",
                        help="allow loading a pickled module (runs code from the file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output directory (default: audit-out/<model>)")
    parser.add_argument("--no-figures", action="store_true", help="write no PNG figures")
    add_json_argument(parser, "audit.json's content")


def _say(msg: str) -> None:
    print(f"stnlab audit: {msg}", file=sys.stderr, flush=True)


def _factory(spec: str, what: str):
    """A built-in name or ``package.module:factory`` -> ``(module, channels, side)``."""
    from models.audit_nets import BUILTINS

    if spec in BUILTINS:
        fac, chans, side, _ = BUILTINS[spec]
        return fac(), chans, side
    mod_name, _, attr = spec.partition(":")
    if not attr:
        raise UsageError(f"{what}: expected a built-in name ({', '.join(BUILTINS)}) or "
                         f"package.module:factory, got {spec!r}")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise UsageError(f"{what}: cannot import module {mod_name!r} ({e})") from None
    fac = getattr(mod, attr, None)
    if fac is None or not callable(fac):
        raise UsageError(f"{what}: module {mod_name!r} has no factory {attr!r}")
    try:
        net = fac()
    except Exception as e:  # noqa: BLE001 - the user's factory
        raise UsageError(f"{what}: {spec}() raised {type(e).__name__}: {e}") from None
    if not isinstance(net, torch.nn.Module):
        raise UsageError(f"{what}: {spec}() returned {type(net).__name__}, expected an "
                         "nn.Module")
    return net, None, None


def _state_dict_of(obj) -> dict | None:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("params", "model", "state_dict", "model_state_dict"):
            sd = _state_dict_of(obj.get(key)) if obj.get(key) is not None else None
            if sd is not None:
                return sd
    return None


def load_model(spec: str, *, factory: str | None = None, trust: bool = False):
    """``(module, name, channels or None, default side or None)`` for ``MODEL``."""
    from models.audit_nets import BUILTINS

    if spec in BUILTINS:
        net, chans, side = _factory(spec, "MODEL")
        return net, spec, chans, side
    path = Path(spec)
    if path.exists():
        if path.is_dir():
            raise UsageError(f"MODEL: {spec} is a directory, expected a state_dict file")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - weights_only refuses arbitrary pickles
            if not trust:
                raise UsageError(f"MODEL: {spec} does not load with weights_only=True "
                                 f"({type(e).__name__}); a pickled module needs --trust") \
                    from None
            _say(f"warning: --trust: unpickling {spec} runs code from the file")
            obj = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(obj, torch.nn.Module):
                raise UsageError(f"MODEL: {spec} holds {type(obj).__name__}, expected an "
                                 "nn.Module") from None
            return obj, path.name, None, None
        sd = _state_dict_of(obj)
        if sd is None:
            raise UsageError(f"MODEL: {spec} holds no state_dict (a dict of tensors)")
        chans = side = None
        if factory is None:
            cfg = obj.get("config") if isinstance(obj, dict) else None
            if isinstance(cfg, dict) and cfg.get("variant") and cfg.get("net"):
                from models.mnist_nets import VARIANT_SHAPES, build

                net = build(cfg["variant"], cfg["net"])
                chans, side = VARIANT_SHAPES[cfg["variant"]][0], VARIANT_SHAPES[cfg["variant"]][1]
                name = f"{cfg['net']} ({cfg['variant']}, {path.name})"
            else:
                raise UsageError(f"MODEL: {spec} is a state_dict; expected --factory (a "
                                 "built-in name or package.module:factory)")
        else:
            net, chans, side = _factory(factory, "--factory")
            name = f"{factory} ({path.name})"
        own = net.state_dict()
        if set(sd) == set(own) and all(sd[k].dim() == own[k].dim() + 1 and
                                       tuple(sd[k].shape[1:]) == tuple(own[k].shape) and
                                       sd[k].shape[0] == next(iter(sd.values())).shape[0]
                                       for k in own):
            # `stnlab train` stacks the parameters of its seeds (vmap): take the first seed
            sd = {k: v[0] for k, v in sd.items()}
            name = f"{name}, seed index 0"
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            first = " ".join(str(e).split())[:200]
            raise UsageError(f"MODEL: the state_dict in {spec} does not match the network: "
                             f"{first}") from None
        return net.eval(), name, chans, side
    if ":" in spec:
        net, chans, side = _factory(spec, "MODEL")
        return net, spec, chans, side
    raise UsageError(f"MODEL: expected a built-in name ({', '.join(BUILTINS)}), "
                     f"package.module:factory or an existing file, got {spec!r}")


def load_images(src: str, n: int, size: int | None, channels: int | None, seed: int,
                blur: float = 0.0):
    """``(images (n, channels, S, S) float32, label)`` from ``--images`` (``channels`` None:
    as the source gives them; photographs then have 3)."""
    import torch.nn.functional as F

    from models.data import images as im

    if src == "mnist":
        if channels not in (None, 1):
            raise UsageError(f"--images: mnist has 1 channel, the model expects {channels}")
        x = im.load_mnist_digits(n, seed=seed, canvas=28)
        label = f"mnist test digits (seed {seed})"
    elif src == "skimage":
        x = im.load_natural_crops(n, size or 64, channels=channels or 3, seed=seed, blur=blur)
        label = "skimage.data photographs (crops)" + (f", blur {blur:g} px" if blur else "")
    else:
        p = Path(src)
        if p.is_dir():
            x = im.load_image_files(p, n, size or 64, channels=channels or 3)
            label = f"files in {p.name}/"
        elif p.is_file():
            try:
                x = torch.load(p, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001
                raise UsageError(f"--images: {src} is not a tensor file that loads with "
                                 f"weights_only=True ({type(e).__name__})") from None
            if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
                raise UsageError(f"--images: expected {src} to hold a float (N, C, H, W) "
                                 f"tensor, got {getattr(x, 'shape', type(x).__name__)}")
            x = x[:n].float()
            label = p.name
        else:
            raise UsageError(f"--images: expected mnist, skimage, a directory or a .pt file, "
                             f"got {src!r}")
    if channels is not None and x.shape[1] != channels:
        raise UsageError(f"--images: expected images with {channels} channels (the model's "
                         f"input), got {x.shape[1]}")
    if x.shape[0] < 4:
        raise UsageError(f"--images: expected at least 4 images, got {x.shape[0]}")
    h, w = x.shape[-2:]
    if h != w:
        m = min(h, w)
        x = x[..., (h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > size)
    return x.contiguous(), label


def _csv(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    """Run the audit and write audit.json, audit.md and the figures."""
    from invariance.audit import audit, auto_size
    from invariance.audit_layers import calibrate, model_input_channels

    if args.n < 4:
        raise UsageError(f"--n: expected at least 4 images, got {args.n}")
    size_auto = args.size == "auto"
    size = None
    if args.size is not None and not size_auto:
        try:
            size = int(args.size)
        except ValueError:
            raise UsageError(f"--size: expected auto or a positive integer, got {args.size!r}") \
                from None
        if size < 8:
            raise UsageError(f"--size: expected auto or an integer >= 8, got {args.size!r}")
    from invariance.audit_metrics import parse_transforms

    parse_transforms(args.transforms)  # bad names fail before anything is built
    modes = _csv(args.modes)
    t0 = time.perf_counter()
    net, name, chans, side = load_model(args.model, factory=args.factory, trust=args.trust)
    net.eval()
    chans = chans or model_input_channels(net)  # None: as the image source gives them
    p = next(iter(net.parameters()), None)
    dtype = p.dtype if p is not None else torch.float32
    nominal = size or side or {"mnist": 28, "skimage": 64}.get(args.images)
    if nominal is None and Path(args.images).is_file():  # a tensor file: its own side
        nominal = load_images(args.images, args.n, None, chans, args.seed)[0].shape[-1]
    nominal = nominal or 64
    frames = None
    if size_auto:
        _say("calibrating layer frames for --size auto ...")
        frames = calibrate(net, chans, nominal, dtype=dtype, seed=args.seed)
        size = auto_size(net, chans, frames, nominal, dtype=dtype)
        _say(f"--size auto: {size} px")
    if args.blur < 0 or (args.blur > 0 and args.images != "skimage"):
        raise UsageError(f"--blur: expected a sigma >= 0, for --images skimage only, got "
                         f"{args.blur:g} with --images {args.images}")
    images, label = load_images(args.images, args.n, size or nominal, chans, args.seed,
                                args.blur)
    chans = images.shape[1]
    if frames is not None:  # measured frames do not depend on the side; assumed ones do
        frames = {k: v for k, v in frames.items() if v.method == "measured"}
    out = Path(args.out) if args.out else Path("audit-out") / name.split(" ")[0].replace("/", "_")
    _say(f"{name}: {images.shape[0]} images {tuple(images.shape[1:])}, writing to {out}")
    report = audit(net, images, transforms=args.transforms,
                   layers="auto" if args.layers == "auto" else _csv(args.layers),
                   modes=tuple(modes), seed=args.seed, search=args.search, name=name,
                   frames=frames,
                   progress=_say)
    report.meta["images"] = label
    report.meta["size_auto"] = size_auto
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(report.to_json())
    (out / "audit.md").write_text(report.to_markdown())
    figs = []
    if not args.no_figures:
        from figures.audit import plot_audit

        figs = plot_audit(report.to_dict(), out)
    _say(f"done in {time.perf_counter() - t0:.1f} s: {out / 'audit.json'}, "
         f"{out / 'audit.md'}" + (f", {len(figs)} figures" if figs else ""))
    for s in report.summary:
        print(f"{s['transform']}: {s['line']}")
    if args.json is not None:
        emit_json(args.json, report.to_dict())
    return 0
