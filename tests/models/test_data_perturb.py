"""Perturbed MNIST (000 App. A.1): shapes, normalization, parameter ranges, determinism,
boxes, and differential checks against independent renderings (numpy slicing, skimage).

Most properties run on synthetic stroke digits built from a hypothesis-drawn seed;
the tests marked ``network`` repeat the key ones on real MNIST digits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.transform import AffineTransform, rotate, warp

from models.data.perturb import (
    CANVAS,
    FRAGMENT,
    SCALE_RANGE,
    VARIANTS,
    PerturbedBatch,
    PerturbedMNIST,
    canvas_from_digit,
    perturb,
)

SEEDS = st.integers(0, 2**31 - 1)
LOG_S = (math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1]))


def synthetic_digits(seed: int, b: int) -> torch.Tensor:
    """``(b, 28, 28)`` uint8 "digits": 3 anti-aliased strokes in the central 20x20 box."""
    g = torch.Generator().manual_seed(seed)
    ends = 4 + 19 * torch.rand(b, 3, 2, 2, generator=g, dtype=torch.float64)  # (B, S, end, xy)
    ys, xs = torch.meshgrid(torch.arange(28.0, dtype=torch.float64),
                            torch.arange(28.0, dtype=torch.float64), indexing="ij")
    pix = torch.stack([xs, ys], -1).reshape(1, 1, 784, 2)
    a, d = ends[:, :, :1], ends[:, :, 1:] - ends[:, :, :1]  # (B, S, 1, 2)
    t = (((pix - a) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-9)).clamp(0, 1)  # (B, S, 784)
    dist = (pix - (a + t[..., None] * d)).norm(dim=-1)
    val = (1.6 - dist).clamp(0, 1).amax(1)  # (B, 784) ~3 px wide strokes
    return (val * 255).round().to(torch.uint8).reshape(b, 28, 28)


def make(variant, seed, b=6, *, n_clutter=None, normalize=True, digits=None, device="cpu"):
    digits = synthetic_digits(seed, b) if digits is None else digits
    clutter = synthetic_digits(seed + 1, 5)
    g = torch.Generator(device=device).manual_seed(seed)
    return perturb(variant, digits.to(device), torch.arange(len(digits)) % 10, generator=g,
                   clutter_source=clutter.to(device), n_clutter=n_clutter, normalize=normalize)


def mass_in_box(img: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Fraction of each ``(B, H, W)`` non-negative image's mass at pixel centres inside ``box``."""
    h, w = img.shape[-2:]
    xs = torch.arange(w, dtype=box.dtype)
    ys = torch.arange(h, dtype=box.dtype)
    eps = 1e-4
    inx = (xs >= box[:, 0:1] - eps) & (xs <= box[:, 2:3] + eps)  # (B, W)
    iny = (ys >= box[:, 1:2] - eps) & (ys <= box[:, 3:4] + eps)  # (B, H)
    inside = iny[:, :, None] & inx[:, None, :]
    return (img * inside).sum((1, 2)) / img.sum((1, 2))


# ---------------------------------------------------------------- shapes and normalization


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS, b=st.integers(1, 6))
def test_shapes_and_per_image_normalization(variant, seed, b):
    out = make(variant, seed, b)
    size = CANVAS[variant]
    assert isinstance(out, PerturbedBatch) and len(out) == b
    assert out.images.shape == (b, 1, size, size) and out.images.dtype == torch.float32
    assert out.labels.dtype == torch.int64 and out.labels.shape == (b,)
    assert out.angle.shape == (b,) and out.scale.shape == (b,)
    assert out.translation.shape == (b, 2) and out.bbox.shape == (b, 4)
    assert torch.isfinite(out.images).all()
    mean = out.images.mean(dim=(1, 2, 3))
    std = out.images.std(dim=(1, 2, 3), correction=0)
    torch.testing.assert_close(mean, torch.zeros(b), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(b), atol=1e-5, rtol=0)


def test_normalization_check_can_fail():
    raw = make("T", 0, normalize=False).images
    assert (raw.mean(dim=(1, 2, 3)).abs() > 1e-2).all()  # the raw canvas is not standardized


@pytest.mark.parametrize("variant", VARIANTS)
def test_float_digits_keep_their_dtype(variant, dtype):
    d = synthetic_digits(3, 4).to(dtype) / 255
    out = make(variant, 3, digits=d)
    assert out.images.dtype == dtype and out.angle.dtype == dtype and out.bbox.dtype == dtype
    std = out.images.std(dim=(1, 2, 3), correction=0)
    torch.testing.assert_close(std, torch.ones(4, dtype=dtype), atol=1e-5, rtol=0)
    # uint8 and the same values as float give the same picture
    ref = make(variant, 3, digits=synthetic_digits(3, 4))
    torch.testing.assert_close(out.images.float(), ref.images, atol=1e-3, rtol=0)


def test_batch_to_device_keeps_everything(device):
    out = make("S", 1, 2).to(device)
    assert len(out) == 2
    for f in ("images", "labels", "angle", "translation", "scale", "bbox"):
        assert getattr(out, f).device.type == device.type


def test_constant_image_normalizes_to_zero():
    out = perturb("R", torch.zeros(2, 28, 28), torch.zeros(2, dtype=torch.long),
                  generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.images, torch.zeros(2, 1, 28, 28))


# ---------------------------------------------------------------- parameter ranges


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_parameter_ranges(variant, seed):
    out = make(variant, seed, 16, n_clutter=0, normalize=False)
    if variant == "R":
        assert (out.angle.abs() <= math.pi / 2).all()
    else:
        assert (out.angle == 0).all()
    if variant == "S":
        assert ((out.scale >= SCALE_RANGE[0] - 1e-6) & (out.scale <= SCALE_RANGE[1] + 1e-5)).all()
    else:
        assert (out.scale == 1).all()
    if variant == "T":
        t = out.translation
        assert (t == t.round()).all() and (t.abs() <= (60 - 28) // 2).all()
        # the whole digit stays on the canvas: its ink is all there, unchanged
        digits = synthetic_digits(seed, 16).float() / 255
        torch.testing.assert_close(out.images.sum((1, 2, 3)), digits.sum((1, 2)))
    else:
        assert (out.translation == 0).all()
    if variant == "S":  # centred and fully on the canvas: nothing on the outer rim
        img = out.images[:, 0]
        rim = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], 1)
        assert (rim == 0).all()
    box = out.bbox
    assert ((box >= -0.5) & (box <= CANVAS[variant] - 0.5)).all()
    assert (box[:, 2] > box[:, 0]).all() and (box[:, 3] > box[:, 1]).all()


def test_parameter_distributions_cover_their_ranges():
    # Uniform angle, log-uniform scale, uniform integer shifts: check the spread on a big batch.
    n = 1500  # tolerances below are >= 3.4 standard errors
    d = synthetic_digits(0, 1).expand(n, 28, 28)
    g = torch.Generator().manual_seed(0)
    lab = torch.zeros(n, dtype=torch.long)
    a = perturb("R", d, lab, generator=g).angle
    assert a.min() < -1.5 and a.max() > 1.5 and abs(float(a.mean())) < 0.08
    s = perturb("S", d, lab, generator=g, n_clutter=0).scale
    ls = torch.log(s)
    assert abs(float(ls.mean()) - sum(LOG_S) / 2) < 0.06  # log-uniform: mean of log at the middle
    assert float((s < 1).float().mean()) == pytest.approx(1 / 3, abs=0.04)  # log(2)/log(8)
    t = perturb("T", d, lab, generator=g, n_clutter=0).translation
    assert set(t.unique().tolist()) == set(range(-16, 17))


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_same_seed_same_batch_different_seed_different(variant, seed):
    a, b = make(variant, seed, 3), make(variant, seed, 3)
    for f in ("images", "angle", "translation", "scale", "bbox"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    digits = synthetic_digits(seed, 3)
    c = perturb(variant, digits, torch.zeros(3, dtype=torch.long),
                generator=torch.Generator().manual_seed(seed + 1),
                clutter_source=synthetic_digits(seed + 1, 5))
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("variant", VARIANTS)
def test_on_device(variant, device):
    out = make(variant, 5, device=device)
    again = make(variant, 5, device=device)
    assert out.images.device.type == device.type and out.bbox.device.type == device.type
    assert torch.equal(out.images, again.images)
    std = out.images.std(dim=(1, 2, 3), correction=0).cpu()
    torch.testing.assert_close(std, torch.ones(6), atol=1e-5, rtol=0)
    if device.type == "cuda":  # a CPU generator drives a CUDA batch: same poses as on CPU
        d = synthetic_digits(5, 6)
        cpu = perturb(variant, d, torch.zeros(6, dtype=torch.long),
                      generator=torch.Generator().manual_seed(1),
                      clutter_source=synthetic_digits(6, 5))
        gpu = perturb(variant, d.to(device), torch.zeros(6, dtype=torch.long, device=device),
                      generator=torch.Generator().manual_seed(1),
                      clutter_source=synthetic_digits(6, 5))
        # float32 warps round differently on the GPU (fused multiply-adds); standardized
        # values reach ~10, so compare relative to them too
        torch.testing.assert_close(gpu.images.cpu(), cpu.images, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(gpu.bbox.cpu(), cpu.bbox)


@pytest.mark.parametrize("variant", ["T", "S"])
def test_digit_pose_does_not_depend_on_clutter(variant):
    with_clutter = make(variant, 11)
    clean = make(variant, 11, n_clutter=0)
    for f in ("angle", "translation", "scale", "bbox"):
        assert torch.equal(getattr(with_clutter, f), getattr(clean, f))
    assert not torch.equal(with_clutter.images, clean.images)


# ---------------------------------------------------------------- vs independent renderings


@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_R_equals_skimage_rotation_clockwise_on_screen(seed):
    # skimage.transform.rotate turns counter-clockwise on screen; our positive angle
    # (counter-clockwise in the y-down (x, y) frame) is clockwise on screen.
    digits = synthetic_digits(seed, 4)
    out = make("R", seed, digits=digits, normalize=False)
    for i in range(4):
        f = digits[i].double().numpy() / 255
        deg = math.degrees(float(out.angle[i]))
        ours = out.images[i, 0].double().numpy()
        np.testing.assert_allclose(ours, rotate(f, -deg, order=1, mode="constant"), atol=1e-4)
        if abs(deg) > 10:  # the opposite sense is far off: the check can fail
            assert np.abs(ours - rotate(f, deg, order=1, mode="constant")).max() > 0.1


@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_S_equals_skimage_centred_scaling(seed):
    digits = synthetic_digits(seed, 3)
    out = make("S", seed, 3, digits=digits, n_clutter=0, normalize=False)
    for i in range(3):
        s = float(out.scale[i])
        c_in, c_out = 13.5, 55.5  # output pixel p samples the digit at (p - c_out) / s + c_in
        inv = AffineTransform(matrix=np.array([[1 / s, 0, c_in - c_out / s],
                                               [0, 1 / s, c_in - c_out / s], [0, 0, 1]]))
        ref = warp(digits[i].double().numpy() / 255, inv, output_shape=(112, 112), order=1,
                   mode="constant")
        np.testing.assert_allclose(out.images[i, 0].double().numpy(), ref, atol=1e-4)


@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_T_is_an_exact_paste(seed):
    digits = synthetic_digits(seed, 5)
    out = make("T", seed, 5, digits=digits, n_clutter=0, normalize=False)
    for i in range(5):
        x, y = (int(v) + 16 for v in out.translation[i])  # top-left = centre offset + 16
        ref = torch.zeros(60, 60)
        ref[y:y + 28, x:x + 28] = digits[i].float() / 255
        assert torch.equal(out.images[i, 0], ref)


def reference_clutter(variant: str, b: int, src: torch.Tensor, seed: int) -> torch.Tensor:
    """The clutter canvas ``(b, H, W)`` re-drawn from the same random stream: fragments
    cut and pasted by slicing, one image at a time (T), or warped onto the *whole*
    canvas with a hand-derived normalized matrix (S), instead of the library's
    windows and index arithmetic."""
    g = torch.Generator().manual_seed(seed)
    size = CANVAS[variant]
    if variant == "T":
        torch.randint(33, (b, 2), generator=g)  # the digit's shift
    else:
        torch.rand(b, generator=g)  # the digit's scale
    canvas = torch.zeros(b, size, size, dtype=torch.float64)
    for _ in range(6):
        idx = torch.randint(len(src), (b,), generator=g)
        corner = torch.randint(28 - FRAGMENT + 1, (b, 2), generator=g)
        frag = torch.stack([src[idx[i], cy:cy + FRAGMENT, cx:cx + FRAGMENT]
                            for i, (cx, cy) in enumerate(corner.tolist())]).double() / 255
        if variant == "T":
            pos = torch.randint(size - FRAGMENT + 1, (b, 2), generator=g)
            for i, (x, y) in enumerate(pos.tolist()):
                canvas[i, y:y + FRAGMENT, x:x + FRAGMENT] += frag[i]
        else:
            s = torch.exp(LOG_S[0] + (LOG_S[1] - LOG_S[0]) * torch.rand(b, generator=g)).double()
            centre = 3 * s[:, None] - 0.5 + torch.rand(b, 2, generator=g) * (size - 6 * s[:, None])
            # canvas pixel p samples the fragment at (p - centre) / s + 2.5. In normalized
            # units (p = 56 u + 55.5, q = 3 v + 2.5): v = (56 u + 55.5 - centre) / (3 s).
            k = size / 2 / (3 * s)
            t = ((size - 1) / 2 - centre) / (3 * s[:, None])
            theta = torch.zeros(b, 2, 3, dtype=torch.float64)
            theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = k, k, t
            grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
            canvas += F.grid_sample(frag[:, None], grid, align_corners=False)[:, 0]
    return canvas


@pytest.mark.parametrize("variant", ["T", "S"])
@settings(max_examples=10)
@given(seed=SEEDS)
def test_clutter_equals_independent_rendering(variant, seed):
    src = synthetic_digits(seed + 1, 5)
    out = make(variant, seed, 4, digits=torch.zeros(4, 28, 28, dtype=torch.uint8),
               normalize=False)
    ref = reference_clutter(variant, 4, src, seed)
    torch.testing.assert_close(out.images[:, 0].double(), ref, atol=1e-4, rtol=0)
    assert ref.sum() > 0  # there was clutter to compare
    # summed, not clamped: overlapping fragments may exceed 1 (only if they overlap)
    assert float(out.images.max()) <= 6 * float(src.max()) / 255 + 1e-5


def test_clutter_reference_check_can_fail():
    src = synthetic_digits(9, 5)  # make() cuts its clutter from synthetic_digits(8, 5)
    out = make("S", 7, 4, digits=torch.zeros(4, 28, 28, dtype=torch.uint8), normalize=False)
    ref = reference_clutter("S", 4, src, 7)
    assert (out.images[:, 0].double() - ref).abs().max() > 0.1  # wrong source digits


# ---------------------------------------------------------------- bounding boxes


def support_gaps(img: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """``(B, 4)`` distances from each box edge out to the extreme pixel centres where the
    image is nonzero (left, top, right, bottom); negative = a nonzero pixel is outside."""
    gaps = []
    for i in range(len(img)):
        ys, xs = torch.nonzero(img[i] > 0, as_tuple=True)
        gaps.append(torch.stack([xs.min() - box[i, 0], ys.min() - box[i, 1],
                                 box[i, 2] - xs.max(), box[i, 3] - ys.max()]))
    return torch.stack(gaps)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_bbox_contains_the_digit_mass(variant, seed):
    clean = make(variant, seed, 8, n_clutter=0, normalize=False)
    img = clean.images[:, 0]
    frac = mass_in_box(img, clean.bbox)
    assert (frac >= 0.99).all(), frac.min()
    # stronger: the box holds the whole support of the clean rendering ...
    gaps = support_gaps(img, clean.bbox)
    assert (gaps >= -1e-4).all(), gaps.min()
    # ... and is at most one source pixel (r = 1; 0.5 for pasted T) plus one canvas
    # pixel larger than that support on each side: it is not trivially big.
    r = 0.5 if variant == "T" else 1.0
    reach = r * clean.scale * (clean.angle.cos().abs() + clean.angle.sin().abs())  # (B,)
    assert (gaps <= reach[:, None] + 1 + 1e-4).all(), (gaps - reach[:, None]).max()


def test_bbox_checks_can_fail():
    clean = make("S", 2, 8, n_clutter=0, normalize=False)
    shrunk = clean.bbox + torch.tensor([2.0, 2.0, -2.0, -2.0])
    assert (mass_in_box(clean.images[:, 0], shrunk) < 0.99).all()
    assert (support_gaps(clean.images[:, 0], shrunk) < 0).all()
    grown = clean.bbox + torch.tensor([-3.0, -3.0, 3.0, 3.0])
    assert (support_gaps(clean.images[:, 0], grown) > clean.scale[:, None] + 1).all()


def test_bbox_follows_the_documented_formula():
    # One ink pixel at (x=10, y=5): its unit square [9.5, 10.5] x [4.5, 5.5] mapped by
    # canvas_from_digit, e.g. for T with translation (3, -2): shift by 16 + (3, -2).
    d = torch.zeros(1, 28, 28, dtype=torch.uint8)
    d[0, 5, 10] = 255
    out = perturb("T", d, torch.zeros(1, dtype=torch.long),
                  generator=torch.Generator().manual_seed(0), n_clutter=0)
    tx, ty = out.translation[0].tolist()
    assert out.bbox[0].tolist() == [9.5 + 16 + tx, 4.5 + 16 + ty, 10.5 + 16 + tx, 5.5 + 16 + ty]
    m = canvas_from_digit(torch.tensor([math.pi / 2]), torch.tensor([2.0]), torch.zeros(1, 2),
                          canvas=112)
    # rotating by +90° in (x, y) with y down: the +x axis goes to +y (down on screen)
    torch.testing.assert_close(m[0, :, :2] @ torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]),
                               atol=1e-6, rtol=0)


def test_blank_digit_gets_a_zero_size_box_at_its_centre():
    out = perturb("T", torch.zeros(1, 28, 28), torch.zeros(1, dtype=torch.long),
                  generator=torch.Generator().manual_seed(0), n_clutter=0)
    x0, y0, x1, y1 = out.bbox[0].tolist()
    assert x0 == x1 == 29.5 + out.translation[0, 0].item()
    assert y0 == y1 == 29.5 + out.translation[0, 1].item()


# ---------------------------------------------------------------- the rotation is by `angle`


def rotate_back(images: torch.Tensor, angle: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """Undo an R rotation: sample at input_from_output = R(angle) (normalized, square)."""
    c, s = torch.cos(sign * angle), torch.sin(sign * angle)
    theta = torch.stack([torch.stack([c, -s, 0 * c], -1), torch.stack([s, c, 0 * c], -1)], -2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


@settings(max_examples=12)  # seeds; each example is a whole batch
@given(seed=SEEDS)
def test_rotating_back_by_angle_recovers_the_digit(seed):
    digits = synthetic_digits(seed, 8)
    out = make("R", seed, 8, digits=digits, normalize=False)
    orig = digits[:, None].float() / 255
    good = correlation(rotate_back(out.images, out.angle), orig)
    bad = correlation(rotate_back(out.images, out.angle, sign=-1.0), orig)
    assert (good > 0.85).all(), good
    big = out.angle.abs() > 0.5
    assert (good[big] > bad[big] + 0.1).all()  # the opposite sense does not recover it


# ---------------------------------------------------------------- PerturbedMNIST


def small_dataset(variant, n=7):
    return PerturbedMNIST(variant, synthetic_digits(0, n), torch.arange(n) % 10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_batch_is_fresh_and_seeded(variant):
    ds = small_dataset(variant)
    a = ds.train_batch(5, torch.Generator().manual_seed(1))
    b = ds.train_batch(5, torch.Generator().manual_seed(1))
    size = CANVAS[variant]
    assert torch.equal(a.images, b.images) and a.images.shape == (5, 1, size, size)
    g = torch.Generator().manual_seed(1)
    first, second = ds.train_batch(5, g), ds.train_batch(5, g)
    assert not torch.equal(first.images, second.images)  # a new step, new perturbations
    # it is perturb() of randomly chosen digits, drawn from the same generator
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(len(ds), (5,), generator=g)
    ref = perturb(variant, ds.images[idx], ds.labels[idx], generator=g,
                  clutter_source=ds.clutter_images)
    assert torch.equal(ref.images, a.images) and torch.equal(ref.labels, a.labels)


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_batches_equal_one_batch_per_generator(variant, device):
    ds = PerturbedMNIST(variant, synthetic_digits(0, 9), torch.arange(9) % 10, device=device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in (3, 4, 5)]
    ref_gens = [torch.Generator(device=device).manual_seed(s) for s in (3, 4, 5)]
    for _ in range(2):  # and the generators advance exactly as train_batch advances them
        x, y = ds.train_batches(6, gens)
        ref = [ds.train_batch(6, g) for g in ref_gens]
        assert x.shape == (3, 6) + ref[0].images.shape[1:] and y.shape == (3, 6)
        torch.testing.assert_close(x, torch.stack([r.images for r in ref]), atol=1e-5,
                                   rtol=1e-5)
        assert torch.equal(y, torch.stack([r.labels for r in ref]))
    assert all(torch.equal(g.get_state(), r.get_state()) for g, r in zip(gens, ref_gens))


def test_train_batches_rejects_bad_arguments():
    ds = small_dataset("R")
    with pytest.raises(ValueError, match="batch_size"):
        ds.train_batches(0, [torch.Generator()])
    with pytest.raises(ValueError, match="torch.Generator"):
        ds.train_batches(2, [])
    with pytest.raises(ValueError, match="torch.Generator"):
        ds.train_batches(2, [0])
    with pytest.raises(ValueError, match="one torch.Generator"):  # not one per seed
        ds.train_batches(2, torch.Generator())


@pytest.mark.parametrize("variant", VARIANTS)
def test_test_set_is_fixed_and_covers_every_image(variant):
    ds = small_dataset(variant)
    batches = list(ds.test_set(n_perturb=3, seed=4, batch_size=3))
    assert len(batches) == 3 * 3  # 3 rounds of ceil(7 / 3) batches
    labels = torch.cat([b.labels for b in batches])
    assert torch.equal(labels, ds.labels.repeat(3))  # every image, 3 times, in order
    again = list(ds.test_set(n_perturb=3, seed=4, batch_size=3))
    assert all(torch.equal(a.images, b.images) for a, b in zip(batches, again))
    other = list(ds.test_set(n_perturb=3, seed=5, batch_size=3))
    assert not torch.equal(batches[0].images, other[0].images)
    # the rounds perturb the same digit differently
    assert not torch.equal(batches[0].images, batches[3].images)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="X"), "variant"),
    (dict(digits=torch.zeros(2, 28, 27, dtype=torch.uint8)), "digits"),
    (dict(digits=torch.zeros(2, 28, 28, dtype=torch.int32)), "digits"),
    (dict(digits=torch.full((2, 28, 28), 255.0)), r"digits with values in \[0, 1\]"),
    (dict(labels=torch.zeros(3, dtype=torch.long)), "labels"),
    (dict(labels=torch.zeros(2)), "labels"),
    (dict(generator=0), "generator"),
    (dict(clutter_source=None), "clutter_source"),
    (dict(clutter_source=torch.zeros(3, 6, 6)), "clutter_source"),
    (dict(clutter_source=torch.zeros(0, 28, 28)), "clutter_source"),
    (dict(clutter_source=torch.zeros(3, 28, 28, dtype=torch.int64)), "clutter_source"),
    (dict(n_clutter=-1), "n_clutter"),
    (dict(variant="R", n_clutter=2), "n_clutter"),
])
def test_perturb_bad_input(kwargs, match):
    args = dict(variant="T", digits=torch.zeros(2, 28, 28, dtype=torch.uint8),
                labels=torch.zeros(2, dtype=torch.long), generator=torch.Generator(),
                clutter_source=torch.zeros(3, 28, 28, dtype=torch.uint8))
    args.update(kwargs)
    variant, digits, labels = args.pop("variant"), args.pop("digits"), args.pop("labels")
    with pytest.raises(ValueError, match=match):
        perturb(variant, digits, labels, **args)


def test_dataset_bad_input():
    d, lab = synthetic_digits(0, 3), torch.arange(3)
    with pytest.raises(ValueError, match="variant"):
        PerturbedMNIST("Q", d, lab)
    with pytest.raises(ValueError, match="labels"):
        PerturbedMNIST("R", d, lab[:2])
    with pytest.raises(ValueError, match="images"):
        PerturbedMNIST("R", d[:0], lab[:0])
    ds = PerturbedMNIST("R", d, lab)
    with pytest.raises(ValueError, match="batch_size"):
        ds.train_batch(0, torch.Generator())
    with pytest.raises(ValueError, match="generator"):
        ds.train_batch(2, 0)
    with pytest.raises(ValueError, match="n_perturb"):
        ds.test_set(n_perturb=0)  # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="batch_size"):
        ds.test_set(batch_size=0)


# ---------------------------------------------------------------- real digits


@pytest.fixture(scope="session")
def real_test_digits(tmp_path_factory):
    from models.data.mnist import fetch_mnist, load_mnist

    d = tmp_path_factory.getbasetemp() / "mnist-real"  # shared with test_data_mnist
    fetch_mnist(d)
    return load_mnist("test", d)


@pytest.mark.network
@pytest.mark.parametrize("variant", VARIANTS)
def test_real_digits_boxes_and_rotation(real_test_digits, variant):
    x, y = real_test_digits
    digits, clutter = x[:128], x[128:1128]
    g = torch.Generator().manual_seed(0)
    clean = perturb(variant, digits, y[:128], generator=g, n_clutter=0, normalize=False)
    frac = mass_in_box(clean.images[:, 0], clean.bbox)
    assert (frac >= 0.99).all(), float(frac.min())
    full = perturb(variant, digits, y[:128], generator=torch.Generator().manual_seed(0),
                   clutter_source=clutter)
    assert torch.equal(full.bbox, clean.bbox)
    if variant == "R":
        good = correlation(rotate_back(clean.images, clean.angle), digits[:, None].float())
        assert (good > 0.85).all(), float(good.min())
