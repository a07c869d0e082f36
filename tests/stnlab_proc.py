"""Run the real ``stnlab`` console script in a subprocess, in a sandbox directory.

The sandbox has its own ``HOME`` and ``STNLAB_DATA_DIR`` (under ``tmp``), the
working directory ``tmp``, pip told not to touch an index (so a test that should
never download cannot), and this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stnlab_executable() -> str:
    """The ``stnlab`` script next to this interpreter, else the one on ``PATH``."""
    beside = Path(sys.executable).with_name("stnlab")
    if beside.is_file():
        return str(beside)
    found = shutil.which("stnlab")
    if found is None:
        raise RuntimeError("the stnlab console script is not installed (pip install -e .)")
    return found


def sandbox_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment of a fresh user whose home and data cache live under ``tmp``."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("STNLAB_DEBUG", None)
    env.update(HOME=str(home), STNLAB_DATA_DIR=str(tmp / "data"), PIP_NO_INDEX="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [
                   p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.update(extra)
    return env


def run_stnlab(tmp: Path, *argv: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """``stnlab argv...`` in ``tmp`` with :func:`sandbox_env`; text output captured."""
    return subprocess.run([stnlab_executable(), *argv], cwd=tmp, env=env or sandbox_env(tmp),
                          capture_output=True, text=True, timeout=timeout)
