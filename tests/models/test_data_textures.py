"""Texture backgrounds for the stand-ins: real skimage pixels, train/test held out."""

import pytest
import torch

from models.data.textures import TEXTURE_SPLITS, load_textures, random_crops


def test_splits_are_disjoint():
    assert not set(TEXTURE_SPLITS["train"]) & set(TEXTURE_SPLITS["test"])


@pytest.mark.parametrize("channels", [1, 3])
def test_load_and_crop(channels):
    tex = load_textures("test", channels=channels)
    assert len(tex) == len(TEXTURE_SPLITS["test"])
    assert all(t.shape[0] == channels and 0 <= float(t.min()) and float(t.max()) <= 1 for t in tex)
    g = torch.Generator().manual_seed(0)
    crops = random_crops(tex, 5, 16, generator=g, scale_range=(1.0, 4.0))
    assert crops.shape == (5, channels, 16, 16)
    assert float(crops.std()) > 0.01  # real texture, not a constant fill
    again = random_crops(tex, 5, 16, generator=torch.Generator().manual_seed(0),
                         scale_range=(1.0, 4.0))
    torch.testing.assert_close(crops, again, rtol=0, atol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_textures("val")
    with pytest.raises(ValueError, match="scale_range"):
        random_crops(load_textures("test"), 1, 8, generator=torch.Generator(),
                     scale_range=(2.0, 1.0))
