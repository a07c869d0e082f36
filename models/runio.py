"""Run I/O, written once: the environment record, atomic writes, checkpoints, progress, threads.

Every driver that writes a run (``models.train``, ``proofs.run``,
``proofs.experiments.samplers``) uses these; none writes its own.

- :func:`environment` -- git commit, package versions, device, threads, argv.
- :func:`atomic_write_json`, :func:`atomic_write_bytes` -- written to ``NAME.tmp`` and
  renamed, so a reader never sees half a file.
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`latest_good_checkpoint` --
  ``torch.save`` files whose sha256 digest is written beside them (``NAME.sha256``) and
  verified on load; the last two are kept (``checkpoint.pt``, ``checkpoint.prev.pt``), so
  a damaged latest one falls back to the previous one.
- :func:`check_output_dir` -- an output directory that can be made and written, checked
  before a run starts (a file in its place is a user mistake, not a traceback at the end).
- :class:`Progress` -- one status line: iteration, loss, error, images/s, ETA.
- :func:`thread_limit` -- a block with ``torch.set_num_threads(n)``, restored after.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

__all__ = ["environment", "TrainingDiverged", "git_commit", "package_versions", "device_name",
           "atomic_write_bytes", "atomic_write_json", "CheckpointDamaged", "save_checkpoint",
           "load_checkpoint", "latest_good_checkpoint", "checkpoint_paths", "Progress",
           "thread_limit", "add_json_argument", "emit_json", "check_output_dir", "pct",
           "NOT_FINITE"]

#: How a report shows a metric that is NaN or infinite (a diverged seed's error): visibly,
#: never ``nan%``.
NOT_FINITE = "NaN (diverged)"


def pct(x, digits: int = 2, unit: str = "%") -> str:
    """``x`` (a fraction) as a percentage, ``"12.34%"``; :data:`NOT_FINITE` for NaN/Inf."""
    x = float(x)
    return f"{100 * x:.{digits}f}{unit}" if math.isfinite(x) else NOT_FINITE

_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------
def git_commit(*, short: bool = False) -> str | None:
    """The source tree's ``git rev-parse HEAD`` (``--short`` if asked), or None."""
    cmd = ["git", "rev-parse"] + (["--short"] if short else []) + ["HEAD"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=_ROOT,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _tree_dirty() -> bool | None:
    """Whether tracked files differ from HEAD (``git diff --quiet HEAD``), or None."""
    try:
        rc = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], capture_output=True,
                            cwd=_ROOT, timeout=5).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: False, 1: True}.get(rc)


#: The commit (and whether tracked files differed from it) when this process imported the
#: package: the code a long-running process trains with, even if HEAD moves meanwhile.
LOADED_SOURCE = {"git_commit": git_commit(), "git_dirty": _tree_dirty()}


def package_versions(extra: tuple[str, ...] = ()) -> dict:
    """``{"python", "torch", "numpy", *extra}`` versions (None where not installed)."""
    import importlib.metadata as md

    v = {"python": platform.python_version(), "torch": torch.__version__,
         "numpy": np.__version__}
    for pkg in extra:
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = None
    return v


def device_name(device: str) -> str:
    """The GPU's name for ``cuda[:i]``, else the CPU's processor (or machine) string."""
    device = str(device)
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def environment(device: str = "cpu", *, run_dir=None, **extra) -> dict:
    """What a run records about where it ran: versions, platform, device, threads, commit.

    Args:
        device: ``"cpu"`` or ``"cuda[:i]"``.
        run_dir: the run's directory ``<suite>/<variant>/<net>``; where its suite holds a
            pre-registered ``plan.json`` (proofs/plan.py), its sha256 is recorded as
            ``plan_sha256``, so a run trained outside git (a lent GPU) still shows which
            plan it started under.
        **extra: further keys put first (e.g. ``seeds``).

    Returns:
        ``{**extra, "python", "torch", "numpy", "platform", "device", "device_name",
        "threads", "git_commit", "git_dirty", "argv"}`` (+ ``"plan_sha256"``); the commit
        is the one this process loaded its code from (:data:`LOADED_SOURCE`), not HEAD
        when the run starts.
    """
    env = {**extra, **package_versions(), "platform": platform.platform(),
           "device": str(device), "device_name": device_name(device),
           "threads": torch.get_num_threads(), **LOADED_SOURCE, "argv": sys.argv}
    plan = Path(run_dir).parent.parent / "plan.json" if run_dir is not None else None
    if plan is not None and plan.is_file():
        import hashlib  # noqa: PLC0415

        env["plan_sha256"] = hashlib.sha256(plan.read_bytes()).hexdigest()
    return env


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path.tmp``, flush it to disk, rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, obj, *, indent: int | None = 1,
                      separators=None, allow_nan: bool = True) -> None:
    """``json.dumps(obj)`` plus a newline, written atomically (see :func:`atomic_write_bytes`)."""
    text = json.dumps(obj, indent=indent, separators=separators, allow_nan=allow_nan) + "\n"
    atomic_write_bytes(path, text.encode())


def check_output_dir(path: str | Path, *, arg: str = "--out") -> Path:
    """Check that ``path`` is, or can be made as, a directory this process can write into.

    Nothing is created; call it before a run starts, so that a mistaken ``--out`` ends the
    command at once (one line, exit 2 from ``stnlab``) instead of after the work.

    Args:
        path: the output directory asked for (absolute or relative to the working directory).
        arg: how the caller names the argument in the message (e.g. ``"--out"``).

    Returns:
        ``Path(path)``.

    Raises:
        ConfigError: ``path`` or one of its parents exists and is not a directory, or the
            nearest existing parent is not writable.
    """
    from .errors import ConfigError

    path = Path(path)
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent  # the nearest existing ancestor (or the root)
    if p.exists() and not p.is_dir():
        where = "is a file" if p == path else f"lies under {str(p)!r}, which is a file"
        raise ConfigError(f"check_output_dir: expected {arg} to be a directory (or a path "
                          f"where one can be made), got {str(path)!r}, which {where}; "
                          f"choose another {arg}")
    if p.exists() and not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"check_output_dir: expected {arg} to be a writable directory, got "
                          f"{str(path)!r}, but {str(p)!r} is not writable; choose another "
                          f"{arg}")
    return path


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the message names the step, the seed and the checkpoint.

    Raised by both training loops (:mod:`models.train`, :mod:`models.module_loop`)."""


class CheckpointDamaged(ValueError):
    """A checkpoint's bytes do not match its recorded sha256 digest (or cannot be read)."""


def checkpoint_paths(run_dir: str | Path) -> tuple[Path, Path]:
    """``(latest, previous)`` checkpoint paths of a run directory."""
    run_dir = Path(run_dir)
    return run_dir / "checkpoint.pt", run_dir / "checkpoint.prev.pt"


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: str | Path, state: dict, *, keep_previous: bool = True) -> str:
    """Write ``state`` with ``torch.save`` atomically and its sha256 beside it.

    With ``keep_previous``, an existing ``path`` (and its digest) first becomes
    ``<stem>.prev<suffix>`` (``checkpoint.pt`` -> ``checkpoint.prev.pt``), so the last two
    checkpoints are on disk. Returns the hex digest.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    if keep_previous and path.exists():
        prev = path.with_name(path.stem + ".prev" + path.suffix)
        os.replace(path, prev)
        if _digest_path(path).exists():
            os.replace(_digest_path(path), _digest_path(prev))
        else:
            _digest_path(prev).unlink(missing_ok=True)
    # The digest goes first: ``path`` does not exist at this point (moved to ``prev`` or
    # never written), so a kill between the two writes leaves a digest without bytes,
    # which readers skip (the previous checkpoint, or none, serves), never bytes without
    # a digest, which no reader can trust (the first checkpoint of a run would be lost).
    path.unlink(missing_ok=True)  # keep_previous=False: old bytes must not meet the new digest
    atomic_write_bytes(_digest_path(path), (digest + "\n").encode())
    atomic_write_bytes(path, data)
    return digest


def load_checkpoint(path: str | Path) -> dict:
    """Verify ``path`` against its sha256 file, then ``torch.load(..., weights_only=True)``.

    Raises:
        FileNotFoundError: no such checkpoint.
        CheckpointDamaged: no digest file, a digest mismatch, or bytes torch cannot read.
    """
    path = Path(path)
    data = path.read_bytes()
    dp = _digest_path(path)
    if not dp.exists():
        raise CheckpointDamaged(f"load_checkpoint: {path} has no digest file {dp.name}")
    want = dp.read_text().strip()
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise CheckpointDamaged(f"load_checkpoint: {path} is damaged (sha256 {got[:12]}..., "
                                f"expected {want[:12]}...)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable payload is damage
        why = (str(e).splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise CheckpointDamaged(f"load_checkpoint: {path} cannot be read ({why})") from None


def latest_good_checkpoint(run_dir: str | Path, *, warn=None) -> tuple[dict, Path] | None:
    """The newest checkpoint of ``run_dir`` that verifies, and its path; None if none exists.

    A damaged one is reported through ``warn`` (one line each; default: stderr) and
    skipped.

    Raises:
        CheckpointDamaged: checkpoints exist but none verifies.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    found = [p for p in checkpoint_paths(run_dir) if p.exists()]
    damaged = []
    for i, p in enumerate(found):
        try:
            return load_checkpoint(p), p
        except CheckpointDamaged as e:
            damaged.append(str(e).split(": ", 1)[-1])
            if i + 1 < len(found):  # the last one's damage is in the error below
                warn(f"train: {damaged[-1]}; trying the previous checkpoint "
                     f"{found[i + 1].name}")
    if found:
        raise CheckpointDamaged(f"train: no good checkpoint in {run_dir} ({'; '.join(damaged)}); "
                                f"delete the run directory to start again")
    return None


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------
class Progress:
    """One status line on a stream: iteration, loss, error, images/s, ETA.

    On a terminal the line is redrawn at most twice a second; elsewhere (logs) a line is
    written at most every ``every_s`` seconds (15 by default) or when forced.

    Args:
        label: shown in brackets at the start of the line (``""``: the line starts with
            ``[step/total]``, for counting tasks rather than iterations).
        total: number of iterations of the whole run.
        start: iteration the run (re)starts from (the rate counts from here).
        images_per_step: images per iteration, for the images/s figure (0: not shown).
        enabled: False makes every call a no-op.
        stream: default ``sys.stderr``.
    """

    def __init__(self, label: str, total: int, start: int = 0, images_per_step: int = 0,
                 enabled: bool = True, stream=None, every_s: float = 15.0):
        self.label, self.total, self.start = label, total, start
        self.ipstep = images_per_step
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.every_s = every_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def rate(self, step: int) -> float:
        """Iterations per second since ``start``."""
        dt = time.perf_counter() - self.t0
        return (step - self.start) / dt if dt > 0 else 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def eta(self, step: int) -> float:
        r = self.rate(step)
        return (self.total - step) / r if r > 0 else float("nan")

    def update(self, step: int, loss: float | None = None, err: float | None = None,
               force: bool = False, what: str | None = None) -> None:
        """Show iteration ``step`` (with its loss / error / what it is doing)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < (0.5 if self.tty else self.every_s):
            return
        self.last = now
        eta = self.eta(step)
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "?"
        parts = [f"[{self.label}] it {step}/{self.total}" if self.label
                 else f"[{step}/{self.total}]"]
        if what:
            parts.append(what)
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if err is not None:
            parts.append(f"err {pct(err)}")
        if self.ipstep:
            parts.append(f"{self.rate(step) * self.ipstep:7.0f} img/s")
        parts.append(f"elapsed {self.elapsed():.0f}s  ETA {eta_s}")
        line = "  ".join(parts)
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------
# The --json [PATH] convention of every sub-command
# --------------------------------------------------------------------------------------
def add_json_argument(parser, what: str = "the result") -> None:
    """``--json [PATH]``: write ``what`` as JSON to PATH, or to stdout for ``-`` / no PATH."""
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help=f"write {what} as JSON to PATH ('-' or no PATH: stdout)")


def emit_json(dest: str | Path, obj, *, indent: int | None = 1) -> None:
    """Write ``obj`` to ``dest`` (``"-"``: stdout; else a file, atomically)."""
    if str(dest) == "-":
        print(json.dumps(obj, indent=indent), flush=True)
        return
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dest, obj, indent=indent)


# --------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------
@contextmanager
def thread_limit(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: unchanged), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"thread_limit: expected n to be None or an int >= 1, got {n!r}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
