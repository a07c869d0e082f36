"""One tolerance table keyed by dtype (used by every numerical test)."""

import torch

TOL = {
    torch.float32: dict(rtol=1e-4, atol=1e-5),
    torch.float64: dict(rtol=1e-9, atol=1e-10),
}


def tol(dtype, scale: float = 1.0) -> dict:
    """rtol/atol for ``dtype``, optionally loosened by ``scale``."""
    t = TOL[dtype]
    return dict(rtol=t["rtol"] * scale, atol=t["atol"] * scale)
