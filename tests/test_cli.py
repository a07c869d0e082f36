"""The stnlab command line: help everywhere, one-line errors, non-zero exits."""

from __future__ import annotations

import subprocess

import pytest

from proofs.cli import COMMANDS, main


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert "usage: stnlab " + name in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice" in err[0]


def test_user_error_is_one_line_without_traceback(monkeypatch, capsys):
    """A ValueError from a sub-command becomes `stnlab <cmd>: error: ...`, exit 2."""
    import types

    import proofs.cli as cli

    def run(args):
        raise ValueError("expected --x to be positive, got -1\nsecond line never shown")

    fake = types.SimpleNamespace(add_arguments=lambda p: None, run=run)
    monkeypatch.setattr(cli, "_load", lambda module: fake)
    monkeypatch.delenv("STNLAB_DEBUG", raising=False)
    assert cli.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err == "stnlab bench: error: expected --x to be positive, got -1\n"
    assert "Traceback" not in err


def test_console_script_is_installed():
    r = subprocess.run(["stnlab", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("stnlab ")


# ---------------------------------------------------------------- Ctrl-C: one line, exit 130

_SWALLOW_PRONE = r'''
import sys, time, weakref
import models.data.cli as data_cli
from proofs import cli


class Key:
    pass


def slow_callback(_ref):
    # Nearly all the time is spent here, in a weakref callback: a SIGINT is raised inside
    # it, where Python can only print "Exception ignored in: ..." and go on.
    t = time.perf_counter()
    while time.perf_counter() - t < 0.05:
        pass


def run(args):
    print("ready", flush=True)
    t = time.monotonic()
    while time.monotonic() - t < 30:  # a swallowed Ctrl-C lets this end normally (exit 0)
        k = Key()
        r = weakref.ref(k, slow_callback)
        del k
    return 0


data_cli.run = run
sys.exit(cli.main(["data"]))
'''


def _interrupt(argv: list[str], ready: str, tmp_path, *, stream: str = "stdout"):
    """Start ``argv``, send SIGINT once a line containing ``ready`` is on ``stream``;
    return (exit status, whole stderr)."""
    import signal

    from tests.stnlab_proc import sandbox_env

    def default_sigint():
        # A shell without job control starts background jobs with SIGINT ignored, and the
        # child would inherit that (Python then installs no KeyboardInterrupt handler):
        # Ctrl-C is what is tested, so the child gets the default disposition.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path, env=sandbox_env(tmp_path), preexec_fn=default_sigint)
    seen = []
    try:
        for line in getattr(p, stream):
            seen.append(line)
            if ready in line:
                break
        else:
            pytest.fail(f"never printed {ready!r}: {''.join(seen)}")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, ("".join(seen) if stream == "stderr" else "") + err


def test_ctrl_c_inside_a_weakref_callback_still_stops_with_130(tmp_path):
    import sys

    rc, err = _interrupt([sys.executable, "-c", _SWALLOW_PRONE], "ready", tmp_path)
    assert rc == 130, err
    assert err.strip().splitlines() == ["stnlab data: interrupted"], err


def test_ctrl_c_stops_prove_with_one_line(tmp_path):
    from tests.stnlab_proc import stnlab_executable

    rc, err = _interrupt([stnlab_executable(), "prove", "--only", "INV-4", "--out",
                          str(tmp_path / "out")], "[1/", tmp_path, stream="stderr")
    assert rc == 130, err
    assert err.strip().splitlines()[-1] == "stnlab prove: interrupted", err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_ctrl_c_leaves_interrupted_as_the_last_line(tmp_path):
    """An object half-built when Ctrl-C landed fails in its finalizer at exit (seen in CI:
    imageio's PillowPlugin interrupted in its constructor); that is not news after Ctrl-C."""
    code = (
        "import sys, proofs.cli as c\n"
        "class Half:\n"
        "    def __del__(self):\n"
        "        raise AttributeError('half-built object')\n"
        "keep = []\n"
        "def fake(argv):\n"
        "    keep.append(Half())\n"
        "    raise KeyboardInterrupt\n"
        "c._main = fake\n"
        "sys.exit(c.main([]))\n")
    import os
    import sys as _sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": root}, timeout=120)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines() == ["stnlab: interrupted"], r.stderr
