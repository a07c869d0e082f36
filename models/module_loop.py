"""The training loop for stateful networks with a torch optimizer (Adam, SGD with momentum).

:func:`models.train.train` trains stacked, buffer-free parameters with a functional SGD
step (``vmap`` over seeds). Networks with buffers (batch norm) and optimizers with state
(Adam's moments, momentum) do not fit that step; a suite that needs them returns
:class:`models.suites.TrainHooks` with ``optimizer`` set, and :func:`models.train.train`
hands the run to :func:`train_modules` here. Same run directory, same files, same
``resume`` contract:

* one ``nn.Module`` and one optimizer per seed, trained one after another on the same
  batches the functional loop would draw (``train_data.train_batches(batch_size,
  generators)``, each seed its own generator; a data set with ``takes_step = True`` is
  also given the 0-based ``step=``, e.g. to render a fresh epoch,
  :class:`models.data.wsol_standin_v2.EpochLocSet`);
* the learning rate of step ``t`` is ``cfg.lr_at(t)``, written into every parameter group
  before the step;
* ``checkpoint.pt`` holds every seed's ``state_dict`` (parameters *and* buffers), every
  optimizer's ``state_dict`` (moments, step counts), the generators and torch's global RNG,
  so an interrupted and resumed run ends bit-for-bit where the uninterrupted one ends
  (tested in ``tests/models/test_module_loop.py``);
* evaluation gets the list of per-seed modules as ``base`` and ``params=None``:
  ``suite.evaluate(cfg, modules, None, test_data)``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from sampling.checks import NonFiniteError

from . import runio
from .record import RunRecord, open_run_dir, resume_checkpoint
from .runio import Progress, TrainingDiverged

__all__ = ["MODULE_CHECKPOINT_FORMAT", "train_modules"]

MODULE_CHECKPOINT_FORMAT = 2


def _build_seeded(cfg, build) -> list[torch.nn.Module]:
    models = []
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        models.append(build(cfg).to(cfg.device))
    return models


def train_modules(cfg, run_dir, train_data, test_data, *, suite, hooks, resume: bool = False,
                  progress: bool = True, stop_after: int | None = None,
                  keep_checkpoint: bool = True) -> dict | None:
    """Train one stateful module per seed with ``hooks.module_optimizer``; see the module docstring.

    Args:
        cfg: the run's config (``seeds``, ``batch_size``, ``total_steps``, ``lr_at``, ...).
        run_dir: the run directory.
        train_data: ``train_batches(batch_size, generators) -> (x (S, B, ...), y (S, B))``.
        test_data: what ``suite.evaluate`` reads; None skips evaluation.
        suite: the suite (``build``, ``evaluate``).
        hooks: its :class:`models.suites.TrainHooks` (``loss``, ``optimizer``, ``predict``).
        resume, progress, stop_after, keep_checkpoint: as :func:`models.train.train`.

    Returns:
        The final metrics, or None if stopped by ``stop_after``.

    Raises:
        ConfigError: a checkpoint exists without ``resume``, or its config differs.
        models.runio.TrainingDiverged: a non-finite loss (also models.train.TrainingDiverged).
    """
    rd = open_run_dir(run_dir, resume=resume)
    if rd.finished is not None:
        return rd.finished
    run_dir, ckpt_path, prev_path, has_ckpt, log_path = (rd.path, rd.checkpoint, rd.previous,
                                                         rd.has_checkpoint, rd.log)
    label = f"{cfg.variant}/{cfg.net} x{len(cfg.seeds)}"
    models = _build_seeded(cfg, suite.build)
    opts = [hooks.module_optimizer(cfg, m) for m in models]
    gens = [torch.Generator(device=cfg.device).manual_seed(s) for s in cfg.seeds]
    step = 0
    if has_ckpt:
        ck, cfg = resume_checkpoint(rd, cfg)
        step = int(ck["step"])
        for m, o, g, ms, os_, gs in zip(models, opts, gens, ck["models"], ck["optimizers"],
                                        ck["generators"]):
            m.load_state_dict(ms)
            o.load_state_dict(os_)
            g.set_state(gs)
        torch.set_rng_state(ck["global_rng"])
        if log_path.exists():
            keep = [ln for ln in log_path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] <= step]
            log_path.write_text("".join(k + "\n" for k in keep))
    elif log_path.exists():
        log_path.unlink()
    runio.atomic_write_json(run_dir / "config.json", cfg.to_json())
    runio.atomic_write_json(run_dir / "env.json", runio.environment(
        cfg.device, run_dir=run_dir, seeds=list(cfg.seeds)))

    def save():
        runio.save_checkpoint(ckpt_path, {
            "format": MODULE_CHECKPOINT_FORMAT, "step": int(step),
            "models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models],
            "optimizers": [o.state_dict() for o in opts],
            "generators": [g.get_state() for g in gens],
            "global_rng": torch.get_rng_state(), "config": cfg.to_json()})

    S = len(cfg.seeds)
    bar = Progress(label, cfg.total_steps, step, cfg.batch_size * S, enabled=progress)
    win_loss, win_err, win_n = [0.0] * S, [0.0] * S, 0
    t_start = time.perf_counter()
    start_step = step
    last_loss = float("nan")
    while step < cfg.total_steps:
        if getattr(train_data, "takes_step", False):  # data rendered per epoch of the step
            x, y = train_data.train_batches(cfg.batch_size, gens, step=step)
        else:
            x, y = train_data.train_batches(cfg.batch_size, gens)  # (S, B, ...), (S, B)
        lr = cfg.lr_at(step)
        for i, (m, o) in enumerate(zip(models, opts)):
            m.train()
            try:
                out = m(x[i])
                loss = hooks.loss(out, y[i])
                why = None if bool(torch.isfinite(loss)) else "non-finite loss"
            except NonFiniteError as e:  # an ST's parameters went NaN/Inf
                why = str(e)
            if why is not None:
                msg = (f"train: {label} diverged at step {step + 1}: {why} for seed "
                       f"{cfg.seeds[i]}; last good checkpoint: "
                       f"{ckpt_path if ckpt_path.exists() else 'none written yet'}")
                runio.atomic_write_json(run_dir / "diverged.json",
                                        {"step": step + 1, "seed": cfg.seeds[i], "message": msg})
                bar.close()
                raise TrainingDiverged(msg)
            o.zero_grad(set_to_none=True)
            loss.backward()
            for grp in o.param_groups:
                grp["lr"] = lr
            o.step()
            with torch.no_grad():
                win_loss[i] += float(loss)
                win_err[i] += float((hooks.predict(out) != y[i]).float().mean())
        step += 1
        win_n += 1
        if step % cfg.log_every == 0 or step == cfg.total_steps:
            wl = [v / win_n for v in win_loss]
            we = [v / win_n for v in win_err]
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, "lr": lr, "loss": wl, "train_error": we,
                                    "wall_s": round(time.perf_counter() - t_start, 3)}) + "\n")
            last_loss = sum(wl) / S
            bar.update(step, last_loss, sum(we) / S, force=step == cfg.total_steps)
            win_loss, win_err, win_n = [0.0] * S, [0.0] * S, 0
        if step % cfg.checkpoint_every == 0 or step == cfg.total_steps:
            save()
        if stop_after is not None and step >= stop_after and step < cfg.total_steps:
            bar.close()
            return None
    bar.close()
    wall = time.perf_counter() - t_start
    done = step - start_step
    result = {"variant": cfg.variant, "net": cfg.net, "scale": cfg.scale,
              "seeds": list(cfg.seeds), "steps": cfg.total_steps,
              "n_params": sum(p.numel() for p in models[0].parameters() if p.requires_grad),
              "train": {"wall_s": round(wall, 2), "steps_this_session": done,
                        "images_per_s": round(done * cfg.batch_size * S / wall, 1)
                        if wall > 0 else None, "vmap": False,
                        "optimizer": getattr(cfg, "optimizer", type(opts[0]).__name__),
                        "final_loss": last_loss}}
    if test_data is not None:
        ev = suite.evaluate(cfg, models, None, test_data)
        result.update(ev["summary"])
        runio.atomic_write_json(run_dir / "fig_data.json", ev["fig_data"])
        np.savez_compressed(run_dir / "gallery.npz", **ev["gallery"])
    RunRecord(run_dir, result).save()
    if not keep_checkpoint:
        for p in (ckpt_path, prev_path):
            p.unlink(missing_ok=True)
            p.with_name(p.name + ".sha256").unlink(missing_ok=True)
    return result
