"""Drivers of the sampler experiments (003 Sec. 6.3-6.5): load images, run, write JSON + PNG.

Experiments (``EXPERIMENTS``):

* ``gradient-field`` -- 003 Fig. 8, :func:`sampling.experiments.gradient_field`.
* ``alignment`` -- 003 Fig. 7, :func:`sampling.experiments.align_images` on natural
  images (``skimage.data``) and MNIST test digits (if cached).
* ``ablation-sigma`` / ``ablation-k`` / ``ablation-collapse`` -- 003 Figs. 9a, 10a, 10b.

Each run writes ``<out>/<experiment>.json`` (config, seed, versions, device, date,
numbers), ``<out>/<experiment>.png`` (``gradient-field`` also writes
``gradient-field-basin.png``) and regenerates ``<out>/README.md`` from every
result JSON in ``<out>``. Without ``out`` that is ``runs/samplers-<scale>`` under the
working directory (:func:`default_out`, ignored by git); the committed records in
``results/samplers-*`` are rewritten only when named explicitly.

Data. Natural images: ``skimage.data`` ``NATURAL_IMAGES``, converted to grayscale
in ``[0, 1]``, centre-cropped to a square and resized (anti-aliased) to
``image_size``; the experiment's region is then their central two-thirds
(``crop = 2/3``, 003 Sec. 6.3). MNIST: test digits as ``[0, 1]`` floats at 28 px,
region = the whole digit (``crop = 1``, zero padding outside).

Scales (:data:`SCALES`): ``smoke`` (seconds, for tests), ``small`` (minutes on a
loaded 2-core CPU), ``paper`` (003's 80 trials per setting; a GPU helps).
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models import runio
from models.data import images
from sampling import METHODS  # the sampler names, from sampling.registry
from sampling import experiments as ex

from . import readme

__all__ = [
    "default_out",
    "EXPERIMENTS",
    "SCALES",
    "ScaleConfig",
    "GradientFieldConfig",
    "AlignmentConfig",
    "AblationConfig",
    "NATURAL_IMAGES",
    "load_natural_images",
    "load_mnist_digits",
    "trial_setup",
    "run_experiment",
    "write_readme",
    "torch_threads",
]

EXPERIMENTS = ("gradient-field", "alignment", "ablation-sigma", "ablation-k", "ablation-collapse")
NATURAL_IMAGES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins")
DOWNSAMPLES = (1, 2, 4, 8)
#: Recall thresholds on the mean corner error, input normalized units (width 2).
THRESHOLDS = tuple(float(x) for x in np.linspace(0.0, 0.5, 51))
REPORT_THRESHOLDS = (0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class ScaleConfig:
    """Sizes of one scale. Choices are ours unless marked 003.

    Attributes:
        image_size: natural images are resized to this square size before the crop.
        field_images: how many natural images the gradient field averages over.
        field_grid: ``n`` of the ``n x n`` offset grid.
        field_extent: offsets span ``[-extent, extent]^2`` (normalized units).
        trials: alignment trials per (dataset, d, sampler) (003: 80).
        steps: Adam steps per alignment.
        lr: Adam learning rate.
        ablation_trials: trials per ablation setting.
        ablation_image_size: natural image size for the ablations.
        collapse_image_size: natural image size for the collapse ablation (4x
            upsampling makes the output 4x larger than the region).

    Image size matters beyond cost: the multi-scale baseline blurs with fixed
    sigmas {1, 5, 10} *input pixels* (003 Sec. 6), so on small images it is
    relatively much blurrier than on 003's Pascal VOC images (~500 px). The
    ``paper`` scale uses 384 px images (region 256 px) to stay close to that.
    """

    image_size: int
    field_images: int
    field_grid: int
    field_extent: float
    trials: int
    steps: int
    lr: float
    ablation_trials: int
    ablation_image_size: int
    collapse_image_size: int

    def gradient_field(self) -> "GradientFieldConfig":
        return GradientFieldConfig(self.image_size, self.field_images, self.field_grid,
                                   self.field_extent)

    def alignment(self) -> "AlignmentConfig":
        return AlignmentConfig(self.image_size, self.trials, self.steps, self.lr)

    def ablation(self, image_size: int) -> "AblationConfig":
        return AblationConfig(image_size, self.ablation_trials, self.steps, self.lr)


@dataclass(frozen=True)
class GradientFieldConfig:
    """003 Fig. 8: ``field_images`` natural images at ``image_size``, an ``n x n`` grid of
    offsets over ``[-field_extent, field_extent]^2``."""

    image_size: int
    field_images: int
    field_grid: int
    field_extent: float


@dataclass(frozen=True)
class AlignmentConfig:
    """003 Fig. 7: ``trials`` per (dataset, d, sampler), ``steps`` Adam steps at ``lr``."""

    image_size: int
    trials: int
    steps: int
    lr: float


@dataclass(frozen=True)
class AblationConfig:
    """003 Figs. 9, 10: ``trials`` per setting on natural images at ``image_size``."""

    image_size: int
    trials: int
    steps: int
    lr: float


SCALES = {
    "smoke": ScaleConfig(image_size=32, field_images=1, field_grid=5, field_extent=0.5,
                         trials=4, steps=5, lr=1e-2, ablation_trials=4,
                         ablation_image_size=32, collapse_image_size=24),
    "small": ScaleConfig(image_size=128, field_images=3, field_grid=15, field_extent=0.7,
                         trials=48, steps=200, lr=1e-2, ablation_trials=48,
                         ablation_image_size=128, collapse_image_size=48),
    "paper": ScaleConfig(image_size=384, field_images=6, field_grid=21, field_extent=0.7,
                         trials=80, steps=500, lr=1e-2, ablation_trials=80,
                         ablation_image_size=384, collapse_image_size=96),
}


# ------------------------------------------------------------------------------ data
def load_natural_images(names=NATURAL_IMAGES, size: int = 96) -> tuple[torch.Tensor, list[str]]:
    """Grayscale ``skimage.data`` images, centre-cropped square, resized: ``(N, 1, size, size)``
    float32 in ``[0, 1]``, and their names (:func:`models.data.images.load_natural_images`).

    Raises ``FileNotFoundError`` if scikit-image or an image is not available.
    """
    return images.load_natural_images(names, size), list(names)


def load_mnist_digits(n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` random MNIST test digits as ``(n, 1, 28, 28)`` float32 in ``[0, 1]``
    (:func:`models.data.images.load_mnist_digits`).

    Raises:
        FileNotFoundError: MNIST is not cached ("run `stnlab data fetch mnist`").
    """
    return images.load_mnist_digits(n, seed=seed)


# --------------------------------------------------------------------------- helpers
#: Run a block with ``torch.set_num_threads(n)`` (``None``: unchanged), then restore.
#: The experiments' tensors are small (tens of pixels per side after downsampling); on a
#: shared 2-core machine intra-op threads mostly wait for each other, and one thread was
#: ~10x faster than two in our measurements.
torch_threads = runio.thread_limit


def _versions() -> dict:
    return {**runio.package_versions(("scikit-image", "stnlab")), "git_sha": runio.git_commit()}


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({runio.device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({runio.device_name('cpu')}, {n} thread{'s' if n > 1 else ''})"


class _Progress:
    """``[i/n] what  elapsed  ETA`` lines on stderr (or silent): :class:`models.runio.Progress`."""

    def __init__(self, total: int, stream=sys.stderr):
        self.done = 0
        self._line = runio.Progress("", total, stream=stream, enabled=stream is not None,
                                    every_s=0.0)

    def step(self, what: str) -> None:
        self.done += 1
        self._line.update(self.done, what=what, force=True)


def _summary_recall(res: ex.AlignmentResult) -> dict:
    th = torch.tensor(THRESHOLDS, dtype=torch.float64)
    e = res.errors
    return {"recall": ex.recall_curve(e, th).tolist(),
            "auc": ex.recall_auc(e, max(THRESHOLDS)),
            "recall_at": {f"{t:g}": float(ex.recall_curve(e, torch.tensor([t]))[0])
                          for t in REPORT_THRESHOLDS},
            "median_error": float(e.median()),
            "errors": res.to_dict()["errors"],
            "initial_median_error": float(res.initial_errors.median()),
            "output_size": list(res.output_size)}


def trial_setup(n_images: int, trials: int, seed: int, device, dtype=torch.float32):
    """Image indices and perturbation matrices shared by every sampler of a setting (paired)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_images, (trials,), generator=g)
    pert = ex.sample_perturbations(trials, ex.Perturbation(), generator=g, dtype=dtype)
    return idx, pert.to(device)


# ----------------------------------------------------------------------- experiments
def gradient_field_experiment(cfg: GradientFieldConfig, *, seed: int, device: str,
                              progress: _Progress | None = None,
                              methods=METHODS, downsamples=DOWNSAMPLES) -> dict:
    """003 Fig. 8 on ``cfg.field_images`` natural images; returns the result dict."""
    images, names = load_natural_images(NATURAL_IMAGES[:cfg.field_images], cfg.image_size)
    images = images.to(device)
    offsets = ex.offset_grid(cfg.field_extent, cfg.field_grid, device=device)
    fields: dict = {}
    for i, name in enumerate(names):
        fields[name] = {}
        for m in methods:
            fields[name][m] = {}
            for d in downsamples:
                gen = torch.Generator(device=device).manual_seed(seed + 1000 * i + d)
                f = ex.gradient_field(images[i], downsample=d, offsets=offsets, method=m,
                                      generator=gen)
                fields[name][m][str(d)] = f.to_dict()
                if progress:
                    progress.step(f"gradient-field {name} {m} {d}x: basin fraction "
                                  f"{f.basin_fraction:.2f}, radius {f.basin_radius:.2f}")
    summary = {m: {str(d): {} for d in downsamples} for m in methods}
    for m in methods:
        for d in downsamples:
            fr = [fields[n][m][str(d)]["basin_fraction"] for n in names]
            ra = [fields[n][m][str(d)]["basin_radius"] for n in names]
            summary[m][str(d)] = {"basin_fraction_mean": float(np.mean(fr)),
                                  "basin_fraction_per_image": fr,
                                  "basin_radius_mean": float(np.mean(ra)),
                                  "basin_radius_per_image": ra}
    thumbs = {n: torch.nn.functional.interpolate(images[i:i + 1].cpu(), size=(64, 64),
                                                 mode="area")[0, 0].tolist()
              for i, n in enumerate(names[:1])}
    target = ({str(d): summary["linearized"][str(d)]["basin_fraction_mean"]
               > summary["bilinear"][str(d)]["basin_fraction_mean"] for d in downsamples}
              if {"linearized", "bilinear"} <= set(methods) else {})
    return {"images": names, "methods": list(methods), "downsamples": list(downsamples),
            "fields": fields, "summary": summary, "thumbnails": thumbs,
            "target_linearized_above_bilinear": target,
            "config": {"crop": 2 / 3, "cos_threshold": 0.7, "image_size": cfg.image_size,
                       "field_grid": cfg.field_grid, "field_extent": cfg.field_extent,
                       "loss": "mean squared error vs the same sampler's rendering at t=0",
                       "parameters": "translation (tx, ty) of the crop, input normalized units"}}


def alignment_experiment(cfg: AlignmentConfig, *, seed: int, device: str,
                         progress: _Progress | None = None, methods=METHODS,
                         downsamples=DOWNSAMPLES, datasets=("natural", "mnist"),
                         target: str = "common") -> dict:
    """003 Fig. 7: recall vs threshold per dataset, d and sampler (paired trials).

    ``target="common"`` is 003's protocol (one bilinearly downsampled target per trial for
    every sampler); ``"own"`` (each sampler's own rendering) is a labelled diagnostic.
    """
    results: dict = {}
    trials: dict = {}
    skipped: dict = {}
    for dname in datasets:
        if dname == "natural":
            images, _ = load_natural_images(NATURAL_IMAGES, cfg.image_size)
            crop = 2 / 3
        else:
            try:
                images = load_mnist_digits(cfg.trials, seed=seed)
            except FileNotFoundError as e:
                skipped[dname] = str(e)
                results[dname] = {}
                if progress:
                    for _ in range(len(methods) * len(downsamples)):
                        progress.step(f"alignment mnist skipped: {e}")
                continue
            crop = 1.0
        images = images.to(device)
        idx, pert = trial_setup(images.shape[0], cfg.trials, seed, device)
        # natural: trials draw from the 6 images; MNIST: one distinct random digit per trial
        batch = images[idx] if dname == "natural" else images  # (trials, 1, S, S)
        trials[dname] = cfg.trials
        results[dname] = {m: {} for m in methods}
        for d in downsamples:
            for m in methods:
                gen = torch.Generator(device=device).manual_seed(seed + d)
                r = ex.align_images(batch, perturbation=pert, method=m, steps=cfg.steps,
                                    lr=cfg.lr, downsample=d, crop=crop, generator=gen,
                                    target=target)
                results[dname][m][str(d)] = _summary_recall(r)
                if progress:
                    progress.step(f"alignment {dname} {m} {d}x: recall@0.05 "
                                  f"{results[dname][m][str(d)]['recall_at']['0.05']:.2f}, AUC "
                                  f"{results[dname][m][str(d)]['auc']:.2f}")
    return {"methods": list(methods), "downsamples": list(downsamples),
            "thresholds": list(THRESHOLDS), "results": results, "trials": trials,
            "skipped": skipped,
            "config": {"steps": cfg.steps, "lr": cfg.lr, "optimizer": "Adam",
                       "perturbation": ex.Perturbation().to_dict(),
                       "crop": {"natural": 2 / 3, "mnist": 1.0},
                       "image_size": {"natural": cfg.image_size, "mnist": 28},
                       "parameters": "the 6 entries of input_from_output",
                       "error": "mean corner reprojection error, input normalized units",
                       "target": target,
                       "loss": _LOSS[target]}}


_LOSS = {"common": "mean squared error vs one target per trial, the region at the truth "
                   "downsampled by plain bilinear sampling, shared by every sampler (003)",
         "own": "mean squared error vs the same sampler's rendering at the truth "
                "(diagnostic, not 003's protocol)"}


def _ablation(cfg: AblationConfig, *, seed: int, device: str, progress, settings,
              title: str, parameter: str, target: str = "common") -> dict:
    """Run ``settings`` = list of (label, group, variant, method, downsample, options)."""
    images, _ = load_natural_images(NATURAL_IMAGES, cfg.image_size)
    images = images.to(device)
    idx, pert = trial_setup(images.shape[0], cfg.trials, seed, device)
    batch = images[idx]
    entries = []
    for label, group, variant, method, d, opts in settings:
        gen = torch.Generator(device=device).manual_seed(seed + 7)
        r = ex.align_images(batch, perturbation=pert, method=method, steps=cfg.steps, lr=cfg.lr,
                            downsample=d, crop=2 / 3, method_options=opts, generator=gen,
                            target=target)
        s = _summary_recall(r)
        entries.append({"label": label, "group": group, "variant": variant, "method": method,
                        "downsample": d, "options": opts, **s})
        if progress:
            progress.step(f"{title}: {label}: AUC {s['auc']:.2f}")
    return {"title": title, "parameter": parameter, "entries": entries,
            "thresholds": list(THRESHOLDS), "trials": cfg.trials,
            "config": {"steps": cfg.steps, "lr": cfg.lr, "optimizer": "Adam",
                       "image_size": cfg.image_size, "crop": 2 / 3, "target": target,
                       "loss": _LOSS[target], "perturbation": ex.Perturbation().to_dict()}}


ABLATION_DOWNSAMPLE = 4  # 003 Fig. 10a states 4x; we use it for Fig. 9a too (003 does not say)
SIGMAS = (1.0, 3.0, 6.0)  # 003 Fig. 9 (b-d): 1, 3, 6 px (our sampler: output pixels)
KS = (4, 8, 16, 32)  # 003 Fig. 10a
UPSAMPLINGS = (1, 2, 4)  # 003 Fig. 10b


def ablation_sigma_settings() -> list[tuple]:
    """003 Fig. 9a: linearized with sigma in {1, 3, 6} output px at 4x down, plus bilinear."""
    d = ABLATION_DOWNSAMPLE
    return ([(f"sigma = {s:g} px", f"{s:g}", "linearized", "linearized", d, {"sigma": s})
             for s in SIGMAS] + [("bilinear", "bilinear", "bilinear", "bilinear", d, {})])


def ablation_k_settings() -> list[tuple]:
    """003 Fig. 10a: linearized with K in {4, 8, 16, 32} at 4x down, plus bilinear."""
    d = ABLATION_DOWNSAMPLE
    return ([(f"K = {k}", str(k), "linearized", "linearized", d, {"num_samples": k})
             for k in KS] + [("bilinear", "bilinear", "bilinear", "bilinear", d, {})])


def ablation_collapse_settings() -> list[tuple]:
    """003 Fig. 10b: linearized, collapse prevention on/off, at 1x, 2x, 4x upsampling."""
    out = []
    for u in UPSAMPLINGS:
        for on in (True, False):
            out.append((f"{u}x up, collapse prevention {'on' if on else 'off'}", f"{u}x",
                        "on" if on else "off", "linearized", 1.0 / u, {"collapse_noise": on}))
    return out


def default_out(scale: str) -> Path:
    """Where ``stnlab experiment --scale SCALE`` writes without ``--out``:
    ``runs/samplers-<scale>`` under the working directory (ignored by git)."""
    return Path("runs") / f"samplers-{scale}"


def run_experiment(name: str, *, scale: str = "small", out: Path | str | None = None,
                   seed: int = 0, device: str = "cpu", quiet: bool = False,
                   threads: int | None = 1) -> dict:
    """Run one experiment, write ``<out>/<name>.json``, its figure(s) and ``<out>/README.md``.

    Args:
        name: one of :data:`EXPERIMENTS`.
        scale: one of :data:`SCALES`.
        out: output directory (default :func:`default_out`: ``runs/samplers-<scale>``
            under the working directory, which ``.gitignore`` covers; the committed
            records in ``results/`` are written only when asked for by name).
        seed: seeds torch, numpy and every generator of the run.
        device: ``"cpu"`` or ``"cuda"``.
        quiet: no progress lines on stderr.
        threads: torch intra-op threads during the run (``None``: unchanged).

    Returns:
        The result dict (as written).

    Raises:
        ValueError: unknown experiment or scale, CUDA asked for but absent, or an
            ``out`` that is a file (checked before the run).
    """
    from models.errors import UsageError

    if name not in EXPERIMENTS:
        raise UsageError(f"experiment: expected one of {', '.join(EXPERIMENTS)}, got {name!r}")
    if scale not in SCALES:
        raise UsageError(f"experiment: expected --scale in {', '.join(SCALES)}, got {scale!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("experiment: --device cuda asked for, but CUDA is not available")
    cfg = SCALES[scale]
    out = runio.check_output_dir(default_out(scale) if out is None else out, arg="--out")
    if stream := (None if quiet else sys.stderr):
        print(f"stnlab experiment {name}: writing to {out}", file=stream)
    torch.manual_seed(seed)
    np.random.seed(seed)
    n_ds = len(DOWNSAMPLES)
    totals = {"gradient-field": cfg.field_images * len(METHODS) * n_ds,
              "alignment": 2 * len(METHODS) * n_ds,
              "ablation-sigma": len(SIGMAS) + 1, "ablation-k": len(KS) + 1,
              "ablation-collapse": 2 * len(UPSAMPLINGS)}
    progress = _Progress(totals[name], stream)
    t0 = time.perf_counter()
    with torch_threads(threads):
        res = _dispatch(name, cfg, seed=seed, device=device, progress=progress)
        device_name = _device_name(device)
    res = {"experiment": name, "scale": scale, "seed": seed, "scale_config": asdict(cfg),
           "device": device_name,
           "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "wall_seconds": round(time.perf_counter() - t0, 1), "versions": _versions(), **res}
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / f"{name}.json", res)
    draw_figures(res, out)
    write_readme(out)
    if stream:
        print(f"wrote {out / (name + '.json')} ({res['wall_seconds']}s)", file=stream)
    return res


def _dispatch(name: str, cfg: ScaleConfig, **kw) -> dict:
    """Run experiment ``name`` with its own config, cut from the scale's ``cfg``."""
    run = {
        "gradient-field": lambda: gradient_field_experiment(cfg.gradient_field(), **kw),
        "alignment": lambda: alignment_experiment(cfg.alignment(), **kw),
        "ablation-sigma": lambda: _ablation(
            cfg.ablation(cfg.ablation_image_size), settings=ablation_sigma_settings(),
            title=f"sigma ablation (003 Fig. 9a), {ABLATION_DOWNSAMPLE}x down",
            parameter="sigma", **kw),
        "ablation-k": lambda: _ablation(
            cfg.ablation(cfg.ablation_image_size), settings=ablation_k_settings(),
            title=f"K ablation (003 Fig. 10a), {ABLATION_DOWNSAMPLE}x down",
            parameter="num_samples", **kw),
        "ablation-collapse": lambda: _ablation(
            cfg.ablation(cfg.collapse_image_size), settings=ablation_collapse_settings(),
            title="collapse prevention ablation (003 Fig. 10b)", parameter="collapse_noise",
            **kw),
    }
    return run[name]()


def _round_floats(obj, digits: int = 6):
    """Round floats to ``digits`` significant digits (the JSON is for reading and plotting)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def _write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` atomically (temporary file, then rename); floats to 6 significant digits."""
    runio.atomic_write_json(path, _round_floats(obj), indent=None, separators=(",", ":"),
                            allow_nan=False)


def draw_figures(res: dict, out: Path) -> list[Path]:
    """Draw the figures of one result dict into ``out`` (imports matplotlib lazily)."""
    from figures import sampling as figs

    name = res["experiment"]
    if name == "gradient-field":
        return [figs.gradient_field_figure(res, out / f"{name}.png"),
                figs.basin_figure(res, out / f"{name}-basin.png")]
    if name == "alignment":
        return [figs.alignment_figure(res, out / f"{name}.png")]
    return [figs.ablation_figure(res, out / f"{name}.png")]


# ---------------------------------------------------------------------------- README
def write_readme(out: Path) -> Path:
    """Regenerate ``<out>/README.md``: one table per result JSON found in ``out``
    (:func:`proofs.experiments.readme.write_readme`)."""
    return readme.write_readme(out, EXPERIMENTS, REPORT_THRESHOLDS)
