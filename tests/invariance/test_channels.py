"""invariance.channels: permutation and channel-mix recovery, and their failure modes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from invariance import channels as ch


@given(seed=st.integers(0, 2**31 - 1), c=st.integers(2, 10))
def test_permutation_recovered(seed, c):
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(c, 200, generator=gen, dtype=torch.float64)
    perm = torch.randperm(c, generator=gen)
    cand = torch.empty_like(ref)
    cand[perm] = ref  # cand channel perm[i] holds ref channel i
    cand = cand + 1e-3 * torch.randn(c, 200, generator=gen, dtype=torch.float64)
    found = ch.best_permutation(ref, cand)
    assert torch.equal(found, perm)
    assert torch.allclose(cand[found], ref, atol=1e-2)


def test_permutation_of_identical_is_identity(dtype):
    x = torch.randn(5, 50, dtype=dtype)
    assert torch.equal(ch.best_permutation(x, x), torch.arange(5))


@given(seed=st.integers(0, 2**31 - 1))
def test_mix_recovered(seed):
    gen = torch.Generator().manual_seed(seed)
    cand = torch.randn(6, 300, generator=gen, dtype=torch.float64)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    found = ch.best_channel_mix(m @ cand, cand)
    torch.testing.assert_close(found, m, rtol=1e-6, atol=1e-6)


def test_mix_batched_and_dead_channels():
    cand = torch.randn(3, 4, 100, dtype=torch.float64)
    cand[1, 2] = 0  # a dead channel: the ridge keeps the solve finite
    ref = torch.randn(4, 100, dtype=torch.float64)
    m = ch.best_channel_mix(ref, cand)
    assert m.shape == (3, 4, 4) and torch.isfinite(m).all()


def test_similarity_and_distances():
    x = torch.randn(4, 30, dtype=torch.float64)
    s = ch.channel_similarity(x, x)
    torch.testing.assert_close(s.diagonal(), torch.ones(4, dtype=torch.float64))
    d = ch.channel_distances(x, x)
    torch.testing.assert_close(
        d.diagonal(), torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0
    )


def test_flatten_region_layout():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float64).reshape(2, 3, 2, 2)
    mask = torch.tensor([[True, False], [False, True]])
    flat = ch.flatten_region(x, mask)
    assert flat.shape == (3, 4)
    torch.testing.assert_close(flat[1], torch.tensor([4.0, 7.0, 16.0, 19.0], dtype=torch.float64))


def test_bad_shapes():
    with pytest.raises(ValueError, match="cand"):
        ch.best_permutation(torch.rand(3, 10), torch.rand(4, 10))
    with pytest.raises(ValueError, match="mask"):
        ch.flatten_region(torch.rand(1, 2, 4, 4), torch.ones(3, 3, dtype=torch.bool))


@given(seed=st.integers(0, 2**31 - 1), k=st.integers(0, 3), two_scales=st.booleans())
def test_permutation_recovery_for_random_quarter_turns(seed, k, two_scales):
    """Exact regime: the found permutation is the oriented bank's orientation shift."""
    from invariance.alignment import feature_alignment_error
    from invariance.extractors import OrientedBank

    bank = OrientedBank((1.0, 2.0) if two_scales else (1.5,), dtype=torch.float64)
    f = torch.rand(2, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    back = torch.rot90(bank(torch.rot90(f, k, dims=(-2, -1))), -k, dims=(-2, -1))
    res = feature_alignment_error(back, bank(f), None, mode="permutation")
    assert torch.equal(res.permutation, bank.orientation_shift(k))
    assert res.total <= 1e-12


def test_batched_mix_is_oriented_like_the_single_one():
    """Each batch entry's mix M satisfies M @ cand ≈ ref (a transposed mix would not)."""
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(4, 200, generator=gen, dtype=torch.float64)
    ms = torch.randn(3, 4, 4, generator=gen, dtype=torch.float64)  # non-symmetric
    cand = torch.linalg.solve(ms, ref.expand(3, 4, 200))  # ms[g] @ cand[g] = ref
    found = ch.best_channel_mix(ref, cand)
    torch.testing.assert_close(found, ms, rtol=1e-6, atol=1e-6)
    for g in range(3):
        torch.testing.assert_close(found[g], ch.best_channel_mix(ref, cand[g]))
        as_maps = cand[g].reshape(1, 4, 200, 1)  # (N, C, H, W)
        torch.testing.assert_close(ch.apply_mix(as_maps, found[g]).reshape(4, 200), ref,
                                   rtol=1e-6, atol=1e-6)
    assert not torch.allclose(found.transpose(-1, -2), ms, atol=1e-3)


def test_mix_ridge_is_relative_and_tiny():
    """The ridge λ = ridge · tr(A Aᵀ) / C: scaling cand scales the mix inversely."""
    gen = torch.Generator().manual_seed(2)
    cand = torch.randn(3, 100, generator=gen, dtype=torch.float64)
    ref = torch.randn(3, 100, generator=gen, dtype=torch.float64)
    m1 = ch.best_channel_mix(ref, cand)
    m2 = ch.best_channel_mix(ref, 1e3 * cand)
    torch.testing.assert_close(m2 * 1e3, m1, rtol=1e-9, atol=1e-12)
    # a huge ridge shrinks the mix towards 0, i.e. it is added (not subtracted)
    big = ch.best_channel_mix(ref, cand, ridge=1e6)
    assert big.abs().max() < 1e-3 * m1.abs().max()


def test_permutations_batched_and_distances_known():
    ref = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    cand = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)
    d = ch.channel_distances(ref, cand)
    torch.testing.assert_close(d, torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [1.0, 1.0]]],
                                               dtype=torch.float64))
    p = ch.best_permutations(d)
    assert p.tolist() == [[1, 0], [0, 1]]
    sim = ch.channel_similarity(torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
                                torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(sim, torch.tensor([[1.0, 2 ** -0.5], [0.0, 0.0]]))


def test_distances_are_never_negative():
    """rr + cc - 2 cross cancels for identical large channels and rounds below 0 (float64:
    -3e-5 here): the clamp keeps squared distances >= 0."""
    x = torch.randn(6, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = 1e3 * x + 1e4
    d = ch.channel_distances(x, x)
    assert (d >= 0).all()


def test_mix_normal_equations_with_a_visible_ridge():
    """ridge = 0.5: M^T = (A A^T + λ I)^{-1} A B^T with λ = 0.5 tr(A A^T) / C, against a
    direct float64 solve (the ridge is added, and scaled by the mean channel energy)."""
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(3, 50, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 50, generator=gen, dtype=torch.float64)
    gram = a @ a.T
    lam = 0.5 * torch.trace(gram) / 3
    want = torch.linalg.solve(gram + lam * torch.eye(3, dtype=torch.float64), a @ b.T).T
    torch.testing.assert_close(ch.best_channel_mix(b, a, ridge=0.5), want)


def test_flatten_region_refuses_three_dims():
    with pytest.raises(ValueError, match=r"flatten_region: expected x of shape "
                                         r"\(\.\.\., N, C, H, W\), got \(2, 4, 4\)"):
        ch.flatten_region(torch.rand(2, 4, 4), torch.ones(4, 4, dtype=torch.bool))


def test_mix_of_all_dead_channels_is_finite():
    """Every candidate channel zero: tr(A A^T) = 0, the ridge floor keeps the solve finite."""
    m = ch.best_channel_mix(torch.randn(3, 20, dtype=torch.float64),
                            torch.zeros(3, 20, dtype=torch.float64))
    assert torch.isfinite(m).all() and torch.equal(m, torch.zeros(3, 3, dtype=torch.float64))


def test_flatten_region_non_square_and_batched():
    """H != W and a leading batch axis: the mask is checked against the last two axes (a
    check against other axes refuses these valid inputs)."""
    x = torch.arange(2 * 4 * 3 * 5 * 6, dtype=torch.float64).reshape(2, 4, 3, 5, 6)
    mask = torch.zeros(5, 6, dtype=torch.bool)
    mask[1, 2] = mask[4, 5] = True
    flat = ch.flatten_region(x, mask)
    assert flat.shape == (2, 3, 8)  # (B, C, N * P)
    torch.testing.assert_close(flat[1, 2], torch.stack([x[1, n, 2][mask] for n in range(4)]
                                                       ).reshape(-1))


def test_mix_of_tiny_features_is_scale_free():
    """Features of magnitude 1e-8 (trace of the Gram ~1e-14): the mix is still recovered,
    so the ridge's floor (clamp of the trace) must sit far below any real trace."""
    gen = torch.Generator().manual_seed(5)
    cand = 1e-8 * torch.randn(3, 200, generator=gen, dtype=torch.float64)
    m = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    got = ch.best_channel_mix(m @ cand, cand)
    torch.testing.assert_close(got, m, rtol=1e-6, atol=1e-6)
