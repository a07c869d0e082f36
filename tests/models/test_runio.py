"""``models.runio``: atomic writes, sha256-verified checkpoints, progress, thread limits."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from models import runio


def test_atomic_json_leaves_no_temporary_file(tmp_path):
    runio.atomic_write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "a.json").read_text() == json.dumps({"x": [1, 2]}, indent=1) + "\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoints_keep_the_last_two_and_verify(tmp_path):
    p = tmp_path / "checkpoint.pt"
    for step in (1, 2, 3):
        runio.save_checkpoint(p, {"step": step, "w": torch.full((4,), float(step))})
    assert runio.load_checkpoint(p)["step"] == 3
    assert runio.load_checkpoint(tmp_path / "checkpoint.prev.pt")["step"] == 2
    assert sorted(q.name for q in tmp_path.iterdir()) == [
        "checkpoint.prev.pt", "checkpoint.prev.pt.sha256", "checkpoint.pt",
        "checkpoint.pt.sha256"]
    assert torch.load(p, weights_only=True)["step"] == 3  # still a plain torch file


def test_a_changed_byte_is_damage_and_the_previous_one_serves(tmp_path):
    p = tmp_path / "checkpoint.pt"
    runio.save_checkpoint(p, {"step": 1, "w": torch.zeros(64)})
    runio.save_checkpoint(p, {"step": 2, "w": torch.ones(64)})
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 1  # one bit
    p.write_bytes(bytes(b))
    with pytest.raises(runio.CheckpointDamaged, match="checkpoint.pt is damaged"):
        runio.load_checkpoint(p)
    lines = []
    ck, where = runio.latest_good_checkpoint(tmp_path, warn=lines.append)
    assert ck["step"] == 1 and where.name == "checkpoint.prev.pt" and len(lines) == 1
    (tmp_path / "checkpoint.prev.pt.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(runio.CheckpointDamaged, match="no good checkpoint"):
        runio.latest_good_checkpoint(tmp_path, warn=lines.append)
    assert issubclass(runio.CheckpointDamaged, ValueError)  # the CLI's exit 2


def test_a_checkpoint_without_digest_is_refused_and_none_is_none(tmp_path):
    assert runio.latest_good_checkpoint(tmp_path) is None
    torch.save({"step": 1}, tmp_path / "checkpoint.pt")
    with pytest.raises(runio.CheckpointDamaged, match="no digest"):
        runio.load_checkpoint(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("earlier", [0, 1])
def test_a_kill_between_the_two_writes_loses_at_most_that_checkpoint(tmp_path, monkeypatch,
                                                                     earlier):
    """save_checkpoint writes a digest and the bytes; a kill between them (simulated: the
    second write raises) must leave a run that resumes -- from the previous checkpoint, or
    from scratch when it was the first. Writing the bytes first (the old order) leaves a
    first checkpoint without digest, which no reader accepts: this test fails on it."""
    p = tmp_path / "checkpoint.pt"
    for step in range(earlier):
        runio.save_checkpoint(p, {"step": step})
    real, calls = runio.atomic_write_bytes, []

    def dies_on_second(path, data):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real(path, data)

    monkeypatch.setattr(runio, "atomic_write_bytes", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        runio.save_checkpoint(p, {"step": 99})
    monkeypatch.setattr(runio, "atomic_write_bytes", real)
    got = runio.latest_good_checkpoint(tmp_path, warn=lambda line: None)
    if earlier:
        assert got[0]["step"] == 0 and got[1].name == "checkpoint.prev.pt"
    else:
        assert got is None  # nothing trustworthy was written: the run starts again
    runio.save_checkpoint(p, {"step": 100})  # and the next save works over the leftovers
    assert runio.load_checkpoint(p)["step"] == 100


def test_progress_shows_iteration_loss_and_eta():
    s = io.StringIO()
    bar = runio.Progress("R/CNN", 10, images_per_step=8, stream=s)
    bar.update(5, 0.25, 0.5, force=True)
    line = s.getvalue()
    assert "[R/CNN] it 5/10" in line and "loss 0.2500" in line and "err 50.00%" in line
    assert "ETA" in line and "img/s" in line
    quiet = io.StringIO()
    runio.Progress("x", 10, enabled=False, stream=quiet).update(5, 1.0, force=True)
    assert quiet.getvalue() == ""


def test_thread_limit_restores_and_checks_its_argument():
    old = torch.get_num_threads()
    with runio.thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
    with pytest.raises(ValueError, match=r"thread_limit: expected n .* got 0"):
        with runio.thread_limit(0):
            pass


def test_environment_records_versions_device_threads_commit():
    env = runio.environment("cpu", seeds=[0, 1])
    assert env["seeds"] == [0, 1] and env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["threads"] == torch.get_num_threads()
    assert {"git_commit", "python", "numpy", "platform", "argv", "device_name"} <= set(env)


def test_check_output_dir_refuses_a_file_or_a_path_under_one(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"check_output_dir: expected --out to be a directory"
                                         r".*'.*afile', which is a file"):
        runio.check_output_dir(f)
    with pytest.raises(ValueError, match=r"expected --dest to be a directory.*lies under "
                                         r"'.*afile', which is a file"):
        runio.check_output_dir(f / "sub" / "deeper", arg="--dest")
    # a directory that exists, or one that can be made, passes -- and nothing is created
    assert runio.check_output_dir(tmp_path) == tmp_path
    assert runio.check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()


def test_check_output_dir_refuses_an_unwritable_parent(tmp_path, monkeypatch):
    # root can write anywhere, so the permission answer is what is substituted here
    monkeypatch.setattr(runio.os, "access", lambda p, mode: Path(p) != tmp_path)
    with pytest.raises(ValueError, match=r"expected --out to be a writable directory, got "
                                         r"'.*new', but '.*' is not writable"):
        runio.check_output_dir(tmp_path / "new")


def test_environment_names_the_commit_the_process_loaded(monkeypatch):
    # A worker that runs for hours records the code it imported, not HEAD when a run starts
    # (session 7: runs started after a commit named that commit, not the worker's code).
    loaded = runio.LOADED_SOURCE["git_commit"]
    monkeypatch.setattr(runio, "git_commit", lambda **k: "0" * 40)  # HEAD moved on
    env = runio.environment()
    assert env["git_commit"] == loaded and env["git_dirty"] in (True, False, None)
    if loaded is not None:
        assert len(loaded) == 40


def test_environment_records_the_suites_plan_hash(tmp_path):
    import hashlib

    from models import runio

    run = tmp_path / "suite" / "R" / "STN-C0"
    run.mkdir(parents=True)
    assert "plan_sha256" not in runio.environment("cpu", run_dir=run)
    (tmp_path / "suite" / "plan.json").write_text('{"schema": 1}')
    assert runio.environment("cpu", run_dir=run)["plan_sha256"] == \
        hashlib.sha256(b'{"schema": 1}').hexdigest()
