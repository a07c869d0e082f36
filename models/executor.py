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
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EXECUTORS", "ExecutorUnavailable", "RunTask", "TaskFailure", "run_tasks",
           "call_task", "connect_ray", "CONNECT_TIMEOUT_S"]

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


#: Seconds to wait for a TCP connection to a Ray ``--address`` before giving up.
CONNECT_TIMEOUT_S = 5.0


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise ExecutorUnavailable("--executor ray needs Ray: pip install 'stnlab[ray]'") from None
    return ray


def _probe_address(address: str) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) nothing listens on, within
    :data:`CONNECT_TIMEOUT_S` (``ray.init`` retries such an address for minutes)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorUnavailable(f"--address {address}: expected 'auto' or HOST:PORT of a "
                                  f"Ray cluster's head (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)),
                                      timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ExecutorUnavailable(f"--address {address}: no Ray cluster answers there "
                                  f"({why}); start one with `ray start --head` or give "
                                  f"its head's HOST:PORT") from None


def init_timeout_s() -> float:
    """Seconds ``ray.init`` may take to join a cluster at an explicit address (60; the
    environment variable ``STNLAB_RAY_CONNECT_TIMEOUT_S`` sets another bound)."""
    try:
        return float(os.environ.get("STNLAB_RAY_CONNECT_TIMEOUT_S", 60))
    except ValueError:
        return 60.0


def _give_up_connecting(address: str) -> None:
    """The watchdog's end of a ``ray.init`` that neither connects nor fails: Ray retries a
    head that accepts TCP but never answers for longer than 9 minutes (measured), inside C++
    where no Python exception can reach it. Nothing has been written yet (the CLI
    connects before it creates a directory), so the process ends here: one line, exit 2."""
    sys.stderr.write(f"stnlab train: error: --address {address}: no Ray cluster answered "
                     f"within {init_timeout_s():g} s (something listens there, but not a "
                     f"Ray head); check the address (`ray status` on the head)\n")
    sys.stderr.flush()
    os._exit(2)


@contextlib.contextmanager
def _sigterm_ends_init(ray):
    """SIGTERM ends the process at once while ``ray.init`` blocks in C++.

    ``ray.init`` installs a Python SIGTERM handler (``sys.exit``) before it connects, and
    a Python handler runs only once the C++ connect returns (seconds to minutes for an
    address that accepts connections but is no Ray head). During the connect the signal
    keeps its default action (terminate); afterwards Ray's handler is installed as Ray
    would have.
    """
    import signal

    utils = getattr(getattr(ray, "_private", None), "utils", None)
    if (threading.current_thread() is not threading.main_thread()
            or not hasattr(utils, "set_sigterm_handler")):
        yield
        return
    original = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        raise
    finally:
        utils.set_sigterm_handler = original
    original(lambda signum, frame: sys.exit(signum))  # Ray's own driver handler


def connect_ray(address: str | None, *, cpus: float, gpus: float) -> bool:
    """Connect to (or start) Ray and check that a task's resources exist on a node.

    Returns whether this call started the connection (the caller shuts it down).

    Raises:
        ExecutorUnavailable: Ray is not installed; ``address`` answers nothing (``auto``
            with no running cluster, a ``HOST:PORT`` no head listens on: one line within
            seconds); no alive node has ``cpus`` CPUs and ``gpus`` GPUs (a task asking for
            them would wait forever).
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address not in (None, "auto", "local"):
            _probe_address(address)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address is not None:  # Ray's defaults wait 30 s and more for a silent head
            for key in ("RAY_py_gcs_connect_timeout_s", "RAY_gcs_rpc_server_connect_timeout_s"):
                os.environ.setdefault(key, str(int(CONNECT_TIMEOUT_S)))
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            kw["num_cpus"] = max(1, os.cpu_count() or 1)
        watchdog = None
        if address is not None:
            watchdog = threading.Timer(init_timeout_s(), _give_up_connecting, (address,))
            watchdog.daemon = True
            watchdog.start()
        try:
            with _sigterm_ends_init(ray):
                ray.init(address=address, **kw)
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            lines = str(e).strip().splitlines()
            raise ExecutorUnavailable(f"--address {address}: cannot connect to a Ray "
                                      f"cluster ({lines[0] if lines else type(e).__name__})"
                                      ) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
        started = True
    try:
        _check_resources(ray, cpus, gpus)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return started


def _check_resources(ray, cpus: float, gpus: float) -> None:
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    fits = [r for r in nodes if r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus]
    if fits:
        return
    most_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
    most_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
    if gpus > most_gpu:
        raise ExecutorUnavailable(f"--gpus-per-run {gpus:g}: no node of the Ray cluster has "
                                  f"{gpus:g} GPU{'s' if gpus != 1 else ''} (the most on one "
                                  f"node: {most_gpu:g}); a task would wait forever")
    raise ExecutorUnavailable(f"--cpus-per-run {cpus:g}: no node of the Ray cluster has "
                              f"{cpus:g} CPUs{' and ' + format(gpus, 'g') + ' GPUs' if gpus else ''} "
                              f"(the most CPUs on one node: {most_cpu:g}); a task would wait "
                              f"forever")


def _run_ray(tasks, bar, *, address, cpus, gpus, threads) -> dict:
    ray = _import_ray()
    started = connect_ray(address, cpus=cpus, gpus=gpus)
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
