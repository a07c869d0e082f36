"""The CUB suite of 004 (Meethal et al., convolutional STN for WSOL): Tables I-IV, Figs. 5, 6.

:data:`SUITE` is the :class:`models.suites.Suite` the registry finds (``--suite cub``).

**Variants** are the data sets, the first level of the run layout:

* ``standin``: :func:`models.data.wsol_standin.make_standin` (MNIST digits at log-uniform
  scale and aspect on textures, exact boxes, 10 classes, 128 px), only with
  ``--data standin`` and named as the stand-in in every result. **Superseded** by
  ``standin-v2`` (its digits cover 4.8 % of the image: ``results/cub-medium/README.md``);
  kept for the runs made with it, and still what ``--variant all`` picks for
  ``--data standin``;
* ``standin-v2``: :mod:`models.data.wsol_standin_v2` (Fashion-MNIST garments covering
  15-40 % of a 64 px image, rendered afresh every epoch, a held-out split for operating
  points; :mod:`models.suites._cub_v2`), with ``--data standin --variant standin-v2``;
* ``CUB``: CUB-200-2011 in its official layout (``--data DIR``), 200 classes, 320 px
  (004 Sec. IV-A). CUB is not reachable here; the tests use small files in its layout.

``--variant all`` picks the variant the ``--data`` source serves (:meth:`CubSuite.variants_for`).

**Networks** (``--net``), all on :data:`models.cstn.BACKBONE_NAME` (the backbone deviation,
:data:`models.cstn.BACKBONE_DEVIATION`, is quoted in every result and report):

* ``CSTN``: two pyramid levels, ``lambda = 1e-4`` (004's best, Table III), ``alpha = 1``;
* ``CSTN-lam<x>``: the same with ``lambda = x`` (``x`` a float literal: ``CSTN-lam0``,
  ``CSTN-lam1e-5``, ``CSTN-lam1e-3``, ``CSTN-lam1e-2``; ``CSTN`` is ``lambda = 1e-4``, so
  there is no separate ``CSTN-lam1e-4``): the Table III sweep;
* ``CSTN-fine`` / ``CSTN-coarse``: one level (stride 8 / 16), Fig. 6 (a, b);
* ``no-CSTN``: the same head with ``theta_l`` fixed to the identity (Table II);
* ``CAM``: class activation maps on the same backbone (Table IV).

The **untransformed-box ablation** of Table I is not a network: every CSTN run is evaluated
with both its transformed boxes and its receptive-field boxes (``summary["untransformed"]``).

**Training**: Adam (default) or SGD with momentum (``optimizer``), through the loop's
module mode (:mod:`models.module_loop`: batch-norm buffers and optimizer state are
checkpointed, resume is exact); loss eq. 4 (:func:`models.cstn.cstn_loss`) for CSTN nets,
cross-entropy for CAM. CUB training images are flipped horizontally with probability 1/2
(004 Sec. IV-A); the stand-in's digits are not (a flipped digit is another shape).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.config import (ConfigJSON, check_device, check_ints, check_numbers, check_overrides,
                           check_seeds)
from ..config import SCALES
from ..errors import ConfigError
from . import DataSource, TrainHooks
from ._cub_common import (_LAM_RE, _LOC_KEYS, ALPHA_DEFAULT, LAMBDA_DEFAULT, NETS,  # noqa: F401
                          NETS_BY_SCALE, _denorm_uint8, _mean_std, _pct, fine_share, net_spec,
                          untransformed_summary)

__all__ = [
    "LAMBDA_DEFAULT",
    "NETS",
    "NETS_BY_SCALE",
    "PAPER",
    "SUITE",
    "CubConfig",
    "CubSuite",
    "LocSet",
    "evaluate",
    "net_spec",
    "preset",
    "report_lines",
]

#: 004's CUB-200-2011 numbers (percent), copied for comparison, never used as ours.
PAPER = {
    "table_i": {"without transform": {"top1_loc": 40.64}, "with transform": {"top1_loc": 49.03}},
    "table_ii": {"no-CSTN": {"top1_cls": 77.40, "top1_loc": 21.64},
                 "CSTN": {"top1_cls": 78.46, "top1_loc": 49.03}},
    "table_iii": {0.01: {"top1_loc": 27.39, "top1_cls": 78.98},
                  0.001: {"top1_loc": 30.88, "top1_cls": 78.63},
                  0.0001: {"top1_loc": 49.03, "top1_cls": 78.46},
                  0.00001: {"top1_loc": 45.52, "top1_cls": 78.25},
                  0.0: {"top1_loc": 5.13, "top1_cls": 77.32}},
    "table_iv": {"CAM": {"top1_loc": 41.00, "gt_known_loc": 71.13, "top1_cls": None},
                 "CSTN": {"top1_loc": 49.03, "gt_known_loc": 76.06, "top1_cls": 78.46},
                 "CSTN Top-5 box": {"gt_known_top5_loc": 81.14}},
    "fig6": {"CSTN-fine": {"top1_loc": 37.78}, "CSTN-coarse": {"top1_loc": 42.91},
             "CSTN": {"top1_loc": 48.43}},
}
VARIANTS = ("standin", "standin-v2", "CUB")
STANDIN_VARIANTS = ("standin", "standin-v2")


@dataclass(frozen=True)
class CubConfig(ConfigJSON):
    """Everything that determines a run of the CUB suite.

    The loop's fields have :class:`models.config.TrainConfig`'s meaning (that class checks
    names against the MNIST nets, so this suite brings its own with the same fields);
    ``train_digits`` / ``test_digits`` count training / test *images*, ``test_perturb`` is
    unused (kept for the shared command line). The extra fields:

    Attributes:
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        momentum: SGD momentum.
        weight_decay: L2 weight decay of the optimizer.
        width: backbone base width (pyramid channels ``4 * width``).
        image_size: input side (stand-in 128, CUB 320 as 004).
        alpha: ``alpha`` of eq. 4 (``lambda`` comes from the net name, :func:`net_spec`).
        data_seed: seed of the stand-in's images (train and test draw from it).
    """

    variant: str
    net: str
    scale: str = "custom"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 16
    iters: int = 1000
    iters_low: int = 250
    lr: float = 1e-3
    lr_drop: float = 0.1
    train_digits: int | None = None
    test_digits: int | None = None
    test_perturb: int = 1
    test_seed: int = 0
    eval_batch: int = 64
    checkpoint_every: int = 100
    log_every: int = 25
    method: str = "bilinear"
    padding_mode: str = "zeros"
    device: str = "cpu"
    vmap: bool = False
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    width: int = 16
    image_size: int = 128
    alpha: float = ALPHA_DEFAULT
    data_seed: int = 0
    heldout_images: int | None = None

    def __post_init__(self):
        fn = "CubConfig"
        if self.variant not in VARIANTS:
            raise ConfigError(f"{fn}: expected variant in {list(VARIANTS)}, got {self.variant!r}")
        net_spec(self.net)
        check_seeds(self, fn)
        check_ints(self, ("batch_size", "test_perturb", "eval_batch", "checkpoint_every",
                     "log_every", "width"), lo=1, fn=fn)
        check_ints(self, ("iters", "iters_low"), lo=0, fn=fn)
        if self.iters + self.iters_low < 1:
            raise ConfigError(f"{fn}: expected iters + iters_low >= 1, got 0")
        check_ints(self, ("train_digits", "test_digits", "heldout_images"), lo=1, fn=fn,
                   optional=True)
        check_numbers(self, ("lr", "lr_drop"), fn=fn)
        check_numbers(self, ("momentum", "weight_decay", "alpha"), fn=fn, allow_zero=True)
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"{fn}: expected optimizer 'adam' or 'sgd', got {self.optimizer!r}")
        if not isinstance(self.image_size, int) or self.image_size < 16 or self.image_size % 16:
            raise ConfigError(f"{fn}: expected image_size to be a multiple of 16 >= 16, got "
                              f"{self.image_size!r}")
        if self.method != "bilinear":
            raise ConfigError(f"{fn}: expected method 'bilinear' (the local transformed conv "
                              f"of this suite samples bilinearly), got {self.method!r}")
        check_device(self, fn)

    @property
    def total_steps(self) -> int:
        return self.iters + self.iters_low

    @property
    def lam(self) -> float | None:
        return net_spec(self.net)["lam"]

    @property
    def num_classes(self) -> int:
        return 10 if self.variant in STANDIN_VARIANTS else 200

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        return self.lr if step < self.iters else self.lr * self.lr_drop



# Per-scale settings (budgets of issue 15). Measured here: one Adam step of CSTN at width 16,
# batch 16, 128 px takes ~0.8-1.0 s on the shared 2-core CPU (CAM about the same), at width 8
# ~0.3-0.7 s; evaluation of 500 test images ~10-20 s per seed.
_SCALE_SETTINGS: dict[str, dict] = {
    # smoke: for tests, seconds.
    "smoke": dict(batch_size=4, iters=3, iters_low=1, train_digits=32, test_digits=16,
                  eval_batch=8, checkpoint_every=2, log_every=2, width=4),
    # small (< 45 min on 2 CPU cores, 1 seed): CSTN (+ its untransformed box), CSTN-lam0,
    # no-CSTN, CAM. The first preset (500 steps, sized from step times under a load of
    # 9-12) took 6 min and left every network at chance (Top-1 Cls 11.6-16.8 %,
    # results/cub-small). Probe (2026-12-01, CAM, one low-priority thread beside two
    # trainings, 1800 + 400 steps): Top-1 Cls 40.0 % on 500 test images (chance 10 %), final
    # loss 1.06, 1106 s at 32 img/s (~2-3x that on a free core); its boxes still cover
    # 77 % of the image (GT-known Loc 0.0 %). So 1800 + 400 steps: 4 trainings x ~400-600 s
    # + evaluation ~ 30-45 min.
    "small": dict(batch_size=16, iters=1800, iters_low=400, train_digits=2000,
                  test_digits=500, eval_batch=50, checkpoint_every=200, log_every=50,
                  width=16),
    # medium (< 90 min on 2 CPU cores, 3 seeds): 9 networks x 3 seeds = 27 trainings at
    # width 8. Step times (2026-12-01, benchmarks/cub_step_times.py: widths 16 and 8
    # interleaved in one process at a load average of 4.7 on the 2 cores, 15 steps each,
    # best of 2): width 8
    # is 0.35-0.44x width 16 (CSTN 0.20 vs 0.46 s, CAM 0.13 vs 0.36 s, no-CSTN 0.16 vs
    # 0.41 s); that process had about 0.4 of a core, so a free core takes ~0.05-0.09 s per
    # width-8 step. The first preset (400 steps, sized from ~0.4 s/step under a load of
    # 9-12) was 1/5 of what `small`'s CAM needed to leave chance. Now 2400 + 600 steps:
    # 27 x 3000 x ~0.08 s ~ 6500 core-s + 27 x ~15 s evaluation ~ 56 min on 2 free cores
    # (70 min if a free-core step is 0.1 s). Not yet run.
    "medium": dict(batch_size=16, iters=2400, iters_low=600, train_digits=2000,
                   test_digits=500, eval_batch=50, checkpoint_every=200, log_every=50,
                   width=8),
    # paper: 004's input size and schedule are unknown beyond Sec. IV-A; this is a GPU-sized
    # run (hours on one GPU), not a reproduction of ResNet-101 training.
    "paper": dict(batch_size=32, iters=20_000, iters_low=5_000, train_digits=None,
                  test_digits=None, eval_batch=100, checkpoint_every=500, log_every=100,
                  width=32),
}
_STANDIN_SIZES = {"train": 20_000, "test": 2_000}  # stand-in images when unlimited


def preset(scale: str, variant: str, net: str, **overrides) -> CubConfig:
    """The :class:`CubConfig` of ``scale`` for ``net`` on ``variant``, with overrides.

    ``None`` overrides are ignored (the command line passes unset options as None).

    Raises:
        ConfigError: unknown scale, unknown override key, or an invalid value.
    """
    if scale not in SCALES:
        raise ConfigError(f"preset: expected scale in {list(SCALES)}, got {scale!r}")
    check_overrides(CubConfig, overrides)
    kw = dict(variant=variant, net=net, scale=scale,
              image_size={"standin": 128, "standin-v2": 64}.get(variant, 320))
    if variant == "standin-v2":
        from ._cub_v2 import SCALE_SETTINGS
        kw.update(SCALE_SETTINGS[scale])
    else:
        kw.update(_SCALE_SETTINGS[scale])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return CubConfig(**kw)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
class LocSet:
    """Images with labels and exact boxes; draws training batches per seed generator.

    Attributes:
        images: ``(N, 3, S, S)`` float16 (normalized; float16 halves the memory).
        labels: ``(N,)`` int64.
        boxes: ``(N, 4)`` float32 ``(x0, y0, x1, y1)``.
        dataset: the data set's name (the stand-in named as such).
        flip: flip training batches horizontally with probability 1/2.
    """

    def __init__(self, images, labels, boxes, dataset: str, *, flip: bool = False,
                 device: str = "cpu"):
        self.images = images.to(torch.float16).to(device)
        self.labels = labels.long().to(device)
        self.boxes = boxes.float().to(device)
        self.dataset = dataset
        self.flip = flip
        self.device = device

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def train_batches(self, batch_size: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x (S, B, 3, H, W) float32, y (S, B))``: each seed's batch from its generator."""
        xs, ys = [], []
        for g in generators:
            idx = torch.randint(len(self), (batch_size,), generator=g, device=g.device)
            idx = idx.to(self.device)
            x = self.images[idx].float()
            if self.flip:
                f = (torch.rand(batch_size, generator=g, device=g.device) < 0.5).to(self.device)
                x = torch.where(f[:, None, None, None], x.flip(-1), x)
            xs.append(x)
            ys.append(self.labels[idx])
        return torch.stack(xs), torch.stack(ys)


def _standin(n: int, split: str, seed: int, size: int, device: str) -> LocSet:
    from ..data.wsol_standin import STANDIN_NAME, make_standin

    chunks = []
    for i, start in enumerate(range(0, n, 500)):  # chunks bound the float32 peak
        d = make_standin(min(500, n - start), split, seed=seed * 1000 + i, size=size)
        chunks.append((d.images.half(), d.labels, d.boxes))
    imgs, labs, boxes = (torch.cat(t) for t in zip(*chunks))
    return LocSet(imgs, labs, boxes, STANDIN_NAME, device=device)


def load_data(variant: str, cfg: CubConfig, source: DataSource) -> tuple[LocSet, LocSet]:
    """``(train, test)`` :class:`LocSet` of ``variant`` from ``source``."""
    check_variant_source(variant, source)
    if variant == "standin-v2":
        from ._cub_v2 import load_data as load_v2
        return load_v2(cfg)
    if variant == "standin":
        n_tr = cfg.train_digits or _STANDIN_SIZES["train"]
        n_te = cfg.test_digits or _STANDIN_SIZES["test"]
        # train and test use different MNIST splits and texture splits, and distinct seeds
        return (_standin(n_tr, "train", 2 * cfg.data_seed, cfg.image_size, cfg.device),
                _standin(n_te, "test", 2 * cfg.data_seed + 1, cfg.image_size, cfg.device))
    out = []
    for split, n in (("train", cfg.train_digits), ("test", cfg.test_digits)):
        x, y, b = _load_cub_first(source.path, split, n, cfg.image_size)
        out.append(LocSet(x, y, b, "CUB-200-2011", flip=split == "train", device=cfg.device))
    return out[0], out[1]


def _load_cub_first(root, split: str, n: int | None, size: int):
    """The first ``n`` images of ``split`` (all if ``n`` is None or larger)."""
    from ..data.cub import CUBDataset, load_cub

    if n is None:
        return load_cub(root, split, size=size)
    avail = len(CUBDataset(root, split, size=size))
    return load_cub(root, split, indices=range(min(n, avail)), size=size)


def check_variant_source(variant: str, source: DataSource) -> None:
    """Raise a ``ConfigError`` if ``source`` does not serve ``variant``."""
    if variant in STANDIN_VARIANTS and source.kind != "standin":
        raise ConfigError(f"load_data: expected --data standin for variant {variant!r}, got "
                          f"{source.describe()!r}")
    if variant == "CUB" and source.kind != "official":
        raise ConfigError(f"load_data: expected --data DIR (CUB-200-2011 official layout) for "
                          f"variant 'CUB', got {source.describe()!r}")


# --------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------
def _is_cstn_output(out) -> bool:
    return hasattr(out, "scores") and hasattr(out, "theta")


def _loss_fn(cfg: CubConfig):
    from ..cstn import cstn_loss

    lam = cfg.lam

    def loss(out, y):
        if _is_cstn_output(out):
            return cstn_loss(out, y, lam=lam or 0.0, alpha=cfg.alpha)[0]
        return F.cross_entropy(out.logits, y)
    return loss


def _predict(out):
    from ..cstn import class_log_probs, joint_log_softmax

    if _is_cstn_output(out):
        return class_log_probs(joint_log_softmax(out.scores)).argmax(-1)
    return out.logits.argmax(-1)


def _optimizer(cfg: CubConfig, module):
    if cfg.optimizer == "adam":
        return torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(module.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
@torch.no_grad()
def _cstn_extra(model, images, labels, boxes, batch: int, n_gallery: int) -> dict:
    """Fig. 6 histograms with both boxes, per-image box areas, and the Fig. 5 gallery."""
    from ..cstn import predict_boxes
    from ..wsol_metrics import area_histogram, box_iou

    model.eval()
    bx, rb, lev = [], [], []
    size = None
    for i in range(0, len(labels), batch):
        out = model(images[i:i + batch].float())
        size = out.image_size
        p = predict_boxes(out, labels[i:i + batch], 1)
        bx.append(p["box"][:, 0].cpu())
        rb.append(p["rf_box"][:, 0].cpu())
        lev.append(p["level"][:, 0].cpu())
    bx, rb, lev = torch.cat(bx), torch.cat(rb), torch.cat(lev)
    gt = boxes.float().cpu()
    ok_t = box_iou(bx, gt) >= 0.5
    ok_r = box_iou(rb, gt) >= 0.5
    area = lambda b: ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / (size[0] * size[1]))
    n = min(n_gallery, len(labels))
    return {"hist_transformed": area_histogram(gt, ok_t, size, level=lev),
            "hist_untransformed": area_histogram(gt, ok_r, size, level=lev),
            "box_area": {"transformed_mean": float(area(bx).mean()),
                         "untransformed_mean": float(area(rb).mean()),
                         "gt_mean": float(area(gt).mean())},
            "gallery": {"images": _denorm_uint8(images[:n]), "gt_box": gt[:n].numpy(),
                        "rf_box": rb[:n].numpy(), "box": bx[:n].numpy(),
                        "level": lev[:n].numpy(), "labels": labels[:n].cpu().numpy()}}


def evaluate(cfg: CubConfig, models, params, test_data: LocSet, *, n_gallery: int = 8) -> dict:
    """Every localization number of every seed's model, and the figures' data.

    Args:
        models: the per-seed modules (the module loop's ``base``); ``params`` is unused.

    Returns:
        ``{"summary", "fig_data", "gallery"}``: ``summary["loc"][metric]`` and, for CSTN
        nets, ``summary["untransformed"][metric]`` (Table I's ablation: the same trained
        network scored with its receptive-field boxes) are ``{"per_seed", "mean", "std"}``
        fractions; ``fig_data`` holds the Fig. 6 histograms (transformed and untransformed
        boxes) of every seed.
    """
    from .. import cam as C
    from .. import cstn as CS

    if cfg.variant == "standin-v2":
        from ._cub_v2 import evaluate as evaluate_v2
        return evaluate_v2(cfg, models, test_data, n_gallery=n_gallery)
    spec = net_spec(cfg.net)
    is_cam = spec["build"] == "CAM"
    x, y, b = test_data.images, test_data.labels, test_data.boxes
    per_seed, hists, gallery = [], [], None
    for i, m in enumerate(models):
        m.eval()
        if is_cam:  # CAM boxes are made on the CPU (scipy): evaluate it there
            m = copy.deepcopy(m).cpu()
            x, y, b = x.cpu(), y.cpu(), b.cpu()
            ev = C.evaluate(m, x.float(), y, b, batch_size=cfg.eval_batch)
            row = dict(ev["metrics"])
            row["max_box_acc"] = ev["max_box_acc"]["mean"]
            row["mean_box_area"] = ev["mean_box_area"]
            if gallery is None:
                gallery = _cam_gallery(m, x[:n_gallery], y[:n_gallery], b[:n_gallery])
        else:
            ev = CS.evaluate(m, x.float(), y, b, batch_size=cfg.eval_batch)
            row = dict(ev["transformed"])
            row["untransformed"] = dict(ev["untransformed"])
            row["max_box_acc"] = ev["max_box_acc"]["mean"]
            row["mean_box_area"] = ev["mean_box_area"]
            row["level_share"] = ev["level_share"]
            extra = _cstn_extra(m, x, y, b, cfg.eval_batch, n_gallery)
            row["box_area"] = extra["box_area"]
            hists.append({"seed": cfg.seeds[i], "transformed": extra["hist_transformed"],
                          "untransformed": extra["hist_untransformed"]})
            if gallery is None:
                gallery = extra["gallery"]
        per_seed.append(row)
    from ..data.wsol_standin import STANDIN_NAME
    from ..wsol_backbone import BACKBONE_DEVIATION

    summary = {"dataset": test_data.dataset, "standin": test_data.dataset == STANDIN_NAME,
               "backbone": BACKBONE_DEVIATION, "lam": spec["lam"], "alpha": cfg.alpha,
               "test": {"images": len(test_data)},
               "loc": {k: _mean_std([r[k] for r in per_seed]) for k in _LOC_KEYS
                       if all(k in r for r in per_seed)},
               "max_box_acc": _mean_std([r["max_box_acc"] for r in per_seed]),
               "mean_box_area": _mean_std([r["mean_box_area"] for r in per_seed]),
               "per_seed": per_seed}
    if not is_cam:
        summary.update(untransformed_summary(per_seed))
    return {"summary": summary, "fig_data": {"net": cfg.net, "fig6": hists},
            "gallery": gallery or {}}


@torch.no_grad()
def _cam_gallery(model, x, y, b) -> dict:
    from ..cam import cam_boxes, class_activation_maps

    out = model(x.float())
    cams = class_activation_maps(model, out, y)
    return {"images": _denorm_uint8(x), "gt_box": b.float().cpu().numpy(),
            "box": cam_boxes(cams)[0].cpu().numpy(), "labels": y.cpu().numpy()}


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
def _paper(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def report_lines(runs: dict, *, scale: str | None = None) -> list[str]:
    """Markdown: 004 Tables I-IV and the Fig. 6 levels, ours beside the paper's CUB numbers.

    Args:
        runs: ``{variant: {net: metrics}}`` (``metrics.json`` contents).
    """
    from ..wsol_backbone import BACKBONE_DEVIATION

    lines: list[str] = []
    for variant, row in runs.items():
        any_run = next(iter(row.values()))
        seeds = sorted({len(r.get("seeds", [])) for r in row.values()})
        scales = sorted({r.get("scale", "?") for r in row.values()})
        lines += [f"## 004 on {any_run.get('dataset', variant)}", "",
                  f"Data set: **{any_run.get('dataset', variant)}**"
                  + (" (a stand-in, not CUB-200-2011)" if any_run.get("standin") else "")
                  + f"; scale: {', '.join(scales)}; seeds per network: "
                  f"{', '.join(map(str, seeds))}; test images: "
                  f"{any_run.get('test', {}).get('images', '?')}.", "",
                  f"Backbone deviation: {BACKBONE_DEVIATION}", "",
                  "Ours: mean ± std over seeds, percent. *paper*: 004's CUB-200-2011 numbers "
                  "(ResNet-101 pretrained on ImageNet), copied for comparison only.", ""]
        c = row.get("CSTN")
        lines += ["### Table I: transform on / off (the same trained CSTN)", "",
                  "| box | Top-1 Loc | GT-known Loc | GT-known Top-5 box Loc | Top-1 Loc (paper) |",
                  "|---|---:|---:|---:|---:|"]
        if c:
            u = c.get("untransformed", {})
            lines.append(f"| receptive-field box (without transform) | "
                         f"{_pct(u.get('top1_loc'))} | {_pct(u.get('gt_known_loc'))} | "
                         f"{_pct(u.get('gt_known_top5_loc'))} | "
                         f"{_paper(PAPER['table_i']['without transform']['top1_loc'])} |")
            lo = c["loc"]
            lines.append(f"| transformed box (with transform) | {_pct(lo.get('top1_loc'))} | "
                         f"{_pct(lo.get('gt_known_loc'))} | "
                         f"{_pct(lo.get('gt_known_top5_loc'))} | "
                         f"{_paper(PAPER['table_i']['with transform']['top1_loc'])} |")
        else:
            lines.append("| (no CSTN run) | – | – | – | – |")
        lines += ["", "### Table II: with / without the convolutional STN", "",
                  "| network | Top-1 Cls | Top-1 Loc | GT-known Loc | Top-1 Cls (paper) | "
                  "Top-1 Loc (paper) |", "|---|---:|---:|---:|---:|---:|"]
        for net, label in (("no-CSTN", "Without conv STN"), ("CSTN", "With conv STN")):
            r = row.get(net)
            p = PAPER["table_ii"][net]
            lo = r["loc"] if r else {}
            lines.append(f"| {label} ({net}) | {_pct(lo.get('top1_cls'))} | "
                         f"{_pct(lo.get('top1_loc'))} | {_pct(lo.get('gt_known_loc'))} | "
                         f"{_paper(p['top1_cls'])} | {_paper(p['top1_loc'])} |")
        lines += ["", "### Table III: lambda sweep", "",
                  "| lambda | network | Top-1 Loc | GT-known Loc | Top-1 Cls | mean box area "
                  "(of image; GT-known MAP box) | Top-1 Loc (paper) | Top-1 Cls (paper) |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|"]
        sweep = sorted(((r.get("lam"), n, r) for n, r in row.items()
                        if r.get("lam") is not None and n not in ("CSTN-fine", "CSTN-coarse")),
                       key=lambda t: -t[0])
        for lam, n, r in sweep:
            p = PAPER["table_iii"].get(float(lam), {})
            lo = r["loc"]
            lines.append(f"| {lam:g} | {n} | {_pct(lo.get('top1_loc'))} | "
                         f"{_pct(lo.get('gt_known_loc'))} | {_pct(lo.get('top1_cls'))} | "
                         f"{_pct(r.get('mean_box_area'))} | {_paper(p.get('top1_loc'))} | "
                         f"{_paper(p.get('top1_cls'))} |")
        if sweep and "gt_box_area" in sweep[0][2]:
            lines += ["", f"Mean ground-truth box area: {100 * sweep[0][2]['gt_box_area']:.2f} "
                          "% of the image."]
        lines += ["", "### Table IV: CSTN vs CAM (same backbone)", "",
                  "| method | Top-1 Loc | GT-known Loc | GT-known Top-5 box Loc | Top-1 Cls | "
                  "MaxBoxAcc (mean over IoU 0.3/0.5/0.7) | Top-1 Loc (paper) | "
                  "GT-known Loc (paper) | Top-1 Cls (paper) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for net in ("CAM", "CSTN"):
            r = row.get(net)
            p = PAPER["table_iv"][net]
            lo = r["loc"] if r else {}
            lines.append(f"| {net} | {_pct(lo.get('top1_loc'))} | {_pct(lo.get('gt_known_loc'))} "
                         f"| {_pct(lo.get('gt_known_top5_loc'))} | {_pct(lo.get('top1_cls'))} | "
                         f"{_pct(r.get('max_box_acc') if r else None)} | "
                         f"{_paper(p['top1_loc'])} | {_paper(p['gt_known_loc'])} | "
                         f"{_paper(p['top1_cls'])} |")
        lines.append(f"| CSTN Top-5 box (paper) | | | | | | | "
                     f"{_paper(PAPER['table_iv']['CSTN Top-5 box']['gt_known_top5_loc'])} | |")
        lines += ["", "CAM boxes: threshold 0.2 of the min-max normalized map, largest "
                  "connected component (models.cam). MaxBoxAcc: CAM over thresholds, CSTN over "
                  "a global box scale (models.wsol_metrics; standin-v2: at IoU 0.5 only, "
                  "models.wsol_boxacc).", "",
                  "### Fig. 6: one level vs two", "",
                  "| network | Top-1 Loc | GT-known Loc | share of MAP boxes on the fine level | "
                  "Top-1 Loc (paper) |", "|---|---:|---:|---:|---:|"]
        for net in ("CSTN-fine", "CSTN-coarse", "CSTN"):
            r = row.get(net)
            lo = r["loc"] if r else {}
            share = "–"
            if r:
                sh = [fine_share(net, ps["level_share"]) for ps in r.get("per_seed", [])
                      if ps.get("level_share")]
                share = f"{100 * float(np.mean(sh)):.1f}" if sh else "–"
            lines.append(f"| {net} | {_pct(lo.get('top1_loc'))} | {_pct(lo.get('gt_known_loc'))} "
                         f"| {share} | {_paper(PAPER['fig6'][net]['top1_loc'])} |")
        lines.append("")
        if variant == "standin-v2":  # its MaxBoxAcc column is Choe's at IoU 0.5 (an oracle)
            from ._cub_v2 import report_lines as v2_lines
            lines += v2_lines(row)
    return lines


# --------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------
class CubSuite:
    """004's CUB experiments: CSTN, its lambda sweep and ablations, CAM (Tables I-IV, Fig. 6)."""

    name = "cub"
    summary = ("004 Sec. IV: convolutional STN vs untransformed box, no CSTN, one level, "
               "lambda sweep, CAM on CUB-200-2011 (--data DIR) or its stand-in "
               "(--data standin); Tables I-IV, Figs. 5, 6")
    variants = VARIANTS
    nets = NETS
    scales = SCALES

    def default_seeds(self, scale: str) -> int:
        return {"paper": 3, "medium": 3}.get(scale, 1)

    def nets_for(self, scale: str) -> tuple[str, ...]:
        """``--net all`` at ``scale`` (:data:`NETS_BY_SCALE`)."""
        return NETS_BY_SCALE.get(scale, NETS)

    def variants_for(self, source: DataSource) -> tuple[str, ...]:
        """``--variant all`` for ``source``: the variant that source serves."""
        return ("standin",) if source.kind == "standin" else ("CUB",)

    def preset(self, scale: str, variant: str, net: str, **overrides) -> CubConfig:
        return preset(scale, variant, net, **overrides)

    def build(self, cfg: CubConfig):
        from ..cstn import build

        spec = net_spec(cfg.net)
        kw = dict(num_classes=cfg.num_classes, width=cfg.width)
        if spec["build"] != "CAM":
            kw.update(lam=spec["lam"] if spec["lam"] is not None else LAMBDA_DEFAULT,
                      alpha=cfg.alpha)
        return build(spec["build"], **kw)

    def param_counts(self) -> dict:
        out = {}
        for v in VARIANTS:
            out[v] = {}
            for n in NETS:
                m = self.build(preset("small", v, n))
                out[v][n] = sum(p.numel() for p in m.parameters() if p.requires_grad)
        return out

    def params_table(self, counts: dict) -> str:
        lines = ["| variant | network | params (ours, small scale) |", "|---|---|---:|"]
        for v, row in counts.items():
            for n, c in row.items():
                lines.append(f"| {v} | {n} | {c} |")
        lines.append("\n004 does not list parameter counts (ResNet-101 + FPN backbone).")
        return "\n".join(lines)

    def check_source(self, source: DataSource) -> None:
        if source.kind == "default":
            raise ConfigError("--data: the cub suite needs --data DIR (CUB-200-2011 in its "
                              "official layout, not reachable here) or --data standin; got "
                              "none")

    def load_data(self, variant: str, cfg: CubConfig, source: DataSource) -> tuple:
        self.check_source(source)
        return load_data(variant, cfg, source)

    def hooks(self, cfg: CubConfig) -> TrainHooks:
        return TrainHooks(loss=_loss_fn(cfg), module_optimizer=_optimizer, predict=_predict)

    def evaluate(self, cfg: CubConfig, base, params, test_data) -> dict:
        return evaluate(cfg, base, params, test_data)

    def report(self, suite_dir) -> list[str]:
        from ..record import SuiteRecord

        rec = SuiteRecord.load(suite_dir, variants=VARIANTS, nets=NETS)
        return report_lines(rec.as_dicts(), scale=rec.scale)


SUITE = CubSuite()
