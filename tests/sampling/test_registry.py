"""The sampler registry: one name -> implementation table that grid_sample dispatches on."""

from __future__ import annotations

import pytest
import torch

import sampling
from sampling import registry
from sampling.api import grid_sample


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 6, 6, generator=g), torch.rand(2, 3, 3, 2, generator=g) * 2 - 1


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry, restored after the test (entries added here do not leak)."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    return registry


def test_unknown_name_gives_one_line_listing_the_known_ones():
    x, grid = _inputs()
    with pytest.raises(registry.UnknownSamplerError) as e:
        grid_sample(x, grid, method="bicubic")
    msg = str(e.value)
    assert "\n" not in msg and "'bicubic'" in msg
    assert all(repr(n) in msg for n in ("bilinear", "linearized", "multiscale")), msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(registry.UnknownSamplerError, match="known samplers"):
        registry.get(None)


def test_methods_are_the_registry():
    assert sampling.METHODS == registry.names() == tuple(registry.SAMPLERS)
    assert registry.names() == ("bilinear", "linearized", "multiscale")
    assert registry.names(first=("multiscale",)) == ("multiscale", "bilinear", "linearized")
    with pytest.raises(registry.UnknownSamplerError):
        registry.names(first=("bicubic",))


def test_a_name_without_an_implementation_cannot_be_registered(scratch_registry):
    with pytest.raises(TypeError, match="callable"):
        scratch_registry.register("nearest", None)
    with pytest.raises(ValueError, match="already registered"):
        scratch_registry.register("bilinear", lambda *a, **k: None)
    with pytest.raises(TypeError):  # read-only view: only register() adds names
        scratch_registry.SAMPLERS["nearest"] = None
    assert "nearest" not in scratch_registry.names()


def test_a_registered_sampler_runs_its_own_implementation(scratch_registry):
    """The old if/elif ran multiscale for any name it did not know."""
    calls = []

    def nearest(input, grid, *, align_corners, padding_mode):
        calls.append(padding_mode)
        return torch.nn.functional.grid_sample(input, grid, mode="nearest",
                                               align_corners=align_corners,
                                               padding_mode=padding_mode)

    scratch_registry.register("nearest", nearest, takes_options=False)
    x, grid = _inputs()
    out = grid_sample(x, grid, method="nearest")
    assert calls == ["zeros"]
    ref = torch.nn.functional.grid_sample(x, grid, mode="nearest", align_corners=False)
    assert torch.equal(out, ref)
    with pytest.raises(ValueError, match="takes no options"):
        grid_sample(x, grid, method="nearest", num_samples=3)
