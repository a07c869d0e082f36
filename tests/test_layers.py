"""The dependency graph: no upward import between packages, no import circle, one warp.

Ranks (lower may not import higher; equal ranks of different packages may not import each
other): sampling 0; invariance, models 1; figures 2; proofs 3. Every ``import`` counts,
at module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"sampling": 0, "invariance": 1, "models": 1, "figures": 2, "proofs": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in RANK for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (resolved to the longest known module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")
                up = up[: len(up) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def upward(g) -> list[str]:
    bad = []
    for m, deps in g.items():
        a = m.split(".")[0]
        for d in deps:
            b = d.split(".")[0]
            if a != b and RANK[b] >= RANK[a]:
                bad.append(f"{m} -> {d}")
    return sorted(bad)


def circles(g) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _without_package_inits(g):
    # ``pkg/__init__.py`` re-exporting its submodules is not a circle of dependencies.
    return {m: {d for d in deps if not (m.startswith(d + ".") and (ROOT / d.replace(".", "/")
                                                                   / "__init__.py").exists())}
            for m, deps in g.items()}


def test_no_upward_import():
    assert upward(graph()) == []


def test_no_import_circle():
    assert circles(_without_package_inits(graph())) == []


def test_the_checks_can_fail():
    g = {"sampling.a": {"models.b"}, "models.b": {"models.c"}, "models.c": {"models.b"}}
    assert upward(g) == ["sampling.a -> models.b"]
    assert circles(g) == [["models.b", "models.c"]]
    assert upward({"models.x": {"invariance.y"}}) == ["models.x -> invariance.y"]


_RAW_WARP = re.compile(r"\bF\.(affine_grid|grid_sample)\s*\(")


@pytest.mark.parametrize("pkg", ["models", "invariance"])
def test_no_raw_warp_outside_sampling(pkg):
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / pkg).rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if _RAW_WARP.search(line)]
    assert hits == []


def test_the_warp_grep_can_fail():
    assert _RAW_WARP.search("out = F.grid_sample(x, grid)")
    assert _RAW_WARP.search("g = F.affine_grid(theta, size)")
    assert not _RAW_WARP.search("sampling.warp_affine(x, theta)")
