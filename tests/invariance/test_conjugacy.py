"""invariance.conjugacy: the exact INV-7 criterion (diagonalizable over C, |lambda| = 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

from invariance import conjugacy_report, is_conjugate_to_orthogonal


def _rot(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def _conj(p, q):
    p = np.asarray(p, dtype=np.float64)
    return p @ q @ np.linalg.inv(p)


REFLECTION = np.diag([1.0, -1.0])


def test_rotation_conjugated_by_a_shear_like_matrix():
    """The case the old heuristic (max power norm < 10) got wrong: ||P R P^-1|| powers
    reach ~ cond(P) ~ 100, yet it is conjugate to a rotation."""
    m = _conj([[10.0, 1.0], [0.0, 1.0]], _rot(30))
    assert max(np.linalg.norm(np.linalg.matrix_power(m, k), 2) for k in range(1, 13)) > 10
    rep = conjugacy_report(m)
    assert rep["conjugate"] and rep["case"] == "complex unit pair"
    assert is_conjugate_to_orthogonal(torch.tensor(m, dtype=torch.float32))  # f32 rtol


@st.composite
def _well_conditioned(draw):
    """P with cond(P) <= 50, drawn from a seed (entries in [-3, 3])."""
    seed = draw(st.integers(0, 2**31 - 1))
    p = np.random.default_rng(seed).uniform(-3, 3, (2, 2))
    assume(np.linalg.cond(p) <= 50)
    return p


@given(p=_well_conditioned(), deg=st.floats(1.0, 179.0))
def test_conjugated_rotations_are_conjugate(p, deg):
    assert is_conjugate_to_orthogonal(_conj(p, _rot(deg)))
    assert is_conjugate_to_orthogonal(_conj(p, _rot(-deg)))


@given(p=_well_conditioned(), deg=st.floats(-180.0, 180.0))
def test_conjugated_reflections_are_conjugate(p, deg):
    q = _rot(deg) @ REFLECTION  # every reflection
    rep = conjugacy_report(_conj(p, q))
    assert rep["conjugate"] and rep["case"] == "reflection"


@given(p=_well_conditioned(), s=st.floats(0.2, 3.0))
def test_conjugated_shears_are_not(p, s):
    rep = conjugacy_report(_conj(p, np.array([[1.0, s], [0.0, 1.0]])))
    assert not rep["conjugate"] and rep["case"] == "defective"
    rep = conjugacy_report(_conj(p, np.array([[-1.0, s], [0.0, -1.0]])))
    assert not rep["conjugate"] and rep["case"] == "defective"


@given(p=_well_conditioned(), lam=st.floats(1.1, 4.0), deg=st.floats(0.0, 180.0))
def test_conjugated_non_unit_maps_are_not(p, lam, deg):
    assert not is_conjugate_to_orthogonal(_conj(p, np.diag([lam, 1 / lam])))  # det 1
    assert not is_conjugate_to_orthogonal(_conj(p, lam * _rot(deg)))  # scaled rotation
    assert not is_conjugate_to_orthogonal(_conj(p, np.diag([lam, -1 / lam])))  # det -1


@pytest.mark.parametrize("m, want, case", [
    (np.eye(2), True, "+-identity"),
    (-np.eye(2), True, "+-identity"),
    (_rot(180), True, "+-identity"),
    (_rot(90), True, "complex unit pair"),
    (_rot(1e-6), True, "complex unit pair"),  # tiny angles keep their sign (disc form)
    (REFLECTION, True, "reflection"),
    (np.array([[0.0, 1.0], [1.0, 0.0]]), True, "reflection"),
    (np.array([[1.0, 0.5], [0.0, 1.0]]), False, "defective"),
    (np.array([[1.0, 1e-6], [0.0, 1.0]]), False, "defective"),
    (np.array([[-1.0, 0.0], [2.0, -1.0]]), False, "defective"),
    (np.diag([2.0, 0.5]), False, "non-unit modulus"),
    (np.diag([2.0, 2.0]), False, "non-unit modulus"),
    (np.diag([0.5, 0.5]), False, "non-unit modulus"),
    (1.01 * _rot(30), False, "non-unit modulus"),
    (np.diag([2.0, -0.5]), False, "non-unit modulus"),
    (np.zeros((2, 2)), False, "non-unit modulus"),
])
def test_hand_cases(m, want, case):
    rep = conjugacy_report(m)
    assert (rep["conjugate"], rep["case"]) == (want, case)
    assert is_conjugate_to_orthogonal(m) is want


def test_tolerance_follows_the_dtype_and_rtol():
    """A rotation rounded to float32 is judged with float32's eps (from a tensor), and a
    map 1e-5 off a rotation passes only when told its entries are that uncertain."""
    m32 = torch.tensor(_conj([[3.0, 1.0], [0.5, 2.0]], _rot(40)), dtype=torch.float32)
    assert is_conjugate_to_orthogonal(m32)
    near = (1 + 1e-5) * _rot(40)
    assert not is_conjugate_to_orthogonal(near)
    assert is_conjugate_to_orthogonal(near, rtol=1e-4)
    assert conjugacy_report(near)["rtol"] == 64 * np.finfo(np.float64).eps


def test_bad_input():
    with pytest.raises(ValueError, match=r"is_conjugate_to_orthogonal: expected m of shape "
                                         r"\(2, 2\), got \(3, 3\)"):
        is_conjugate_to_orthogonal(np.eye(3))
    with pytest.raises(ValueError, match="is_conjugate_to_orthogonal: expected finite values"):
        is_conjugate_to_orthogonal([[1.0, float("nan")], [0.0, 1.0]])
    with pytest.raises(ValueError, match="is_conjugate_to_orthogonal: expected rtol in"):
        is_conjugate_to_orthogonal(np.eye(2), rtol=0.5)
    with pytest.raises(ValueError, match="real floating-point"):
        is_conjugate_to_orthogonal(torch.eye(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="real 2x2 matrix"):
        is_conjugate_to_orthogonal(np.eye(2, dtype=np.complex128))
