"""000's MNIST suite on real Fashion-MNIST garments: the same networks, perturbations (R, T,
S), schedules and evaluation as :mod:`models.suites.mnist`, on another real data set.

Beyond the papers: does STN-C1's failure to rotate, and the advantage of transforming the
input, hold on a second real data set with texture? The data are Debian's
``dataset-fashion-mnist`` (``stnlab data fetch fashion-mnist``, hash-checked,
:mod:`models.data.fashion`), or the four Fashion-MNIST IDX files of ``--data DIR``. The
(T) / (S) clutter fragments are cut from Fashion-MNIST training images, as 000 cuts them
from MNIST's. Not a stand-in: real images, named as Fashion-MNIST in every result.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import DataSource
from .mnist import MnistSuite, _read_idx_dir, load_data

__all__ = ["SUITE", "FashionSuite"]


class FashionSuite(MnistSuite):
    """000's five (R/T/S) networks on Fashion-MNIST (60k / 10k)."""

    name = "fashion"
    summary = ("beyond 000: the MNIST suite's networks and R/T/S perturbations on real "
               "Fashion-MNIST garments (Debian's dataset-fashion-mnist)")

    def check_source(self, source: DataSource) -> None:
        if source.kind == "standin":
            raise ConfigError("--data standin: the fashion suite trains on Fashion-MNIST itself "
                              "(cached by `stnlab data fetch fashion-mnist`, or the IDX files "
                              "of --data DIR); it has no stand-in")

    def load_data(self, variant: str, cfg, source: DataSource) -> tuple:
        from ..data.fashion import load_fashion

        self.check_source(source)
        if source.kind == "official":
            arrays = _read_idx_dir(source.path)
        else:
            arrays = (*load_fashion("train60k"), *load_fashion("test"))
        return load_data(variant, cfg.device, train_digits=cfg.train_digits,
                         test_digits=cfg.test_digits, arrays=arrays)


    def report(self, suite_dir) -> list[str]:
        return ["**Data: real Fashion-MNIST** (Debian's dataset-fashion-mnist). The columns "
                "labelled *paper* are 000's numbers **for MNIST**, shown for scale only: 000 "
                "reports no Fashion-MNIST result.", ""] + super().report(suite_dir)


SUITE = FashionSuite()
