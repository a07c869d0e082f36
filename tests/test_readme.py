"""Every code block of README.md runs as printed.

* ```python blocks run, each in a fresh interpreter (so a missing import or an
  undefined name fails), from an empty temporary directory.
* Shell blocks (no language, ``sh``, ``bash``, ``shell``, ``console``): every
  ``stnlab ...`` command in them (split at ``&&``, ``||``, ``;`` and ``|``) must be
  accepted by the real argument parser (:func:`proofs.cli.build_parser`); nothing
  is run, so no download and no training happens here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from proofs.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_LANGS = ("", "sh", "bash", "shell", "console")
_FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def code_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(language, code, line number of the opening fence)`` of every fenced block."""
    return [(m.group(1).lower(), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _FENCE.finditer(text)]


def stnlab_commands(code: str) -> list[list[str]]:
    """The argv (without ``stnlab``) of every ``stnlab`` command in a shell block."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"&&|\|\||;|\|", line):
            argv = shlex.split(part, comments=True)
            if argv and argv[0] == "stnlab":
                out.append(argv[1:])
    return out


def parse_error(argv: list[str]) -> str | None:
    """None when the real parser accepts ``argv``, else what it said (it exits on an error)."""
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as e:
        return err.getvalue().strip() or f"exit {e.code}"
    return None


BLOCKS = code_blocks(README.read_text())
SHELL = [(code, line) for lang, code, line in BLOCKS if lang in SHELL_LANGS]


def heredoc_python(code: str) -> list[str]:
    """The Python a shell block feeds to ``python - <<'TAG' ... TAG`` (the README's
    library example installs first, then runs its Python from standard input)."""
    return [m.group(2) for m in re.finditer(
        r"python3? - <<'?(\w+)'?\n(.*?)\n\1(?:\n|$)", code, flags=re.S)]


PYTHON = ([(code, line) for lang, code, line in BLOCKS if lang in ("python", "py", "pycon")]
          + [(py, line) for code, line in SHELL for py in heredoc_python(code)])


def test_the_readme_has_code_to_check():
    assert PYTHON and SHELL and any(stnlab_commands(code) for code, _ in SHELL)


@pytest.mark.parametrize("code, line", PYTHON, ids=[f"line{ln}" for _, ln in PYTHON])
def test_python_block_runs_as_printed(code, line, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README.md line {line}:\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("code, line", SHELL, ids=[f"line{ln}" for _, ln in SHELL])
def test_stnlab_commands_in_shell_blocks_parse(code, line):
    for argv in stnlab_commands(code):
        err = parse_error(argv)
        assert err is None, f"README.md line {line}: `stnlab {' '.join(argv)}`: {err}"


def subcommands(parser=None) -> list[tuple[str, ...]]:
    """Every runnable sub-command of ``stnlab``: ``("train",)``, ``("data", "fetch")``, ...

    A command whose parser has sub-commands of its own (``data``, ``bench``,
    ``experiment``) counts as its actions, not as itself.
    """
    import argparse

    def actions(p, prefix):
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return [prefix]
        return [leaf for name, child in subs[0].choices.items()
                for leaf in actions(child, prefix + (name,))]

    return actions(parser or build_parser(), ())


def missing_subcommands(commands: list[list[str]], parser=None) -> list[str]:
    """The sub-commands of which no command in ``commands`` (argv without ``stnlab``) is
    an accepted use."""
    used = [tuple(argv) for argv in commands if parse_error(argv) is None]
    return [" ".join(sc) for sc in subcommands(parser)
            if not any(u[:len(sc)] == sc for u in used)]


def test_the_readme_shows_every_subcommand_with_a_line_that_parses():
    """``stnlab --help`` lists data, prove, train, report, bench, experiment and their
    actions; each has at least one line in a README shell block that the parser accepts."""
    commands = [argv for code, _ in SHELL for argv in stnlab_commands(code)]
    assert missing_subcommands(commands) == []


def test_the_readme_links_nothing_outside_the_repository():
    """A clone has no ``../shared/``: every relative link must stay inside the repository."""
    text = README.read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"`([^`\s]*\.\./[^`\s]*)`", text)
    outside = [t for t in targets if "://" not in t and not t.startswith("#")
               and not (ROOT / t).resolve().is_relative_to(ROOT)]
    assert outside == [] and "../shared" not in text, outside


def test_the_checks_can_fail():
    """The helpers catch what they exist to catch (a block that cannot fail is a defect)."""
    assert heredoc_python("pip install . && python - <<'EOF'\nprint(1)\nEOF\n") == ["print(1)"]
    assert heredoc_python("python - <<EOF\nimport nope\nEOF") == ["import nope"]
    assert heredoc_python("stnlab prove\n") == []
    assert stnlab_commands("pip install . && stnlab data fetch mnist && stnlab prove\n") == [
        ["data", "fetch", "mnist"], ["prove"]]
    assert parse_error(["prove", "--no-such-option"]) is not None
    assert parse_error(["data", "fetch", "mnist"]) is None
    r = subprocess.run([sys.executable, "-c", "x = torch.zeros(1)"], capture_output=True)
    assert r.returncode != 0  # an undefined name in a block fails its test
    leaves = subcommands()
    assert {("prove",), ("data", "fetch"), ("bench", "train"), ("experiment", "ablation-k")} \
        <= set(leaves) and ("data",) not in leaves
    assert "report" in missing_subcommands([["prove"]])
    assert "report" in missing_subcommands([["report"]])  # its PATH is missing: not a use
    assert "report" not in missing_subcommands([["report", "runs/x"]])
