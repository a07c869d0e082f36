"""Natural textures from ``skimage.data`` for the stand-in data sets (real pixels, no download).

The stand-ins of SVHN, GTSRB and CUB put real MNIST / Fashion-MNIST objects on real
backgrounds; the backgrounds are random crops of the photographs and textures that ship
inside scikit-image. Train and test draw from **disjoint** source images (held out by
name), so a classifier cannot learn the backgrounds of the test set.

Convention:
    Images are float32 ``(C, H, W)`` in ``[0, 1]``; colour sources are RGB, grayscale ones
    are repeated to 3 channels when ``channels=3``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["TEXTURE_SPLITS", "load_textures", "random_crops"]

#: Source images by split. Held out between train and test (disjoint by name).
TEXTURE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "coffee", "chelsea", "brick", "grass", "immunohistochemistry",
              "moon", "hubble_deep_field"),
    "test": ("rocket", "gravel", "camera", "coins", "cat", "retina"),
}


def luminance(rgb: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """skimage's ``rgb2gray`` weights along ``dim`` (kept, size 1): ``(.., 3, ..) -> (.., 1, ..)``."""
    r, g, b = rgb.narrow(dim, 0, 1), rgb.narrow(dim, 1, 1), rgb.narrow(dim, 2, 1)
    return 0.2125 * r + 0.7154 * g + 0.0721 * b


def load_textures(split: str, *, channels: int = 3) -> list[torch.Tensor]:
    """The source images of ``split`` as float32 ``(channels, H, W)`` tensors in ``[0, 1]``.

    Raises:
        ValueError: unknown ``split`` or ``channels`` not 1 or 3.
        FileNotFoundError: scikit-image or one of its bundled images is missing.
    """
    fn = "load_textures"
    if split not in TEXTURE_SPLITS:
        raise ValueError(f"{fn}: expected split in {list(TEXTURE_SPLITS)}, got {split!r}")
    if channels not in (1, 3):
        raise ValueError(f"{fn}: expected channels 1 or 3, got {channels!r}")
    try:
        import skimage.data
    except ModuleNotFoundError as e:  # pragma: no cover - scikit-image is a dependency
        raise FileNotFoundError(f"{fn}: scikit-image is not installed ({e})") from None
    out = []
    for name in TEXTURE_SPLITS[split]:
        try:
            a = np.asarray(getattr(skimage.data, name)())
        except Exception as e:  # noqa: BLE001 - a missing bundled file is data, not a bug
            raise FileNotFoundError(f"{fn}: skimage.data.{name} is not available "
                                    f"({type(e).__name__}: {e})") from None
        a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        a = a[..., :3]  # drop alpha
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)  # (3, H, W)
        if channels == 1:
            t = luminance(t)  # (1, H, W)
        out.append(t.contiguous())
    return out


def random_crops(textures: list[torch.Tensor], n: int, size: int, *,
                 generator: torch.Generator, scale_range: tuple[float, float] = (1.0, 1.0)
                 ) -> torch.Tensor:
    """``n`` random square crops of the ``textures``, resized to ``size``: ``(n, C, size, size)``.

    Each crop picks a source image uniformly, a side length ``size * s`` with ``s`` uniform
    in ``scale_range`` (clipped to the image), and a uniformly random position; crops are
    resized with area averaging (``F.interpolate(mode="area")``) when they are larger than
    ``size`` and bilinearly otherwise.
    """
    fn = "random_crops"
    if not textures:
        raise ValueError(f"{fn}: expected at least one texture, got none")
    if not isinstance(n, int) or n < 0 or not isinstance(size, int) or size < 1:
        raise ValueError(f"{fn}: expected n >= 0 and size >= 1 ints, got n={n!r}, size={size!r}")
    lo, hi = scale_range
    if not (0 < lo <= hi):
        raise ValueError(f"{fn}: expected 0 < scale_range[0] <= scale_range[1], got {scale_range}")
    c = textures[0].shape[0]
    out = torch.empty(n, c, size, size)
    idx = torch.randint(len(textures), (n,), generator=generator)
    s = lo + (hi - lo) * torch.rand(n, generator=generator)
    u = torch.rand(n, 2, generator=generator)
    for i in range(n):
        t = textures[int(idx[i])]
        side = int(round(size * float(s[i])))
        side = max(1, min(side, t.shape[1], t.shape[2]))
        y0 = int(u[i, 0] * (t.shape[1] - side + 1))
        x0 = int(u[i, 1] * (t.shape[2] - side + 1))
        crop = t[None, :, y0:y0 + side, x0:x0 + side]
        mode = "area" if side > size else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        out[i] = torch.nn.functional.interpolate(crop, size=(size, size), mode=mode, **kw)[0]
    return out
