"""Experiment suites: the :class:`Suite` protocol and the registry ``stnlab train`` uses.

A suite is one paper's experiment: its networks by name, its data by scale, its train-step
hooks, its evaluation and its report table beside the paper's numbers. The training loop
(:mod:`models.train`) and the command line (:mod:`models.cli`) know suites only through
this protocol.

**A new suite is one new module** ``models/suites/<name>.py`` that defines ``SUITE`` (an
object satisfying :class:`Suite`); :func:`suites` finds it (no list to edit). A module
here that fails to import is an error, never a silently missing suite; two modules
claiming one name is an error.

Data come from exactly one :class:`DataSource`: the suite's default (MNIST: the cached
official files), an official directory (``--data DIR``), or a named stand-in
(``--data standin``), which the suite names in every result. Nothing falls back to a
stand-in silently.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch.nn.functional as F

__all__ = ["Suite", "DataSource", "TrainHooks", "suites", "get_suite", "discover",
           "UnknownSuite"]


class UnknownSuite(ValueError):
    """A suite name that no module of ``models/suites/`` defines."""


@dataclass(frozen=True)
class DataSource:
    """Where a suite's data come from.

    Attributes:
        kind: ``"default"`` (the suite's own official source, e.g. cached MNIST),
            ``"official"`` (a directory in the data set's official layout) or
            ``"standin"`` (the suite's named stand-in, only when asked for).
        path: the directory for ``"official"``, else None.
    """

    kind: str = "default"
    path: Path | None = None

    def __post_init__(self):
        if self.kind not in ("default", "official", "standin"):
            raise ValueError(f"DataSource: expected kind 'default', 'official' or 'standin', "
                             f"got {self.kind!r}")
        if (self.kind == "official") != (self.path is not None):
            raise ValueError(f"DataSource: expected a path exactly for kind 'official', got "
                             f"kind {self.kind!r} with path {self.path!r}")

    @classmethod
    def parse(cls, value: str | None) -> "DataSource":
        """``None`` -> default, ``"standin"`` -> stand-in, anything else -> a directory.

        Raises:
            NotADirectoryError: ``value`` names no directory.
        """
        if value is None:
            return cls()
        if value == "standin":
            return cls("standin")
        p = Path(value).expanduser()
        if not p.is_dir():
            raise NotADirectoryError(f"--data: expected a directory in the data set's "
                                     f"official layout or 'standin', got {value!r}")
        return cls("official", p)

    def describe(self) -> str:
        return {"default": "default", "standin": "stand-in"}.get(self.kind, str(self.path))


@dataclass(frozen=True)
class TrainHooks:
    """What a suite changes in the training step (functional: it runs under ``vmap``).

    Attributes:
        loss: ``loss(output, labels) -> scalar``; ``output`` is what the network returns.
        optimizer: None (plain SGD at ``cfg.lr_at(step)``, ``p - lr * g``) or a functional
            optimizer with ``init(params) -> state`` and ``update(params, grads, state, lr)
            -> (params, state)`` (e.g. :class:`models.optim.MomentumSGD`,
            :class:`models.optim.Adam`) for the vmapped functional step; its state is
            checkpointed with the run.
        module_optimizer: ``None``, or ``module_optimizer(cfg, module) ->
            torch.optim.Optimizer``: then the run trains one stateful module per seed
            (buffers such as batch norm allowed) with that optimizer, its state checkpointed
            (:mod:`models.module_loop`).
        predict: ``predict(output) -> (B,)`` predicted classes for the running train error
            of the module loop (default: ``output.argmax(-1)``).
        early_stopping: ``None`` or a :class:`models.optim.EarlyStopping`; then
            ``validate`` is required.
        validate: ``validate(base, params, train_data) -> (S,)`` validation error per
            seed (``params`` stacked), called every ``early_stopping.every`` steps.
        exact_conv_ties: run the step's CPU float32 convolutions on ATen's im2col path
            (:func:`models.core.tie_exact_convolutions`: exact max-pool ties over
            constant backgrounds, so vmapped and per-seed steps agree on every CPU).
            A suite whose inputs have no constant regions and that never vmaps may set
            False and keep oneDNN's convolutions (gtsrb: 2x faster 7x7 convs).
    """

    loss: Callable[[Any, Any], Any] = field(default=F.cross_entropy)
    optimizer: Any = None
    module_optimizer: Callable[[Any, Any], Any] | None = None
    predict: Callable[[Any], Any] = field(default=lambda out: out.argmax(-1))
    early_stopping: Any = None
    validate: Callable | None = None
    exact_conv_ties: bool = True

    def __post_init__(self):
        if (self.early_stopping is None) != (self.validate is None):
            raise ValueError("TrainHooks: expected early_stopping and validate together, got "
                             f"early_stopping={self.early_stopping!r}, "
                             f"validate={self.validate!r}")


@runtime_checkable
class Suite(Protocol):
    """One paper's experiment, as the loop and the command line see it.

    Attributes:
        name: the ``--suite`` name (``"mnist"``).
        summary: one line for ``stnlab train --list-suites``.
        variants: data variants, the first level of the run layout (MNIST: R, T, S).
        nets: network names, the papers' own (``CNN``, ``STN-C0``, ...).
        scales: scale names the suite has presets for.
    """

    name: str
    summary: str
    variants: tuple[str, ...]
    nets: tuple[str, ...]
    scales: tuple[str, ...]

    def default_seeds(self, scale: str) -> int:
        """Seeds trained together when ``--seeds`` is not given."""

    def preset(self, scale: str, variant: str, net: str, **overrides):
        """The run's config (a frozen dataclass, see :mod:`models.config`)."""

    def build(self, cfg):
        """A fresh network for ``cfg`` (``cfg.variant``, ``cfg.net``, sampler options)."""

    def param_counts(self) -> dict:
        """``{variant: {net: parameters}}``."""

    def params_table(self, counts: dict) -> str:
        """Markdown table of ``counts`` beside the paper's."""

    def check_source(self, source: DataSource) -> None:
        """Raise a ``ValueError`` if the suite cannot read ``source`` (before any work)."""

    def load_data(self, variant: str, cfg, source: DataSource) -> tuple:
        """``(train, test)``: ``train.train_batches(batch_size, generators) -> (x, y)``,
        ``test`` as :meth:`evaluate` reads it."""

    def hooks(self, cfg) -> TrainHooks:
        """The train-step hooks for ``cfg``."""

    def evaluate(self, cfg, base, params: dict, test_data) -> dict:
        """``{"summary": {...}, "fig_data": {...}, "gallery": {name: array}}``."""

    def report(self, suite_dir) -> list[str]:
        """Markdown lines: the suite's tables, ours beside the paper's."""

    # Optional (read with getattr, so not part of the Protocol's runtime check):
    # ``stops_on_collapse`` (default True: a collapsed ST stops the run; False: recorded)
    # and ``chance_error(train_data) -> float`` (default 0.9, 10 classes: the running
    # training error of guessing, for the collapse watch; models.collapse).


_REGISTRY: dict[str, Suite] | None = None


def suites() -> dict[str, Suite]:
    """``{name: suite}`` of every module in ``models/suites/`` (imported once).

    Raises:
        ImportError: a suite module fails to import (never skipped).
        ValueError: a module defines no ``SUITE``, or two define the same name.
    """
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = discover(__path__, __name__)
    return _REGISTRY


def discover(path, package: str) -> dict[str, Suite]:
    """``{name: SUITE}`` of every public module of the package ``package`` at ``path``.

    Raises:
        ImportError: a module fails to import.
        ValueError: a module defines no ``SUITE``, or two define the same name.
    """
    found: dict[str, Suite] = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{package}.{info.name}")
        s = getattr(mod, "SUITE", None)
        if not isinstance(s, Suite):
            raise ValueError(f"models.suites: expected {mod.__name__}.SUITE to be a Suite, "
                             f"got {type(s).__name__}")
        if s.name in found:
            raise ValueError(f"models.suites: suite {s.name!r} is defined twice "
                             f"({mod.__name__})")
        found[s.name] = s
    return found


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        UnknownSuite: no such suite (the message lists those there are).
    """
    all_ = suites()
    if name not in all_:
        raise UnknownSuite(f"expected --suite in {sorted(all_)}, got {name!r}")
    return all_[name]
