"""A small AST mutation tester: does a module's own test file notice a one-expression change?

Each mutant changes exactly one node of the module's AST:

* arithmetic operators: ``+ <-> -``, ``* <-> /``, ``** -> *``, ``// -> /``, ``% -> //``
  (also in augmented assignments ``+=`` ...);
* comparisons: ``< <-> <=``, ``> <-> >=``, ``== <-> !=``, ``is <-> is not``,
  ``in <-> not in``; boolean ``and <-> or``;
* numeric constants ``c -> c + 1`` and ``c -> c - 1`` (booleans excluded);
* ``True <-> False``;
* a unary minus dropped (``-x -> x``), ``not x -> x``;
* the first two positional arguments of a call swapped.

Nodes inside f-strings (error messages) and docstrings are not mutated. For each mutant
the mutated module is written into a scratch copy of the repository and the module's test
file runs there (``pytest -x -q -p no:randomly -p no:cacheprovider -p no:xdist``) under a
per-mutant timeout; a failing or timed-out run kills the mutant. Survivors are printed as
``file:line  description`` for a human to judge (equivalent mutant, or a missing test).

Usage (from the repository root)::

    python benchmarks/mutate.py sampling/geometry.py tests/sampling/test_geometry.py \
        --sample 80 --seed 0 [--function invert --function _singular] [--timeout 120]

``--function`` restricts the mutants to the named top-level functions/classes (e.g. the
eager path of ``sampling/linearized.py``). ``--list`` prints the mutants without running.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
               ast.Pow: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv}
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
             ast.In: ast.NotIn, ast.NotIn: ast.In}
_BOOL_SWAP = {ast.And: ast.Or, ast.Or: ast.And}


def _protected(tree: ast.AST) -> set[int]:
    """ids of nodes that must not be mutated: f-strings and docstrings, with their children."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.update(id(n) for n in ast.walk(body[0]))
    return out


def _scope_nodes(tree: ast.Module, functions: list[str] | None) -> list[ast.AST]:
    if not functions:
        return list(ast.walk(tree))
    roots = [n for n in tree.body if getattr(n, "name", None) in functions]
    missing = set(functions) - {n.name for n in roots}
    if missing:
        raise SystemExit(f"mutate: no top-level function/class named {sorted(missing)}")
    return [n for r in roots for n in ast.walk(r)]


def mutants(source: str, functions: list[str] | None = None) -> list[tuple[int, int, str]]:
    """All mutants of ``source``: ``(node index in ast.walk order, variant, description)``."""
    tree = ast.parse(source)
    protected = _protected(tree)
    allowed = {id(n) for n in _scope_nodes(tree, functions)}
    out = []
    for idx, node in enumerate(ast.walk(tree)):
        if id(node) in protected or id(node) not in allowed:
            continue
        line = getattr(node, "lineno", 0)
        for variant, desc in _variants(node):
            out.append((idx, variant, f"{line}: {desc}"))
    return out


def _variants(node: ast.AST) -> list[tuple[int, str]]:
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP_SWAP:
        return [(0, f"{type(node.op).__name__} -> {_BINOP_SWAP[type(node.op)].__name__}")]
    if isinstance(node, ast.Compare):
        return [(i, f"{type(op).__name__} -> {_CMP_SWAP[type(op)].__name__}")
                for i, op in enumerate(node.ops) if type(op) in _CMP_SWAP]
    if isinstance(node, ast.BoolOp):
        return [(0, f"{type(node.op).__name__} -> {_BOOL_SWAP[type(node.op)].__name__}")]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return [(0, f"{node.value} -> {not node.value}")]
        if isinstance(node.value, (int, float)):
            return [(0, f"{node.value!r} -> {node.value!r} + 1"),
                    (1, f"{node.value!r} -> {node.value!r} - 1")]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        return [(0, f"drop unary {type(node.op).__name__}")]
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(
            isinstance(a, ast.Starred) for a in node.args[:2]):
        return [(0, f"swap first two arguments of {ast.unparse(node.func)}(...)")]
    return []


def apply(source: str, target: int, variant: int) -> str:
    """Source of the mutant ``(target, variant)`` (see :func:`mutants`)."""
    tree = ast.parse(source)
    node = list(ast.walk(tree))[target]
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        node.op = _BINOP_SWAP[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[variant] = _CMP_SWAP[type(node.ops[variant])]()
    elif isinstance(node, ast.BoolOp):
        node.op = _BOOL_SWAP[type(node.op)]()
    elif isinstance(node, ast.Constant):
        node.value = (not node.value) if isinstance(node.value, bool) else (
            node.value + 1 if variant == 0 else node.value - 1)
    elif isinstance(node, ast.UnaryOp):
        _replace(tree, node, node.operand)
    elif isinstance(node, ast.Call):
        node.args[0], node.args[1] = node.args[1], node.args[0]
    else:  # pragma: no cover - mutants() only yields the kinds above
        raise ValueError(f"apply: expected a mutable node, got {type(node).__name__}")
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return
    raise ValueError("apply: node to replace not found")


def _run_tests(root: Path, test_file: str, timeout: float) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p",
           "no:cacheprovider", "-p", "no:xdist", test_file]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    return ("passed" if r.returncode == 0 else "failed"), time.perf_counter() - t0


class _ForkRunner:
    """Run the test file in a forked child of a process that has already imported the heavy
    dependencies (torch, NumPy, SciPy, hypothesis, pytest): each mutant then pays for its
    tests only, not for ~5 s of interpreter start and imports. The parent never imports the
    project, so every child imports the (mutated) module fresh from the scratch copy; no
    bytecode is written, so a rewritten file is never shadowed by a stale ``.pyc``."""

    def __init__(self, root: Path, test_file: str):
        self.root, self.test_file = root, test_file
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.chdir(root)
        sys.path.insert(0, str(root))
        import hypothesis  # noqa: F401, PLC0415 - warm imports shared by every child
        import numpy  # noqa: F401, PLC0415
        import pytest  # noqa: F401, PLC0415
        import scipy.stats  # noqa: F401, PLC0415
        import torch  # noqa: F401, PLC0415

    def __call__(self, timeout: float) -> tuple[str, float]:
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: run the tests quietly, exit with pytest's code
            code = 3
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                import pytest  # noqa: PLC0415

                code = int(pytest.main(["-x", "-q", "-p", "no:randomly", "-p",
                                        "no:cacheprovider", "-p", "no:xdist", self.test_file]))
            finally:
                os._exit(code)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                return ("passed" if code == 0 else "failed"), time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return "timeout", time.perf_counter() - t0
            time.sleep(0.02)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("module", help="module file, relative to the repository root")
    p.add_argument("tests", help="its test file, relative to the repository root")
    p.add_argument("--sample", type=int, default=None, help="run N mutants drawn at random")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--function", action="append", default=None,
                   help="restrict to this top-level function/class (repeatable)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per mutant (default: 3 x the clean run + 10)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--subprocess", action="store_true",
                   help="a fresh interpreter per mutant instead of a fork of a warm one "
                        "(slower; for platforms without os.fork)")
    p.add_argument("--survivors-from", default=None, metavar="LOG",
                   help="rerun only the survivors listed in an earlier run's output (after "
                        "new tests; the module itself must be unchanged)")
    args = p.parse_args(argv)

    repo = Path.cwd()
    source = (repo / args.module).read_text()
    todo = mutants(source, args.function)
    total = len(todo)
    if args.sample is not None and args.sample < total:
        todo = sorted(random.Random(args.seed).sample(todo, args.sample))
    if args.survivors_from:
        prefix = f"  survivor {args.module}:"
        old = {line[len(prefix):].rstrip("\n") for line in open(args.survivors_from)
               if line.startswith(prefix)}
        todo = [t for t in todo if t[2] in old]  # (a description shared by two nodes: both)
        missing = old - {t[2] for t in todo}
        if missing:
            raise SystemExit(f"mutate: {len(missing)} earlier survivors not found "
                             "(was the module edited?)")
    if args.list:
        for _, _, desc in todo:
            print(f"{args.module}:{desc}")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(repo, root, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "results", "*.egg-info", ".hypothesis"))
        target = root / args.module
        if args.subprocess or not hasattr(os, "fork"):
            def run(t):
                return _run_tests(root, args.tests, t)
        else:
            run = _ForkRunner(root, args.tests)
        status, clean_s = run(1800)
        if status != "passed":
            print(f"mutate: the clean module fails its tests ({status}); nothing to measure")
            return 2
        timeout = args.timeout or 3 * clean_s + 10
        print(f"{args.module}: {total} mutants, running {len(todo)} (seed {args.seed}); "
              f"clean run {clean_s:.1f} s, timeout {timeout:.0f} s", flush=True)
        killed, survivors = 0, []
        try:
            for n, (idx, variant, desc) in enumerate(todo, 1):
                target.write_text(apply(source, idx, variant))
                status, _ = run(timeout)
                if status == "passed":
                    survivors.append(desc)
                    print(f"  [{n}/{len(todo)}] SURVIVED {args.module}:{desc}", flush=True)
                else:
                    killed += 1
        finally:
            target.write_text(source)
    ran = len(todo)
    print(f"{args.module}: killed {killed}/{ran} ({100 * killed / max(ran, 1):.1f} %), "
          f"survived {len(survivors)}")
    for desc in survivors:
        print(f"  survivor {args.module}:{desc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
