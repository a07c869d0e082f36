"""``stnlab experiment`` through the real console script: output folder and its mistakes."""

from __future__ import annotations

import subprocess

from tests.stnlab_proc import ROOT, run_stnlab


def test_out_that_is_a_file_is_one_line_exit_2(tmp_path):
    """Issue 12 item 3: ``experiment gradient-field --out <a file>`` ended in a
    ``FileExistsError`` traceback after the whole run (exit 1)."""
    (tmp_path / "afile").write_text("x")
    for out in ("afile", "afile/sub"):
        r = run_stnlab(tmp_path, "experiment", "gradient-field", "--scale", "smoke",
                       "--out", out)
        err = r.stderr.strip().splitlines()
        assert r.returncode == 2, r.stderr
        assert len(err) == 1 and err[0].startswith("stnlab experiment: error: "), r.stderr
        assert "check_output_dir: expected --out to be a directory" in err[0]
        assert "[1/" not in r.stderr  # refused before the experiment ran


def test_default_output_is_an_ignored_run_folder_in_the_working_directory(tmp_path):
    """Issue 12 item 5: without ``--out`` the results go to ``./runs/samplers-<scale>``
    (printed first), not into the checkout's ``results/``."""
    r = run_stnlab(tmp_path, "experiment", "ablation-k", "--scale", "smoke")
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first == "stnlab experiment ablation-k: writing to runs/samplers-smoke"
    out = tmp_path / "runs" / "samplers-smoke"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "ablation-k.json",
                                                     "ablation-k.png"]
    assert not (tmp_path / "results").exists()


def test_gitignore_covers_the_default_run_folders():
    """What ``stnlab experiment`` / ``stnlab train`` write by default is never a tracked
    change in a checkout (``git check-ignore`` exits 1 for a path it would not ignore)."""
    paths = ["runs/samplers-smoke/gradient-field.json", "runs/samplers-paper/README.md",
             "runs/mnist-smoke/suite.json", "runs/mnist-smoke/R/STN-C0/seed0/checkpoint.pt",
             "results/runs/samplers-small/README.md",  # run from a sub-directory
             "prove-out/report.md", "results/prove-out/report.md"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.split() == paths, r.stdout + r.stderr
    control = subprocess.run(["git", "check-ignore", "--no-index",
                              "results/samplers-small/README.md"], cwd=ROOT, check=False)
    assert control.returncode == 1  # the committed records stay tracked
