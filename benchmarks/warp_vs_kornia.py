"""Time stnlab's bilinear ``sampling.warp_affine`` against kornia's ``warp_affine`` (issue 30).

    python benchmarks/warp_vs_kornia.py [--shape N,C,H ...] [--repeats R] [--threads T]

kornia is not a dependency: install it for this script only (e.g. ``pip install --target
DIR --no-deps kornia kornia_rs`` and put DIR on ``PYTHONPATH``). Both warp the same
images by the same affine map (rotation 0.3 rad, scale 0.9, a small shift), H x H -> H x H,
bilinear, zero padding, ``align_corners=False``; forward, and forward + backward to the
matrix (as in an STN). Interleaved repeats in one process, medians; the ratio is kornia's
time over stnlab's (> 1: stnlab is faster). Kornia takes the matrix in pixels
(``dst_from_src``); it is converted once, outside the timing. The row also times
stnlab with the non-finite guard's masked path forced (``stnlab-masked``: what every call
paid before the one-reduction check; the ratio column is kornia's time over it).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sampling import api, warp_affine  # noqa: E402

may_branch = api._may_branch


def _pixel_dst_from_src(m_norm: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """kornia's matrix (pixels, dst_from_src) for stnlab's normalized input_from_output."""
    # pixel = (g + 1) * size / 2 - 0.5  (align_corners=False)
    s = torch.tensor([[w / 2, 0, w / 2 - 0.5], [0, h / 2, h / 2 - 0.5], [0, 0, 1]],
                     dtype=m_norm.dtype)
    full = torch.cat([m_norm, torch.tensor([[[0, 0, 1]]], dtype=m_norm.dtype)
                      .expand(m_norm.shape[0], 1, 3)], 1)
    src_from_dst_px = s @ full @ torch.linalg.inv(s)
    return torch.linalg.inv(src_from_dst_px)[:, :2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", action="append", default=None, metavar="N,C,H")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import kornia.geometry.transform as KT

    torch.set_num_threads(args.threads)
    shapes = [tuple(int(v) for v in s.split(",")) for s in (args.shape or ["256,1,28"])]
    print(f"torch {torch.__version__}, kornia {__import__('kornia').__version__}, "
          f"{torch.get_num_threads()} thread(s), ATen CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, median of {args.repeats}")
    print("| N, C, H -> H | stnlab fwd ms | kornia fwd ms | fwd speed ratio (masked) | "
          "stnlab fwd+bwd ms | kornia fwd+bwd ms | fwd+bwd speed ratio (masked) |")
    print("|---|---|---|---|---|---|---|")
    for n, c, h in shapes:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, c, h, h, generator=g)
        a, s = 0.3, 0.9
        m = torch.tensor([[s * math.cos(a), -s * math.sin(a), 0.05],
                          [s * math.sin(a), s * math.cos(a), -0.05]]).expand(n, 2, 3)
        m = m.contiguous()
        mk = _pixel_dst_from_src(m, h, h).contiguous()
        ref = warp_affine(x, m)
        got = KT.warp_affine(x, mk, (h, h), mode="bilinear", padding_mode="zeros",
                             align_corners=False)
        err = float((ref - got).abs().max())
        assert err < 1e-4, f"the two warps differ by {err}"
        def masked(mm):
            api._may_branch = lambda: False
            try:
                return warp_affine(x, mm)
            finally:
                api._may_branch = may_branch

        fns = {
            "stnlab": lambda mm: warp_affine(x, mm),
            "stnlab-masked": masked,
            "kornia": lambda mm: KT.warp_affine(x, mm, (h, h), mode="bilinear",
                                                padding_mode="zeros", align_corners=False),
        }
        mats = {"stnlab": m, "stnlab-masked": m, "kornia": mk}
        t = {(k, kind): [] for k in fns for kind in ("fwd", "fwdbwd")}

        def once(k, kind):
            if kind == "fwd":
                with torch.no_grad():
                    fns[k](mats[k])
            else:
                mm = mats[k].clone().requires_grad_(True)
                out = fns[k](mm)
                torch.autograd.grad(out.sum(), mm)

        for k in fns:
            for kind in ("fwd", "fwdbwd"):
                for _ in range(3):
                    once(k, kind)
        for _ in range(args.repeats):
            for k in fns:
                for kind in ("fwd", "fwdbwd"):
                    t0 = time.perf_counter()
                    once(k, kind)
                    t[(k, kind)].append(time.perf_counter() - t0)
        med = {key: statistics.median(v) * 1e3 for key, v in t.items()}
        def ratio(kind):
            return (f"{med[('kornia', kind)] / med[('stnlab', kind)]:.2f} "
                    f"({med[('kornia', kind)] / med[('stnlab-masked', kind)]:.2f})")

        print(f"| {n}, {c}, {h} -> {h} | {med[('stnlab', 'fwd')]:.3f} | "
              f"{med[('kornia', 'fwd')]:.3f} | {ratio('fwd')} | "
              f"{med[('stnlab', 'fwdbwd')]:.3f} | {med[('kornia', 'fwdbwd')]:.3f} | "
              f"{ratio('fwdbwd')} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
