"""The training loop: one run (several seeds at once) of any suite, checkpoints, resume.

One *run* trains one network on one variant for several seeds at once: the seeds'
parameters are stacked with ``torch.func.stack_module_state`` and one SGD step is
``vmap(grad_and_value(loss))`` over the seed axis (each seed draws its own batch from its
own generator). Where ``vmap`` cannot serve (``TrainConfig.vmap=False``, a sampler
without a batching rule, or a network whose ``vmappable`` is False), the same functional
step runs seed by seed; both give the same parameters to float tolerance (tested).

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
only from finite steps) stays on disk. An ST that has collapsed (most of its sampling
points off the image while the running error is near chance, for a window of log lines;
thresholds and their derivation in :mod:`models.collapse`) stops the run with
:class:`TrainingCollapsed`; the checkpoint from before the collapse began is kept as
``checkpoint.good.pt``. Each log line records, per seed, ``inside_frac`` and ``log2_det``
of the ST on that step's batch (None for a net without an ST).

``TrainConfig.precision`` picks how the step runs (:class:`models.precision.Precision`;
``fp32`` by default); a run resumes bit-exactly within its mode (tested), and a resume in
another mode is refused (it is a config difference). ``TrainConfig.vmap`` is an execution
choice like the device: a resumed run keeps its checkpoint's.

The pieces: the config (:mod:`models.config`), the suite's presets, data, hooks and
evaluation (:mod:`models.suites`, MNIST in :mod:`models.suites.mnist`), the functional
multi-seed core (:mod:`models.core`), the run I/O (:mod:`models.runio`) and the layout
(:mod:`models.record`). This module is the loop and the suite driver.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sampling.checks import NonFiniteError

from .errors import ConfigError

from torch.func import functional_call

from . import runio
from .collapse import CHANCE_ERROR, CollapseWatch, collapse_steps, st_geometry
from .deep_stn import DeepSTN, input_frame_theta
from .config import SCALES, TrainConfig
from .core import init_models, make_step, seed_params
from .precision import Precision
from .mnist_nets import count_params
from .module_loop import train_modules
from .record import (RunRecord, SuiteRecord, check_resume_configs, check_suite_name,
                     open_run_dir, resume_checkpoint, stop_record,
                     stop_record_of)
from .runio import CheckpointDamaged, Progress, TrainingDiverged, load_checkpoint
from .suites import DataSource, get_suite
from .suites.mnist import INITIAL_LR, POSE_UNITS, evaluate, load_data, preset

__all__ = ["TrainConfig", "SCALES", "preset", "train", "evaluate", "run_suite",
           "TrainingDiverged", "TrainingCollapsed", "SuiteStopped", "load_checkpoint",
           "CheckpointDamaged", "INITIAL_LR",
           "init_models", "make_step", "seed_params", "load_data", "POSE_UNITS"]

CHECKPOINT_FORMAT = 1




class SuiteStopped(TrainingDiverged):
    """Some runs of a suite stopped (diverged or collapsed) while the others finished.

    Attributes:
        stopped: ``[(variant, net, stop_record), ...]``.
    """

    def __init__(self, message: str, stopped: list):
        super().__init__(message)
        self.stopped = stopped


class TrainingCollapsed(TrainingDiverged):
    """The ST collapsed off the image (:mod:`models.collapse`); the message names the step,
    the seed and the last good checkpoint (kept as ``checkpoint.good.pt``)."""



# --------------------------------------------------------------------------------------
# Files (the I/O itself is models.runio's)
# --------------------------------------------------------------------------------------
_write_json = runio.atomic_write_json


def save_checkpoint(path: Path, *, step: int, params: dict, generators, cfg: TrainConfig,
                    opt_state: dict | None = None, stopping_state: dict | None = None,
                    stopped: bool = False) -> None:
    """Atomic checkpoint: parameters, step, every seed's generator state, torch's global
    generator state(s) (the linearized sampler draws its noise seeds there), config, and
    the suite's optimizer / early-stopping state where it has them (``stopped``: the
    early-stopping rule ended the run at ``step``).
    Its sha256 is written beside it and the previous checkpoint is kept
    (:func:`models.runio.save_checkpoint`)."""
    state = {"format": CHECKPOINT_FORMAT, "step": int(step),
             "params": {k: v.detach().cpu() for k, v in params.items()},
             "generators": [g.get_state() for g in generators],
             "global_rng": torch.get_rng_state(),
             "config": cfg.to_json()}
    if opt_state:  # the suite's optimizer state (momentum / Adam moments), for an exact resume
        state["opt_state"] = {k: v.detach().cpu() for k, v in opt_state.items()}
    if stopping_state is not None:  # early stopping (best parameters, patience counters)
        state["early_stopping"] = {k: v.detach().cpu() for k, v in stopping_state.items()}
        state["stopped"] = bool(stopped)
    if str(cfg.device).startswith("cuda"):
        state["global_cuda_rng"] = torch.cuda.get_rng_state(torch.device(cfg.device))
    runio.save_checkpoint(path, state)


def environment(cfg: TrainConfig, run_dir=None) -> dict:
    """Seeds, versions, device, commit (and the suite's plan hash) recorded with every run."""
    return runio.environment(cfg.device, run_dir=run_dir, seeds=list(cfg.seeds))


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------
def _geometry_fn(base):
    """``geometry(p, x) -> (inside_frac, log2_det)`` of the network's ST on batch ``x``
    (fp32, eval mode so no dropout draws from the RNG), or None for a network without one.

    An MNIST network's ST (``base.st``) samples onto its own output grid; a deep network's
    (:class:`models.deep_stn.DeepSTN`, several slots, iterations) is judged by the one
    input-frame matrix of all its slots (:func:`models.deep_stn.input_frame_theta`, what
    000's Fig. 7 shows) on the input's grid.
    """
    st = getattr(base, "st", None)
    if st is not None:
        out_hw = st.out_size(*base.warped_shape[1:])

        def theta_of(th, x):
            return th, out_hw
    elif isinstance(base, DeepSTN):
        def theta_of(thetas, x):
            return input_frame_theta(base, thetas), tuple(x.shape[-2:])
    else:
        return None

    def geometry(p: dict, x: torch.Tensor) -> tuple[float, float]:
        was = base.training
        base.eval()
        try:
            with torch.no_grad():
                _, th = functional_call(base, p, (x,), {"return_theta": True})
        finally:
            base.train(was)
        return st_geometry(*theta_of(th, x))

    return geometry


def _keep_good(ckpt_path: Path, good_path: Path) -> None:
    for src, dst in ((ckpt_path, good_path),
                     (ckpt_path.with_name(ckpt_path.name + ".sha256"),
                      good_path.with_name(good_path.name + ".sha256"))):
        if src.exists():
            shutil.copyfile(src, dst.with_name(dst.name + ".tmp"))
            dst.with_name(dst.name + ".tmp").replace(dst)


def suite_chance_error(suite, train_data) -> float:
    """The running training error of guessing in ``suite`` (its ``chance_error(train_data)``
    if it has one, else 10 classes' :data:`models.collapse.CHANCE_ERROR`)."""
    fn = getattr(suite, "chance_error", None)
    return CHANCE_ERROR if fn is None else float(fn(train_data))


def _collapsed(run_dir, label, cfg, step, s, line, watch, good_path) -> None:
    """Write collapsed.json and raise :class:`TrainingCollapsed` for seed index ``s``."""
    good = (f"{good_path} (step {int(load_checkpoint(good_path)['step'])})"
            if good_path.exists() else "none written before the collapse began")
    msg = (f"train: {label} collapsed at step {step}: seed {cfg.seeds[s]}'s ST samples "
           f"{100 * line['inside_frac'][s]:.0f}% inside the image (< "
           f"{100 * watch.threshold:.0f}%, log2 det {line['log2_det'][s]:+.2f}) with "
           f"training error {100 * line['train_error'][s]:.0f}% (chance "
           f"{100 * watch.chance:.0f}%, floor "
           f"{100 * watch.floor:.1f}%) for {watch.window} log lines; last good checkpoint: "
           f"{good}")
    runio.atomic_write_json(run_dir / "collapsed.json", {
        "step": step, "seed": cfg.seeds[s], "inside_frac": line["inside_frac"][s],
        "log2_det": line["log2_det"][s], "train_error": line["train_error"][s],
        "threshold": watch.threshold, "chance_error": watch.chance, "chance_floor": watch.floor,
        "window_lines": watch.window, "message": msg})
    raise TrainingCollapsed(msg)


def train(cfg: TrainConfig, run_dir: str | Path, train_data, test_data=None, *,
          resume: bool = False, progress: bool = True, stop_after: int | None = None,
          keep_checkpoint: bool = True, suite=None) -> dict | None:
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
        suite: the :class:`models.suites.Suite` that builds, hooks and evaluates the
            networks (default: the MNIST suite).

    Returns:
        The final metrics (also in ``metrics.json``), or None if stopped by ``stop_after``.

    Raises:
        TrainingDiverged: the loss became NaN/Inf.
        ConfigError: a checkpoint exists without ``resume``, or its config differs.
        CheckpointDamaged: checkpoints exist but none matches its sha256 digest (a damaged
            latest one with a good previous one is reported in one line on stderr, and the
            run resumes from the previous one).
    """
    suite = suite if suite is not None else get_suite("mnist")
    hooks = suite.hooks(cfg)
    if hooks.module_optimizer is not None:  # stateful modules + a torch optimizer
        return train_modules(cfg, run_dir, train_data, test_data, suite=suite, hooks=hooks,
                             resume=resume, progress=progress, stop_after=stop_after,
                             keep_checkpoint=keep_checkpoint)
    rd = open_run_dir(run_dir, resume=resume)
    if rd.finished is not None:
        return rd.finished
    run_dir, ckpt_path, prev_path, has_ckpt, log_path = (rd.path, rd.checkpoint, rd.previous,
                                                         rd.has_checkpoint, rd.log)
    label = f"{cfg.variant}/{cfg.net} x{len(cfg.seeds)}"
    base, params = init_models(cfg, suite.build)
    gens = [torch.Generator(device=cfg.device).manual_seed(s) for s in cfg.seeds]
    step = 0
    opt, stopper = hooks.optimizer, hooks.early_stopping
    opt_state = opt.init(params) if opt is not None else {}
    stop_state = stopper.init(params) if stopper is not None else None
    stopped = False
    if has_ckpt:
        ck, cfg = resume_checkpoint(rd, cfg)
        step = int(ck["step"])
        params = {k: v.to(cfg.device) for k, v in ck["params"].items()}
        if opt is not None and opt_state:
            if "opt_state" not in ck:
                raise ConfigError(f"train: {ckpt_path} holds no optimizer state; it cannot "
                                  f"resume this suite's optimizer exactly")
            opt_state = {k: v.to(cfg.device) for k, v in ck["opt_state"].items()}
        for g, st in zip(gens, ck["generators"]):
            g.set_state(st)
        if "global_rng" in ck:  # absent in checkpoints written before it was saved
            torch.set_rng_state(ck["global_rng"])
        if "global_cuda_rng" in ck and str(cfg.device).startswith("cuda"):
            torch.cuda.set_rng_state(ck["global_cuda_rng"], torch.device(cfg.device))
        if stopper is not None:
            stop_state = {k: v.to(cfg.device) for k, v in ck["early_stopping"].items()}
            stopped = bool(ck.get("stopped", False))
        if log_path.exists():  # drop log lines past the checkpoint
            keep = [ln for ln in log_path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] <= step]
            log_path.write_text("".join(k + "\n" for k in keep))
    else:
        if log_path.exists():
            log_path.unlink()
    _write_json(run_dir / "config.json", cfg.to_json())
    _write_json(run_dir / "env.json", environment(cfg, run_dir))

    # vmap cannot serve a network with data-dependent checks inside its step (an iterated
    # DeepSTN checks the composed matrices for NaN/Inf: `vmappable` False)
    use_vmap = (cfg.vmap and len(cfg.seeds) > 1 and cfg.method == "bilinear"
                and getattr(base, "vmappable", True))
    mode = Precision.parse(getattr(cfg, "precision", "fp32"), fn="train")
    params = mode.format_params(params)
    step_fn = mode.wrap_step(make_step(base, use_vmap, hooks.loss,
                                       exact_ties=hooks.exact_conv_ties), cfg.device)
    S = len(cfg.seeds)
    geometry = _geometry_fn(base)
    stops = getattr(suite, "stops_on_collapse", True)  # else recorded (models.collapse)
    chance = suite_chance_error(suite, train_data) if geometry is not None else CHANCE_ERROR
    watch = CollapseWatch(S, total_steps=cfg.total_steps, log_every=cfg.log_every,
                          batch_size=cfg.batch_size, chance=chance)
    good_path = run_dir / "checkpoint.good.pt"
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

    def diverged(at: int, why: str, seed=None, last=None):
        """Write diverged.json and raise :class:`TrainingDiverged` (every divergence path)."""
        last = last or (ckpt_path if ckpt_path.exists() else "none written yet")
        msg = f"train: {label} diverged at step {at}: {why}; last good checkpoint: {last}"
        _write_json(run_dir / "diverged.json", {"step": at, **(
            {"seed": seed} if seed is not None else {}), "message": msg})
        bar.close()
        raise TrainingDiverged(msg)

    def check_finite():
        if int(first_bad.max()) < 0:
            return
        fb = first_bad.tolist()
        bad = min((s for s in range(S) if fb[s] >= 0), key=lambda s: fb[s])
        last = (f"{ckpt_path} (step {int(load_checkpoint(ckpt_path)['step'])})"
                if ckpt_path.exists() else "none written yet")
        diverged(fb[bad], f"non-finite loss for seed {cfg.seeds[bad]}", cfg.seeds[bad], last)

    while step < cfg.total_steps and not stopped:
        x, y = train_data.train_batches(cfg.batch_size, gens)  # (S, B, C, H, W), (S, B)
        try:
            grads, loss, logits = step_fn(params, x, y)
        except NonFiniteError as e:  # an ST's parameters went NaN/Inf inside the step
            diverged(step + 1, str(e))
        lr = cfg.lr_at(step)
        with torch.no_grad():
            if opt is None:
                params = {k: p - lr * grads[k] for k, p in params.items()}
            else:
                params, opt_state = opt.update(params, grads, opt_state, lr)
            step += 1
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            win_loss += loss.detach()
            # per-seed running error over every label (SVHN: every head)
            win_err += (logits.argmax(-1) != y).float().flatten(1).mean(-1)
        win_n += 1
        at_val = stopper is not None and (step % stopper.every == 0
                                          or step == cfg.total_steps)
        val_err = None
        if at_val:
            check_finite()
            val_err = hooks.validate(base, params, train_data)  # (S,)
            stop_state, stopped = stopper.observe(params, step, val_err, stop_state)
        at_log = step % cfg.log_every == 0 or step == cfg.total_steps or stopped
        at_ckpt = step % cfg.checkpoint_every == 0 or step == cfg.total_steps or stopped
        stopping = stop_after is not None and step >= stop_after
        if at_log or at_ckpt or stopping:
            check_finite()
        if val_err is not None:
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, "val_error": val_err.tolist(),
                                    "stopped": stopped}) + "\n")
        if at_log:
            wl, we = (win_loss / win_n).tolist(), (win_err / win_n).tolist()
            geo = [geometry(seed_params(params, i), x[i])
                   for i in range(S)] if geometry is not None else None
            line = {"step": step, "lr": lr, "loss": wl, "train_error": we,
                    "inside_frac": [g[0] for g in geo] if geo else None,
                    "log2_det": [g[1] for g in geo] if geo else None,
                    "wall_s": round(time.perf_counter() - t_start, 3)}
            with log_path.open("a") as f:
                f.write(json.dumps(line) + "\n")
            if geo and stops:  # where a collapse is only recorded, the log is replayed at the end
                if watch.update(line["inside_frac"], we) and ckpt_path.exists():
                    _keep_good(ckpt_path, good_path)  # the last checkpoint before the streak
                bad = watch.collapsed()
                if bad is not None:
                    bar.close()
                    _collapsed(run_dir, label, cfg, step, bad, line, watch, good_path)
            last_loss = sum(wl) / S
            bar.update(step, last_loss, sum(we) / S, force=step == cfg.total_steps)
            win_loss.zero_()
            win_err.zero_()
            win_n = 0
        if at_ckpt:
            if not all(bool(torch.isfinite(p).all()) for p in params.values()):
                diverged(step, "non-finite parameters after a finite loss")
            save_checkpoint(ckpt_path, step=step, params=params, generators=gens, cfg=cfg,
                            opt_state=opt_state, stopping_state=stop_state,
                            stopped=stopped)
        if stopping and step < cfg.total_steps and not stopped:
            bar.close()
            return None
    bar.close()
    wall = time.perf_counter() - t_start
    steps_done = step - start_step
    result = {"suite": suite.name, "variant": cfg.variant, "net": cfg.net, "scale": cfg.scale,
              "seeds": list(cfg.seeds), "steps": step,
              "n_params": count_params(suite.build(cfg)),
              "train": {"wall_s": round(wall, 2), "steps_this_session": steps_done,
                        "images_per_s": round(steps_done * cfg.batch_size * S / wall, 1)
                        if wall > 0 else None, "vmap": use_vmap,
                        "precision": mode.value,
                        "final_loss": last_loss}}
    if geometry is not None and log_path.exists():
        lines = [json.loads(ln) for ln in log_path.read_text().splitlines() if ln.strip()]
        found = collapse_steps(lines, n_seeds=S, total_steps=cfg.total_steps,
                               log_every=cfg.log_every, batch_size=cfg.batch_size,
                               chance=chance)
        result["collapse"] = {"seeds": {str(cfg.seeds[i]): st for i, st in sorted(found.items())},
                              "stops_run": stops, "chance_error": round(chance, 6),
                              "chance_floor": round(watch.floor, 6)}
    if stopper is not None:  # evaluate each seed's best parameters on validation
        result["early_stopping"] = {**stopper.summary(stop_state), "stopped_at": step,
                                    "max_steps": cfg.total_steps}
        params = stopper.select(stop_state)
    if test_data is not None:
        ev = suite.evaluate(cfg, base, params, test_data)
        result.update(ev["summary"])
        _write_json(run_dir / "fig_data.json", ev["fig_data"])
        np.savez_compressed(run_dir / "gallery.npz", **ev["gallery"])
    RunRecord(run_dir, result).save()
    if not keep_checkpoint:
        for p in (ckpt_path, prev_path, good_path):
            p.unlink(missing_ok=True)
            p.with_name(p.name + ".sha256").unlink(missing_ok=True)
    return result



def run_suite(variants, nets, out: str | Path, *, scale: str, resume: bool = False,
              progress: bool = True, data=None, keep_checkpoints: bool = True,
              suite="mnist", source: DataSource | None = None, **overrides) -> dict:
    """Train every ``net`` on every ``variant``; one run directory per pair.

    Layout: ``out/<variant>/<net>/`` (see the module docstring) and ``out/suite.json``
    listing every run's metrics. With ``resume``, finished runs (``metrics.json`` present)
    are kept and unfinished ones continue from their checkpoint.

    A run that diverges or collapses does not stop the suite: it is recorded
    (``diverged.json`` / ``collapsed.json``, ``suite.json``'s ``"stopped"``), the other
    runs train, and :class:`SuiteStopped` is raised at the end naming every stopped run.
    ``resume`` keeps a stopped run stopped (training is deterministic, so it would stop
    the same way again); removing its directory trains it afresh.

    Raises:
        SuiteStopped: after the last run, if any run stopped before finishing.

    Args:
        data: optional ``{variant: (train, test)}`` (tests); default: the suite loads them
            from ``source``.
        suite: a suite name or :class:`models.suites.Suite`.
        source: where the data come from (default: the suite's default source).
    """
    suite = get_suite(suite) if isinstance(suite, str) else suite
    source = source if source is not None else DataSource()
    out = Path(out)
    check_suite_name(out, suite.name)  # one suite per directory
    if resume:  # a changed setting is refused, never silently dropped
        check_resume_configs(out, [suite.preset(scale, v, n, **overrides)
                                   for v in variants for n in nets])
    out.mkdir(parents=True, exist_ok=True)
    # `stnlab report` picks the suite's tables by the index's "suite"
    index = SuiteRecord.update_index(out, scale, {}, suite=suite.name)
    stopped = []
    for v in variants:
        cfgs = [suite.preset(scale, v, n, **overrides) for n in nets]
        loaded = None
        for cfg in cfgs:
            rd = SuiteRecord.run_dir(out, v, cfg.net)
            if resume and RunRecord.is_run(rd):
                res = RunRecord.load(rd).metrics
            elif resume and (earlier := stop_record(rd)) is not None:
                # deterministic: resuming it would stop the same way again
                stopped.append((v, cfg.net, earlier))
                if progress:
                    print(f"train: {v}/{cfg.net}: kept as stopped earlier "
                          f"({earlier['reason']} at step {earlier['step']}); remove {rd} "
                          f"to train it again", file=sys.stderr)
                continue
            else:
                if loaded is None:
                    loaded = data[v] if data is not None else suite.load_data(v, cfg, source)
                try:
                    res = train(cfg, rd, loaded[0], loaded[1], resume=resume,
                                progress=progress, keep_checkpoint=keep_checkpoints,
                                suite=suite)
                except TrainingDiverged as e:  # also TrainingCollapsed: the others go on
                    info = stop_record_of(rd, e)
                    stopped.append((v, cfg.net, info))
                    SuiteRecord.update_index(out, scale, {}, stopped={v: {cfg.net: info}})
                    if progress:
                        print(f"{e}; going on with the suite's other runs", file=sys.stderr)
                    continue
            index = SuiteRecord.update_index(out, scale, {v: {cfg.net: res}})
    if stopped:
        total = len(variants) * len(nets)
        what = "; ".join(f"{v}/{n} {s['reason']} at step {s['step']}" for v, n, s in stopped)
        raise SuiteStopped(f"train: {len(stopped)} of {total} runs stopped before finishing "
                           f"({what}); the other runs finished and {out / 'suite.json'} "
                           f"lists them; remove a stopped run's directory to train it again",
                           stopped)
    return index

