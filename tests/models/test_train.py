"""Training loop: vmap == sequential seeds, resume == uninterrupted, NaN guard, configs."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from models import runio
from models.record import SuiteRecord
from models.data.perturb import PerturbedMNIST
from models.suites import get_suite
from models.train import (CheckpointDamaged, TrainConfig, TrainingDiverged, init_models,
                          load_checkpoint, make_step, preset, run_suite, train)


def _digits(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 28, 28)
    x[:, 8:20, 10:18] = torch.rand(n, 12, 8, generator=g)  # a blob of "ink" per digit
    return (x * 255).to(torch.uint8), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture(scope="module")
def data_r():
    x, y = _digits()
    return PerturbedMNIST("R", x, y)


def _cfg(**kw):
    variant, net = kw.pop("variant", "R"), kw.pop("net", "STN-SL1")
    base = dict(test_perturb=1, eval_batch=64)
    base.update(kw)
    return preset("smoke", variant, net, **base)


# Rounding bound for comparing two float32 evaluations of one gradient (vmap vs seed by seed):
# a gradient entry is a sum of at most n = B * H * W terms (the ST's to_theta over the 28 x 28
# pixels of the B = 8 images; every conv weight sums fewer), and recursive summation of n
# terms errs by at most gamma_n = n * u times the sum of their magnitudes (Higham, Accuracy
# and Stability, Thm. 4.4), u = 2**-24. Taking the tensor's largest |g| for that sum gives
# |g_vmap - g_seq| <= 2 * n * u * max|g| (8 * 784 * 2 * 2**-24 = 7.5e-4 relative). A
# max-pool tie broken differently by the two paths (models.core.tie_exact_convolutions)
# moved STN-C0's to_theta.bias by 1.3e-3 at |g| = 1.13, past this bound.
EPS32 = 2.0 ** -24


def _rounding_atol(g: torch.Tensor, n_terms: int) -> float:
    return 2 * n_terms * EPS32 * g.abs().max().item()


VMAP_NETS = ["CNN", "STN-C0", "STN-C1", "STN-DL1", "STN-SL1"]


def test_vmap_three_seeds_equal_three_single_runs(tmp_path, data_r):
    cfg = _cfg(seeds=(0, 1, 2), vmap=True)
    train(cfg, tmp_path / "v", data_r, None, progress=False)
    stacked = load_checkpoint(tmp_path / "v" / "checkpoint.pt")["params"]
    for i, s in enumerate(cfg.seeds):
        single = dataclasses.replace(cfg, seeds=(s,))
        train(single, tmp_path / f"s{s}", data_r, None, progress=False)
        p = load_checkpoint(tmp_path / f"s{s}" / "checkpoint.pt")["params"]
        for k in p:
            torch.testing.assert_close(stacked[k][i], p[k][0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("net", VMAP_NETS)
def test_vmap_step_matches_sequential_step_and_differs_across_seeds(data_r, net):
    cfg = _cfg(seeds=(0, 1, 2), net=net)
    base, params = init_models(cfg, get_suite("mnist").build)
    g = torch.Generator().manual_seed(0)
    b = data_r.train_batch(8, g)
    x, y = b.images.expand(3, -1, -1, -1, -1), b.labels.expand(3, -1)
    gv, lv, _ = make_step(base, True)(params, x, y)
    gs, ls, _ = make_step(base, False)(params, x, y)
    torch.testing.assert_close(lv, ls)
    n_terms = x.shape[1] * x.shape[-2] * x.shape[-1]
    for k in gv:
        torch.testing.assert_close(gv[k], gs[k], rtol=0, atol=_rounding_atol(gs[k], n_terms),
                                   msg=lambda m, k=k: f"{net} {k}: {m}")
    # Seeds really differ (otherwise the equality above would prove little).
    assert not torch.equal(params["stages.0.0.weight"][0], params["stages.0.0.weight"][1])


@pytest.mark.skipif(os.environ.get("STNLAB_INNER_CAPABILITY") == "1",
                    reason="already the inner run under a forced capability")
@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_vmap_equals_sequential_under_other_cpu_kernels(capability):
    # This machine may have AVX-512; the same tests under ATen's AVX2 / default kernels and
    # oneDNN limited to AVX2 (what a Zen 3 CPU runs, where the step's convolutions once
    # broke max-pool ties differently for vmap and seed by seed).
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, ONEDNN_MAX_CPU_ISA="AVX2",
               STNLAB_INNER_CAPABILITY="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:xdist", "-x", f"{__file__}::test_vmap_step_matches_sequential_"
                        "step_and_differs_across_seeds", "-k", "STN-C0 or STN-SL1 or CNN"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "3 passed" in r.stdout, r.stdout[-2000:]


def test_resume_equals_uninterrupted(tmp_path, data_r):
    cfg = _cfg(seeds=(0, 1), checkpoint_every=3)  # 6 steps: checkpoints at 3 and 6
    full = train(cfg, tmp_path / "full", data_r, data_r, progress=False)
    assert train(cfg, tmp_path / "cut", data_r, data_r, progress=False, stop_after=5) is None
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 3  # 4, 5 are lost
    resumed = train(cfg, tmp_path / "cut", data_r, data_r, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["error"] == full["error"]
    log = [json.loads(ln) for ln in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]


@pytest.mark.parametrize("method", ["linearized", "multiscale"])
def test_resume_is_exact_with_every_sampler(tmp_path, data_r, method):
    # The linearized sampler draws each call's noise seed from torch's global generator:
    # its state must travel with the checkpoint, or a resumed run takes other samples.
    cfg = _cfg(seeds=(0,), checkpoint_every=3, method=method)
    train(cfg, tmp_path / "full", data_r, None, progress=False)
    train(cfg, tmp_path / "cut", data_r, None, progress=False, stop_after=4)
    torch.manual_seed(12345)  # whatever happened to the global generator in between
    train(cfg, tmp_path / "cut", data_r, None, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_without_flag_or_with_other_config_is_refused(tmp_path, data_r):
    cfg = _cfg(seeds=(0,))
    train(cfg, tmp_path, data_r, None, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg, tmp_path, data_r, None, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(dataclasses.replace(cfg, lr=0.5), tmp_path, data_r, None, progress=False,
              resume=True)


def test_a_skipped_resume_is_detectably_different(tmp_path, data_r):
    """The resume test can fail: restarting from scratch at step 3 gives other parameters."""
    cfg = _cfg(seeds=(0,), checkpoint_every=3)
    train(cfg, tmp_path / "full", data_r, None, progress=False)
    train(cfg, tmp_path / "cut", data_r, None, progress=False, stop_after=3)
    ck = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    ck["generators"] = [torch.Generator().manual_seed(123).get_state()]  # lose the RNG state
    runio.save_checkpoint(tmp_path / "cut" / "checkpoint.pt", ck, keep_previous=False)
    train(cfg, tmp_path / "cut", data_r, None, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_loads_weights_only_and_records_the_run(tmp_path, data_r):
    cfg = _cfg(seeds=(0,))
    res = train(cfg, tmp_path, data_r, data_r, progress=False)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["step"] == cfg.total_steps
    assert TrainConfig.from_json(ck["config"]) == cfg
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["seeds"] == [0]
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(res))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


class _NaNData:
    """Returns finite images for ``after`` steps, then NaN images."""

    def __init__(self, inner, after):
        self.inner, self.after, self.n = inner, after, 0

    def train_batches(self, batch_size, generators):
        x, y = self.inner.train_batches(batch_size, generators)
        self.n += 1
        if self.n > self.after:
            x = torch.full_like(x, float("nan"))
        return x, y


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path, data_r):
    cfg = _cfg(seeds=(0,), checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 4.*seed 0.*step 2"):
        train(cfg, tmp_path, _NaNData(data_r, 3), None, progress=False)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["params"].values())
    assert (tmp_path / "diverged.json").exists()


def test_nan_between_checks_reports_its_own_step(tmp_path, data_r):
    # The host looks at the device-side record only at log/checkpoint steps; the
    # message must still name the first bad step and seed, not the step of the check.
    cfg = _cfg(seeds=(0, 1), checkpoint_every=6, log_every=6, iters=8, iters_low=0)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 4: .*seed 0.*none written"):
        train(cfg, tmp_path, _NaNData(data_r, 3), None, progress=False)
    assert json.loads((tmp_path / "diverged.json").read_text())["step"] == 4


@pytest.mark.parametrize("kw, match", [
    (dict(net="STN-X9"), "net"),
    (dict(variant="Q"), "variant"),
    (dict(lr=-0.1), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(seeds=(1, 1)), "seeds"),
    (dict(device="tpu"), "device"),
    (dict(method="nearest"), "method"),
])
def test_bad_configs_have_clear_errors(kw, match):
    base = dict(variant="R", net="CNN")
    base.update(kw)
    with pytest.raises(ValueError, match=match):
        if "variant" in kw and kw["variant"] == "Q":
            preset("smoke", base.pop("variant"), base.pop("net"), **base)
        else:
            TrainConfig(**base)


def test_preset_rejects_unknown_keys_and_scales():
    with pytest.raises(ValueError, match="unknown config keys"):
        preset("smoke", "R", "CNN", learning_rate=0.1)
    with pytest.raises(ValueError, match="scale"):
        preset("huge", "R", "CNN")


def test_paper_preset_is_app_a1():
    for v, lr in (("R", 0.02), ("T", 0.01), ("S", 0.02)):
        c = preset("paper", v, "STN-C1")
        assert (c.batch_size, c.iters, c.iters_low, c.lr, c.test_perturb) == \
            (256, 50_000, 20_000, lr, 10)
        assert c.lr_at(49_999) == lr and c.lr_at(50_000) == pytest.approx(lr / 10)


def test_run_suite_writes_every_run_and_resume_keeps_finished(tmp_path, data_r):
    data = {"R": (data_r, data_r)}
    suite = run_suite(["R"], ["CNN", "STN-C0"], tmp_path, scale="smoke", progress=False,
                      data=data, test_perturb=1, eval_batch=64)
    assert set(suite["runs"]["R"]) == {"CNN", "STN-C0"}
    mtime = (tmp_path / "R" / "CNN" / "metrics.json").stat().st_mtime_ns
    again = run_suite(["R"], ["CNN", "STN-C0"], tmp_path, scale="smoke", progress=False,
                      data=data, resume=True, test_perturb=1, eval_batch=64)
    assert again["runs"] == suite["runs"]
    assert (tmp_path / "R" / "CNN" / "metrics.json").stat().st_mtime_ns == mtime


def _stn_c0_diverges(monkeypatch):
    """Make ``models.train.train`` feed NaN images to STN-C0 from its second step; return
    the real ``train``."""
    import models.train as mt

    real = mt.train

    def nan_for_stn(cfg, run_dir, train_data, *a, **k):
        if cfg.net == "STN-C0":
            train_data = _NaNData(train_data, 1)
        return real(cfg, run_dir, train_data, *a, **k)

    monkeypatch.setattr(mt, "train", nan_for_stn)
    return real


def test_a_run_that_diverges_does_not_stop_the_suite(tmp_path, data_r, monkeypatch):
    # Issue 13: STN-DL7 diverged at step 11 of the PlanktonSet suite and ended the whole
    # `--net all` command. Now the suite goes on, records the stopped run and names it.
    import models.train as mt

    real = _stn_c0_diverges(monkeypatch)
    data = {"R": (data_r, data_r)}
    kw = dict(scale="smoke", progress=False, data=data, test_perturb=1, eval_batch=64)
    with pytest.raises(mt.SuiteStopped, match=r"1 of 2 runs stopped.*R/STN-C0 diverged at "
                                              r"step 2.*other runs finished") as e:
        run_suite(["R"], ["STN-C0", "CNN"], tmp_path, **kw)
    assert [(v, n, s["reason"]) for v, n, s in e.value.stopped] == [("R", "STN-C0", "diverged")]
    assert (tmp_path / "R" / "CNN" / "metrics.json").exists()  # trained after the divergence
    index = json.loads((tmp_path / "suite.json").read_text())
    assert set(index["runs"]["R"]) == {"CNN"}
    assert index["stopped"]["R"]["STN-C0"]["step"] == 2
    rec = SuiteRecord.load(tmp_path)
    assert rec.stopped["R"]["STN-C0"]["reason"] == "diverged"
    assert "- R/STN-C0: diverged at step 2, seed 0" in rec.stopped_lines()
    # resume keeps it stopped (it would diverge again) and does not retrain it
    stamp = (tmp_path / "R" / "STN-C0" / "diverged.json").stat().st_mtime_ns
    with pytest.raises(mt.SuiteStopped, match="1 of 2 runs stopped"):
        run_suite(["R"], ["STN-C0", "CNN"], tmp_path, resume=True, **kw)
    assert (tmp_path / "R" / "STN-C0" / "diverged.json").stat().st_mtime_ns == stamp
    # a run that later finishes leaves the index's "stopped"
    shutil.rmtree(tmp_path / "R" / "STN-C0")
    monkeypatch.setattr(mt, "train", real)
    index = run_suite(["R"], ["STN-C0", "CNN"], tmp_path, resume=True, **kw)
    assert "stopped" not in index and set(index["runs"]["R"]) == {"CNN", "STN-C0"}
    assert SuiteRecord.load(tmp_path).stopped_lines() == []


def test_the_task_executor_keeps_a_diverged_run_stopped(tmp_path, data_r, monkeypatch):
    # `--executor ray` went through `train_task`, which let TrainingDiverged fail the task
    # (nothing in suite.json's "stopped") and retrained the run on every resubmission.
    import models.train as mt
    from models.suite_tasks import STOPPED, run_suite_tasks, suite_tasks

    real = _stn_c0_diverges(monkeypatch)
    monkeypatch.setattr(get_suite("mnist"), "load_data", lambda v, cfg, src: (data_r, data_r))
    ov = dict(seeds=[0], test_perturb=1, eval_batch=64)
    tasks = suite_tasks("mnist", ["R"], ["STN-C0", "CNN"], tmp_path, scale="smoke",
                        overrides=ov)
    index, failures = run_suite_tasks(tasks, tmp_path, scale="smoke", progress=False)
    assert failures == []
    assert set(index["runs"]["R"]) == {"CNN"}
    assert index["stopped"]["R"]["STN-C0"]["reason"] == "diverged"
    assert index["stopped"]["R"]["STN-C0"]["step"] == 2
    assert "- R/STN-C0: diverged at step 2, seed 0" in SuiteRecord.load(tmp_path).stopped_lines()
    # resubmitted: kept stopped, not retrained
    stamp = (tmp_path / "R" / "STN-C0" / "diverged.json").stat().st_mtime_ns
    monkeypatch.setattr(mt, "train", real)  # would now finish if it were retrained
    index, failures = run_suite_tasks(tasks, tmp_path, scale="smoke", progress=False)
    assert failures == [] and "STN-C0" in index["stopped"]["R"]
    assert (tmp_path / "R" / "STN-C0" / "diverged.json").stat().st_mtime_ns == stamp
    assert not (tmp_path / "R" / "STN-C0" / "metrics.json").exists()
    assert STOPPED not in index["runs"]["R"]["CNN"]


def test_other_samplers_train_through_the_sequential_path(tmp_path, data_r):
    cfg = _cfg(seeds=(0, 1), method="linearized", iters=2, iters_low=0)
    res = train(cfg, tmp_path, data_r, None, progress=False)
    assert res["train"]["vmap"] is False
    p = load_checkpoint(tmp_path / "checkpoint.pt")["params"]
    assert all(torch.isfinite(v).all() for v in p.values())


def test_trains_on_each_available_device(tmp_path, device):
    x, y = _digits(32)
    ds = PerturbedMNIST("R", x, y, device=device)
    cfg = _cfg(seeds=(0, 1), device=str(device), iters=2, iters_low=1)
    res = train(cfg, tmp_path, ds, ds, progress=False)
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["device"] == str(device) and 0 <= res["error"]["mean"] <= 1


def test_finished_run_without_checkpoint_is_kept(tmp_path, data_r):
    cfg = _cfg(seeds=(0,))
    first = train(cfg, tmp_path, data_r, data_r, progress=False, keep_checkpoint=False)
    assert not (tmp_path / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match="finished run"):
        train(cfg, tmp_path, data_r, data_r, progress=False)
    assert train(cfg, tmp_path, data_r, data_r, progress=False, resume=True) == \
        json.loads(json.dumps(first))


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_64_middle_bytes(p):
    b = bytearray(p.read_bytes())
    mid = len(b) // 2
    for i in range(mid - 32, mid + 32):
        b[i] ^= 0xFF
    p.write_bytes(bytes(b))


@pytest.mark.parametrize("damage", [_truncate, _flip_64_middle_bytes])
def test_damaged_latest_checkpoint_resumes_from_the_previous_one(tmp_path, data_r, capsys,
                                                                 damage):
    cfg = _cfg(seeds=(0,), checkpoint_every=2)  # 6 steps: checkpoints at 2, 4, 6
    train(cfg, tmp_path / "full", data_r, None, progress=False)
    train(cfg, tmp_path / "cut", data_r, None, progress=False, stop_after=5)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.prev.pt")["step"] == 2
    damage(tmp_path / "cut" / "checkpoint.pt")
    with pytest.raises(CheckpointDamaged, match="damaged|cannot be read"):
        load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    capsys.readouterr()
    train(cfg, tmp_path / "cut", data_r, None, progress=False, resume=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt" in err[0] and "previous" in err[0]
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    for k in a:  # resumed from step 2, still bit-identical to the uninterrupted run
        assert torch.equal(a[k], b[k]), k


def test_no_good_checkpoint_stops_with_exit_2(tmp_path, data_r, capsys):
    from proofs.cli import main

    # the config `stnlab train` below asks for (else --resume refuses the changed settings)
    cfg = preset("smoke", "R", "CNN", seeds=(0,), checkpoint_every=2, test_perturb=1)
    rd = tmp_path / "R" / "CNN"
    train(dataclasses.replace(cfg, net="CNN"), rd, data_r, None, progress=False, stop_after=5)
    _truncate(rd / "checkpoint.pt")
    _flip_64_middle_bytes(rd / "checkpoint.prev.pt")
    with pytest.raises(CheckpointDamaged, match="no good checkpoint"):
        train(dataclasses.replace(cfg, net="CNN"), rd, data_r, None, progress=False,
              resume=True)
    capsys.readouterr()
    code = main(["train", "--suite", "mnist", "--variant", "R", "--net", "CNN", "--scale",
                 "smoke", "--out", str(tmp_path), "--resume", "--quiet",
                 "--checkpoint-every", "2", "--test-perturb", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any("no good checkpoint" in ln for ln in err)
    assert not any("Traceback" in ln for ln in err)
    # the order of events: one "trying the previous" for checkpoint.pt, then the error
    # (which names both); nothing claims a further try after the last checkpoint failed
    assert "no good checkpoint" in err[-1], err
    trying = [ln for ln in err if "trying the previous" in ln]
    assert len(trying) == 1 and "checkpoint.pt " in trying[0] and \
        trying[0].endswith("checkpoint.prev.pt"), err


@pytest.mark.parametrize("precision", ["bf16", "channels_last"])
def test_resume_is_bit_exact_within_a_precision_mode(tmp_path, data_r, precision):
    cfg = _cfg(seeds=(0, 1), checkpoint_every=3, precision=precision)
    full = train(cfg, tmp_path / "full", data_r, data_r, progress=False)
    assert full["train"]["precision"] == precision
    train(cfg, tmp_path / "cut", data_r, None, progress=False, stop_after=5)
    resumed = train(cfg, tmp_path / "cut", data_r, data_r, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["error"] == full["error"]
    # The mode really changes the step (else this test would only repeat the fp32 one).
    train(dataclasses.replace(cfg, precision="fp32"), tmp_path / "fp32", data_r, None,
          progress=False)
    c = load_checkpoint(tmp_path / "fp32" / "checkpoint.pt")["params"]
    if precision == "bf16":
        assert any(not torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="different config.*precision"):
        train(dataclasses.replace(cfg, precision="fp32"), tmp_path / "cut", data_r, None,
              progress=False, resume=True)


def test_precision_and_vmap_are_validated_and_chosen_per_device():
    with pytest.raises(ValueError, match=r"TrainConfig: expected precision in .*got 'fp16'"):
        TrainConfig(variant="R", net="CNN", precision="fp16")
    with pytest.raises(ValueError, match="TrainConfig: expected vmap to be True or False"):
        TrainConfig(variant="R", net="CNN", vmap="yes")
    assert preset("small", "R", "CNN").precision == "fp32"  # the default stays exact
    assert [preset("small", v, "STN-C0").vmap for v in "RTS"] == [False] * 3  # CPU
    assert [preset("small", v, "STN-C0", device="cuda").vmap for v in "RTS"] == \
        [True, True, False]
    assert preset("small", "T", "CNN", device="cuda").vmap is False
    assert preset("small", "S", "CNN", vmap=True).vmap is True


def test_resume_keeps_the_checkpoints_vmap_choice(tmp_path, data_r):
    cfg = _cfg(seeds=(0, 1), checkpoint_every=3, vmap=True)
    train(cfg, tmp_path / "full", data_r, None, progress=False)
    train(cfg, tmp_path / "cut", data_r, None, progress=False, stop_after=4)
    train(dataclasses.replace(cfg, vmap=False), tmp_path / "cut", data_r, None,
          progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["params"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["params"]
    assert all(torch.equal(a[k], b[k]) for k in a)
