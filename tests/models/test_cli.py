"""``stnlab train`` and ``stnlab report`` from the command line."""

from __future__ import annotations

import json
import re

import pytest

from models.mnist_nets import TABLE_VI_PARAMS
from proofs.cli import main


def test_list_params_json_matches_table_vi(capsys):
    assert main(["train", "--suite", "mnist", "--list-params", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert set(counts) == {"R", "T", "S"}
    for v, row in counts.items():
        assert list(row) == ["CNN", "STN-C0", "STN-C1", "STN-DL1", "STN-SL1"]
        for n, c in row.items():
            assert abs(c - TABLE_VI_PARAMS[v][n]) <= 20


def test_list_params_table(capsys):
    assert main(["train", "--list-params"]) == 0
    out = capsys.readouterr().out
    assert "| T | STN-C1 | 67108 | 67088 | +20 |" in out


@pytest.mark.parametrize("argv, match", [
    (["--variant", "Q"], "--variant"),
    (["--net", "STN-C7"], "--net"),
    (["--scale", "huge"], "--scale"),
    (["--suite", "no-such-suite"], "--suite"),
    (["--lr", "-1"], "lr"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv, match):
    code = main(["train", "--scale", "smoke", "--out", str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert match in err and err.count("\n") == 1


def test_default_out_and_resume_errors_are_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--scale", "smoke", "--resume"]) == 2  # default out: runs/mnist-smoke
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs/mnist-smoke does not exist; nothing to resume" in err[0]
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "suite.json").write_text(json.dumps({"scale": "small", "runs": {}}))
    assert main(["train", "--scale", "smoke", "--out", "s", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a --scale small suite, asked for --scale smoke" in err[0]


def test_every_argument_is_checked_before_anything_is_written(capsys, tmp_path):
    out = tmp_path / "new"
    assert main(["train", "--scale", "smoke", "--out", str(out), "--variant", "R,S",
                 "--lr", "-1"]) == 2
    assert main(["train", "--scale", "smoke", "--out", str(out), "--data", "standin"]) == 2
    assert not out.exists()


def test_report_on_missing_dir_is_an_error(capsys, tmp_path):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_json_path_convention_file_or_stdout(tmp_path, capsys):
    dest = tmp_path / "sub" / "params.json"
    assert main(["train", "--list-params", "--json", str(dest)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(dest.read_text())["R"]["CNN"] == 54122
    assert main(["train", "--list-params", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["R"]["CNN"] == 54122


def test_ctrl_c_says_how_to_resume(capsys, tmp_path, monkeypatch):
    import models.cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(models.cli, "run_suite", interrupted)
    assert main(["train", "--scale", "smoke", "--out", str(tmp_path / "o"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'o'} --resume" in err and "interrupted" in err


def test_executor_ray_without_ray_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ModuleNotFoundError
    code = main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(tmp_path), "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("stnlab train: error: --executor ray needs Ray: pip install "
                       "'stnlab[ray]'")


def test_executor_ray_names_stopped_runs_and_exits_1(tmp_path, capsys, monkeypatch):
    import models.suite_tasks as st

    stop = {"reason": "diverged", "step": 11, "seed": 1, "message": "nan"}

    def fake(tasks, out, *, scale, **kw):  # the driver's result: CNN done, STN-C0 diverged
        return {"scale": scale, "runs": {"R": {"CNN": {}}},
                "stopped": {"R": {"STN-C0": stop}, "T": {"STN-C0": stop}}}, []

    monkeypatch.setattr(st, "run_suite_tasks", fake)
    code = main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN,STN-C0",
                 "--quiet", "--out", str(tmp_path), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 1
    assert "R/STN-C0 diverged at step 11" in err and "T/STN-C0" not in err  # only its runs
    assert "1/2 runs done" in err


def test_ray_only_options_need_executor_ray(tmp_path, capsys):
    code = main(["train", "--scale", "smoke", "--out", str(tmp_path), "--gpus-per-run", "0.5"])
    assert code == 2
    assert "--gpus-per-run and --cpus-per-run need --executor ray" in capsys.readouterr().err


def test_precision_flag_reaches_the_runs(tmp_path, capsys):
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(tmp_path), "--precision", "bf16"]) == 0
    cfg = json.loads((tmp_path / "R" / "CNN" / "config.json").read_text())
    assert cfg["precision"] == "bf16"
    with pytest.raises(SystemExit, match="2"):
        main(["train", "--scale", "smoke", "--out", str(tmp_path / "x"), "--precision",
              "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_out_that_is_a_file_is_one_line_exit_2_through_the_console_script(tmp_path):
    """Issue 12 item 3: ``train --out <a file>`` ended in ``FileExistsError`` (exit 1)."""
    from tests.stnlab_proc import run_stnlab

    (tmp_path / "afile").write_text("not a directory\n")
    r = run_stnlab(tmp_path, "train", "--suite", "mnist", "--variant", "R", "--net",
                   "STN-C0", "--scale", "smoke", "--out", "afile")
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(err) == 1 and err[0].startswith("stnlab train: error: ") and "afile" in err[0]
    assert "which is a file" in err[0] and "Traceback" not in r.stderr
    assert (tmp_path / "afile").read_text() == "not a directory\n"


def test_a_stopped_run_lists_the_finished_ones_and_exits_1(tmp_path, capsys, monkeypatch):
    import models.train as mt

    def stop_stn(cfg, run_dir, *a, **k):
        if cfg.net == "STN-C0":
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "diverged.json").write_text(json.dumps(
                {"step": 3, "seed": 0, "message": "train: R/STN-C0 x1 diverged at step 3"}))
            raise mt.TrainingDiverged("train: R/STN-C0 x1 diverged at step 3")
        return real(cfg, run_dir, *a, **k)

    real = mt.train
    monkeypatch.setattr(mt, "train", stop_stn)
    out = tmp_path / "o"
    code = main(["train", "--scale", "smoke", "--variant", "R", "--net", "STN-C0,CNN",
                 "--quiet", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert any(line.startswith("R CNN ") and "error" in line for line in err)
    assert err[-1].startswith("stnlab train: error: train: 1 of 2 runs stopped before "
                              "finishing (R/STN-C0 diverged at step 3)")
    assert main(["report", str(out)]) == 0
    assert "- R/STN-C0: diverged at step 3, seed 0" in (out / "report.md").read_text()


def test_parse_sets():
    from models.cli import parse_sets
    from models.errors import UsageError

    assert parse_sets(["loc_lr=0.01", "init=he", "eval_iterations=[1, 2]", "vmap=false"]) == {
        "loc_lr": 0.01, "init": "he", "eval_iterations": (1, 2), "vmap": False}
    for bad, match in ((["loc_lr"], "KEY=VALUE"), (["=1"], "KEY=VALUE"),
                       (["a b=1"], "KEY=VALUE"), (["x=1", "x=2"], "given twice")):
        with pytest.raises(UsageError, match=match):
            parse_sets(bad)


@pytest.mark.parametrize("sets, match", [
    (["bogus=1"], "unknown config keys \\['bogus'\\]"),
    (["loc_lr=-1"], "loc_lr to be a finite number > 0"),
    (["net=CNN"], "use --net instead"),
    (["lr=0.1", "--lr", "0.2"], "lr is already set by its own option"),
])
def test_set_errors_are_one_line_before_anything_is_written(tmp_path, capsys, sets, match):
    argv = ["train", "--suite", "svhn", "--net", "STN-DL3", "--scale", "smoke", "--data",
            "standin", "--out", str(tmp_path / "o"), "--quiet"]
    for item in sets:
        argv += ["--set", item] if "=" in item else [item]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0]), err
    assert not (tmp_path / "o").exists()


def test_set_reaches_the_run_config(tmp_path, capsys):
    assert main(["train", "--suite", "svhn", "--net", "STN-DL3", "--scale", "smoke", "--data",
                 "standin", "--out", str(tmp_path), "--quiet", "--set", "loc_lr=0.01"]) == 0
    cfg = json.loads((tmp_path / "svhn" / "STN-DL3" / "config.json").read_text())
    assert cfg["loc_lr"] == 0.01  # 000's DL3 multiplier is 0.3


@pytest.mark.parametrize("text, seeds", [("3", (0, 1, 2)), ("10-14", (10, 11, 12, 13, 14)),
                                         ("4,2,9", (4, 2, 9)), ("7-7", (7,))])
def test_seeds_accept_a_count_a_range_or_a_list(text, seeds):
    from models.cli import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["0", "-1", "3-1", "1,1", "a", "1-b", "", "2,-3"])
def test_bad_seeds_are_one_usage_error(text):
    from models.cli import parse_seeds
    from models.errors import UsageError

    with pytest.raises(UsageError, match="expected --seeds N >= 1, A-B"):
        parse_seeds(text)


@pytest.fixture(scope="module")
def finished_smoke(tmp_path_factory):
    """A finished smoke suite: (R) CNN, one seed, default settings."""
    out = tmp_path_factory.mktemp("finished") / "s"
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("argv, named", [
    (["--lr", "0.5"], "--lr 0.02 (saved) vs 0.5 (asked)"),
    (["--seeds", "2"], "--seeds 1 (saved) vs 2 (asked)"),
    (["--method", "linearized"], "--method bilinear (saved) vs linearized (asked)"),
    (["--set", "lr_drop=0.5"], "--set lr_drop=0.1 (saved) vs 0.5 (asked)"),
])
def test_resume_of_a_finished_run_with_changed_settings_is_refused(
        finished_smoke, capsys, argv, named):
    before = (finished_smoke / "R" / "CNN" / "metrics.json").read_text()
    code = main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(finished_smoke), "--resume"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert named in err[0] and "R/CNN (finished)" in err[0], err
    assert (finished_smoke / "R" / "CNN" / "metrics.json").read_text() == before
    # the same settings (and an execution choice such as --no-vmap) resume as before
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(finished_smoke), "--resume", "--no-vmap"]) == 0


def test_resume_of_an_unfinished_run_with_changed_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(out)]) == 0
    (out / "R" / "CNN" / "metrics.json").unlink()  # a checkpoint and no metrics: unfinished
    capsys.readouterr()
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--quiet",
                 "--out", str(out), "--resume", "--iters", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "R/CNN (unfinished)" in err[0] and \
        "--iters 4 (saved) vs 5 (asked)" in err[0], err


def test_another_suite_into_a_suite_directory_is_refused(finished_smoke, capsys, tmp_path):
    for resume in ([], ["--resume"]):
        code = main(["train", "--suite", "svhn", "--scale", "smoke", "--data", "standin",
                     "--net", "CNN", "--quiet", "--out", str(finished_smoke)] + resume)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert f"--suite svhn: {finished_smoke} holds a mnist suite" in err[0], err
    assert not (finished_smoke / "svhn").exists()


def test_report_on_a_mixed_or_garbled_suite_is_one_line_naming_the_file(
        finished_smoke, capsys, tmp_path):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(finished_smoke, mixed)
    foreign = mixed / "svhn" / "CNN"
    foreign.mkdir(parents=True)
    (foreign / "metrics.json").write_text(json.dumps({"suite": "svhn", "net": "CNN"}))
    (foreign / "log.jsonl").write_text(json.dumps({"step": 2, "train_loss": 1.0}) + "\n")
    assert main(["report", str(mixed)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(foreign / "metrics.json") in err[0], err
    (mixed / "suite.json").write_text("{not json")
    assert main(["report", str(mixed)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(mixed / "suite.json") in err[0], err


def test_ctrl_c_resume_hint_repeats_the_overrides(capsys, tmp_path, monkeypatch):
    import shlex

    import models.cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(models.cli, "run_suite", interrupted)
    assert main(["train", "--scale", "smoke", "--variant", "R", "--net", "CNN", "--out",
                 str(tmp_path / "o"), "--quiet", "--lr", "0.01", "--seeds", "2",
                 "--set", "lr_drop=0.5", "--no-vmap"]) == 130
    err = capsys.readouterr().err
    hint = re.search(r"continue with `([^`]*)`", err).group(1)
    argv = shlex.split(hint)
    for flag, value in [("--lr", "0.01"), ("--seeds", "2"), ("--set", "lr_drop=0.5"),
                        ("--out", str(tmp_path / "o"))]:
        assert argv[argv.index(flag) + 1] == value, hint
    assert "--no-vmap" in argv and argv[-1] == "--resume"


def test_nan_metrics_render_visibly_not_as_nan_percent(finished_smoke, tmp_path):
    import shutil

    from models.runio import NOT_FINITE, pct
    from models.suites._deep import DeepSuiteBase
    from proofs.suite_report import render_suite

    assert pct(float("nan")) == pct(float("inf")) == NOT_FINITE == "NaN (diverged)"
    assert pct(0.1234) == "12.34%"
    d = tmp_path / "nan"
    shutil.copytree(finished_smoke, d)
    m = json.loads((d / "R" / "CNN" / "metrics.json").read_text())
    m["error"].update(mean=float("nan"), std=float("nan"), per_seed=[float("nan")])
    m["pose_std"] = {**m.get("pose_std", {}), "mean": float("nan")} if m.get("pose_std") else None
    (d / "R" / "CNN" / "metrics.json").write_text(json.dumps(m))
    text = render_suite(d, figures=False)
    assert "NaN (diverged)" in text and "nan%" not in text.lower(), text
    assert DeepSuiteBase._fmt({"error": {"mean": float("nan"), "std": float("nan"),
                                     "per_seed": [1, 2]}}) == "NaN (diverged) (n=2)"


def test_bare_train_refuses_without_scale_and_writes_nothing(capsys, tmp_path, monkeypatch):
    import models.cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models.cli, "run_suite", lambda *a, **k: pytest.fail("trained"))
    assert main(["train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected --scale" in err[0] and "no default" in err[0], err
    assert not (tmp_path / "runs").exists()


def test_report_does_not_rewrite_a_committed_report_by_default(finished_smoke, tmp_path,
                                                               capsys):
    import shutil
    import subprocess

    repo = tmp_path / "repo"
    shutil.copytree(finished_smoke, repo / "results" / "s")
    assert main(["report", str(repo / "results" / "s"), "--no-figures"]) == 0  # untracked
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "."], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "r"], cwd=repo, check=True)
    md = repo / "results" / "s" / "report.md"
    before = md.read_text()
    md.write_text(before + "\ncommitted text\n")
    subprocess.run(git + ["commit", "-qam", "r2"], cwd=repo, check=True)
    capsys.readouterr()
    assert main(["report", str(repo / "results" / "s"), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is committed" in err[0] and "--in-place" in err[0], err
    assert md.read_text().endswith("committed text\n")
    out = tmp_path / "elsewhere" / "r.md"
    assert main(["report", str(repo / "results" / "s"), "--no-figures", "--out",
                 str(out)]) == 0
    assert out.read_text().strip() == before.strip()
    assert main(["report", str(repo / "results" / "s"), "--no-figures", "--in-place"]) == 0
    assert md.read_text().strip() == before.strip()
