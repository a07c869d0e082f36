"""Break demonstrations: each named bug, applied to a scratch copy, must fail its test.

Each case is ``(name, file, original text, broken text, test)``: the original text must
occur exactly once in the file. Prints ``CAUGHT`` (the test failed, as it must) or
``MISSED`` per case; the exit status is the number of misses.

Usage (from anywhere): ``python benchmarks/break_demos.py [NAME-SUBSTRING ...]``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIN_REF = ("tests/sampling/test_linearized.py::"
           "test_eager_path_equals_the_independent_numpy_reference")
CASES = [
 ("alignment: normalise by aligned", "invariance/alignment.py",
  "total, per_c, per_i = relative_error(aligned, reference, mask)",
  "total, per_c, per_i = relative_error(reference, aligned, mask)",
  "tests/invariance/test_alignment.py"),
 ("noise: / scale", "sampling/linearized.py",
  "return auxiliary_variates(seed, k, h, w, dtype=dtype, device=device) * scale",
  "return auxiliary_variates(seed, k, h, w, dtype=dtype, device=device) / scale",
  "tests/sampling/test_linearized.py::"
  "test_fresh_noise_field_is_scaled_by_sigma_and_pixel_units"),
 ("stencil bound ac=True -> 10 (masking off)", "sampling/linearized.py",
  "    if align_corners:\n        return 1.0\n    return 1.0 - 1.0 / size",
  "    if align_corners:\n        return 10.0\n    return 1.0 - 1.0 / size",
  LIN_REF),
 ("stencil bound ac=False -> 1.0", "sampling/linearized.py",
  "    return 1.0 - 1.0 / size", "    return 1.0",
  LIN_REF),
 ("pixel units ac=True -> size/2", "sampling/linearized.py",
  "return (size - 1) / 2 if align_corners else size / 2",
  "return size / 2 if align_corners else size / 2",
  LIN_REF),
 ("Tikhonov sign (eager)", "sampling/linearized.py",
  "a_ = s_xx + eps / safe_ux**2\n        d_ = s_yy + eps / safe_uy**2",
  "a_ = s_xx - eps / safe_ux**2\n"
  "        d_ = s_yy - eps / safe_uy**2",
  LIN_REF),
 ("footprint orientation (eager)", "sampling/linearized.py",
  "return diff(gx, 2), diff(gy, 2), diff(gx, 1), diff(gy, 1)",
  "return diff(gx, 1), diff(gy, 1), diff(gx, 2), diff(gy, 2)",
  LIN_REF),
 ("batched mix transposed", "invariance/channels.py",
  "return mt.transpose(-1, -2)", "return mt",
  "tests/invariance/test_channels.py::test_batched_mix_is_oriented_like_the_single_one"),
 ("invert: absolute singularity test", "sampling/geometry.py",
  "return determinant(m).abs() <= tol * norm2.clamp_min(torch.finfo(m.dtype).tiny)",
  "return determinant(m).abs() <= tol",
  "tests/sampling/test_geometry.py::test_invert_singularity_is_relative_to_the_matrix_scale"),
 ("invert: no singularity test", "sampling/geometry.py",
  "return determinant(m).abs() <= tol * norm2.clamp_min(torch.finfo(m.dtype).tiny)",
  "return determinant(m).abs() < 0",
  "tests/sampling/test_geometry.py::test_invert_singularity_is_relative_to_the_matrix_scale"),
 ("conjugacy: ignore diagonalizability", "invariance/conjugacy.py",
  "    ident = max(abs(a - s), abs(d - s), abs(b), abs(c)) <= delta",
  "    ident = True",
  "tests/invariance/test_conjugacy.py"),
 ("conjugacy: rtol 0", "invariance/conjugacy.py",
  "        rtol = 64.0 * eps", "        rtol = 0.0",
  "tests/invariance/test_conjugacy.py"),
 ("conjugacy: old heuristic", "invariance/conjugacy.py",
  "    return bool(conjugacy_report(m, rtol=rtol)[\"conjugate\"])",
  "    a = np.asarray(m, dtype=float)\n"
  "    return bool(max(np.linalg.norm(np.linalg.matrix_power(a, k), 2)\n"
  "                    for k in range(1, 13)) < 10)",
  "tests/invariance/test_conjugacy.py::test_rotation_conjugated_by_a_shear_like_matrix"),
 ("reference: no masking", "proofs/reference/linearized_numpy.py",
  "m = inside.astype(np.float64) if mask else np.ones_like(qx)", "m = np.ones_like(qx)",
  "tests/proofs/test_linearized_reference.py"),
 ("stats: hierarchical without seed resampling", "proofs/stats.py",
  "rows = rng.integers(0, s, size=(resamples, s))",
  "rows = np.broadcast_to(np.arange(s), (resamples, s))",
  "tests/proofs/test_stats.py::test_hierarchical_bootstrap_covers_with_seed_variation"),
 ("stats: decide direction ignored", "proofs/stats.py",
  'return "verified" if above == (direction == ">") else "failed"',
  'return "verified"', "tests/proofs/test_stats.py"),
]


def main(only):
    misses = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "r"
        shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "results", ".hypothesis"))
        for name, f, old, new, test in CASES:
            if only and not any(o in name for o in only):
                continue
            p = root / f
            src = p.read_text()
            if src.count(old) != 1:
                raise SystemExit(f"break_demos: case {name!r}: the original text occurs "
                                 f"{src.count(old)} times in {f}, expected once")
            p.write_text(src.replace(old, new))
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly",
                                "-p", "no:cacheprovider", test], cwd=root,
                               env=dict(os.environ, PYTHONPATH=str(root)),
                               capture_output=True, text=True)
            p.write_text(src)
            failed = [ln for ln in r.stdout.splitlines() if ln.startswith("FAILED")][:1]
            misses += r.returncode == 0
            print(f"{'CAUGHT' if r.returncode else 'MISSED'}  {name}: "
                  f"{failed[0][:150] if failed else r.stdout.splitlines()[-1]}", flush=True)
    return misses


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
