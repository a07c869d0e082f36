"""Dataset code: MNIST (:mod:`.mnist`, :mod:`.idx`) and its perturbed variants (:mod:`.perturb`).

Drivers load data here and pass tensors down; nothing in ``sampling`` or
``invariance`` imports this package.
"""

from .mnist import (DataError, default_cache_dir, fetch_mnist, load_mnist, mnist_info,
                    verify_mnist)
from .perturb import CANVAS, VARIANTS, PerturbedBatch, PerturbedMNIST, perturb

__all__ = [
    "DataError",
    "default_cache_dir",
    "fetch_mnist",
    "load_mnist",
    "mnist_info",
    "verify_mnist",
    "CANVAS",
    "VARIANTS",
    "PerturbedBatch",
    "PerturbedMNIST",
    "perturb",
]
