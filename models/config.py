"""The training configuration: :class:`TrainConfig` and the scale names.

A config fixes everything that determines a run; presets per scale are the suite's
(:func:`models.suites.mnist.preset` for MNIST). It validates names against the MNIST
networks (the MNIST suite's); every other suite (fashion, svhn, plankton, gtsrb, cub)
brings its own frozen
dataclass with the same fields the loop reads (``seeds``, ``batch_size``, ``total_steps``,
``lr_at``, ``device``, ``method``, ``vmap``, ``log_every``, ``checkpoint_every``,
``variant``, ``net``, ``scale``, ``to_json`` / ``from_json``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import sampling
from .errors import ConfigError

from .mnist_nets import NETS, VARIANT_SHAPES
from .precision import Precision

__all__ = ["TrainConfig", "SCALES", "default_vmap", "ConfigJSON", "check_seeds", "check_ints",
           "check_numbers", "check_device", "check_overrides"]

SCALES = ("smoke", "small", "medium", "paper")


def default_vmap(device: str, variant: str, net: str) -> bool:
    """Whether a multi-seed run vmaps its seeds on ``device``, chosen by measurement.

    * CPU: never. Seed by seed was faster for every network measured at 3 seeds
      (benchmarks/README.md, Zen 5, fp32: S / CNN 2.56x, T / STN-C1 2.19x, S / STN-C0
      1.32x, R / STN-C0 1.13x): the vmapped convolution becomes one grouped convolution
      whose backward and layout copies dominate.
    * GPU (H100, results/gpu-h100/train-throughput-modes.md, 10 seeds x 256): vmap for
      (R) and (T), except (T) CNN (sequential 34 vs 57 min per 70k-step run); seed by
      seed for every (S) network (1.7-2x faster at 112x112).

    Both give the same parameters to float tolerance (tests/models/test_train.py).
    """
    if str(device) == "cpu":
        return False
    return not (variant == "S" or (variant == "T" and net == "CNN"))


# --------------------------------------------------------------------------------------
# Checks every suite's config shares (TrainConfig here; CubConfig, GtsrbConfig, DeepConfig
# in models/suites/): one wording for every message, one place to fix.
# --------------------------------------------------------------------------------------
def check_overrides(config_cls, keys, fn: str = "preset", *,
                    label: str = "unknown config keys") -> None:
    """Refuse override ``keys`` that ``config_cls`` (a dataclass) has no field for, in one
    line naming them and the known ones (every suite's ``preset``).

    Raises:
        ConfigError: ``"{fn}: {label} [...]; known: [...]"``.
    """
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(f"{fn}: {label} {unknown}; known: {sorted(known)}")


def check_seeds(cfg, fn: str) -> None:
    """``cfg.seeds`` as a tuple of distinct ints >= 0 (set on the frozen ``cfg``)."""
    seeds = tuple(cfg.seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{fn}: expected seeds to be distinct ints >= 0, got {cfg.seeds!r}")
    object.__setattr__(cfg, "seeds", seeds)


def check_ints(cfg, names, *, lo: int, fn: str, optional: bool = False) -> None:
    """Each of ``names`` is an int >= ``lo`` (or None when ``optional``)."""
    for name in names:
        v = getattr(cfg, name)
        if optional and v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            what = f"None or an int >= {lo}" if optional else f"an int >= {lo}"
            raise ConfigError(f"{fn}: expected {name} to be {what}, got {v!r}")


def check_numbers(cfg, names, *, fn: str, allow_zero: bool = False) -> None:
    """Each of ``names`` is a finite number > 0 (>= 0 with ``allow_zero``)."""
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                or (v == 0 and not allow_zero):
            raise ConfigError(f"{fn}: expected {name} to be a finite number "
                              f"{'>= 0' if allow_zero else '> 0'}, got {v!r}")


def check_device(cfg, fn: str) -> None:
    if not (cfg.device == "cpu" or str(cfg.device).startswith("cuda")):
        raise ConfigError(f"{fn}: expected device 'cpu' or 'cuda[:i]', got {cfg.device!r}")


class ConfigJSON:
    """``to_json`` / ``from_json`` of a frozen config dataclass with a ``seeds`` tuple
    (unknown keys fail loudly)."""

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_json(cls, d: dict):
        d = dict(d)
        d["seeds"] = tuple(d["seeds"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig(ConfigJSON):
    """Everything that determines a run (000 App. A.1 at ``scale="paper"``).

    Attributes:
        variant: ``"R"``, ``"T"`` or ``"S"``.
        net: one of :data:`models.mnist_nets.NETS`.
        scale: preset name the config came from (``"smoke"``, ``"small"``, ``"paper"``).
        seeds: one run trains all these seeds (stacked, vmapped).
        batch_size: images per step and seed.
        iters: steps at the initial learning rate.
        iters_low: further steps at ``lr * lr_drop``.
        lr: initial learning rate (plain SGD, no momentum, no weight decay).
        train_digits: use only the first ``train_digits`` training digits (None: all 60k).
        test_digits: use only the first ``test_digits`` test digits (None: all 10k).
        test_perturb: fixed perturbations per test digit (000: 10).
        test_seed: seed of the fixed test perturbations.
        eval_batch: test images per forward pass.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        log_every: steps between log lines.
        method: ST sampler (``"bilinear"``, ``"linearized"``, ``"multiscale"``).
        padding_mode: ``"border"`` (000 App. A.1) or ``"zeros"``.
        device: ``"cpu"`` or ``"cuda"``; data are generated on this device.
        vmap: train the seeds with ``torch.func.vmap`` (else one after another). The
            presets choose it per device by measurement (:func:`default_vmap`).
        precision: how the training step runs, one of :data:`models.precision.PRECISIONS`
            (``"fp32"``, the default, reproduces earlier runs exactly; the bf16 modes keep
            fp32 master weights). Evaluation always runs in fp32.
    """

    variant: str
    net: str
    scale: str = "custom"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 256
    iters: int = 50_000
    iters_low: int = 20_000
    lr: float = 0.02
    lr_drop: float = 0.1
    train_digits: int | None = None
    test_digits: int | None = None
    test_perturb: int = 10
    test_seed: int = 0
    eval_batch: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 100
    method: str = "bilinear"
    padding_mode: str = "border"
    device: str = "cpu"
    vmap: bool = True
    precision: str = "fp32"

    def __post_init__(self):
        fn = "TrainConfig"
        if self.variant not in VARIANT_SHAPES:
            raise ConfigError(f"{fn}: expected variant in {list(VARIANT_SHAPES)}, got "
                             f"{self.variant!r}")
        if self.net not in NETS:
            raise ConfigError(f"{fn}: expected net (architecture) in {list(NETS)}, got "
                             f"{self.net!r}")
        check_seeds(self, fn)
        check_ints(self, ("batch_size", "test_perturb", "eval_batch", "checkpoint_every",
                     "log_every"), lo=1, fn=fn)
        check_ints(self, ("iters", "iters_low"), lo=0, fn=fn)
        if self.iters + self.iters_low < 1:
            raise ConfigError(f"{fn}: expected iters + iters_low >= 1, got 0")
        check_ints(self, ("train_digits", "test_digits"), lo=1, fn=fn, optional=True)
        check_numbers(self, ("lr", "lr_drop"), fn=fn)
        if self.method not in sampling.METHODS:
            raise ConfigError(f"{fn}: expected method in {list(sampling.METHODS)}, got "
                             f"{self.method!r}")
        if self.padding_mode not in ("border", "zeros"):
            raise ConfigError(f"{fn}: expected padding_mode 'border' or 'zeros', got "
                             f"{self.padding_mode!r}")
        if not isinstance(self.vmap, bool):
            raise ConfigError(f"{fn}: expected vmap to be True or False, got {self.vmap!r}")
        object.__setattr__(self, "precision", Precision.parse(self.precision, fn=fn).value)
        check_device(self, fn)

    @property
    def total_steps(self) -> int:
        return self.iters + self.iters_low

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        return self.lr if step < self.iters else self.lr * self.lr_drop
