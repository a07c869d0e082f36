"""The MNIST suite of 000 (Sec. IV-A, App. A.1): presets, data, evaluation, report tables.

:data:`SUITE` is the :class:`models.suites.Suite` the registry finds. Presets per scale,
the perturbed-MNIST data (cached MNIST, or the four IDX files of ``--data DIR``), the
evaluation (test error, final-pose spread per label, mean determinant, Fig. 6 slope,
the Fig. 5 gallery) and the report tables (:mod:`models.report`) live here; the loop
(:mod:`models.train`) knows none of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

import sampling
from ..errors import ConfigError

from .. import metrics as M
from ..config import SCALES, TrainConfig, check_overrides, default_vmap
from ..core import seed_params
from ..mnist_nets import NETS, TABLE_VI_PARAMS, VARIANT_SHAPES, build, param_counts
from . import DataSource, TrainHooks

__all__ = ["SUITE", "MnistSuite", "INITIAL_LR", "POSE_UNITS", "preset", "evaluate",
           "load_data"]

#: 000 App. A.1: initial learning rate per variant (then 10x lower).
INITIAL_LR = {"R": 0.02, "T": 0.01, "S": 0.02}


# Per-scale settings. ``small`` is sized for a quiet 2-core CPU (all 15 networks, one seed,
# < 30 min; see models/README or the report for the arithmetic): (R) is cheap, (S) at
# 112x112 costs ~15-40x more per image than (R), so it gets fewer, smaller steps.
_SCALE_SETTINGS: dict[str, dict] = {
    "smoke": dict(batch_size=8, iters=4, iters_low=2, train_digits=256, test_digits=40,
                  test_perturb=1, eval_batch=40, checkpoint_every=3, log_every=2),
    "small": dict(train_digits=None, test_digits=2000, test_perturb=1, eval_batch=500,
                  checkpoint_every=100, log_every=25),
    # ``medium``: enough training to decide EMP-1's orderings, 3 seeds (the CLI default),
    # each variant's suite sized for <= 90 min on 2 CPU cores. Tested on all 10k test digits
    # x 1 fixed perturbation (a stated subset of 000's 10 per digit).
    "medium": dict(train_digits=None, test_digits=None, test_perturb=1, eval_batch=500,
                   checkpoint_every=250, log_every=50),
    "paper": dict(batch_size=256, iters=50_000, iters_low=20_000, train_digits=None,
                  test_digits=None, test_perturb=10, eval_batch=1000, checkpoint_every=1000,
                  log_every=100),
}
_SMALL_PER_VARIANT = {
    # Throughput measured here (one seed, 2 threads, training incl. data generation):
    # (R) ~3000-8000 img/s, (T) ~700-1300 img/s, (S) ~60-190 img/s (batch 32). Budget:
    # R 5 x 320k images (~360 s), T 5 x 51k (~260 s), S 5 x 22k (~860 s), evaluation on
    # 2000 test digits (~100 s): ~26 min on a quiet 2-core machine. EMP-1 checks R and S
    # only (000 predicts no ordering on T), so T gets the smallest share.
    "R": dict(batch_size=64, iters=4000, iters_low=1000),
    "T": dict(batch_size=64, iters=640, iters_low=160),
    "S": dict(batch_size=32, iters=560, iters_low=140),
}
_MEDIUM_PER_VARIANT = {
    # (R) at 4x `small` per seed (1.28M images per network and seed): the supplementary
    # 4x-small run (results/mnist-r-long) is the lower bound the EMP-1 issue sets; 3 seeds
    # trained together. (T) at 5x `small`; (S) at 2.5x `small` (S costs 15-40x (R) per image).
    "R": dict(batch_size=64, iters=16000, iters_low=4000),
    "T": dict(batch_size=64, iters=3200, iters_low=800),
    "S": dict(batch_size=32, iters=1400, iters_low=350),
}


def preset(scale: str, variant: str, net: str, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of ``scale`` for ``net`` on ``variant``, with overrides.

    ``vmap`` (unless overridden) is :func:`models.config.default_vmap` of the device.

    Raises:
        ConfigError: unknown scale, unknown override key, or an invalid value.
    """
    if scale not in SCALES:
        raise ConfigError(f"preset: expected scale in {list(SCALES)}, got {scale!r}")
    if variant not in VARIANT_SHAPES:
        raise ConfigError(f"preset: expected variant in {list(VARIANT_SHAPES)}, got {variant!r}")
    check_overrides(TrainConfig, overrides)
    kw = dict(variant=variant, net=net, scale=scale, lr=INITIAL_LR[variant])
    kw.update(_SCALE_SETTINGS[scale])
    if scale == "small":
        kw.update(_SMALL_PER_VARIANT[variant])
    elif scale == "medium":
        kw.update(_MEDIUM_PER_VARIANT[variant])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    kw.setdefault("vmap", default_vmap(kw.get("device", "cpu"), variant, net))
    return TrainConfig(**kw)



# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
POSE_UNITS = {"R": "degrees", "T": "pixels", "S": "log2(det)"}


def _mean_std(xs: list[float]) -> dict:
    t = torch.tensor(xs, dtype=torch.float64)
    return {"per_seed": xs, "mean": float(t.mean()),
            "std": float(t.std(unbiased=True)) if len(xs) > 1 else 0.0}


@torch.no_grad()
def evaluate(cfg: TrainConfig, base, params: dict, test_data, *, max_fig_points: int = 3000,
             gallery_size: int = 3) -> dict:
    """Test error, pose spread per label, mean determinant and Fig. 6 slope for every seed.

    Returns:
        ``{"summary": {...}, "fig_data": {...}, "gallery": {name: array}}``.
    """
    S = len(cfg.seeds)
    frame = base.warped_frame()
    in_hw = (VARIANT_SHAPES[cfg.variant][2] - 1) / 2  # input pixels per normalized unit
    has_st = base.st is not None
    per = [dict(wrong=[], theta=[]) for _ in range(S)]
    info = dict(labels=[], angle=[], translation=[], scale=[])
    first = None
    for batch in test_data.test_set(n_perturb=cfg.test_perturb, seed=cfg.test_seed,
                                          batch_size=cfg.eval_batch):
        if first is None:
            first = batch
        for key in info:
            info[key].append(getattr(batch, key).detach().cpu())
        for i in range(S):
            logits, theta = functional_call(base, seed_params(params, i), (batch.images,),
                                            {"return_theta": True})
            per[i]["wrong"].append((logits.argmax(1) != batch.labels).cpu())
            per[i]["theta"].append(theta.cpu())
    info = {k: torch.cat(v) for k, v in info.items()}
    labels = info["labels"]
    errors, spreads, dets, slopes, per_label = [], [], [], [], []
    fig_points = []
    for i in range(S):
        errors.append(float(torch.cat(per[i]["wrong"]).float().mean()))
        if not has_st:
            continue
        theta = torch.cat(per[i]["theta"]).double()
        final = M.final_pose(cfg.variant, theta, angle=info["angle"],
                             translation=info["translation"], scale=info["scale"],
                             m=frame["half_width_px"])
        sp = M.pose_std_per_label(final, labels)
        spreads.append(sp.mean)
        per_label.append(sp.per_label)
        dets.append(M.mean_determinant(theta))
        if cfg.variant == "R":
            applied = info["angle"].double() * M.DEG
            _, phi = sampling.geometry.similarity_fit(theta)
            predicted = phi * M.DEG  # -theta' of 000 App. A.2 = the ST's counter-rotation
            slopes.append(M.orthogonal_regression_slope(applied, predicted))
            fig_points.append((applied, predicted))
    summary = {"error": _mean_std(errors),
               "test": {"digits": int(labels.shape[0] // cfg.test_perturb),
                        "perturbations": cfg.test_perturb, "images": int(labels.shape[0])}}
    fig_data: dict = {"variant": cfg.variant, "net": cfg.net}
    if has_st:
        summary["pose_std"] = {**_mean_std(spreads), "unit": POSE_UNITS[cfg.variant],
                               "per_label_mean": {
                                   str(lab): float(np.mean([p[lab] for p in per_label]))
                                   for lab in per_label[0]}}
        summary["mean_det"] = _mean_std(dets)
        # The figures use the median model by pose spread (000 App. A.2: the 5th of 10).
        order = sorted(range(S), key=lambda i: spreads[i])
        median = order[(S - 1) // 2]
        summary["median_seed"] = cfg.seeds[median]
        summary["pose_m_px"] = frame["half_width_px"]
        if slopes:
            summary["fig6_slope"] = _mean_std(slopes)
            a, p = fig_points[median]
            k = min(max_fig_points, a.shape[0])
            idx = torch.linspace(0, a.shape[0] - 1, k).round().long()
            fig_data["fig6"] = {"seed": cfg.seeds[median], "slope": slopes[median],
                                "applied_deg": [round(v, 2) for v in a[idx].tolist()],
                                "predicted_deg": [round(v, 2) for v in p[idx].tolist()]}
    else:
        median = 0
    gallery = _gallery(cfg, base, seed_params(params, median), first, gallery_size, frame, in_hw)
    return {"summary": summary, "fig_data": fig_data, "gallery": gallery}


def _gallery(cfg, base, p, batch, n, frame, in_hw) -> dict:
    """Inputs and what the ST does to them (STN-C1: its matrix applied to the input, with the
    translation rescaled to input pixels as in 000 Fig. 5)."""
    x = batch.images[:n]
    out = {"inputs": x[:, 0].cpu().numpy().astype(np.float16),
           "labels": batch.labels[:n].cpu().numpy()}
    if base.st is None:
        return out
    _, theta = functional_call(base, p, (x,), {"return_theta": True})
    theta_in = M.theta_in_input_frame(theta, frame["half_width_px"], in_hw)
    oh, ow = base.st.out_size(x.shape[2], x.shape[3])
    warped = sampling.warp_affine(x, theta_in, (oh, ow), padding_mode="border",
                                  align_corners=True)
    out["transformed"] = warped[:, 0].cpu().numpy().astype(np.float16)
    out["theta"] = theta.cpu().numpy()
    return out



def load_data(variant: str, device: str, *, train_digits=None, test_digits=None,
              arrays=None):
    """``(train PerturbedMNIST, test PerturbedMNIST)`` from the cached MNIST (60k / 10k).

    Args:
        arrays: ``(train x, train y, test x, test y)`` to use instead of the cache (e.g.
            read from IDX files).
    """
    from ..data.mnist import load_mnist
    from ..data.perturb import PerturbedMNIST

    if arrays is None:
        tr_x, tr_y = load_mnist("train60k")
        te_x, te_y = load_mnist("test")
    else:
        tr_x, tr_y, te_x, te_y = arrays
    if train_digits is not None:
        tr_x, tr_y = tr_x[:train_digits], tr_y[:train_digits]
    if test_digits is not None:
        te_x, te_y = te_x[:test_digits], te_y[:test_digits]
    # 000 App. A.1 cuts the (T)/(S) clutter fragments from MNIST *training* images, for
    # the test perturbations too.
    return (PerturbedMNIST(variant, tr_x, tr_y, device=device),
            PerturbedMNIST(variant, te_x, te_y, device=device, clutter_images=tr_x))




def _read_idx_dir(root: Path):
    """``(train x, train y, test x, test y)`` from MNIST's four IDX files in ``root``."""
    from ..data.idx import read_mnist_idx_dir

    raw = read_mnist_idx_dir(root)
    return tuple(torch.from_numpy(np.asarray(raw[k])).to(dt) for k, dt in
                 (("train_images", torch.uint8), ("train_labels", torch.int64),
                  ("test_images", torch.uint8), ("test_labels", torch.int64)))


class MnistSuite:
    """000's MNIST suite: 5 networks (Table VI) x 3 perturbations (R, T, S)."""

    name = "mnist"
    summary = ("000 Sec. IV-A: CNN, STN-C0/C1/DL1/SL1 on rotated (R), translated (T), "
               "scaled (S) MNIST; Tables I, II, VI, Figs. 5, 6")
    variants = tuple(VARIANT_SHAPES)
    nets = NETS
    scales = SCALES

    def default_seeds(self, scale: str) -> int:
        return {"paper": 10, "medium": 3}.get(scale, 1)

    def preset(self, scale: str, variant: str, net: str, **overrides) -> TrainConfig:
        return preset(scale, variant, net, **overrides)

    def build(self, cfg: TrainConfig):
        return build(cfg.variant, cfg.net, method=cfg.method, padding_mode=cfg.padding_mode)

    def param_counts(self) -> dict:
        return param_counts()

    def params_table(self, counts: dict) -> str:
        lines = ["| variant | network | params (ours) | params (paper, Table VI) | diff |",
                 "|---|---|---:|---:|---:|"]
        for v, row in counts.items():
            for n, c in row.items():
                p = TABLE_VI_PARAMS[v][n]
                lines.append(f"| {v} | {n} | {c} | {p} | {c - p:+d} |")
        return "\n".join(lines)

    def check_source(self, source: DataSource) -> None:
        if source.kind == "standin":
            raise ConfigError("--data standin: the mnist suite trains on MNIST itself (cached, "
                              "or the IDX files of --data DIR); it has no stand-in")

    def load_data(self, variant: str, cfg: TrainConfig, source: DataSource) -> tuple:
        self.check_source(source)
        if source.kind == "official":
            return load_data(variant, cfg.device, train_digits=cfg.train_digits,
                             test_digits=cfg.test_digits, arrays=_read_idx_dir(source.path))
        return load_data(variant, cfg.device, train_digits=cfg.train_digits,
                         test_digits=cfg.test_digits)

    def hooks(self, cfg: TrainConfig) -> TrainHooks:
        return TrainHooks(loss=F.cross_entropy)

    def evaluate(self, cfg: TrainConfig, base, params: dict, test_data) -> dict:
        return evaluate(cfg, base, params, test_data)

    def report(self, suite_dir) -> list[str]:
        from ..report import load_suite, suite_tables

        return suite_tables(load_suite(suite_dir))


SUITE = MnistSuite()
