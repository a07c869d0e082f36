"""The SVHN suite of 000 (Sec. IV-B, App. A.3): Tables III and IV, the iterations of IV-B4.

Networks (:data:`NETS`): Table III's CNN, STN-C0-large, STN-C0123, STN-SL0123; Table IV's
STN-CX / DLX / SLX at X in {0, 3, 6, 8}; and the networks 000 trains with two iterations
(``-it2``: STN-C0, DL3, SL3, SL6, SL8). Built by :class:`models.deep_stn.DeepSTN` on the
:mod:`models.svhn_nets` classifier and localizers; zero padding, bilinear.

Training (App. A.3): SGD, L2 2e-4 on every layer, localization lr multiplier from
:data:`models.svhn_nets.LOC_LR_MULTIPLIERS` (configuration), three phases at 0.03 / 0.003 /
0.0003. Momentum: 000 states none; we use 0.9 (an assumption, stated in every config). The
loss is the sum of the five heads' cross-entropies; the error is the *sequence* error (any
head wrong), as 000 / Goodfellow et al. report.

Data: ``--data DIR`` (SVHN format 1, :mod:`models.data.svhn`) or ``--data standin``,
named in every result: variant ``svhn`` is the first stand-in
(:data:`models.data.svhn.STANDIN_NAME`, 1-5 digits; **superseded**, kept so the committed
results reproduce, and still what ``--variant all`` trains), variant ``svhn-v2`` the second
(:mod:`models.data.svhn_v2`: 1-3 digits, rotated / scaled / shifted rows, 10 000 test
sequences at ``medium``; issue 28). ``--net`` takes a comma list, so a planned study
trains only the networks its primaries read (:data:`V2_PLAN_NETS`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import svhn_nets as SN
from ..errors import ConfigError
from . import DataSource
from ._deep import DeepSuiteBase, PoolStream, TensorTest

__all__ = ["SUITE", "SvhnSuite", "NETS", "PAPER_TABLE_III", "PAPER_TABLE_IV",
           "PAPER_ITERATIONS", "SCALE_SETTINGS", "V2_SETTINGS", "V2_PLAN_NETS"]

#: Networks 000 trains with two iterations (Sec. IV-B4).
ITERATED = ("STN-C0", "STN-DL3", "STN-SL3", "STN-SL6", "STN-SL8")
NETS = SN.NETS + tuple(f"{n}-it2" for n in ITERATED)

#: 000 Table III: network -> (error of [1], error of 000's implementation), in %.
PAPER_TABLE_III = {"CNN": ("4.0%", "3.88%"), "STN-C0-large": ("3.7%", "3.69%"),
                   "STN-C0123": ("3.6%", "3.61%"), "STN-SL0123": ("-", "3.49%")}
#: 000 Table IV: "STN-<kind><X>" -> mean error over 3 runs (* one of 4 runs diverged).
PAPER_TABLE_IV = {"STN-C0": "3.81%", "STN-C3": "3.70%", "STN-C6": "3.91%", "STN-C8": "4.00%*",
                  "STN-DL3": "3.48%", "STN-DL6": "3.75%", "STN-DL8": "3.76%",
                  "STN-SL3": "3.54%", "STN-SL6": "3.29%", "STN-SL8": "3.26%"}
#: 000 Sec. IV-B4 / App. A.3: mean error when trained with two iterations.
PAPER_ITERATIONS = {"STN-C0": "3.80%", "STN-SL3": "3.38% (3.33% at N=3)",
                    "STN-SL6": "3.26% (3.18% at N=3)", "STN-SL8": "3.39%", "STN-DL3": "3.57%"}

# Budgets (issue 13): `paper` is App. A.3 (batch 128, 120k/120k/60k steps, 3 seeds, PyTorch's
# default init, dropout 0.5). `small` must finish the 19-network study on 2 CPU cores in
# < 45 min, `medium` (3 seeds) in < 90 min. We shrink the widths (`width`, a multiplier of
# every conv / F width; never the depth) to 1/8 and train 1600 steps at batch 32 (1200 /
# 300 / 100 at lr, lr/10, lr/100).
#
# At those sizes 000's init and dropout do not train at all; measured on the stand-in
# (one seed, 2026-12-01, width 1/8, batch 32, seed-0 test sequence error on 1000 test
# sequences; a constant predictor scores 97.5 %):
#   PyTorch init, dropout 0.5, lr 0.01, 160 steps (the first `small` preset, committed in
#     results/svhn-small): all 19 networks 97.50 %; CNN at lr 0.03 for 2666 steps: 97.50 %;
#   PyTorch init, no dropout, lr 0.01, 1500 steps: 97.7 % (loss flat at 9.3; Adam 1e-3
#     does move it, 90.1 %: the plateau of an 11-layer net whose forward variance shrinks
#     ~6x per layer, see models.layer_nets.he_init_);
#   He init, dropout 0.5 or 0.25, lr 0.01, 1500 steps: 97.7 % (dropout on 6-24 channels);
#   He init, no dropout, lr 0.01, 1500-1600 steps: CNN 83.2 %, STN-C8 81.6 %, STN-SL3 97.5 %;
#   He init, no dropout, lr 0.003, 1600 steps: CNN 75.8 %, STN-SL3 77.7 %.
# So `small` / `medium` use He init, no dropout and lr 0.003 (chosen on whether the CNN
# and one SL network train at all, before any depth comparison was run); every report
# names them (the config of every run records `init`, `dropout`, `lr`). Step cost here
# (one thread, machine shared): CNN ~750 img/s, STN-C0123 / SL8 / DL8 ~360-450 img/s, so
# `small` ~19 x 1600 x 32 / ~450 img/s ~ 36 min; `medium` 3x the images (3 seeds): about
# 70-110 min on 2 cores, which may overrun 90 min (run it with --resume in pieces).
_CPU_SCALE = dict(width=0.125, batch_size=32, iters=1200, iters_low=300, iters_lower=100,
                  eval_batch=250, checkpoint_every=200, log_every=50, lr=0.003,
                  init="he", dropout=0.0)
SCALE_SETTINGS = {
    "smoke": dict(width=0.0625, batch_size=4, iters=2, iters_low=1, iters_lower=1,
                  train_digits=64, test_digits=16, eval_batch=16, checkpoint_every=2,
                  log_every=1, eval_iterations=(1, 2)),
    "small": dict(_CPU_SCALE, train_digits=8000, test_digits=1000),
    "medium": dict(_CPU_SCALE, train_digits=16000, test_digits=2000),
    "paper": dict(width=1.0, batch_size=128, iters=120_000, iters_low=120_000,
                  iters_lower=60_000, lr=0.03, train_digits=None, test_digits=None,
                  eval_batch=500, checkpoint_every=2000, log_every=200),
}
STANDIN_POOL = {"smoke": 64, "small": 8000, "medium": 16000, "paper": 100_000}
#: Stand-in v2 (issue 28) differs from a scale's settings only in its test set: 10 000 test
#: sequences at `medium` and `paper` (issue 28 asks for 10k: the binomial sd of one seed's
#: error at the probe's 44 % is sqrt(0.44 x 0.56 / 10 000) = 0.50 pp, against 1.1 pp with
#: `medium`'s 2000, the same size as 000's 0.5-0.7 pp effects).
V2_SETTINGS = {"smoke": {}, "small": dict(test_digits=2000), "medium": dict(test_digits=10_000),
               "paper": dict(test_digits=10_000)}
#: The networks EMP-2's SVHN primaries and their diagnostics read on v2 (the pilot and the
#: plan choose among them; ``--net`` takes them as a comma list): the CNN (the learnability
#: gate and 'worse than no ST'), the depth and iteration checks (C0, C8, SL3, SL8, C0-it2),
#: the DLX check (DL3, DL8), C6 and the iterations of SL3 / SL6, Table III's C0123 / SL0123.
V2_PLAN_NETS = ("CNN", "STN-C0", "STN-C8", "STN-SL3", "STN-SL8", "STN-C0-it2", "STN-DL3",
                "STN-DL8", "STN-C6", "STN-SL6", "STN-SL3-it2", "STN-SL6-it2", "STN-C0123",
                "STN-SL0123")


def five_head_loss(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over the five heads of the mean cross-entropy: ``output (B, 5, 11)``, ``labels
    (B, 5)``."""
    return F.cross_entropy(output.transpose(1, 2), labels, reduction="none").mean(0).sum()


def sequence_wrong(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: any of the five heads wrong (000's SVHN error is per sequence)."""
    return (output.argmax(-1) != labels).any(-1)


class SvhnSuite(DeepSuiteBase):
    """000's SVHN suite (Tables III, IV; iterations of Sec. IV-B4)."""

    name = "svhn"
    nets_module = SN
    params_note = "000 states no SVHN parameter counts (its Table VI is MNIST only)."
    title = "SVHN deep STN suite (000 Sec. IV-B)"
    summary = ("000 Sec. IV-B: CNN, STN-C0-large/C0123/SL0123, STN-CX/DLX/SLX at X=0,3,6,8, "
               "two-iteration nets on SVHN (format 1 or stand-in); Tables III, IV")
    variants = ("svhn", "svhn-v2")
    nets = NETS
    scales = ("smoke", "small", "medium", "paper")
    #: Fig. 7-style pictures: STN-C / DL / SL at a shallow and a deep X (X = 3 and 8, the shallow and the deepest of Table IV).
    fig7_depths = (3, 8)
    paper_seeds = 3
    iter_section = "IV-B4"
    layout = "SVHN format 1"

    def _settings(self, scale):
        return dict(SCALE_SETTINGS[scale], padding_mode="zeros", momentum=0.9)

    def variants_for(self, source: DataSource) -> tuple[str, ...]:
        """What ``--variant all`` trains: ``svhn`` (official data, or the first stand-in:
        unchanged since issue 13); ``svhn-v2`` is trained only when named."""
        return ("svhn",)

    def preset(self, scale: str, variant: str, net: str, **overrides):
        if variant == "svhn-v2" and scale in V2_SETTINGS:
            overrides = {**V2_SETTINGS[scale], **{k: v for k, v in overrides.items()
                                                  if v is not None}}
        return super().preset(scale, variant, net, **overrides)

    def _loc_lr(self, net, iterations):
        if net == "CNN":
            return 0.01
        base = net.removesuffix(f"-it{iterations}") if iterations > 1 else net
        if base in ("STN-C0-large", "STN-C0123", "STN-SL0123"):
            base = "STN-C0"  # 000: "always 0.01" except DL / the iteration settings
        return SN.lr_multipliers(base, iterations=iterations)["localizer"]

    def _loss(self, output, labels):
        return five_head_loss(output, labels)

    def _errors(self, output, labels):
        return sequence_wrong(output, labels)

    def chance_error(self, train_data) -> float:
        """The running (per-head) error of the best constant prediction on the training
        labels (:func:`models.collapse.constant_error`; 0.58 on the stand-in): the collapse
        watch's chance level, since 10 classes' 0.9 is never reached per head."""
        from ..collapse import constant_error

        return constant_error(train_data.labels)

    def _classifier(self, cfg):
        return SN.classifier(width=cfg.width,
                             dropout=cfg.classifier_dropout(SN.DROPOUT))

    def _localizer(self, cfg, net, kind, depth):
        if kind == "large":
            return SN.localizer("C0-large")
        return SN.localizer("F32", depth=depth, net=net)

    def load_data(self, variant: str, cfg, source: DataSource) -> tuple:
        from ..data import svhn as D

        if variant == "svhn-v2" and source.kind != "standin":
            raise ConfigError(f"--variant svhn-v2: is the second SVHN stand-in "
                              f"(models.data.svhn_v2); it needs --data standin, got "
                              f"--data {source.describe()}")
        self.check_source(source)
        if variant == "svhn-v2":
            from ..data.svhn_v2 import NAME, standin_v2

            x_tr, y_tr = standin_v2("train", cfg.train_digits or STANDIN_POOL[cfg.scale],
                                    seed=1000)
            x_te, y_te = standin_v2("test", cfg.test_digits or 10_000,
                                    seed=2000 + cfg.test_seed)
            name = NAME
        elif source.kind == "standin":
            n_tr = cfg.train_digits or STANDIN_POOL[cfg.scale]
            x_tr, y_tr = D.standin("train", n_tr, seed=1000)
            x_te, y_te = D.standin("test", cfg.test_digits or 10_000, seed=2000 + cfg.test_seed)
            name = D.STANDIN_NAME
        else:
            prep = D.prepare_svhn(source.path)
            x_tr, y_tr = prep["train"]
            x_te, y_te = prep["test"]
            if cfg.train_digits:
                x_tr, y_tr = x_tr[:cfg.train_digits], y_tr[:cfg.train_digits]
            if cfg.test_digits:
                x_te, y_te = x_te[:cfg.test_digits], y_te[:cfg.test_digits]
            name = f"svhn format 1 ({source.path})"
        mean, std = D.channel_stats(x_tr)
        norm = lambda x, g=None: D.normalize(x, mean, std)  # noqa: E731
        return (PoolStream(x_tr, y_tr, norm, cfg.device),
                TensorTest(norm(x_te.float().div(255.0) if x_te.dtype == torch.uint8
                                else x_te), y_te, name))

    def report(self, suite_dir) -> list[str]:
        from pathlib import Path

        rec, runs = self._load(suite_dir)
        lines = self._header(Path(suite_dir), runs)
        lines += ["### Table III layout: SVHN sequence error", "",
                  "| network | ours | paper: [1] | paper: 000 |", "|---|---:|---:|---:|"]
        for n, (p1, p0) in PAPER_TABLE_III.items():
            lines.append(f"| {n} | {self._fmt(runs.get(n))} | {p1} | {p0} |")
        lines += ["", "### Table IV layout: STN-CX / DLX / SLX by depth (ours / paper)", "",
                  "| depth | STN-CX | STN-DLX | STN-SLX |", "|---|---:|---:|---:|"]
        for x in SN.DEPTHS:
            cells = []
            for k in ("C", "DL", "SL"):
                n = f"STN-{k}{x}"
                if x == 0 and k != "C":
                    cells.append("(= C0)")
                else:
                    cells.append(f"{self._fmt(runs.get(n))} / paper {PAPER_TABLE_IV[n]}")
            lines.append(f"| X={x} | " + " | ".join(cells) + " |")
        lines += ["", "(* one of 000's runs diverged; its mean is over the three that did not)",
                  ""]
        lines += self._iteration_table(runs, PAPER_ITERATIONS)
        return lines


SUITE = SvhnSuite()
