"""``models.data.images``: the one natural-image and MNIST-digit loader."""

from __future__ import annotations

import pytest
import torch

from models.data.images import load_mnist_digits, load_natural_images


def test_natural_images_shapes_ranges_and_stretch():
    x = load_natural_images(["camera", "astronaut"], 32)
    assert x.shape == (2, 1, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    y = load_natural_images(["camera"], 32, stretch=True, dtype=torch.float64)
    assert y.dtype == torch.float64
    assert float(y.max()) > float(x[0].max()) - 1e-6  # stretched to the full range


def test_missing_image_is_a_file_not_found():
    with pytest.raises(FileNotFoundError, match="skimage.data.no_such_image"):
        load_natural_images(["no_such_image"], 8)


def test_digits_first_n_or_seeded_and_padded():
    """Runs everywhere: tests/conftest.py points STNLAB_DATA_DIR at the hash-checked fetch
    where no cache is filled (it was skipped on a fresh machine)."""
    a = load_mnist_digits(3)
    b = load_mnist_digits(3, seed=0)
    assert a.shape == b.shape == (3, 1, 28, 28) and not torch.equal(a, b)
    c = load_mnist_digits(3, canvas=64, dtype=torch.float64)
    assert c.shape == (3, 1, 64, 64) and float(c[:, :, :18].abs().max()) == 0.0
    # derived: float32 rounding of k / 255 <= 1 is at most 2**-25 ~ 3e-8 absolute
    torch.testing.assert_close(c[:, :, 18:46, 18:46], a.double(), rtol=0, atol=2 ** -25)
