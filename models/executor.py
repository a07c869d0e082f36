"""Executors for suites of training runs: in-process (``local``, the default) or on Ray.

A suite is a list of :class:`RunTask`\\ s — one (variant, network, seed group) each — and
every task writes its own run directory atomically and resumes from its own checkpoint,
so an executor only has to run tasks and report; it never merges results. The same task
list gives the same run directories whichever executor runs it (tested: the metrics are
identical for the same seeds).

``ray`` is the existing engine for more than one machine, not a home-made scheduler:
each task is a Ray task with ``num_cpus`` / ``num_gpus`` resources (fractional GPUs let
several small networks share one device); a task that dies (a killed worker, a lost node)
is reported with its log path while the others go on, and resubmitting the suite resumes
it from its checkpoint. ``ray`` is an optional extra: ``pip install 'stnlab[ray]'``.

Task functions are named by import path (``"package.module:function"``) and receive
JSON-able keyword arguments, so a Ray worker imports them from the installed package.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EXECUTORS", "ExecutorUnavailable", "RunTask", "TaskFailure", "run_tasks",
           "call_task"]

EXECUTORS = ("local", "ray")


class ExecutorUnavailable(ValueError):
    """The asked-for executor cannot run here (e.g. ``ray`` is not installed)."""


@dataclass(frozen=True)
class RunTask:
    """One unit of a suite: ``fn(**kwargs)`` writing into ``run_dir``.

    Attributes:
        name: a label for progress and failures, e.g. ``"R/STN-C0 seeds 0-2"``.
        run_dir: the task's own run directory (its ``task.log`` goes there under Ray).
        fn: ``"package.module:function"``; called as ``fn(**kwargs)``, returns a JSON-able
            result (e.g. the run's metrics).
        kwargs: JSON-able keyword arguments.
    """

    name: str
    run_dir: str
    fn: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised or whose worker died: its name, the error line and its log."""

    name: str
    error: str
    log_path: str | None


def _resolve(fn: str):
    mod, _, attr = fn.partition(":")
    if not mod or not attr:
        raise ValueError(f"run_tasks: expected fn as 'package.module:function', got {fn!r}")
    return getattr(importlib.import_module(mod), attr)


def call_task(fn: str, kwargs: dict, threads: int | None = None):
    """Run one task function in this process (what a Ray worker executes)."""
    if threads:
        import torch
        torch.set_num_threads(int(threads))
    return _resolve(fn)(**kwargs)


class _SuiteProgress:
    """One line: done / running / failed of total, and an ETA from the mean task time."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def show(self, done: int, running: int, failed: int) -> None:
        if not self.enabled:
            return
        finished = done + failed
        dt = time.perf_counter() - self.t0
        left = self.total - finished
        eta = (dt / finished * left / max(1, min(running, left) or 1)) if finished else math.nan
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "?"
        self.stream.write(f"[suite] done {done}/{self.total}  running {running}  "
                          f"failed {failed}  elapsed {time.strftime('%H:%M:%S', time.gmtime(dt))}"
                          f"  ETA {eta_s}\n")
        self.stream.flush()


def _check_tasks(tasks) -> list[RunTask]:
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"run_tasks: expected distinct task names, got {names}")
    dirs = [str(Path(t.run_dir).resolve()) for t in tasks]
    if len(set(dirs)) != len(dirs):
        raise ValueError("run_tasks: expected one run directory per task, got duplicates")
    for t in tasks:
        _resolve(t.fn)  # fail before anything runs
    return tasks


def run_tasks(tasks, *, executor: str = "local", address: str | None = None,
              cpus_per_run: float = 1, gpus_per_run: float = 0, threads: int | None = None,
              progress: bool = True, stream=None) -> dict:
    """Run every task; return ``{name: result | TaskFailure}`` in task order.

    Args:
        tasks: :class:`RunTask`\\ s with distinct names and run directories.
        executor: ``"local"`` (in this process, one after another) or ``"ray"``.
        address: Ray cluster address (``None``: start a local Ray instance; ``"auto"``:
            the running cluster).
        cpus_per_run: Ray ``num_cpus`` per task (also the task's torch threads unless
            ``threads`` is given).
        gpus_per_run: Ray ``num_gpus`` per task; fractions share a device.
        threads: torch threads per task (default: ``cpus_per_run`` rounded up).
        progress: print the aggregated progress line to ``stream`` (stderr).

    Raises:
        ExecutorUnavailable: ``executor="ray"`` without ``ray`` installed.
        ValueError: an unknown executor, bad resources, or malformed tasks.
    """
    fn = "run_tasks"
    if executor not in EXECUTORS:
        raise ValueError(f"{fn}: expected executor in {list(EXECUTORS)}, got {executor!r}")
    if not (isinstance(cpus_per_run, (int, float)) and cpus_per_run > 0):
        raise ValueError(f"{fn}: expected cpus_per_run > 0, got {cpus_per_run!r}")
    if not (isinstance(gpus_per_run, (int, float)) and gpus_per_run >= 0):
        raise ValueError(f"{fn}: expected gpus_per_run >= 0, got {gpus_per_run!r}")
    tasks = _check_tasks(tasks)
    bar = _SuiteProgress(len(tasks), progress, stream)
    if executor == "local":
        return _run_local(tasks, bar)
    return _run_ray(tasks, bar, address=address, cpus=cpus_per_run, gpus=gpus_per_run,
                    threads=threads or max(1, math.ceil(cpus_per_run)))


def _run_local(tasks, bar) -> dict:
    out, failed = {}, 0
    for i, t in enumerate(tasks):
        bar.show(i - failed, 1, failed)
        try:
            out[t.name] = call_task(t.fn, t.kwargs)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - a failed run is reported, the others go on
            failed += 1
            Path(t.run_dir).mkdir(parents=True, exist_ok=True)
            log = Path(t.run_dir) / "task.log"
            log.write_text(traceback.format_exc())
            out[t.name] = TaskFailure(t.name, f"{type(e).__name__}: {e}", str(log))
    bar.show(len(tasks) - failed, 0, failed)
    return out


def _ray_worker(fn: str, kwargs: dict, threads: int, log_path: str):
    """Body of the Ray task: run ``fn`` with stdout / stderr going to the run's task.log."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        try:
            return call_task(fn, kwargs, threads)
        except BaseException:
            traceback.print_exc()
            raise


def _run_ray(tasks, bar, *, address, cpus, gpus, threads) -> dict:
    try:
        import ray
    except ModuleNotFoundError:
        raise ExecutorUnavailable("--executor ray needs Ray: pip install 'stnlab[ray]'") from None
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            kw["num_cpus"] = max(1, os.cpu_count() or 1)
        ray.init(address=address, **kw)
        started = True
    try:
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_worker)
        refs = {}
        for t in tasks:
            log = str(Path(t.run_dir) / "task.log")
            refs[remote.remote(t.fn, t.kwargs, threads, log)] = (t, log)
        out, pending, failed, done = {}, list(refs), 0, 0
        bar.show(0, min(len(pending), len(tasks)), 0)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=15.0)
            for r in ready:
                t, log = refs[r]
                try:
                    out[t.name] = ray.get(r)
                    done += 1
                except Exception as e:  # noqa: BLE001 - task error or dead worker
                    failed += 1
                    cause = getattr(e, "cause", None) or e
                    lines = str(cause).strip().splitlines()
                    line = f"{type(cause).__name__}: {lines[-1] if lines else ''}"
                    out[t.name] = TaskFailure(t.name, line, log)
            bar.show(done, len(pending), failed)
        return {t.name: out[t.name] for t in tasks}
    finally:
        if started:
            ray.shutdown()
