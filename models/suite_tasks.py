"""A suite as executor tasks: one :class:`models.executor.RunTask` per (variant, net, seeds).

``stnlab train --executor ray`` runs a suite through :func:`models.executor.run_tasks`:
every (variant, network, seed group) is a task whose function (:func:`train_task`, by
import path) loads its variant's data and trains one run into its own run directory
``out/<variant>/<net>/``, resuming from that directory's checkpoint when one is there
(a resubmitted suite continues its killed tasks; finished runs are kept). The seed group
is the run's seeds (``--seeds N``: 0..N-1 trained together, as the local executor does),
so the run directories, ``suite.json`` and the metrics are those of ``run_suite`` for the
same seeds (tested). The driver writes ``suite.json`` from the finished tasks; a failed
task is reported with its log path and left out of the index.

A run that diverges or collapses is not a failed task: as in ``run_suite``, it is recorded
under ``suite.json``'s ``"stopped"`` and a resubmitted suite keeps it stopped (training is
deterministic, so it would stop the same way again) instead of training it afresh.
"""

from __future__ import annotations

from pathlib import Path

from .executor import RunTask, TaskFailure, run_tasks
from .record import RunRecord, SuiteRecord, stop_record, stop_record_of

__all__ = ["train_task", "suite_tasks", "run_suite_tasks", "STOPPED"]

TASK_FN = "models.suite_tasks:train_task"
#: the key of a task result that reports a stopped run: ``{STOPPED: stop_record}``
STOPPED = "stopped"


def train_task(*, suite: str, scale: str, variant: str, net: str, out: str,
               overrides: dict, data: str | None = None, keep_checkpoint: bool = True,
               stop_after: int | None = None) -> dict | None:
    """Train one run of ``suite`` (a Ray task body; JSON-able arguments).

    Args:
        suite: the suite's name.
        scale, variant, net: what :meth:`Suite.preset` takes.
        out: the suite directory; the run goes to ``out/<variant>/<net>/``.
        overrides: preset overrides (``seeds`` as a list).
        data: ``--data`` (None: the suite's default source).
        keep_checkpoint: keep the checkpoint once the run has finished.
        stop_after: stop after this many steps as if killed (tests).

    Returns:
        The run's metrics (a finished run's are read back, not retrained); ``{STOPPED:
        record}`` (:func:`models.record.stop_record`) if it diverged or collapsed, now or
        in an earlier submission (not retrained); or None if stopped by ``stop_after``.
    """
    from .suites import DataSource, get_suite
    from .train import TrainingDiverged, train

    s = get_suite(suite)
    # lists came through JSON; config fields hold tuples (seeds, --set eval_iterations=[...])
    ov = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    cfg = s.preset(scale, variant, net, **ov)
    rd = SuiteRecord.run_dir(out, variant, net)
    if RunRecord.is_run(rd):  # finished (metrics.json is written last)
        return RunRecord.load(rd).metrics
    if (earlier := stop_record(rd)) is not None:  # deterministic: it would stop again
        return {STOPPED: earlier}
    train_data, test_data = s.load_data(variant, cfg, DataSource.parse(data))
    try:
        return train(cfg, rd, train_data, test_data, resume=True, progress=False,
                     keep_checkpoint=keep_checkpoint, suite=s, stop_after=stop_after)
    except TrainingDiverged as e:  # also TrainingCollapsed
        return {STOPPED: stop_record_of(rd, e)}


def suite_tasks(suite: str, variants, nets, out: str | Path, *, scale: str,
                overrides: dict, data: str | None = None,
                keep_checkpoint: bool = True) -> list[RunTask]:
    """One :class:`RunTask` per (variant, net) with the run's seeds as its group."""
    ov = {k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()
          if v is not None}
    tasks = []
    for v in variants:
        for n in nets:
            rd = SuiteRecord.run_dir(out, v, n)
            seeds = ov.get("seeds")
            name = f"{v}/{n}" + (f" seeds {seeds[0]}-{seeds[-1]}" if seeds else "")
            tasks.append(RunTask(name, str(rd), TASK_FN, dict(
                suite=suite, scale=scale, variant=v, net=n, out=str(out), overrides=ov,
                data=data, keep_checkpoint=keep_checkpoint)))
    return tasks


def run_suite_tasks(tasks: list[RunTask], out: str | Path, *, scale: str, **executor_kw
                    ) -> tuple[dict, list[TaskFailure]]:
    """Run ``tasks`` (:func:`models.executor.run_tasks`), write ``out/suite.json``.

    Returns:
        ``(index, failures)``: the suite index (as :func:`models.train.run_suite` writes
        it; runs that diverged or collapsed are under its ``"stopped"``) and the failed
        tasks (each with its log path).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = run_tasks(tasks, **executor_kw)
    failures, runs, stopped = [], {}, {}
    for t in tasks:
        r = results[t.name]
        if isinstance(r, TaskFailure):
            failures.append(r)
            continue
        where = stopped if isinstance(r, dict) and set(r) == {STOPPED} else runs
        where.setdefault(t.kwargs["variant"], {})[t.kwargs["net"]] = (
            r[STOPPED] if where is stopped else r)
    return SuiteRecord.update_index(out, scale, runs, stopped=stopped), failures
