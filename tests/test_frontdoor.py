"""Issue 12, "Done means": a newcomer's first commands work from a fresh copy of the
repository, from any working directory, and change nothing in the checkout.

The fresh copy is a new git repository holding exactly the tracked files of this working
tree (as they are now, uncommitted edits included), committed once; its code is run
through the real ``stnlab`` console script (the clone first on ``PYTHONPATH``), with an
empty ``HOME`` (so the linearized sampler's kernel is compiled as for a new user) and
``STNLAB_DATA_DIR`` at a copy of the MNIST cache -- or, where this machine has none, at a
stand-in cache made by ``stnlab data fetch mnist --from-idx`` from tiny IDX files (no test
downloads). The working directory is outside the clone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.stnlab_proc import ROOT, sandbox_env, stnlab_executable

pytestmark = pytest.mark.slow  # ~1-2 min: three commands and a kernel compile


def _git(*argv: str, cwd) -> str:
    r = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=True)
    return r.stdout


def fresh_copy(dest):
    """A new git repository at ``dest`` holding this working tree's tracked files,
    committed (so ``git status --porcelain`` is empty at the start)."""
    tracked = _git("ls-files", "-z", cwd=ROOT).split("\0")
    for rel in filter(None, tracked):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git("init", "-q", cwd=dest)
    _git("add", "-A", cwd=dest)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fresh copy",
         cwd=dest)
    assert _git("status", "--porcelain", cwd=dest) == ""
    return dest


def mnist_cache_copy(dest, env, cwd) -> str:
    """Fill ``dest`` with this machine's MNIST cache, or a stand-in one; say which."""
    from models.data import mnist

    if mnist.is_cached():
        shutil.copytree(mnist.default_cache_dir(), dest)
        return "copy"
    from tests.models.test_data_idx import write_mnist_dir

    write_mnist_dir(cwd / "idx", n_train=600, n_test=100)
    r = subprocess.run([stnlab_executable(), "data", "fetch", "mnist", "--from-idx",
                        str(cwd / "idx")], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(cwd / "idx")
    return "stand-in"


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory):
    """``(clone, cwd, env)``: the fresh copy, an empty working directory outside it, and
    the environment of a new user running the clone's code."""
    base = tmp_path_factory.mktemp("frontdoor")
    clone = fresh_copy(base / "clone")
    cwd = base / "elsewhere"
    cwd.mkdir()
    env = sandbox_env(base, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(clone)  # the clone's code, not this checkout's
    env.pop("TORCH_EXTENSIONS_DIR", None)
    mnist_cache_copy(base / "data", env, cwd)
    code = "import proofs, models; print(proofs.__file__); print(models.__file__)"
    where = subprocess.run([sys.executable, "-c", code],
                           cwd=cwd, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(clone)) for line in where.stdout.split()), where.stdout
    return clone, cwd, env


def stnlab(newcomer, *argv: str) -> subprocess.CompletedProcess:
    _, cwd, env = newcomer
    return subprocess.run([stnlab_executable(), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def test_train_report_experiment_from_outside_a_fresh_clone_change_nothing(newcomer):
    clone, cwd, _ = newcomer
    steps = [("train", "--suite", "mnist", "--variant", "R", "--net", "STN-C0", "--scale",
              "smoke"),
             ("report", "runs/mnist-smoke"),
             ("experiment", "gradient-field", "--scale", "smoke")]
    for argv in steps:
        r = stnlab(newcomer, *argv)
        assert r.returncode == 0, f"stnlab {' '.join(argv)}:\n{r.stderr[-3000:]}"
    # and nothing in the clone changed: no tracked file, no new file, not even an ignored one
    assert _git("status", "--porcelain", cwd=clone) == ""
    assert _git("status", "--porcelain", "--ignored", cwd=clone) == ""
    # what they wrote is under the working directory, where they said they would write
    assert (cwd / "runs" / "mnist-smoke" / "suite.json").is_file()
    assert (cwd / "runs" / "mnist-smoke" / "report.md").is_file()
    assert (cwd / "runs" / "samplers-smoke" / "gradient-field.json").is_file()


def test_prove_from_outside_the_clone_finds_the_committed_records(newcomer):
    clone, _, _ = newcomer
    r = stnlab(newcomer, "prove", "--only", "EMP-1", "--out", "prove-out")
    assert r.returncode in (0, 1), r.stderr[-3000:]
    status = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("EMP-1")]
    # the committed record was read (EMP-1 on one `small` seed is honestly inconclusive);
    # without it the line says "not run -- records missing"
    assert status and status[0][1] in ("verified", "failed", "inconclusive"), r.stdout[-2000:]
    assert "records missing" not in r.stdout
    assert _git("status", "--porcelain", cwd=clone) == ""
