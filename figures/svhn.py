"""Figures of the svhn suite: 000 Fig. 7 (:mod:`figures.deep`) at the suite's depths."""

from __future__ import annotations

from figures import deep
from models.record import SuiteRecord

__all__ = ["draw_suite"]


def draw_suite(suite: SuiteRecord, out_dir) -> dict[str, tuple[str, str]]:
    """Every figure of the suite into ``out_dir``; ``{name: (path, caption)}``."""
    from models.suites import get_suite

    return deep.draw_suite(suite, out_dir, depths=get_suite("svhn").fig7_depths)
