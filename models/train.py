"""Training the MNIST STN suite (000 App. A.1): config, multi-seed loop, checkpoints, eval.

One *run* trains one network on one variant for several seeds at once: the seeds'
parameters are stacked with ``torch.func.stack_module_state`` and one SGD step is
``vmap(grad_and_value(loss))`` over the seed axis (each seed draws its own batch from its
own generator). Where ``vmap`` cannot serve (``TrainConfig.vmap=False``, or a sampler
without a batching rule), the same functional step runs seed by seed; both give the same
parameters to float tolerance (tested).

A run directory holds::

    config.json     resolved TrainConfig
    env.json        seeds, package versions, device, git commit, threads
    log.jsonl       one JSON line per log interval (step, lr, loss and running error per seed)
    checkpoint.pt   latest checkpoint (atomic: written to a temporary file, then renamed);
                    loads with ``torch.load(..., weights_only=True)``; its sha256 is in
                    checkpoint.pt.sha256 and verified on load; the one before it is kept
                    as checkpoint.prev.pt (+ .sha256) and used when the latest is damaged
    metrics.json    final test metrics (error, pose spread, determinant, Fig. 6 slope)
    fig_data.json   data the figures draw from (Fig. 6 scatter subsample)
    gallery.npz     a few test digits before / after the ST (Fig. 5)

Resuming (``resume=True``) restores parameters, step and every seed's data generator, so
an interrupted and resumed run ends bit-for-bit where the uninterrupted run ends (tested).
A NaN/Inf loss stops the run with :class:`TrainingDiverged`; the last checkpoint (written
only from finite steps) stays on disk.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

import sampling
from sampling.checks import UsageError

from . import metrics as M
from . import runio
from .mnist_nets import NETS, VARIANT_SHAPES, build, count_params
from .record import RunRecord, SuiteRecord
from .runio import CheckpointDamaged, Progress, load_checkpoint

__all__ = ["TrainConfig", "SCALES", "preset", "train", "evaluate", "run_suite",
           "TrainingDiverged", "load_checkpoint", "CheckpointDamaged", "INITIAL_LR"]

SCALES = ("smoke", "small", "medium", "paper")
#: 000 App. A.1: initial learning rate per variant (then 10x lower).
INITIAL_LR = {"R": 0.02, "T": 0.01, "S": 0.02}
CHECKPOINT_FORMAT = 1


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the message names the step, the seed and the checkpoint."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (000 App. A.1 at ``scale="paper"``).

    Attributes:
        variant: ``"R"``, ``"T"`` or ``"S"``.
        net: one of :data:`models.mnist_nets.NETS`.
        scale: preset name the config came from (``"smoke"``, ``"small"``, ``"paper"``).
        seeds: one run trains all these seeds (stacked, vmapped).
        batch_size: images per step and seed.
        iters: steps at the initial learning rate.
        iters_low: further steps at ``lr * lr_drop``.
        lr: initial learning rate (plain SGD, no momentum, no weight decay).
        train_digits: use only the first ``train_digits`` training digits (None: all 60k).
        test_digits: use only the first ``test_digits`` test digits (None: all 10k).
        test_perturb: fixed perturbations per test digit (000: 10).
        test_seed: seed of the fixed test perturbations.
        eval_batch: test images per forward pass.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        log_every: steps between log lines.
        method: ST sampler (``"bilinear"``, ``"linearized"``, ``"multiscale"``).
        padding_mode: ``"border"`` (000 App. A.1) or ``"zeros"``.
        device: ``"cpu"`` or ``"cuda"``; data are generated on this device.
        vmap: train the seeds with ``torch.func.vmap`` (else one after another).
    """

    variant: str
    net: str
    scale: str = "custom"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 256
    iters: int = 50_000
    iters_low: int = 20_000
    lr: float = 0.02
    lr_drop: float = 0.1
    train_digits: int | None = None
    test_digits: int | None = None
    test_perturb: int = 10
    test_seed: int = 0
    eval_batch: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 100
    method: str = "bilinear"
    padding_mode: str = "border"
    device: str = "cpu"
    vmap: bool = True

    def __post_init__(self):
        fn = "TrainConfig"
        if self.variant not in VARIANT_SHAPES:
            raise UsageError(f"{fn}: expected variant in {list(VARIANT_SHAPES)}, got "
                             f"{self.variant!r}")
        if self.net not in NETS:
            raise UsageError(f"{fn}: expected net (architecture) in {list(NETS)}, got "
                             f"{self.net!r}")
        seeds = tuple(self.seeds)
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise UsageError(f"{fn}: expected seeds to be distinct ints >= 0, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        for name in ("batch_size", "test_perturb", "eval_batch", "checkpoint_every",
                     "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"{fn}: expected {name} to be an int >= 1, got {v!r}")
        for name in ("iters", "iters_low"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UsageError(f"{fn}: expected {name} to be an int >= 0, got {v!r}")
        if self.iters + self.iters_low < 1:
            raise UsageError(f"{fn}: expected iters + iters_low >= 1, got 0")
        for name in ("train_digits", "test_digits"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UsageError(f"{fn}: expected {name} to be None or an int >= 1, got {v!r}")
        for name in ("lr", "lr_drop"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise UsageError(f"{fn}: expected {name} to be a finite number > 0, got {v!r}")
        if self.method not in sampling.METHODS:
            raise UsageError(f"{fn}: expected method in {list(sampling.METHODS)}, got "
                             f"{self.method!r}")
        if self.padding_mode not in ("border", "zeros"):
            raise UsageError(f"{fn}: expected padding_mode 'border' or 'zeros', got "
                             f"{self.padding_mode!r}")
        if not (self.device == "cpu" or str(self.device).startswith("cuda")):
            raise UsageError(f"{fn}: expected device 'cpu' or 'cuda[:i]', got {self.device!r}")

    @property
    def total_steps(self) -> int:
        return self.iters + self.iters_low

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        return self.lr if step < self.iters else self.lr * self.lr_drop

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["seeds"] = tuple(d["seeds"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"TrainConfig: unknown keys {unknown}")
        return cls(**d)


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
    # vmapped. (T) at 5x `small`; (S) at 2.5x `small` (S costs 15-40x (R) per image).
    "R": dict(batch_size=64, iters=16000, iters_low=4000),
    "T": dict(batch_size=64, iters=3200, iters_low=800),
    "S": dict(batch_size=32, iters=1400, iters_low=350),
}


def preset(scale: str, variant: str, net: str, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of ``scale`` for ``net`` on ``variant``, with overrides.

    Raises:
        UsageError: unknown scale, unknown override key, or an invalid value.
    """
    if scale not in SCALES:
        raise UsageError(f"preset: expected scale in {list(SCALES)}, got {scale!r}")
    if variant not in VARIANT_SHAPES:
        raise UsageError(f"preset: expected variant in {list(VARIANT_SHAPES)}, got {variant!r}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"preset: unknown config keys {unknown}; known: {sorted(known)}")
    kw = dict(variant=variant, net=net, scale=scale, lr=INITIAL_LR[variant])
    kw.update(_SCALE_SETTINGS[scale])
    if scale == "small":
        kw.update(_SMALL_PER_VARIANT[variant])
    elif scale == "medium":
        kw.update(_MEDIUM_PER_VARIANT[variant])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)


# --------------------------------------------------------------------------------------
# Functional multi-seed core
# --------------------------------------------------------------------------------------
def _build(cfg: TrainConfig):
    return build(cfg.variant, cfg.net, method=cfg.method, padding_mode=cfg.padding_mode)


def init_models(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """Build one model per seed (``torch.manual_seed(seed)`` before each) and stack them.

    Returns:
        ``(base, params)``: a stateless copy of the architecture on the ``meta`` device for
        ``functional_call``, and ``{name: (S, ...)}`` stacked parameters on ``cfg.device``.
        Shared tensors (STN-SL) appear once, under the classifier's name.
    """
    models = []
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        models.append(_build(cfg))
    params, buffers = stack_module_state(models)
    if buffers:  # the MNIST nets have no buffers (no batch norm)
        raise ValueError("init_models: expected models without buffers")
    base = copy.deepcopy(models[0]).to("meta")
    params = {k: v.detach().to(cfg.device) for k, v in params.items()}
    return base, params


def _loss(base, params, x, y):
    logits = functional_call(base, params, (x,))
    return F.cross_entropy(logits, y), logits


def make_step(base, use_vmap: bool):
    """``step(params, x (S, B, C, H, W), y (S, B)) -> (grads, loss (S,), logits (S, B, 10))``."""
    if use_vmap:
        batched = vmap(grad_and_value(partial(_loss, base), has_aux=True))

        def step(params, x, y):
            grads, (loss, logits) = batched(params, x, y)
            return grads, loss, logits
        return step

    def step_seq(params, x, y):
        # Plain autograd, seed by seed: serves samplers whose autograd.Function has no
        # functorch support (torch.func.grad / vmap refuse those).
        grads, losses, logits = {k: [] for k in params}, [], []
        for i in range(x.shape[0]):
            p = {k: v[i].detach().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                loss, out = _loss(base, p, x[i], y[i])
                g = torch.autograd.grad(loss, list(p.values()))
            for k, gk in zip(p, g):
                grads[k].append(gk)
            losses.append(loss.detach())
            logits.append(out.detach())
        return ({k: torch.stack(v) for k, v in grads.items()}, torch.stack(losses),
                torch.stack(logits))
    return step_seq


def seed_params(params: dict, i: int) -> dict:
    """Parameters of the ``i``-th stacked seed."""
    return {k: v[i] for k, v in params.items()}


# --------------------------------------------------------------------------------------
# Files (the I/O itself is models.runio's)
# --------------------------------------------------------------------------------------
_write_json = runio.atomic_write_json


def save_checkpoint(path: Path, *, step: int, params: dict, generators, cfg: TrainConfig) -> None:
    """Atomic checkpoint: parameters, step, every seed's generator state, torch's global
    generator state(s) (the linearized sampler draws its noise seeds there), config.
    Its sha256 is written beside it and the previous checkpoint is kept
    (:func:`models.runio.save_checkpoint`)."""
    state = {"format": CHECKPOINT_FORMAT, "step": int(step),
             "params": {k: v.detach().cpu() for k, v in params.items()},
             "generators": [g.get_state() for g in generators],
             "global_rng": torch.get_rng_state(),
             "config": cfg.to_json()}
    if str(cfg.device).startswith("cuda"):
        state["global_cuda_rng"] = torch.cuda.get_rng_state(torch.device(cfg.device))
    runio.save_checkpoint(path, state)


def environment(cfg: TrainConfig) -> dict:
    """Seeds, versions, device and commit recorded with every run."""
    return runio.environment(cfg.device, seeds=list(cfg.seeds))


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------
def train(cfg: TrainConfig, run_dir: str | Path, train_data, test_data=None, *,
          resume: bool = False, progress: bool = True, stop_after: int | None = None,
          keep_checkpoint: bool = True) -> dict | None:
    """Train ``cfg.net`` on ``cfg.variant`` for all ``cfg.seeds``; evaluate; write the run dir.

    Args:
        cfg: the run's configuration.
        run_dir: directory of this run (created).
        train_data: has ``train_batches(batch_size, generators) -> (images, labels)``
            (e.g. :class:`models.data.perturb.PerturbedMNIST`), on ``cfg.device``.
        test_data: has ``test_set(n_perturb, seed, batch_size)``; None skips evaluation.
        resume: continue from ``run_dir/checkpoint.pt``. Without it, a run directory that
            already holds a checkpoint is an error (nothing is overwritten silently).
        progress: show the status line on stderr.
        stop_after: stop after this many steps without writing anything more, as if the
            process had been killed (for testing resume).
        keep_checkpoint: keep ``checkpoint.pt`` once the run has finished (else delete it,
            e.g. for result directories that are committed without weights).

    Returns:
        The final metrics (also in ``metrics.json``), or None if stopped by ``stop_after``.

    Raises:
        TrainingDiverged: the loss became NaN/Inf.
        UsageError: a checkpoint exists without ``resume``, or its config differs.
        CheckpointDamaged: checkpoints exist but none matches its sha256 digest (a damaged
            latest one with a good previous one is reported in one line on stderr, and the
            run resumes from the previous one).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, prev_path = runio.checkpoint_paths(run_dir)
    has_ckpt = ckpt_path.exists() or prev_path.exists()
    log_path = run_dir / "log.jsonl"
    label = f"{cfg.variant}/{cfg.net} x{len(cfg.seeds)}"

    if (run_dir / "metrics.json").exists() and not has_ckpt:
        if not resume:
            raise UsageError(f"train: {run_dir} holds a finished run (metrics.json); pass "
                             f"--resume to keep it or choose another --out")
        return RunRecord.load(run_dir).metrics
    base, params = init_models(cfg)
    gens = [torch.Generator(device=cfg.device).manual_seed(s) for s in cfg.seeds]
    step = 0
    if has_ckpt:
        if not resume:
            raise UsageError(f"train: {ckpt_path} exists; pass --resume to continue it or "
                             f"choose another --out")
        ck, _ = runio.latest_good_checkpoint(run_dir)
        saved = TrainConfig.from_json(ck["config"])
        mine = dataclasses.replace(cfg, device=saved.device)
        if saved != mine:
            diff = {k: (v, getattr(cfg, k)) for k, v in dataclasses.asdict(saved).items()
                    if getattr(mine, k) != v}
            raise UsageError(f"train: --resume with a different config than {ckpt_path}: "
                             f"{diff} (saved, asked)")
        step = int(ck["step"])
        params = {k: v.to(cfg.device) for k, v in ck["params"].items()}
        for g, st in zip(gens, ck["generators"]):
            g.set_state(st)
        if "global_rng" in ck:  # absent in checkpoints written before it was saved
            torch.set_rng_state(ck["global_rng"])
        if "global_cuda_rng" in ck and str(cfg.device).startswith("cuda"):
            torch.cuda.set_rng_state(ck["global_cuda_rng"], torch.device(cfg.device))
        if log_path.exists():  # drop log lines past the checkpoint
            keep = [ln for ln in log_path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] <= step]
            log_path.write_text("".join(k + "\n" for k in keep))
    else:
        if log_path.exists():
            log_path.unlink()
    _write_json(run_dir / "config.json", cfg.to_json())
    _write_json(run_dir / "env.json", environment(cfg))

    use_vmap = cfg.vmap and len(cfg.seeds) > 1 and cfg.method == "bilinear"
    step_fn = make_step(base, use_vmap)
    S = len(cfg.seeds)
    bar = Progress(label, cfg.total_steps, step, cfg.batch_size * S, enabled=progress)
    win_loss = torch.zeros(S, device=cfg.device)
    win_err = torch.zeros(S, device=cfg.device)
    win_n = 0
    # Non-finite losses are recorded on the device (first bad step per seed, -1 = none)
    # and looked at only where the host syncs anyway (log lines, checkpoints, the end):
    # a host check every step would stall a GPU once per step.
    first_bad = torch.full((S,), -1, dtype=torch.long, device=cfg.device)
    t_start = time.perf_counter()
    start_step = step
    last_loss = float("nan")

    def check_finite():
        if int(first_bad.max()) < 0:
            return
        fb = first_bad.tolist()
        bad = min((s for s in range(S) if fb[s] >= 0), key=lambda s: fb[s])
        last = (f"{ckpt_path} (step {int(load_checkpoint(ckpt_path)['step'])})"
                if ckpt_path.exists() else "none written yet")
        msg = (f"train: {label} diverged at step {fb[bad]}: non-finite loss for seed "
               f"{cfg.seeds[bad]}; last good checkpoint: {last}")
        _write_json(run_dir / "diverged.json", {"step": fb[bad], "seed": cfg.seeds[bad],
                                                "message": msg})
        bar.close()
        raise TrainingDiverged(msg)

    while step < cfg.total_steps:
        x, y = train_data.train_batches(cfg.batch_size, gens)  # (S, B, C, H, W), (S, B)
        grads, loss, logits = step_fn(params, x, y)
        lr = cfg.lr_at(step)
        with torch.no_grad():
            params = {k: p - lr * grads[k] for k, p in params.items()}
            step += 1
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            win_loss += loss.detach()
            win_err += (logits.argmax(-1) != y).float().mean(-1)
        win_n += 1
        at_log = step % cfg.log_every == 0 or step == cfg.total_steps
        at_ckpt = step % cfg.checkpoint_every == 0 or step == cfg.total_steps
        stopping = stop_after is not None and step >= stop_after
        if at_log or at_ckpt or stopping:
            check_finite()
        if at_log:
            wl, we = (win_loss / win_n).tolist(), (win_err / win_n).tolist()
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, "lr": lr, "loss": wl, "train_error": we,
                                    "wall_s": round(time.perf_counter() - t_start, 3)}) + "\n")
            last_loss = sum(wl) / S
            bar.update(step, last_loss, sum(we) / S, force=step == cfg.total_steps)
            win_loss.zero_()
            win_err.zero_()
            win_n = 0
        if at_ckpt:
            if not all(bool(torch.isfinite(p).all()) for p in params.values()):
                msg = (f"train: {label} diverged at step {step}: non-finite parameters after "
                       f"a finite loss; last good checkpoint: "
                       f"{ckpt_path if ckpt_path.exists() else 'none written yet'}")
                _write_json(run_dir / "diverged.json", {"step": step, "message": msg})
                bar.close()
                raise TrainingDiverged(msg)
            save_checkpoint(ckpt_path, step=step, params=params, generators=gens, cfg=cfg)
        if stopping and step < cfg.total_steps:
            bar.close()
            return None
    bar.close()
    wall = time.perf_counter() - t_start
    steps_done = step - start_step
    result = {"variant": cfg.variant, "net": cfg.net, "scale": cfg.scale,
              "seeds": list(cfg.seeds), "steps": cfg.total_steps,
              "n_params": count_params(_build(cfg)),
              "train": {"wall_s": round(wall, 2), "steps_this_session": steps_done,
                        "images_per_s": round(steps_done * cfg.batch_size * S / wall, 1)
                        if wall > 0 else None, "vmap": use_vmap,
                        "final_loss": last_loss}}
    if test_data is not None:
        ev = evaluate(cfg, base, params, test_data)
        result.update(ev["summary"])
        _write_json(run_dir / "fig_data.json", ev["fig_data"])
        np.savez_compressed(run_dir / "gallery.npz", **ev["gallery"])
    RunRecord(run_dir, result).save()
    if not keep_checkpoint:
        for p in (ckpt_path, prev_path):
            p.unlink(missing_ok=True)
            p.with_name(p.name + ".sha256").unlink(missing_ok=True)
    return result


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


# --------------------------------------------------------------------------------------
# The suite driver
# --------------------------------------------------------------------------------------
def load_data(variant: str, device: str, *, train_digits=None, test_digits=None):
    """``(train PerturbedMNIST, test PerturbedMNIST)`` from the cached MNIST (60k / 10k)."""
    from .data.mnist import load_mnist
    from .data.perturb import PerturbedMNIST

    tr_x, tr_y = load_mnist("train60k")
    te_x, te_y = load_mnist("test")
    if train_digits is not None:
        tr_x, tr_y = tr_x[:train_digits], tr_y[:train_digits]
    if test_digits is not None:
        te_x, te_y = te_x[:test_digits], te_y[:test_digits]
    # 000 App. A.1 cuts the (T)/(S) clutter fragments from MNIST *training* images, for
    # the test perturbations too.
    return (PerturbedMNIST(variant, tr_x, tr_y, device=device),
            PerturbedMNIST(variant, te_x, te_y, device=device, clutter_images=tr_x))


def run_suite(variants, nets, out: str | Path, *, scale: str, resume: bool = False,
              progress: bool = True, data=None, keep_checkpoints: bool = True,
              **overrides) -> dict:
    """Train every ``net`` on every ``variant``; one run directory per pair.

    Layout: ``out/<variant>/<net>/`` (see the module docstring) and ``out/suite.json``
    listing every run's metrics. With ``resume``, finished runs (``metrics.json`` present)
    are kept and unfinished ones continue from their checkpoint.

    Args:
        data: optional ``{variant: (train, test)}`` (tests); default loads MNIST.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suite = SuiteRecord.load_index(out, scale)
    for v in variants:
        cfgs = [preset(scale, v, n, **overrides) for n in nets]
        loaded = None
        for cfg in cfgs:
            rd = SuiteRecord.run_dir(out, v, cfg.net)
            if resume and RunRecord.is_run(rd):
                res = RunRecord.load(rd).metrics
            else:
                if loaded is None:
                    loaded = (data[v] if data is not None else
                              load_data(v, cfg.device, train_digits=cfg.train_digits,
                                        test_digits=cfg.test_digits))
                res = train(cfg, rd, loaded[0], loaded[1], resume=resume, progress=progress,
                            keep_checkpoint=keep_checkpoints)
            suite["runs"].setdefault(v, {})[cfg.net] = res
            SuiteRecord.save_index(out, suite)
    return suite
