"""Detecting an ST that has collapsed: its samples off the image, the classifier at chance.

The S / STN-C0 run that ended at 88 % test error at 5x ``small`` (issue 16) had its ST
zoomed out / drifted off the image (wave-1 evidence: only ~45 % of the sampling points
inside at lr 0.06). Training logs, per log interval and seed, two measures of the ST on
the current batch, and stops when both say "collapsed" for a stated window:

* ``inside_frac``: the fraction of the ST's output sampling points (the ``(h, w)`` output
  grid of the warped tensor, mapped by ``theta``) that land inside the warped tensor,
  ``|x| <= 1 and |y| <= 1`` in normalized coordinates (``align_corners=True``: -1 and 1
  are the centres of the edge pixels);
* ``log2_det``: the mean ``log2 |det A|`` of the linear part (0 at the identity, > 0
  zooming out, < 0 zooming in).

Thresholds (derived, not tuned on the failing run):

* :data:`INSIDE_THRESHOLD` = 0.5: a centred zoom-out by ``s`` keeps ``1 / s**2`` of the
  output inside, so below one half means a zoom-out beyond ``sqrt(2)`` (``log2_det > 1``)
  or a drift of more than half the field — most of what the classifier sees is padding.
  At the identity initialisation (000 App. A.1) it is 1.
* the running training error is "near chance" when it is at least
  ``chance - 3 * sqrt(chance * (1 - chance) / n)`` with ``chance`` the suite's
  (``CHANCE_ERROR = 0.9`` for 10 classes; SVHN's below) and ``n = log_every *
  batch_size`` the images of the log interval: not distinguishable from guessing at 3
  binomial standard deviations.
* the window: :func:`window_lines` consecutive log lines, 5 % of the run's steps (at least
  2 lines), so that one noisy interval never stops a run.

Which networks it watches: every network with an ST that the functional training loop
(:mod:`models.train`) trains -- the MNIST suite's and the deep suites' (000's SVHN and
PlanktonSet networks; judged by the one input-frame matrix of all their slots,
:func:`models.deep_stn.input_frame_theta`). The chance level is a suite's
(``Suite.chance_error(train_data)``, default :data:`CHANCE_ERROR`): 10 classes for MNIST
and the PlanktonSet stand-in (on the 121 real PlanktonSet classes it is below chance, so it
still only flags a network that is guessing). SVHN's running error is the mean over its
five heads, and the best constant prediction ("no digit" where that is the commonest
label) is right on most heads: its chance level is that constant predictor's error on the
training labels, :func:`constant_error` (0.58 on the stand-in; with 0.9 no SVHN run could
ever count as collapsed, and none did before 2026-12-01).

Stop or record: the MNIST suite stops a run whose ST collapsed (saving the rest of a long
run). The deep suites (``stops_on_collapse = False``) train every run to its end and
record each collapsed seed and its step in the metrics (:func:`collapse_steps`): their
tasks sit at chance error for the first hundreds of steps, so the watch there reduces to
the geometry, and at `medium` it stopped 3-seed PlanktonSet runs at step 80 of 720 (1 % to
49 % of one seed's points inside) -- a network's error with its collapsed seeds counted is
the honest result, as 000 reports its diverged runs.

Convention:
    ``theta (N, 2, 3)`` is ``input_from_output`` in normalized coordinates
    (``align_corners=True``), points ``(x, y)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["INSIDE_THRESHOLD", "CHANCE_ERROR", "chance_floor", "constant_error",
           "window_lines", "st_geometry", "CollapseWatch", "collapse_steps"]

#: Below this fraction of sampling points inside the warped tensor the ST counts as
#: "off the image" (derived: a centred zoom-out by sqrt(2) keeps exactly one half).
INSIDE_THRESHOLD = 0.5
#: Error of guessing among 10 classes.
CHANCE_ERROR = 0.9
#: Fraction of the run's steps the condition must hold for (see :func:`window_lines`).
WINDOW_FRACTION = 0.05


def chance_floor(n_images: int, chance: float = CHANCE_ERROR) -> float:
    """Lowest running error that is still "near chance" over ``n_images`` images.

    derived: ``chance - 3 * sqrt(chance * (1 - chance) / n)`` (3 binomial standard
    deviations; 0.9 for 10 classes). With several heads per image the ``n`` images are the
    unit, not the heads (correlated within an image): a wider band than per head.
    """
    if not 0.0 <= chance <= 1.0:
        raise ValueError(f"chance_floor: expected chance in [0, 1], got {chance!r}")
    return chance - 3 * math.sqrt(chance * (1 - chance) / max(1, n_images))


def constant_error(labels: torch.Tensor) -> float:
    """Error of the best constant prediction under the running error of the training loop
    (the mean over an image's label positions): per position, one minus the frequency of
    its commonest label, averaged over positions.

    Args:
        labels: ``(M,)`` or ``(M, P)`` integer labels (``P`` positions, e.g. SVHN's heads).
    """
    labels = torch.as_tensor(labels)
    if labels.ndim not in (1, 2) or labels.shape[0] == 0 or labels.is_floating_point():
        raise ValueError(f"constant_error: expected (M,) or (M, P) integer labels with M > 0, "
                         f"got {tuple(labels.shape)} {labels.dtype}")
    lab = labels.reshape(labels.shape[0], -1).long()
    top = [torch.bincount(lab[:, j] - lab[:, j].min()).max().item() for j in range(lab.shape[1])]
    return float(1.0 - sum(top) / (lab.shape[0] * lab.shape[1]))


def window_lines(total_steps: int, log_every: int) -> int:
    """Consecutive log lines the collapse must last: 5 % of the run, at least 2."""
    return max(2, math.ceil(WINDOW_FRACTION * total_steps / log_every))


@torch.no_grad()
def st_geometry(theta: torch.Tensor, out_hw: tuple[int, int]) -> tuple[float, float]:
    """``(inside_frac, mean log2 |det|)`` of ``theta (N, 2, 3)`` on an ``out_hw`` grid.

    Args:
        theta: ``input_from_output`` affine matrices, normalized coordinates.
        out_hw: the ST's output ``(h, w)``; its sampling points are the pixel centres
            ``linspace(-1, 1, w) x linspace(-1, 1, h)`` (``align_corners=True``).
    """
    theta = theta.detach().float()
    h, w = out_hw
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=theta.device),
                            torch.linspace(-1, 1, w, device=theta.device), indexing="ij")
    pts = torch.stack([xs.flatten(), ys.flatten(), torch.ones(h * w, device=theta.device)])
    mapped = theta @ pts  # (N, 2, h*w), (x, y) in the input
    inside = (mapped.abs() <= 1).all(dim=1).float().mean()
    det = theta[:, 0, 0] * theta[:, 1, 1] - theta[:, 0, 1] * theta[:, 1, 0]
    log2_det = torch.log2(det.abs().clamp_min(1e-12)).mean()
    return float(inside), float(log2_det)


class CollapseWatch:
    """Per-seed streaks of log lines with ``inside_frac < 0.5`` and error near chance.

    Args:
        n_seeds: seeds of the run.
        total_steps, log_every, batch_size: the run's schedule (window and chance floor).
        threshold: the inside fraction below which a line counts (default 0.5).
        chance: the suite's chance error (default 10 classes, 0.9).
    """

    def __init__(self, n_seeds: int, *, total_steps: int, log_every: int, batch_size: int,
                 threshold: float = INSIDE_THRESHOLD, chance: float = CHANCE_ERROR):
        self.threshold = threshold
        self.chance = chance
        self.floor = chance_floor(log_every * batch_size, chance)
        self.window = window_lines(total_steps, log_every)
        self.streak = [0] * n_seeds

    def update(self, inside: list[float], error: list[float]) -> list[int]:
        """Count one log line; return the seeds (indices) whose streak just began."""
        began = []
        for s, (f, e) in enumerate(zip(inside, error)):
            if f < self.threshold and e >= self.floor:
                if self.streak[s] == 0:
                    began.append(s)
                self.streak[s] += 1
            else:
                self.streak[s] = 0
        return began

    def collapsed(self) -> int | None:
        """The first seed (index) whose streak has lasted the window, else None."""
        for s, n in enumerate(self.streak):
            if n >= self.window:
                return s
        return None


def collapse_steps(lines, *, n_seeds: int, total_steps: int, log_every: int,
                   batch_size: int, chance: float = CHANCE_ERROR) -> dict[int, int]:
    """``{seed index: step}``: where each seed's collapse had first lasted the window,
    replayed from a run's log lines (those without ``inside_frac`` are skipped).

    For suites that record a collapse instead of stopping the run
    (``stops_on_collapse = False``): the same watch, read from ``log.jsonl`` after the
    run, so a resumed run reports what an uninterrupted one would.
    """
    watch = CollapseWatch(n_seeds, total_steps=total_steps, log_every=log_every,
                          batch_size=batch_size, chance=chance)
    found: dict[int, int] = {}
    for line in lines:
        if line.get("inside_frac") is None:
            continue
        watch.update(line["inside_frac"], line["train_error"])
        for s, n in enumerate(watch.streak):
            if n >= watch.window and s not in found:
                found[s] = int(line["step"])
    return found
