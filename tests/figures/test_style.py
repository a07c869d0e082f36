"""``figures.style``: the shared helpers (here: plain-number log axes)."""

from __future__ import annotations

import numpy as np
import pytest

from figures.style import new_figure, plain_log_axis, plt


def _labels(ax, *, minor: bool) -> list[str]:
    ax.figure.canvas.draw()
    ticks = ax.yaxis.get_minorticklabels() if minor else ax.yaxis.get_majorticklabels()
    lo, hi = ax.get_ylim()
    locs = ax.yaxis.get_minorticklocs() if minor else ax.yaxis.get_majorticklocs()
    return [t.get_text() for t, y in zip(ticks, locs) if lo <= y <= hi and t.get_text()]


@pytest.mark.parametrize("lo, hi", [(0.06, 2.3),   # a long run: 1.5 decades
                                    (0.2, 2.3),    # about one decade
                                    (0.9, 2.3),    # less than one
                                    (2.25, 2.31)])  # a smoke run: the loss barely moves
def test_log_axis_labels_are_plain_numbers(lo, hi):
    fig, axes = new_figure(1, 1, width=2.3, height=2.0)
    ax = axes[0, 0]
    ax.plot(np.arange(50), np.geomspace(hi, lo, 50))
    plain_log_axis(ax, "y")
    labels = _labels(ax, minor=False) + _labels(ax, minor=True)
    plt.close(fig)
    assert labels, "a log axis without one labelled tick cannot be read"
    for text in labels:  # '0.2', '1', '2.26' -- not '$\\mathdefault{2\\times10^{-1}}$'
        float(text.replace("\N{MINUS SIGN}", "-"))


def test_plain_log_axis_checks_which():
    fig, axes = new_figure(1, 1)
    with pytest.raises(ValueError, match=r"plain_log_axis: expected which to be 'x' or 'y', "
                                         r"got 'z'"):
        plain_log_axis(axes[0, 0], "z")
    plt.close(fig)
