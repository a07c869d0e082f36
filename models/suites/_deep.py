"""What 000's two deep suites (SVHN, PlanktonSet) share: config, data streams, evaluation.

:class:`DeepConfig` is the frozen config the loop reads (the fields of
:class:`models.config.TrainConfig`, whose validation is tied to the MNIST network names,
plus the deep suites' own: ``width``, ``iterations``, ``eval_iterations``, the optimizer
settings and a third learning-rate phase). :class:`DeepSuiteBase` implements the
:class:`models.suites.Suite` protocol once; ``svhn.py`` and ``plankton.py`` give it their
networks, paper numbers, data and loss.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call

import sampling
from models.config import (ConfigJSON, check_device, check_ints, check_numbers, check_overrides,
                           check_seeds)
from sampling import geometry

from ..core import seed_params
from ..runio import pct
from ..deep_stn import SLOT_KINDS, DeepSTN, input_frame_theta, parse_net_name
from ..errors import ConfigError
from ..layer_nets import INITS, count_params, he_init_
from ..optim import MomentumSGD
from . import DataSource, TrainHooks

__all__ = ["DeepConfig", "DeepSuiteBase", "PoolStream", "TensorTest", "mean_std", "FIG7_ANGLES",
           "fig7_gallery", "input_frame_theta"]


@dataclass(frozen=True)
class DeepConfig(ConfigJSON):
    """Everything that determines one deep-suite run.

    Attributes:
        variant: the data set (``"svhn"`` / ``"plankton"``; one variant per suite).
        net: a name of the suite's ``nets`` (``"STN-SL3-it2"``: trained with 2 iterations).
        scale, seeds, batch_size, eval_batch, checkpoint_every, log_every, method,
            padding_mode, device, vmap, test_seed: as :class:`models.config.TrainConfig`.
        iters, iters_low, iters_lower: steps at ``lr``, ``lr * lr_drop``, ``lr * lr_drop**2``.
        train_digits: training images in the pool (stand-in) / read (official); None: all.
        test_digits: test images (None: all); ``test_perturb`` is unused (kept for the CLI).
        width: multiplier of every conv / F width of the classifier (never depth).
        iterations: iterations of each ST's localizer during training (000: 1 or 2).
        eval_iterations: iteration counts the evaluation also reports (000 evaluates
            networks trained with N iterations with more).
        momentum, nesterov, weight_decay: the optimizer (:class:`models.optim.MomentumSGD`).
        loc_lr: learning-rate multiplier of the localization layers (000 App. A.3 / A.4).
        init: ``"pytorch"`` (PyTorch's default bounds, as 000 App. A.3 / A.4 state) or
            ``"he"`` (:func:`models.layer_nets.he_init_`; the CPU scales, see the suites).
        dropout: the classifier's dropout probability; None: the paper's (0.5).
    """

    variant: str
    net: str
    scale: str = "custom"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 128
    iters: int = 120_000
    iters_low: int = 120_000
    iters_lower: int = 60_000
    lr: float = 0.03
    lr_drop: float = 0.1
    train_digits: int | None = None
    test_digits: int | None = None
    test_perturb: int = 1
    test_seed: int = 0
    eval_batch: int = 256
    checkpoint_every: int = 1000
    log_every: int = 100
    method: str = "bilinear"
    padding_mode: str = "zeros"
    device: str = "cpu"
    vmap: bool = True
    width: float = 1.0
    iterations: int = 1
    eval_iterations: tuple[int, ...] = (1, 2, 3)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-4
    loc_lr: float = 0.01
    init: str = "pytorch"
    dropout: float | None = None

    def __post_init__(self):
        fn = "DeepConfig"
        check_seeds(self, fn)
        object.__setattr__(self, "eval_iterations", tuple(self.eval_iterations))
        check_ints(self, ("batch_size", "eval_batch", "checkpoint_every", "log_every", "iterations",
                     "test_perturb"), lo=1, fn=fn)
        check_ints(self, ("iters", "iters_low", "iters_lower"), lo=0, fn=fn)
        if self.total_steps < 1:
            raise ConfigError(f"{fn}: expected iters + iters_low + iters_lower >= 1, got 0")
        check_ints(self, ("train_digits", "test_digits"), lo=1, fn=fn, optional=True)
        check_numbers(self, ("lr", "lr_drop", "width", "loc_lr"), fn=fn)
        if self.padding_mode not in ("border", "zeros"):
            raise ConfigError(f"{fn}: expected padding_mode 'border' or 'zeros', got "
                              f"{self.padding_mode!r}")
        check_device(self, fn)
        if self.init not in INITS:
            raise ConfigError(f"{fn}: expected init in {list(INITS)}, got {self.init!r}")
        if self.dropout is not None and (isinstance(self.dropout, bool) or not isinstance(
                self.dropout, (int, float)) or not 0 <= self.dropout < 1):
            raise ConfigError(f"{fn}: expected dropout None or a number in [0, 1), got "
                              f"{self.dropout!r}")
        if not self.eval_iterations or min(self.eval_iterations) < 1:
            raise ConfigError(f"{fn}: expected eval_iterations to be ints >= 1, got "
                              f"{self.eval_iterations!r}")
        try:
            MomentumSGD(self.momentum, self.nesterov, self.weight_decay)
        except ValueError as e:
            raise ConfigError(f"{fn}: {e}") from None

    @property
    def total_steps(self) -> int:
        return self.iters + self.iters_low + self.iters_lower

    def classifier_dropout(self, paper: float) -> float:
        """The classifier's dropout: ``dropout``, or the ``paper``'s when it is None."""
        return paper if self.dropout is None else self.dropout

    def lr_at(self, step: int) -> float:
        """Base learning rate of (0-based) ``step``: three phases, each ``lr_drop`` lower."""
        if step < self.iters:
            return self.lr
        if step < self.iters + self.iters_low:
            return self.lr * self.lr_drop
        return self.lr * self.lr_drop ** 2

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["eval_iterations"] = list(self.eval_iterations)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "DeepConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"DeepConfig: unknown keys {unknown}")
        d["seeds"] = tuple(d["seeds"])
        d["eval_iterations"] = tuple(d.get("eval_iterations", (1,)))
        return cls(**d)


#: 000 Fig. 7: the applied rotations (degrees) of the one test image each ST network shows.
FIG7_ANGLES = (-90.0, -45.0, 0.0, 45.0, 90.0, 180.0)


@torch.no_grad()
def fig7_gallery(model: DeepSTN, params: dict, image: torch.Tensor, cfg) -> dict:
    """000 Fig. 7 data: ``image`` (1, C, H, W) rotated by each of :data:`FIG7_ANGLES` and what
    the trained network (``params``, one seed) does to each rotated copy.

    Returns ``{"fig7_angles" (A,), "fig7_inputs" (A, C, H, W), "fig7_outputs" (A, C, H, W),
    "fig7_theta" (A, 2, 3)}``: the rotated inputs (``rotation_matrix(angle)`` as the
    ``input_from_output`` matrix, the suite's padding), and each warped by
    :func:`input_frame_theta` of the network's matrices. A network that undoes the rotation
    shows the same upright object in every column.
    """
    a = torch.tensor(FIG7_ANGLES, dtype=torch.float32) * (math.pi / 180.0)
    rot = torch.cat([geometry.rotation_matrix(a), torch.zeros(len(a), 2, 1)], -1)
    x = image.float().to(cfg.device).expand(len(a), *image.shape[1:])
    rotated = sampling.warp_affine(x, rot.to(cfg.device), tuple(x.shape[-2:]),
                                   padding_mode=cfg.padding_mode, align_corners=True)
    _, thetas = functional_call(model, params, (rotated,), {"return_theta": True})
    theta = input_frame_theta(model, thetas)
    out = sampling.warp_affine(rotated, theta, tuple(x.shape[-2:]),
                               padding_mode=cfg.padding_mode, align_corners=True)
    return {"fig7_angles": np.asarray(FIG7_ANGLES, dtype=np.float32),
            "fig7_inputs": rotated.cpu().numpy().astype(np.float16),
            "fig7_outputs": out.cpu().numpy().astype(np.float16),
            "fig7_theta": theta.cpu().numpy().astype(np.float32)}


def mean_std(xs: list[float]) -> dict:
    t = torch.tensor(xs, dtype=torch.float64)
    return {"per_seed": xs, "mean": float(t.mean()),
            "std": float(t.std(unbiased=True)) if len(xs) > 1 else 0.0}


class PoolStream:
    """Training batches drawn with replacement from a pool, each seed from its own generator.

    Args:
        images: ``(M, C, H, W)`` (uint8 or float) on the CPU.
        labels: ``(M, ...)`` int64.
        transform: ``transform(images_float, generator) -> images`` per batch (PlanktonSet's
            augmentation, SVHN's normalization), or None.
        device: where batches go.
    """

    def __init__(self, images, labels, transform=None, device="cpu"):
        self.images, self.labels, self.transform, self.device = images, labels, transform, device

    def train_batches(self, batch_size: int, generators):
        """``(S, B, C, H, W)`` images and ``(S, B, ...)`` labels."""
        xs, ys = [], []
        for g in generators:
            idx = torch.randint(len(self.images), (batch_size,), generator=g,
                                device=g.device).cpu()
            x = self.images[idx]
            x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
            if self.transform is not None:
                # transforms draw on the CPU: a CUDA generator seeds a CPU one (still a
                # function of the checkpointed generator state, so resume stays exact)
                cg = g if g.device.type == "cpu" else torch.Generator().manual_seed(
                    int(torch.randint(2 ** 62, (1,), generator=g, device=g.device)))
                x = self.transform(x, cg)
            xs.append(x)
            ys.append(self.labels[idx])
        return torch.stack(xs).to(self.device), torch.stack(ys).to(self.device)


@dataclass
class TensorTest:
    """A fixed test set: ``images (N, C, H, W)`` float, ``labels``, the data set's name."""

    images: torch.Tensor
    labels: torch.Tensor
    dataset: str


class DeepSuiteBase:
    """The :class:`models.suites.Suite` protocol for a :class:`LayerNet` suite.

    Subclasses set ``name``, ``summary``, ``variants``, ``nets``, ``scales`` and implement
    ``_settings(scale)``, ``_loss``, ``_errors(output, labels)``, ``_classifier(cfg)``,
    ``_localizer(cfg, net, kind, depth)``, ``_loc_lr(net_name, iterations)``,
    ``load_data`` and ``report``; they set ``nets_module`` (``models.svhn_nets`` /
    ``models.plankton_nets``: ``param_counts(width=)``), ``params_header`` and
    ``params_note``; the data reader is ``models.data.<name>``.
    """

    paper_seeds = 3
    #: a collapsed ST is recorded in the metrics, the run trains on (:mod:`models.collapse`)
    stops_on_collapse = False
    nets_module = None
    #: slope of the classifier's leaky ReLU (0: ReLU), for :func:`he_init_`'s gain.
    negative_slope = 0.0
    params_header = "| network | params (width 1) | params (width 0.125, small/medium) |"
    params_note = ""

    def param_counts(self) -> dict:
        return {self.name: {f"width={w}": self.nets_module.param_counts(width=w)
                            for w in (1.0, 0.125)}}

    def params_table(self, counts: dict) -> str:
        lines = [self.params_header, "|---|---:|---:|"]
        c = counts[self.name]
        for n in c["width=1.0"]:
            lines.append(f"| {n} | {c['width=1.0'][n]} | {c['width=0.125'][n]} |")
        lines.append(f"\n{self.params_note}")
        return "\n".join(lines)

    def check_source(self, source) -> None:
        import importlib

        self.source_check(source, importlib.import_module(f"models.data.{self.name}").info)

    def default_seeds(self, scale: str) -> int:
        return {"paper": self.paper_seeds, "medium": 3}.get(scale, 1)

    def preset(self, scale: str, variant: str, net: str, **overrides) -> DeepConfig:
        fn = "preset"
        if scale not in self.scales:
            raise ConfigError(f"{fn}: expected scale in {list(self.scales)}, got {scale!r}")
        if variant not in self.variants:
            raise ConfigError(f"{fn}: expected variant in {list(self.variants)}, got {variant!r}")
        if net not in self.nets:
            raise ConfigError(f"{fn}: expected net in {list(self.nets)}, got {net!r}")
        check_overrides(DeepConfig, overrides, fn)
        _, iters = parse_net_name(net)
        kw = dict(variant=variant, net=net, scale=scale, iterations=iters,
                  loc_lr=self._loc_lr(net, iters))
        kw.update(self._settings(scale))
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return DeepConfig(**kw)

    def build(self, cfg: DeepConfig):
        net = self._classifier(cfg)
        slots, _ = parse_net_name(cfg.net)
        if slots:
            large = cfg.net.removesuffix(f"-it{cfg.iterations}").endswith("-large")
            locs = [self._localizer(cfg, net, "large" if large else "base", s.depth)
                    for s in slots]
            net = DeepSTN(net, slots, locs, iterations=cfg.iterations,
                          padding_mode=cfg.padding_mode, method=cfg.method)
        if cfg.init == "he":  # after DeepSTN: DL's freshly drawn layer copies too
            he_init_(net, negative_slope=self.negative_slope)
        return net

    def hooks(self, cfg: DeepConfig) -> TrainHooks:
        model = self.build(cfg)
        groups = (model.module_groups() if isinstance(model, DeepSTN)
                  else {k: "classifier" for k, _ in model.named_parameters()})
        mult = {k: (cfg.loc_lr if g == "localizer" else 1.0) for k, g in groups.items()}
        return TrainHooks(loss=self._loss, optimizer=MomentumSGD(
            cfg.momentum, cfg.nesterov, cfg.weight_decay, mult))

    def n_params(self, cfg) -> int:
        return count_params(self.build(cfg))

    @torch.no_grad()
    def evaluate(self, cfg: DeepConfig, base, params: dict, test_data: TensorTest) -> dict:
        """Test error per seed (and per evaluation iteration count for STNs)."""
        S = len(cfg.seeds)
        was = base.training
        base.eval()  # dropout off
        try:
            has_st = isinstance(base, DeepSTN)
            its = sorted(set(cfg.eval_iterations) | {cfg.iterations}) if has_st else [None]
            wrong = {n: [[] for _ in range(S)] for n in its}
            x_all, y_all = test_data.images, test_data.labels
            for a in range(0, len(x_all), cfg.eval_batch):
                x = x_all[a:a + cfg.eval_batch].to(cfg.device)
                y = y_all[a:a + cfg.eval_batch].to(cfg.device)
                for i in range(S):
                    p = seed_params(params, i)
                    for n in its:
                        kw = {} if n is None else {"iterations": n}
                        out = functional_call(base, p, (x,), kw)
                        wrong[n][i].append(self._errors(out, y).cpu())
            err = {n: [float(torch.cat(w).float().mean()) for w in wrong[n]] for n in its}
            key = cfg.iterations if has_st else None
            summary = {"error": mean_std(err[key]), "dataset": test_data.dataset,
                       "test": {"images": int(len(x_all))}, "iterations": cfg.iterations,
                       "width": cfg.width, "init": cfg.init, "lr": cfg.lr,
                       "dropout": "paper's" if cfg.dropout is None else cfg.dropout}
            if has_st:
                summary["error_by_iterations"] = {str(n): mean_std(e) for n, e in err.items()}
            gallery = {"inputs": x_all[:4].numpy().astype(np.float16)}
            if has_st:
                _, thetas = functional_call(base, seed_params(params, 0),
                                            (x_all[:4].to(cfg.device),), {"return_theta": True})
                gallery["theta"] = torch.stack(thetas, 1).cpu().numpy()
                gallery.update(fig7_gallery(base, seed_params(params, 0), x_all[:1], cfg))
            return {"summary": summary, "fig_data": {"variant": cfg.variant, "net": cfg.net},
                    "gallery": gallery}
        finally:
            base.train(was)

    # -- report helpers -----------------------------------------------------------------
    @staticmethod
    def _fmt(r) -> str:
        if not r:
            return "-"
        e = r["error"]
        n = len(e["per_seed"])
        return (f"{pct(e['mean'])} ± {pct(e['std'], unit='')} (n={n})" if n > 1
                and math.isfinite(e["mean"]) else f"{pct(e['mean'])} (n={n})")

    @staticmethod
    def _load(suite_dir):
        from ..record import SuiteRecord

        rec = SuiteRecord.load(suite_dir)
        runs = {n: r.with_config() for v in rec.runs.values() for n, r in v.items()}
        return rec, runs

    def _header(self, suite_dir, runs) -> list[str]:
        scales = sorted({r.get("scale", "?") for r in runs.values()})
        data = sorted({r.get("dataset", "?") for r in runs.values()})
        seeds = sorted({len(r.get("seeds", [])) for r in runs.values()})
        widths = sorted({r.get("width", "?") for r in runs.values()})
        # runs from before `init` / `dropout` were configuration used the paper's
        inits = sorted({r.get("init", "pytorch") for r in runs.values()})
        drops = sorted({str(r.get("dropout", "paper's")) for r in runs.values()})
        lrs = sorted({str(r.get("lr", "?")) for r in runs.values()})
        return [f"# {self.title}: {suite_dir.name}", "",
                f"Data set: {', '.join(data)}. Scale: {', '.join(scales)}; seeds per network: "
                f"{', '.join(map(str, seeds))}; width multiplier: {', '.join(map(str, widths))}; "
                f"init: {', '.join(inits)}; dropout: {', '.join(drops)}; base lr: "
                f"{', '.join(lrs)} (000: PyTorch's init, dropout 0.5); "
                f"{len(runs)} of {len(self.nets)} networks finished. Columns labelled *paper* "
                f"are copied from Finnveden et al. (000) for comparison, never used as ours.",
                ""]

    def _iteration_table(self, runs, paper: dict) -> list[str]:
        lines = ["### Iterations (000 Sec. " + self.iter_section + ")", "",
                 "| network | trained with N | error at N=1 | N=2 | N=3 | paper (trained N=2) |",
                 "|---|---:|---:|---:|---:|---:|"]
        for n, r in runs.items():
            if "error_by_iterations" not in r:
                continue
            e = r["error_by_iterations"]
            cells = [pct(e[k]["mean"]) if k in e else "-" for k in ("1", "2", "3")]
            base = n.removesuffix(f"-it{r.get('iterations', 1)}")
            p = paper.get(base) if r.get("iterations", 1) == 2 else None
            lines.append(f"| {n} | {r.get('iterations', 1)} | " + " | ".join(cells)
                         + f" | {p if p else '-'} |")
        return lines + [""]

    def source_check(self, source: DataSource, fn) -> None:
        if source.kind == "default":
            raise ConfigError(f"--data: the {self.name} suite has no cached default data set; "
                              f"pass --data DIR ({self.layout}) or --data standin")
        if source.kind == "official":
            fn(source.path)
