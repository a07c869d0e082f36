"""Images for the experiments, loaded once: natural images (``skimage.data``) and MNIST digits.

Both the invariance claims and the sampler experiments use these; neither keeps a loader
of its own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_natural_images", "load_mnist_digits"]


def load_natural_images(names, size: int, *, stretch: bool = False, blur: float = 0.0,
                        dtype=torch.float32) -> torch.Tensor:
    """Grey ``skimage.data`` images, centre-cropped square, resized: ``(N, 1, size, size)``.

    Args:
        names: ``skimage.data`` function names (``"camera"``, ``"astronaut"``, ...).
        size: output side in pixels (resized with anti-aliasing).
        stretch: map each image's min..max to 0..1 (else colour images are
            ``rgb2gray`` in [0, 1] and grey ``uint8`` ones are divided by 255).
        blur: Gaussian smoothing sigma in output pixels after resizing (0: none).
        dtype: of the returned tensor.

    Raises:
        FileNotFoundError: scikit-image or one of the images is not available.
    """
    try:
        import skimage.color
        import skimage.data
        import skimage.filters
        import skimage.transform
    except ModuleNotFoundError as e:  # pragma: no cover - scikit-image is a dependency
        raise FileNotFoundError(f"load_natural_images: scikit-image is not installed ({e})") \
            from None
    out = []
    for name in names:
        try:
            a = getattr(skimage.data, name)()
        except Exception as e:  # noqa: BLE001 - a missing bundled file is data, not a bug
            raise FileNotFoundError(f"load_natural_images: skimage.data.{name} is not "
                                    f"available ({type(e).__name__}: {e})") from None
        if a.ndim == 3:
            a = skimage.color.rgb2gray(a[..., :3])
        elif stretch:
            a = a.astype(np.float64)
        else:
            a = a.astype(np.float64) / 255.0
        if stretch:
            a = a.astype(np.float64)
            a = (a - a.min()) / max(a.max() - a.min(), 1e-12)
        h, w = a.shape
        s = min(h, w)
        a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]  # centre square
        a = skimage.transform.resize(a, (size, size), anti_aliasing=True)
        if blur > 0:
            a = skimage.filters.gaussian(a, sigma=blur)
        out.append(a)
    return torch.tensor(np.stack(out), dtype=dtype).unsqueeze(1)  # (N, 1, S, S)


def load_mnist_digits(n: int, *, seed: int | None = None, canvas: int = 28,
                      dtype=torch.float32) -> torch.Tensor:
    """``n`` MNIST test digits as ``(n, 1, canvas, canvas)`` in ``[0, 1]``.

    Args:
        n: how many.
        seed: None takes the first ``n``; else ``n`` drawn by ``randperm`` with this seed.
        canvas: zero-pad the 28 px digit, centred, to this side.
        dtype: of the returned tensor.

    Raises:
        FileNotFoundError: MNIST is not cached ("run `stnlab data fetch mnist`").
    """
    from .mnist import load_mnist

    images, _ = load_mnist("test")  # (N, 28, 28) uint8
    if seed is None:
        pick = images[:n]
    else:
        g = torch.Generator().manual_seed(seed)
        pick = images[torch.randperm(images.shape[0], generator=g)[:n]]
    x = pick.to(dtype)[:, None] / 255.0  # (n, 1, 28, 28)
    if canvas > 28:
        p = (canvas - 28) // 2
        x = F.pad(x, (p, canvas - 28 - p, p, canvas - 28 - p))
    return x
