"""Images for the experiments, loaded once: natural images (``skimage.data``) and MNIST digits.

Both the invariance claims and the sampler experiments use these; neither keeps a loader
of its own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_natural_images", "load_mnist_digits", "NATURAL", "load_natural_crops",
           "load_image_files"]


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


#: ``skimage.data`` photographs bundled with scikit-image (no download), colour first.
NATURAL = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina",
           "hubble_deep_field", "camera", "coins", "moon", "brick", "grass", "gravel", "clock",
           "page")


def _to_channels(a: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3|4)`` in [0, 1] -> ``(channels, H, W)``."""
    if a.ndim == 3:
        a = a[..., :3]
        if channels == 1:
            import skimage.color

            return skimage.color.rgb2gray(a)[None]
        return np.moveaxis(a, -1, 0)
    return a[None] if channels == 1 else np.repeat(a[None], 3, 0)


def load_natural_crops(n: int, size: int, *, channels: int = 1, seed: int = 0,
                       blur: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    """``n`` square crops of the :data:`NATURAL` photographs: ``(n, channels, size, size)``.

    Crop ``i`` is taken from image ``i mod len(NATURAL)``: the centre square for the first
    round, then squares of side 40-100 % of the shorter side at positions drawn from
    ``numpy.random.default_rng(seed)``; resized with anti-aliasing to ``size``; values in
    [0, 1]. Grey photographs are repeated to 3 channels when ``channels == 3``. ``blur``:
    Gaussian sigma in output pixels after resizing (0: none).

    Raises:
        ValueError: ``channels`` is not 1 or 3.
        FileNotFoundError: scikit-image's bundled images are not available.
    """
    if channels not in (1, 3):
        raise ValueError(f"load_natural_crops: expected channels 1 or 3, got {channels!r}")
    try:
        import skimage.data
        import skimage.transform
    except ModuleNotFoundError as e:  # pragma: no cover
        raise FileNotFoundError(f"load_natural_crops: scikit-image is not installed ({e})") \
            from None
    rng = np.random.default_rng(seed)
    cache: dict = {}
    out = []
    for i in range(n):
        name = NATURAL[i % len(NATURAL)]
        if name not in cache:
            a = getattr(skimage.data, name)()
            cache[name] = _to_channels(a.astype(np.float64) / 255.0, channels)  # (c, H, W)
        a = cache[name]
        h, w = a.shape[-2:]
        m = min(h, w)
        if i < len(NATURAL):
            s, y0, x0 = m, (h - m) // 2, (w - m) // 2
        else:
            s = int(m * rng.uniform(0.4, 1.0))
            y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = a[:, y0:y0 + s, x0:x0 + s]
        crop = skimage.transform.resize(crop, (crop.shape[0], size, size), anti_aliasing=True)
        if blur > 0:
            import skimage.filters

            crop = np.stack([skimage.filters.gaussian(c, sigma=blur) for c in crop])
        out.append(crop)
    return torch.tensor(np.stack(out), dtype=dtype)  # (n, c, size, size)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")


def load_image_files(directory, n: int, size: int, *, channels: int = 1,
                     dtype=torch.float32) -> torch.Tensor:
    """The first ``n`` image files (sorted names) of ``directory``, centre-cropped square and
    resized: ``(n', channels, size, size)`` in [0, 1].

    Raises:
        NotADirectoryError / FileNotFoundError: no such directory, or no image in it.
        ValueError: a file that is not a decodable image.
    """
    from pathlib import Path

    import skimage.io
    import skimage.transform

    d = Path(directory)
    if not d.is_dir():
        raise NotADirectoryError(f"load_image_files: {d} is not a directory")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
    if not files:
        raise FileNotFoundError(f"load_image_files: no image file ({', '.join(IMAGE_SUFFIXES)}) "
                                f"in {d}")
    out = []
    for p in files:
        try:
            a = np.asarray(skimage.io.imread(p))
        except Exception as e:  # noqa: BLE001 - a broken file is the user's data
            raise ValueError(f"load_image_files: {p} is not a readable image "
                             f"({type(e).__name__})") from None
        a = a.astype(np.float64) / (65535.0 if a.dtype == np.uint16 else
                                    255.0 if a.dtype.kind in "ui" else 1.0)
        a = _to_channels(a, channels)
        h, w = a.shape[-2:]
        m = min(h, w)
        a = a[:, (h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
        out.append(skimage.transform.resize(a, (a.shape[0], size, size), anti_aliasing=True))
    return torch.tensor(np.stack(out), dtype=dtype)
