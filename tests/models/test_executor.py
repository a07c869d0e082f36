"""Suite executors: local and Ray give the same results; failures are reported, not fatal."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

import torch

from models.executor import ExecutorUnavailable, RunTask, TaskFailure, run_tasks
from models import runio
from models.train import load_checkpoint

ROOT = str(Path(__file__).resolve().parents[2])
TASK = "tests.models._executor_tasks"


def _tasks(tmp, steps=5, delay=0.0):
    return [RunTask(f"seed{s}", str(tmp / f"seed{s}"), f"{TASK}:count",
                    dict(run_dir=str(tmp / f"seed{s}"), steps=steps, seed=s, delay=delay))
            for s in range(3)]


def test_local_runs_every_task_and_reports_failures(tmp_path):
    tasks = _tasks(tmp_path) + [RunTask("bad", str(tmp_path / "bad"), f"{TASK}:fail",
                                        dict(run_dir=str(tmp_path / "bad")))]
    buf = io.StringIO()
    out = run_tasks(tasks, stream=buf)
    assert [k for k in out] == ["seed0", "seed1", "seed2", "bad"]
    assert isinstance(out["bad"], TaskFailure) and "deliberate failure" in out["bad"].error
    assert "deliberate failure" in Path(out["bad"].log_path).read_text()
    assert all(isinstance(out[f"seed{s}"], dict) for s in range(3))
    assert "failed 1" in buf.getvalue().splitlines()[-1]


def test_bad_arguments_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="executor"):
        run_tasks([], executor="slurm")
    with pytest.raises(ValueError, match="cpus_per_run"):
        run_tasks([], cpus_per_run=0)
    with pytest.raises(ValueError, match="package.module:function"):
        run_tasks([RunTask("x", str(tmp_path), "nocolon", {})])
    t = _tasks(tmp_path)
    with pytest.raises(ValueError, match="distinct task names"):
        run_tasks([t[0], t[0]])


def test_missing_ray_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ModuleNotFoundError
    with pytest.raises(ExecutorUnavailable, match=r"pip install 'stnlab\[ray\]'"):
        run_tasks(_tasks(tmp_path), executor="ray")


@pytest.fixture
def ray_instance():
    """One local Ray instance (CPUs only). Both Ray checks share one test function so that
    ``pytest -n 2`` never starts two Ray instances at once."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_executor(ray_instance, tmp_path):
    out = _ray_equals_local_and_reports_failures(tmp_path / "a")
    assert isinstance(out["bad"], TaskFailure) and all(
        isinstance(out[f"seed{s}"], dict) for s in range(3))
    killed_at, ran = _ray_task_killed_mid_run_resumes(ray_instance, tmp_path / "b")
    assert ran == 400 - killed_at
    runs = _cli_suite_on_ray_equals_local(tmp_path / "c")
    assert list(runs) == ["STN-C0"]  # the failed R/CNN task is not indexed
    res = _training_task_killed_mid_run_resumes(ray_instance, tmp_path / "d")
    assert 0 < res["train"]["steps_this_session"] < 1500
    _resources_the_cluster_lacks_are_refused_up_front(tmp_path / "e")


def _resources_the_cluster_lacks_are_refused_up_front(tmp_path):
    """On this CPU-only 2-CPU instance a task asking for a GPU (or 64 CPUs) would wait
    forever at "running 1": refused before anything is written, one line, exit 2."""
    from proofs.cli import main

    with pytest.raises(ExecutorUnavailable, match=r"--gpus-per-run 1: no node .* has 1 GPU"):
        run_tasks(_tasks(tmp_path / "t"), executor="ray", gpus_per_run=1)
    assert not (tmp_path / "t").exists()
    argv = ["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
            "--executor", "ray"]
    for extra, named in [(["--gpus-per-run", "1"], "--gpus-per-run 1: no node"),
                         (["--cpus-per-run", "64"], "--cpus-per-run 64: no node")]:
        err = io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            code = main(argv + ["--out", str(tmp_path / "o")] + extra)
        finally:
            sys.stderr = old
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and len(lines) == 1 and named in lines[0], lines
        assert not (tmp_path / "o").exists()


def _stnlab_ray(tmp_path, address, *, env=None, **popen):
    import subprocess

    from tests.stnlab_proc import stnlab_executable

    e = dict(os.environ, RAY_TMPDIR=str(tmp_path / "raytmp"), **(env or {}))
    e.pop("RAY_ADDRESS", None)
    e["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    (tmp_path / "raytmp").mkdir(exist_ok=True)
    argv = [stnlab_executable(), "train", "--scale", "smoke", "--variant", "R", "--net",
            "CNN", "--quiet", "--out", str(tmp_path / "o"), "--executor", "ray",
            "--address", address]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=e, **popen)


def _finish(p, timeout: float) -> tuple[str, str]:
    """``p.communicate(timeout)``; a process still running then is killed, not left behind."""
    import subprocess

    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise


def _error_lines(stderr: str) -> list[str]:
    # Ray's C++ client logs its retries as "[date W pid] file.cc:line: ..." on stderr
    return [ln for ln in stderr.strip().splitlines() if not ln.startswith("[")]


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:1"])
def test_ray_address_without_a_cluster_is_one_line_in_seconds(tmp_path, address):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from ray._private.services import find_gcs_addresses

    others = find_gcs_addresses()  # "auto" also finds a Ray instance running here
    t0 = time.monotonic()
    p = _stnlab_ray(tmp_path, address)
    out, err = _finish(p, 120)
    took = time.monotonic() - t0
    lines = _error_lines(err)
    assert p.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"stnlab train: error: --"), lines
    if address != "auto" or not others:
        assert f"--address {address}: " in lines[0], lines
    assert took < 40, took  # the import of ray and torch: ~5 s of it here
    assert not (tmp_path / "o").exists()


def test_ray_head_that_never_answers_is_bounded_and_sigterm_ends_the_wait(tmp_path):
    """Something accepts TCP at the address but is no Ray head: ``ray.init`` retried for
    more than 9 minutes and held SIGTERM until then."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import signal
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    threading.Thread(target=lambda: [accepted.append(server.accept()) for _ in range(64)],
                     daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        t0 = time.monotonic()
        p = _stnlab_ray(tmp_path, address, env={"STNLAB_RAY_CONNECT_TIMEOUT_S": "6"})
        out, err = _finish(p, 120)
        lines = _error_lines(err)
        assert p.returncode == 2 and len(lines) == 1, err
        assert f"--address {address}: no Ray cluster answered within 6 s" in lines[0], lines
        assert time.monotonic() - t0 < 40
        # SIGTERM while ray.init waits in C++ ends the process at once
        p = _stnlab_ray(tmp_path, address, env={"STNLAB_RAY_CONNECT_TIMEOUT_S": "120"})
        n = len(accepted)
        deadline = time.monotonic() + 60
        while len(accepted) == n and time.monotonic() < deadline:  # ray.init connected
            time.sleep(0.2)
        time.sleep(1.0)
        t1 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _finish(p, 30)
        assert p.returncode == -signal.SIGTERM and time.monotonic() - t1 < 5
    finally:
        server.close()


def _cli_suite_on_ray_equals_local(tmp_path):
    """``stnlab train --executor ray`` at smoke: the same runs and metrics as local."""
    from proofs.cli import main

    argv = ["train", "--scale", "smoke", "--variant", "R", "--net", "CNN,STN-C0",
            "--seeds", "2", "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "local")]) == 0
    assert main(argv + ["--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    local = json.loads((tmp_path / "local" / "suite.json").read_text())
    ray_ = json.loads((tmp_path / "ray" / "suite.json").read_text())
    for net in ("CNN", "STN-C0"):
        a, b = local["runs"]["R"][net], ray_["runs"]["R"][net]
        assert a["error"] == b["error"] and a["seeds"] == b["seeds"] == [0, 1]
        assert a.get("pose_std") == b.get("pose_std")
        pa = load_checkpoint(tmp_path / "local" / "R" / net / "checkpoint.pt")["params"]
        pb = load_checkpoint(tmp_path / "ray" / "R" / net / "checkpoint.pt")["params"]
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    # A task that fails (a damaged checkpoint, nothing good to resume) is reported with its
    # log path; the other run finishes and is indexed.
    bad = tmp_path / "fail" / "R" / "CNN"
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_bytes(b"not a checkpoint")
    err = io.StringIO()
    sys_err, sys.stderr = sys.stderr, err
    try:
        code = main(argv + ["--out", str(tmp_path / "fail"), "--executor", "ray"])
    finally:
        sys.stderr = sys_err
    assert code == 1
    assert "task R/CNN seeds 0-1 failed: CheckpointDamaged" in err.getvalue()
    assert f"(log: {bad / 'task.log'})" in err.getvalue()
    assert "1/2 runs done" in err.getvalue()
    assert "CheckpointDamaged" in (bad / "task.log").read_text()
    runs = json.loads((tmp_path / "fail" / "suite.json").read_text())["runs"]["R"]
    assert list(runs) == ["STN-C0"]
    assert runs["STN-C0"]["error"] == local["runs"]["R"]["STN-C0"]["error"]
    return runs


def _training_task_killed_mid_run_resumes(ray, tmp_path):
    """Kill the worker of a training run after its first checkpoint; resubmitting the
    suite resumes it and ends where the uninterrupted local run ends, bit for bit."""
    from models.executor import _ray_worker
    from models.suite_tasks import run_suite_tasks, suite_tasks

    ov = dict(seeds=[0], iters=1500, iters_low=0, checkpoint_every=25, log_every=25)
    kw = dict(scale="smoke", overrides=ov)
    t = suite_tasks("mnist", ["R"], ["CNN"], tmp_path / "ray", **kw)[0]
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_worker)
    ref = remote.remote(t.fn, t.kwargs, 1, str(Path(t.run_dir) / "task.log"))
    ckpt = Path(t.run_dir) / "checkpoint.pt"
    deadline = time.time() + 120  # the bytes are written after their digest
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    ray.cancel(ref, force=True)
    with pytest.raises(Exception):
        ray.get(ref)
    # A kill between a later checkpoint and its digest leaves the previous one to resume.
    killed_at = runio.latest_good_checkpoint(t.run_dir)[0]["step"]
    assert 0 < killed_at < 1500  # it really died mid-run
    index, failures = run_suite_tasks([t], tmp_path / "ray", scale="smoke", executor="ray",
                                      progress=False)
    assert failures == []
    res = index["runs"]["R"]["CNN"]
    assert 0 < res["train"]["steps_this_session"] < 1500  # continued, did not start over
    ref_t = suite_tasks("mnist", ["R"], ["CNN"], tmp_path / "local", **kw)
    index_l, _ = run_suite_tasks(ref_t, tmp_path / "local", scale="smoke", progress=False)
    assert res["error"] == index_l["runs"]["R"]["CNN"]["error"]
    pa = load_checkpoint(tmp_path / "local" / "R" / "CNN" / "checkpoint.pt")["params"]
    pb = load_checkpoint(ckpt)["params"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    return res


def _ray_equals_local_and_reports_failures(tmp_path):
    local = run_tasks(_tasks(tmp_path / "local"), progress=False)
    tasks = _tasks(tmp_path / "ray") + [RunTask("bad", str(tmp_path / "ray" / "bad"),
                                                f"{TASK}:fail",
                                                dict(run_dir=str(tmp_path / "ray" / "bad")))]
    out = run_tasks(tasks, executor="ray", progress=False)
    for s in range(3):
        assert out[f"seed{s}"]["acc"] == local[f"seed{s}"]["acc"]
        assert out[f"seed{s}"]["pid"] != os.getpid()  # really ran in a Ray worker
    assert isinstance(out["bad"], TaskFailure)
    assert "deliberate failure" in out["bad"].error
    assert "about to fail" in Path(out["bad"].log_path).read_text()
    return out


def _ray_task_killed_mid_run_resumes(ray, tmp_path):
    """Kill the worker of a running task; resubmitting continues from its state file."""
    from models.executor import _ray_worker

    t = _tasks(tmp_path, steps=400, delay=0.01)[0]
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_worker)
    ref = remote.remote(t.fn, t.kwargs, 1, str(Path(t.run_dir) / "task.log"))
    state = Path(t.run_dir) / "state.json"
    deadline = time.time() + 60
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    ray.cancel(ref, force=True)
    with pytest.raises(Exception):
        ray.get(ref)
    import json
    killed_at = json.loads(state.read_text())["step"]
    assert 0 < killed_at < 400  # it really died mid-run
    out = run_tasks([t], executor="ray", progress=False)
    ref_local = run_tasks(_tasks(tmp_path / "fresh", steps=400)[:1], progress=False)
    assert out[t.name]["acc"] == ref_local[t.name]["acc"]
    assert out[t.name]["ran"] == 400 - killed_at  # continued, did not start over
    return killed_at, out[t.name]["ran"]
