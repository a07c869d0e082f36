// Fused CPU kernel of the linearized multi-sampler's backward pass
// (sampling/linearized.py, :func:`fit_local_gradient`; paper 003 Sec. 4-5, 6.1).
//
// One pass over the (image, output pixel) pairs does all of the eager path's work:
//   * the footprint D_p: planar finite differences of the grid, the same formula as
//     torch.gradient (central inside, one-sided at the ends, 0 along an axis of length 1),
//   * y0 = sum_c output_c * grad_out_c,
//   * for each of the K auxiliaries: the offsets o_k = (dcol, drow) (z0, z1) [+ collapse
//     noise], the stencil mask |x| <= bx and |y| <= by, a zero-padded bilinear sample of
//     all C channels with F.grid_sample's unnormalization, y_k = sum_c grad_out_c
//     I_c(x_p + o_k) - y0, and the 5 running sums of the 2x2 normal equations,
//   * the closed-form Tikhonov solve with the same `det > 0` guard.
// The noise field (4, K, h, w) is drawn and scaled in Python (same generator, seed and
// order as the eager path), so both paths see the same random numbers.
//
// Floating point: every operation is the eager path's, on the same operands, in the
// tensor's dtype (F.grid_sample's unnormalization and corner weights included); the
// only differences are the order of the sums over the auxiliaries (sequential here,
// torch's reduction there) and the fused multiply-adds that torch's own vectorized
// kernels may use (this file is compiled with -ffp-contract=off, so its result does
// not depend on the CPU: the AVX2 and portable copies agree bit for bit). Values stay
// exact for finite inputs; an auxiliary that fails the mask reads a clamped (finite)
// pixel instead of a zero-padded one, which its zero weight removes either way.
//
// Memory: nothing is allocated but the (N, h, w, 2) result; the scratch is about
// 25 arrays of kBlock scalars on each thread's stack.
//
// Layout: the (N, h*w) pixels are split into blocks of up to kBlock consecutive pixels
// of one image (at::parallel_for over N*h*w); each step over a block is a plain loop
// over arrays, which the compiler vectorizes. An AVX2 copy of the loops is compiled
// with a target attribute and chosen at run time where the CPU has it; the portable
// copy (baseline ISA) is the fallback.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "linearized_fit_common.h"

#include <cmath>
#include <cstdint>

#ifndef STNLAB_OPS_NAMESPACE
#define STNLAB_OPS_NAMESPACE stnlab_linearized
#endif

namespace {

constexpr int64_t kBlock = 64;

using stnlab_fit::FitArgs;

// Process pixels [p0, p0 + len) of image n (len <= kBlock).
//
// kInside: every auxiliary that passes the mask lies in (-1, W) x (-1, H) in pixels
// (true for the bounds of _stencil_bound, where it lies in [0, W-1] x [0, H-1] up to
// rounding; checked in fit()). Coordinates are clamped to that range (a no-op for the
// auxiliaries that count) and only the corners' edge cases need care. Otherwise (a
// caller passing looser bounds) the general path samples with F.grid_sample's zero
// padding anywhere.
template <typename scalar_t, bool kCollapse, bool kInside>
static inline __attribute__((always_inline)) void fit_block(const FitArgs<scalar_t>& a,
                                                            int64_t n, int64_t p0,
                                                            int64_t len) {
  const int64_t hw = a.h * a.w;
  const int64_t w = a.w, h = a.h;
  const int W = static_cast<int>(a.W), H = static_cast<int>(a.H);
  const scalar_t one = scalar_t(1);

  scalar_t gx[kBlock], gy[kBlock], dcx[kBlock], dcy[kBlock], drx[kBlock], dry[kBlock];
  scalar_t y0[kBlock];
  scalar_t sxx[kBlock], sxy[kBlock], syy[kBlock], bxs[kBlock], bys[kBlock];
  scalar_t mox[kBlock], moy[kBlock], yv[kBlock];
  scalar_t w00[kBlock], w01[kBlock], w10[kBlock], w11[kBlock];
  int32_t o00[kBlock], o01[kBlock], o10[kBlock], o11[kBlock];

  // Prologue: grid, footprint, zero sums. The footprint is torch.gradient's arithmetic:
  // (g[+1] - g[-1]) / 2 inside, (g[+1] - g[0]) / 1 at the ends, 0 along an axis of length
  // 1 (x / 2 and x * 0.5 round alike). Interior pixels first (contiguous, vectorized),
  // then the first/last columns and rows are overwritten with one-sided differences.
  const scalar_t* g = a.grid + n * hw * 2;
  const scalar_t half = scalar_t(0.5);
  for (int64_t j = 0; j < len; ++j) {
    gx[j] = g[2 * (p0 + j)];
    gy[j] = g[2 * (p0 + j) + 1];
    sxx[j] = sxy[j] = syy[j] = bxs[j] = bys[j] = scalar_t(0);
  }
  if (w == 1) {
    for (int64_t j = 0; j < len; ++j) dcx[j] = dcy[j] = scalar_t(0);
  } else {
    const int64_t jlo = p0 == 0 ? 1 : 0, jhi = std::min(len, hw - 1 - p0);
    for (int64_t j = jlo; j < jhi; ++j) {
      const scalar_t* q = g + 2 * (p0 + j);
      dcx[j] = (q[2] - q[-2]) * half;
      dcy[j] = (q[3] - q[-1]) * half;
    }
    const int64_t c0 = p0 % w;
    for (int64_t j = c0 == 0 ? 0 : w - c0; j < len; j += w) {  // first column
      const scalar_t* q = g + 2 * (p0 + j);
      dcx[j] = q[2] - q[0];
      dcy[j] = q[3] - q[1];
    }
    for (int64_t j = w - 1 - c0; j < len; j += w) {  // last column
      const scalar_t* q = g + 2 * (p0 + j);
      dcx[j] = q[0] - q[-2];
      dcy[j] = q[1] - q[-1];
    }
  }
  if (h == 1) {
    for (int64_t j = 0; j < len; ++j) drx[j] = dry[j] = scalar_t(0);
  } else {
    const int64_t jlo = std::max<int64_t>(0, w - p0);
    const int64_t jhi = std::min(len, hw - w - p0);
    for (int64_t j = jlo; j < jhi; ++j) {
      const scalar_t* q = g + 2 * (p0 + j);
      drx[j] = (q[2 * w] - q[-2 * w]) * half;
      dry[j] = (q[2 * w + 1] - q[-2 * w + 1]) * half;
    }
    for (int64_t j = 0; j < std::min(len, w - p0); ++j) {  // first row
      const scalar_t* q = g + 2 * (p0 + j);
      drx[j] = q[2 * w] - q[0];
      dry[j] = q[2 * w + 1] - q[1];
    }
    for (int64_t j = std::max<int64_t>(0, hw - w - p0); j < len; ++j) {  // last row
      const scalar_t* q = g + 2 * (p0 + j);
      drx[j] = q[0] - q[-2 * w];
      dry[j] = q[1] - q[-2 * w + 1];
    }
  }
  {
    const scalar_t* out0 = a.output + n * a.C * hw + p0;
    const scalar_t* go0 = a.grad_out + n * a.C * hw + p0;
    for (int64_t j = 0; j < len; ++j) y0[j] = out0[j] * go0[j];
    for (int64_t ch = 1; ch < a.C; ++ch) {
      const scalar_t* out = out0 + ch * hw;
      const scalar_t* go = go0 + ch * hw;
      for (int64_t j = 0; j < len; ++j) y0[j] += out[j] * go[j];
    }
  }

  // Coordinates are clamped before the stencil is read. kInside: to the range of the
  // auxiliaries that pass the mask (a no-op for them; the others only need some finite
  // value, multiplied by a zero offset). General path: to just outside the image, where
  // every corner is out of bounds whatever the exact value. NaN goes to lo.
  const scalar_t lo_x = kInside ? a.x_lo : scalar_t(-2);
  const scalar_t lo_y = kInside ? a.y_lo : scalar_t(-2);
  const scalar_t hi_x = kInside ? a.x_hi : static_cast<scalar_t>(W + 1);
  const scalar_t hi_y = kInside ? a.y_hi : static_cast<scalar_t>(H + 1);
  for (int64_t k = 0; k < a.K; ++k) {
    const scalar_t* z0 = a.noise + k * hw + p0;
    const scalar_t* z1 = a.noise + (a.K + k) * hw + p0;
    const scalar_t* cx = a.noise + (2 * a.K + k) * hw + p0;
    const scalar_t* cy = a.noise + (3 * a.K + k) * hw + p0;
    // Offsets, mask, bilinear corners and weights (F.grid_sample's unnormalization).
    for (int64_t j = 0; j < len; ++j) {
      scalar_t ox = dcx[j] * z0[j];
      ox = ox + drx[j] * z1[j];
      scalar_t oy = dcy[j] * z0[j];
      oy = oy + dry[j] * z1[j];
      if (kCollapse) {
        ox = ox + cx[j];
        oy = oy + cy[j];
      }
      const scalar_t px = ox + gx[j];
      const scalar_t py = oy + gy[j];
      const scalar_t m =
          ((std::abs(px) <= a.bx) & (std::abs(py) <= a.by)) ? scalar_t(1) : scalar_t(0);
      mox[j] = ox * m;
      moy[j] = oy * m;
      scalar_t x = (px + one) * a.sx - a.half;
      scalar_t y = (py + one) * a.sy - a.half;
      x = (x > lo_x) ? x : lo_x;  // also maps NaN to lo
      x = (x < hi_x) ? x : hi_x;
      y = (y > lo_y) ? y : lo_y;
      y = (y < hi_y) ? y : hi_y;
      if (kInside) {
        // x in (-1, W), y in (-1, H): the corners are ix in [-1, W-1] and ix + 1; a
        // corner outside gets weight 0 (F.grid_sample's zero padding) and reads the
        // nearest pixel instead.
        const scalar_t fx = std::floor(x), fy = std::floor(y);
        const int32_t ix = static_cast<int32_t>(fx), iy = static_cast<int32_t>(fy);
        const scalar_t dw = x - fx, de = one - dw;  // ATen's w, e, n, s
        const scalar_t dn = y - fy, ds = one - dn;
        const scalar_t wx0 = ix >= 0 ? de : scalar_t(0), wx1 = ix < W - 1 ? dw : scalar_t(0);
        const scalar_t wy0 = iy >= 0 ? ds : scalar_t(0), wy1 = iy < H - 1 ? dn : scalar_t(0);
        const int32_t xc0 = std::max(ix, 0), xc1 = std::min(ix + 1, W - 1);
        const int32_t yc0 = std::max(iy, 0) * W, yc1 = std::min(iy + 1, H - 1) * W;
        o00[j] = yc0 + xc0;
        o01[j] = yc0 + xc1;
        o10[j] = yc1 + xc0;
        o11[j] = yc1 + xc1;
        w00[j] = wy0 * wx0;  // nw = s * e, ne = s * w, sw = n * e, se = n * w
        w01[j] = wy0 * wx1;
        w10[j] = wy1 * wx0;
        w11[j] = wy1 * wx1;
      } else {
        const scalar_t fx = std::floor(x), fy = std::floor(y);
        const int32_t ix = static_cast<int32_t>(fx), iy = static_cast<int32_t>(fy);
        const scalar_t dw = x - fx, de = one - dw;
        const scalar_t dn = y - fy, ds = one - dn;
        const bool vx0 = (ix >= 0) & (ix < W), vx1 = (ix >= -1) & (ix < W - 1);
        const bool vy0 = (iy >= 0) & (iy < H), vy1 = (iy >= -1) & (iy < H - 1);
        const int32_t base = iy * W + ix;
        o00[j] = (vx0 & vy0) ? base : 0;
        w00[j] = (vx0 & vy0) ? ds * de : scalar_t(0);
        o01[j] = (vx1 & vy0) ? base + 1 : 0;
        w01[j] = (vx1 & vy0) ? ds * dw : scalar_t(0);
        o10[j] = (vx0 & vy1) ? base + W : 0;
        w10[j] = (vx0 & vy1) ? dn * de : scalar_t(0);
        o11[j] = (vx1 & vy1) ? base + W + 1 : 0;
        w11[j] = (vx1 & vy1) ? dn * dw : scalar_t(0);
      }
    }
    // y_k = sum_c grad_out_c * I_c(aux), the corners in F.grid_sample's order.
    for (int64_t ch = 0; ch < a.C; ++ch) {
      const scalar_t* __restrict plane = a.input + (n * a.C + ch) * a.H * a.W;
      const scalar_t* __restrict go = a.grad_out + (n * a.C + ch) * hw + p0;
      if (ch == 0) {
        for (int64_t j = 0; j < len; ++j) {
          const scalar_t v = plane[o00[j]] * w00[j] + plane[o01[j]] * w01[j] +
                             plane[o10[j]] * w10[j] + plane[o11[j]] * w11[j];
          yv[j] = v * go[j];
        }
      } else {
        for (int64_t j = 0; j < len; ++j) {
          const scalar_t v = plane[o00[j]] * w00[j] + plane[o01[j]] * w01[j] +
                             plane[o10[j]] * w10[j] + plane[o11[j]] * w11[j];
          yv[j] = yv[j] + v * go[j];
        }
      }
    }
    // Running sums of the normal equations (masked offsets).
    for (int64_t j = 0; j < len; ++j) {
      const scalar_t y = yv[j] - y0[j];
      const scalar_t mx = mox[j], my = moy[j];
      sxx[j] = sxx[j] + mx * mx;
      sxy[j] = sxy[j] + mx * my;
      syy[j] = syy[j] + my * my;
      bxs[j] = bxs[j] + mx * y;
      bys[j] = bys[j] + my * y;
    }
  }

  // Closed-form solve of (S + diag(eps_x, eps_y)) J = b, J = 0 where det <= 0.
  scalar_t* res = a.result + (n * hw + p0) * 2;
  for (int64_t j = 0; j < len; ++j) {
    const scalar_t aa = sxx[j] + a.eps_x;
    const scalar_t dd = syy[j] + a.eps_y;
    const scalar_t det0 = aa * dd - sxy[j] * sxy[j];
    const bool ok = det0 > scalar_t(0);
    const scalar_t det = ok ? det0 : one;
    const scalar_t jx = (dd * bxs[j] - sxy[j] * bys[j]) / det;
    const scalar_t jy = (aa * bys[j] - sxy[j] * bxs[j]) / det;
    res[2 * j] = ok ? jx : scalar_t(0);
    res[2 * j + 1] = ok ? jy : scalar_t(0);
  }
}

// Pixels [begin, end) of the flattened (N, h*w) range.
template <typename scalar_t, bool kCollapse, bool kInside>
static inline __attribute__((always_inline)) void fit_range(const FitArgs<scalar_t>& a,
                                                            int64_t begin, int64_t end) {
  const int64_t hw = a.h * a.w;
  int64_t i = begin;
  while (i < end) {
    const int64_t n = i / hw;
    const int64_t p = i - n * hw;
    const int64_t len = std::min({kBlock, hw - p, end - i});
    fit_block<scalar_t, kCollapse, kInside>(a, n, p, len);
    i += len;
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define STNLAB_HAVE_AVX2_COPY 1
template <typename scalar_t, bool kCollapse, bool kInside>
__attribute__((target("avx2,fma"))) void fit_range_avx2(const FitArgs<scalar_t>& a,
                                                        int64_t begin, int64_t end) {
  fit_range<scalar_t, kCollapse, kInside>(a, begin, end);
}

static bool cpu_has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
#endif

template <typename scalar_t, bool kCollapse, bool kInside>
void fit_range_portable(const FitArgs<scalar_t>& a, int64_t begin, int64_t end) {
  fit_range<scalar_t, kCollapse, kInside>(a, begin, end);
}

template <typename scalar_t, bool kCollapse, bool kInside>
void fit_range_dispatch(const FitArgs<scalar_t>& a, int64_t begin, int64_t end,
                        bool portable) {
#ifdef STNLAB_HAVE_AVX2_COPY
  if (!portable && cpu_has_avx2()) {
    fit_range_avx2<scalar_t, kCollapse, kInside>(a, begin, end);
    return;
  }
#endif
  fit_range_portable<scalar_t, kCollapse, kInside>(a, begin, end);
}

at::Tensor fit(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& grad_out,
               const at::Tensor& output, const at::Tensor& noise, bool collapse_noise,
               double eps_x, double eps_y, double bx, double by, bool align_corners,
               bool portable) {
  TORCH_CHECK(input.device().is_cpu(), "linearized_fit: CPU tensors only");
  stnlab_fit::check_inputs("linearized_fit", input, grid, grad_out, output, noise);
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t h = grid.size(1), w = grid.size(2), K = noise.size(1);
  auto result = at::empty({N, h, w, 2}, grid.options());
  if (result.numel() == 0) return result;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "linearized_fit", [&] {
    const FitArgs<scalar_t> a = stnlab_fit::make_args<scalar_t>(
        input, grid, grad_out, output, noise, result, eps_x, eps_y, bx, by, align_corners);
    const int64_t grain = std::max<int64_t>(kBlock, 32768 / std::max<int64_t>(1, K * (C + 2)));
    // Do the auxiliaries that pass the mask lie in (-1, W) x (-1, H) (pixels)? The
    // unnormalization is monotone, so checking the bounds themselves suffices. With
    // _stencil_bound's bounds they lie in [0, W-1] x [0, H-1] up to rounding.
    const bool inside = a.x_lo > scalar_t(-1) && a.x_hi < static_cast<scalar_t>(W) &&
                        a.y_lo > scalar_t(-1) && a.y_hi < static_cast<scalar_t>(H) &&
                        a.x_lo <= a.x_hi && a.y_lo <= a.y_hi;
    at::parallel_for(0, N * h * w, grain, [&](int64_t begin, int64_t end) {
      if (collapse_noise && inside) {
        fit_range_dispatch<scalar_t, true, true>(a, begin, end, portable);
      } else if (inside) {
        fit_range_dispatch<scalar_t, false, true>(a, begin, end, portable);
      } else if (collapse_noise) {
        fit_range_dispatch<scalar_t, true, false>(a, begin, end, portable);
      } else {
        fit_range_dispatch<scalar_t, false, false>(a, begin, end, portable);
      }
    });
  });
  return result;
}

// Which copy of the loops runs on this CPU (for tests and the benchmark notes).
std::string simd() {
#ifdef STNLAB_HAVE_AVX2_COPY
  if (cpu_has_avx2()) return "avx2";
#endif
  return "portable";
}

}  // namespace

#define STNLAB_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)

STNLAB_LIBRARY(STNLAB_OPS_NAMESPACE, m) {
  m.def("fit(Tensor input, Tensor grid, Tensor grad_out, Tensor output, Tensor noise, "
        "bool collapse_noise, float eps_x, float eps_y, float bx, float by, "
        "bool align_corners, bool portable=False) -> Tensor");
  m.def("simd() -> str", &simd);
}

// A backend kernel (not a catch-all): torch.func transforms then unwrap their tensors
// before it runs (grad: the op is only ever called under no_grad; vmap: the batched
// fallback loops over the vmapped dimension).
TORCH_LIBRARY_IMPL(STNLAB_OPS_NAMESPACE, CPU, m) { m.impl("fit", &fit); }
