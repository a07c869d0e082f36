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
