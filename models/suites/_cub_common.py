"""What the CUB suite's two stand-in generations share (:mod:`models.suites.cub` and
:mod:`models.suites._cub_v2`): the net names and their specs, the localization metric keys,
the seed summaries and the report's percent cell. Kept apart so neither module imports the
other (``tests/test_layers.py``: no import cycle)."""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from ..errors import ConfigError
from ..runio import NOT_FINITE, pct

#: 004's lambda of the CSTN it reports (Table III's best row), alpha = 1 (004 does not give
#: its alpha; it says alpha "can vary in a range of values").
LAMBDA_DEFAULT = 1e-4
ALPHA_DEFAULT = 1.0
NETS = ("CSTN", "CSTN-lam0", "CSTN-lam1e-5", "CSTN-lam1e-3", "CSTN-lam1e-2", "CSTN-fine",
        "CSTN-coarse", "no-CSTN", "CAM")
#: ``--net all`` per scale: ``small`` the main comparisons, ``medium`` the full sweep.
NETS_BY_SCALE = {
    "smoke": ("CSTN", "no-CSTN", "CAM"),
    "small": ("CSTN", "CSTN-lam0", "no-CSTN", "CAM"),
    "medium": NETS,
    "paper": NETS,
}
_LAM_RE = re.compile(r"^CSTN-lam(.+)$")


def fine_share(net: str, level_share: dict) -> float:
    """The fraction of ``net``'s MAP boxes on the fine pyramid level, from a run's
    ``level_share`` (keyed by the index into the network's levels,
    :func:`models.cstn.net_levels`: CSTN-coarse's index 0 is the coarse level)."""
    from ..cstn import net_levels

    levels = net_levels(net)
    return float(sum(v for k, v in level_share.items() if levels[int(k)] == 0))


def net_spec(net: str) -> dict:
    """``{"build": name for models.cstn.build, "lam": float | None}`` of a suite net name.

    Raises:
        ConfigError: not a suite net name.
    """
    if net in ("CSTN", "CSTN-fine", "CSTN-coarse"):
        return {"build": net, "lam": LAMBDA_DEFAULT}
    if net in ("no-CSTN", "CAM"):
        return {"build": net, "lam": None}
    m = _LAM_RE.match(net) if isinstance(net, str) else None
    if m:
        try:
            lam = float(m.group(1))
        except ValueError:
            lam = float("nan")
        if math.isfinite(lam) and lam >= 0:
            return {"build": "CSTN", "lam": lam}
    raise ConfigError(f"net_spec: expected net in {list(NETS)} or 'CSTN-lam<float >= 0>', "
                      f"got {net!r}")


_LOC_KEYS = ("top1_cls", "top1_loc", "gt_known_loc", "gt_known_top5_loc")


def _mean_std(xs: list[float]) -> dict:
    t = torch.tensor(xs, dtype=torch.float64)
    return {"per_seed": xs, "mean": float(t.mean()),
            "std": float(t.std(unbiased=True)) if len(xs) > 1 else 0.0}


def _denorm_uint8(x: torch.Tensor) -> np.ndarray:
    from ..data.cub import IMAGENET_MEAN, IMAGENET_STD

    m = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return ((x.float().cpu() * s + m).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _pct(ms: dict | None) -> str:
    if not ms:
        return "–"
    s = pct(ms["mean"], unit="")
    if len(ms["per_seed"]) > 1 and s != NOT_FINITE:
        s += f" ± {pct(ms['std'], unit='')}"
    return s


def untransformed_summary(per_seed: list[dict]) -> dict:
    """A CSTN run's receptive-field-box metrics and box areas, summarised over its seeds
    (both stand-in generations' ``evaluate``)."""
    return {"untransformed": {k: _mean_std([r["untransformed"][k] for r in per_seed])
                              for k in _LOC_KEYS},
            "untransformed_box_area": _mean_std([r["box_area"]["untransformed_mean"]
                                                 for r in per_seed]),
            "gt_box_area": per_seed[0]["box_area"]["gt_mean"]}
