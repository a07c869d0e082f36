"""Sampler names exist once (sampling.registry); every other list of them reads it."""

from __future__ import annotations

from sampling import registry


def test_every_list_of_sampler_names_reads_the_registry():
    import figures.style as style
    from models import gtsrb_nets
    from proofs import bench
    from proofs.claims import emp3
    from proofs.experiments import samplers as exp

    names = registry.names()
    assert gtsrb_nets.SAMPLERS == ("bilinear", "multiscale", "linearized")  # Table 1's order
    assert set(gtsrb_nets.SAMPLERS) == set(names)
    assert emp3.SAMPLERS is gtsrb_nets.SAMPLERS
    assert exp.METHODS == names
    assert list(bench._samplers(2, 0)) == [*names, "gathers_only"]
    assert set(style.METHOD_LABELS) == set(names)
    # style only: every registered sampler has its colour and line style
    assert set(style.METHOD_COLORS) == set(names) == set(style.METHOD_LINESTYLES)
