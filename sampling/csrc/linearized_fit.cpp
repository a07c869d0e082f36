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
// The noise field (4, K, h, w) holds the raw N(0, 1) variates of the eager path (the same
// window of the same pool): the kernel scales them itself (sigma, one input pixel), so
// Python passes a view and allocates nothing.
//
// Floating point: the eager path's operations in the tensor's dtype, up to rounding: the
// fit in input pixels (the eager path: normalized units, so the noise and footprint are
// scaled in another order), the bilinear value of the kInside path at C = 1 as three
// lerps (lerp2; F.grid_sample: four corner weights), one reciprocal instead of two
// divisions in the solve, the order of the sums over the auxiliaries (sequential here, torch's
// reduction there) and the fused multiply-adds that torch's own vectorized kernels may
// use. Each is a few ulp of the operands; the tests bound the result against a float64
// evaluation (tests/sampling/test_linearized_fused.py). This file is compiled with
// -ffp-contract=off, so its result does not depend on the CPU: the AVX-512, AVX2 and
// portable copies agree bit for bit. Values stay
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
#include <ATen/ops/grid_sampler_2d.h>
#include <ATen/ops/grid_sampler_2d_backward.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <atomic>

#include "linearized_fit_common.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#ifndef STNLAB_OPS_NAMESPACE
#define STNLAB_OPS_NAMESPACE stnlab_linearized
#endif

namespace {

constexpr int64_t kBlock = 64;

// How far (pixels) the mask's bounds may lie outside [0, W-1] x [0, H-1] for the kInside
// path, which clamps the auxiliaries that pass the mask to the image: a sample moves by
// at most this much (with _stencil_bound's bounds, by the bounds' rounding, ~1e-7 W).
constexpr double kInsideSlack = 1e-3;

using stnlab_fit::FitArgs;

// The per-block prologue: grid, footprint D_p and y0 = sum_c output_c grad_out_c of
// pixels [p0, p0 + len) of image n, into arrays of kBlock scalars.
template <typename scalar_t>
static inline __attribute__((always_inline)) void prologue(
    const FitArgs<scalar_t>& a, int64_t n, int64_t p0, int64_t len, scalar_t* gx,
    scalar_t* gy, scalar_t* dcx, scalar_t* dcy, scalar_t* drx, scalar_t* dry, scalar_t* y0) {
  const int64_t hw = a.h * a.w;
  const int64_t w = a.w, h = a.h;
  // The footprint is torch.gradient's arithmetic: (g[+1] - g[-1]) / 2 inside, (g[+1] - g[0]) / 1 at the ends, 0 along an axis of length
  // 1 (x / 2 and x * 0.5 round alike). Interior pixels first (contiguous, vectorized),
  // then the first/last columns and rows are overwritten with one-sided differences.
  const scalar_t* g = a.grid + n * hw * 2;
  const scalar_t half = scalar_t(0.5);
  for (int64_t j = 0; j < len; ++j) {
    gx[j] = g[2 * (p0 + j)];
    gy[j] = g[2 * (p0 + j) + 1];
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
}

// The bilinear value of the corners (p00, p01; p10, p11) at fractions (dw, dn), as two
// lerps along x and one along y: 9 operations instead of the 13 of the four corner
// weights, exact where neighbours are equal. Used at C = 1 only (with more channels the
// four weights, computed once per auxiliary, cost 7 operations a channel, the lerps 9).
// Every copy (portable, AVX2, AVX-512) makes the same choice and uses these operations in
// this order, so they agree bit for bit; the eager path (F.grid_sample's corner weights)
// differs by rounding only (a few ulp of the values).
template <typename scalar_t>
static inline __attribute__((always_inline)) scalar_t lerp2(scalar_t p00, scalar_t p01,
                                                            scalar_t p10, scalar_t p11,
                                                            scalar_t dw, scalar_t dn) {
  const scalar_t top = p00 + (p01 - p00) * dw;
  const scalar_t bot = p10 + (p11 - p10) * dw;
  return top + (bot - top) * dn;
}

// Closed-form solve of (S + diag(eps_x, eps_y)) J = b, J = 0 where det <= 0, for pixels
// [p0, p0 + len) of image n from their five sums (kInside: sums in px^2, so eps_x sx^2
// and eps_y sy^2, and J scaled back to normalized units by sx, sy).
template <typename scalar_t, bool kInside>
static inline __attribute__((always_inline)) void solve(
    const FitArgs<scalar_t>& a, int64_t n, int64_t p0, int64_t len, const scalar_t* sxx,
    const scalar_t* sxy, const scalar_t* syy, const scalar_t* bxs, const scalar_t* bys) {
  const int64_t hw = a.h * a.w;
  const scalar_t one = scalar_t(1);
  const scalar_t eps_x = kInside ? a.eps_x * a.sx * a.sx : a.eps_x;
  const scalar_t eps_y = kInside ? a.eps_y * a.sy * a.sy : a.eps_y;
  scalar_t* res = a.result + (n * hw + p0) * 2;
  for (int64_t j = 0; j < len; ++j) {
    const scalar_t aa = sxx[j] + eps_x;
    const scalar_t dd = syy[j] + eps_y;
    const scalar_t det0 = aa * dd - sxy[j] * sxy[j];
    const bool ok = det0 > scalar_t(0);
    // One division per pixel (the reciprocal), no branch: the compiler vectorizes it.
    const scalar_t inv = one / (ok ? det0 : one);
    scalar_t jx = (dd * bxs[j] - sxy[j] * bys[j]) * inv;
    scalar_t jy = (aa * bys[j] - sxy[j] * bxs[j]) * inv;
    if (kInside) {
      jx = jx * a.sx;
      jy = jy * a.sy;
    }
    res[2 * j] = ok ? jx : scalar_t(0);
    res[2 * j + 1] = ok ? jy : scalar_t(0);
  }
}



// kInside: the grid, footprint and collapse noise in input pixels (F.grid_sample's
// unnormalization x = (g + 1) * sx - half, and D_p, c scaled by sx, sy), so that an
// auxiliary's pixel coordinate is one add away from its offset.
template <typename scalar_t>
static inline __attribute__((always_inline)) void to_pixels(const FitArgs<scalar_t>& a,
                                                            int64_t len, scalar_t* gx,
                                                            scalar_t* gy, scalar_t* dcx,
                                                            scalar_t* dcy, scalar_t* drx,
                                                            scalar_t* dry) {
  const scalar_t one = scalar_t(1);
  for (int64_t j = 0; j < len; ++j) {
    gx[j] = (gx[j] + one) * a.sx - a.half;
    gy[j] = (gy[j] + one) * a.sy - a.half;
    dcx[j] = dcx[j] * a.fsx;
    drx[j] = drx[j] * a.fsx;
    dcy[j] = dcy[j] * a.fsy;
    dry[j] = dry[j] * a.fsy;
  }
}

// Process pixels [p0, p0 + len) of image n (len <= kBlock).
//
// kInside (fit() checks it): W, H >= 2 and the mask's bounds lie in [0, W-1] x [0, H-1]
// pixels up to kInsideSlack (with _stencil_bound's bounds they are 0 and W-1 up to
// rounding). The fit is then done in input pixels: offsets o = D_p z + c in pixels, the
// mask x_lo <= x <= x_hi (the image of |g| <= bx under the unnormalization), coordinates
// clamped to [0, W-1] (a no-op for the auxiliaries that count, up to kInsideSlack; the
// others only need some finite value, multiplied by a zero offset), and the two corners
// of each row at columns i = min(floor(x), W - 2) and i + 1, weights 1 - (x - i) and
// x - i: exactly F.grid_sample's bilinear sample, whose corner at column W (weight 0
// there, x = W - 1) is zero padding. The sums are in px^2, eps in px^2 (eps_x sx^2),
// and the solution is scaled back to normalized units (J_norm = J_px * sx).
// Otherwise (a caller passing looser bounds) the general path works in normalized units
// and samples with F.grid_sample's zero padding anywhere.
template <typename scalar_t, bool kCollapse, bool kInside>
static inline __attribute__((always_inline)) void fit_block(const FitArgs<scalar_t>& a,
                                                            int64_t n, int64_t p0,
                                                            int64_t len) {
  const int64_t hw = a.h * a.w;
  const int W = static_cast<int>(a.W), H = static_cast<int>(a.H);
  const scalar_t one = scalar_t(1);

  scalar_t gx[kBlock], gy[kBlock], dcx[kBlock], dcy[kBlock], drx[kBlock], dry[kBlock];
  scalar_t y0[kBlock];
  scalar_t sxx[kBlock], sxy[kBlock], syy[kBlock], bxs[kBlock], bys[kBlock];
  scalar_t mox[kBlock], moy[kBlock], yv[kBlock];
  scalar_t w00[kBlock], w01[kBlock], w10[kBlock], w11[kBlock];
  int32_t o00[kBlock], o01[kBlock], o10[kBlock], o11[kBlock];

  prologue<scalar_t>(a, n, p0, len, gx, gy, dcx, dcy, drx, dry, y0);
  if (kInside) to_pixels<scalar_t>(a, len, gx, gy, dcx, dcy, drx, dry);
  for (int64_t j = 0; j < len; ++j) sxx[j] = sxy[j] = syy[j] = bxs[j] = bys[j] = scalar_t(0);

  // Clamps: kInside, to the image [0, W-1] x [0, H-1]; general path, to just outside the
  // image, where every corner is out of bounds whatever the exact value. NaN goes to lo.
  const scalar_t lo_x = kInside ? scalar_t(0) : scalar_t(-2);
  const scalar_t lo_y = kInside ? scalar_t(0) : scalar_t(-2);
  const scalar_t hi_x = static_cast<scalar_t>(kInside ? W - 1 : W + 1);
  const scalar_t hi_y = static_cast<scalar_t>(kInside ? H - 1 : H + 1);
  for (int64_t k = 0; k < a.K; ++k) {
    const scalar_t* z0 = a.noise + k * hw + p0;
    const scalar_t* z1 = a.noise + (a.K + k) * hw + p0;
    const scalar_t* cx = a.noise + (2 * a.K + k) * hw + p0;
    const scalar_t* cy = a.noise + (3 * a.K + k) * hw + p0;
    // Offsets, mask, bilinear corners and weights.
    for (int64_t j = 0; j < len; ++j) {
      // kInside: footprint already times sigma (to_pixels), collapse noise one input
      // pixel = the raw variate. General path: the eager path's scaled noise field.
      const scalar_t zz0 = kInside ? z0[j] : z0[j] * a.sigma;
      const scalar_t zz1 = kInside ? z1[j] : z1[j] * a.sigma;
      scalar_t ox = dcx[j] * zz0;
      ox = ox + drx[j] * zz1;
      scalar_t oy = dcy[j] * zz0;
      oy = oy + dry[j] * zz1;
      if (kCollapse) {
        ox = ox + (kInside ? cx[j] : cx[j] * a.ncx);
        oy = oy + (kInside ? cy[j] : cy[j] * a.ncy);
      }
      const scalar_t px = ox + gx[j];
      const scalar_t py = oy + gy[j];
      if (kInside) {
        const bool m = (px >= a.x_lo) & (px <= a.x_hi) & (py >= a.y_lo) & (py <= a.y_hi);
        mox[j] = m ? ox : scalar_t(0);  // masked offsets
        moy[j] = m ? oy : scalar_t(0);
        scalar_t x = (px > lo_x) ? px : lo_x;  // also maps NaN to lo
        x = (x < hi_x) ? x : hi_x;
        scalar_t y = (py > lo_y) ? py : lo_y;
        y = (y < hi_y) ? y : hi_y;
        const int32_t ix = std::min(static_cast<int32_t>(x), W - 2);
        const int32_t iy = std::min(static_cast<int32_t>(y), H - 2);
        const scalar_t dw = x - static_cast<scalar_t>(ix);
        const scalar_t dn = y - static_cast<scalar_t>(iy);
        o00[j] = iy * W + ix;
        if (a.C == 1) {  // the lerp fractions (see lerp2)
          w01[j] = dw;
          w10[j] = dn;
        } else {  // the four corner weights, shared by the channels
          const scalar_t de = one - dw, ds = one - dn;
          w00[j] = ds * de;
          w01[j] = ds * dw;
          w10[j] = dn * de;
          w11[j] = dn * dw;
        }
      } else {
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
        const scalar_t fx = std::floor(x), fy = std::floor(y);
        const int32_t ix = static_cast<int32_t>(fx), iy = static_cast<int32_t>(fy);
        const scalar_t dw = x - fx, de = one - dw;  // ATen's w, e, n, s
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
    // y_k = sum_c grad_out_c * I_c(aux). kInside: the lerp form (lerp2, the same
    // operations as the SIMD copies); general path: F.grid_sample's corners and weights.
    for (int64_t ch = 0; ch < a.C; ++ch) {
      const scalar_t* __restrict plane = a.input + (n * a.C + ch) * a.H * a.W;
      const scalar_t* __restrict go = a.grad_out + (n * a.C + ch) * hw + p0;
      if (kInside && a.C == 1) {
        for (int64_t j = 0; j < len; ++j) {
          const scalar_t* q = plane + o00[j];
          yv[j] = lerp2(q[0], q[1], q[W], q[W + 1], w01[j], w10[j]) * go[j];
        }
      } else if (kInside) {
        for (int64_t j = 0; j < len; ++j) {
          const scalar_t* q = plane + o00[j];
          const scalar_t v = q[0] * w00[j] + q[1] * w01[j] + q[W] * w10[j] + q[W + 1] * w11[j];
          yv[j] = ch == 0 ? v * go[j] : yv[j] + v * go[j];
        }
      } else if (ch == 0) {
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

  solve<scalar_t, kInside>(a, n, p0, len, sxx, sxy, syy, bxs, bys);
}

// Reads one float of every cache line of image n's C planes (a sequential pass, which
// the hardware prefetchers stream at full bandwidth) when they fit in kWarmBytes: the
// auxiliaries then read them from the cache instead of missing at random, which
// dominates on large inputs that are not in the cache (measured: 8 x 3 x 256 x 256 ->
// 32 x 32 with a cold cache took ~3.5x as long as with a warm one without this pass).
constexpr int64_t kWarmBytes = int64_t(1) << 20;

template <typename scalar_t>
static inline __attribute__((always_inline)) void warm_image(const FitArgs<scalar_t>& a,
                                                             int64_t n) {
  const int64_t count = a.C * a.H * a.W;
  if (count * int64_t(sizeof(scalar_t)) > kWarmBytes) return;
  const scalar_t* p = a.input + n * count;
  constexpr int64_t step = 64 / sizeof(scalar_t);
  scalar_t acc = scalar_t(0);
  for (int64_t i = 0; i < count; i += step) acc += p[i];
  asm volatile("" : : "r"(&acc) : "memory");  // keep the reads
}

// Pixels [begin, end) of the flattened (N, h*w) range, block by block: Block(a, n, p, len)
// for up to kBlock consecutive pixels of one image, each image's planes warmed first.
template <typename scalar_t, void (*Block)(const FitArgs<scalar_t>&, int64_t, int64_t, int64_t)>
static inline __attribute__((always_inline)) void for_each_block(const FitArgs<scalar_t>& a,
                                                                 int64_t begin, int64_t end) {
  const int64_t hw = a.h * a.w;
  int64_t i = begin;
  while (i < end) {
    const int64_t n = i / hw;
    const int64_t p = i - n * hw;
    const int64_t len = std::min({kBlock, hw - p, end - i});
    if (p == 0 || i == begin) warm_image(a, n);
    Block(a, n, p, len);
    i += len;
  }
}

template <typename scalar_t, bool kCollapse, bool kInside>
static inline __attribute__((always_inline)) void fit_range(const FitArgs<scalar_t>& a,
                                                            int64_t begin, int64_t end) {
  for_each_block<scalar_t, fit_block<scalar_t, kCollapse, kInside>>(a, begin, end);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define STNLAB_HAVE_AVX2_COPY 1
template <typename scalar_t, bool kCollapse, bool kInside>
__attribute__((target("avx2,fma"))) void fit_range_avx2(const FitArgs<scalar_t>& a,
                                                        int64_t begin, int64_t end) {
  fit_range<scalar_t, kCollapse, kInside>(a, begin, end);
}

// float32 and bounds inside the image (the common case): the same arithmetic as
// fit_block, written with AVX2 intrinsics, eight pixels per vector, and the K auxiliaries
// of those eight pixels in the inner loop, so the five sums stay in registers and the
// input region read by one group of pixels is reused by all K auxiliaries (fit_block
// sweeps the whole block once per auxiliary, which misses the L1/L2 caches on large
// inputs). Every operation is fit_block's, in the same order (the sums over k are
// sequential per pixel; no FMA), so the results are bit-identical to the portable copy.
// Pixels that do not fill a vector at the end of a block go through fit_block.

// The float pairs (plane[i], plane[i + 1]) of eight indices, split into firsts and seconds.
static inline __attribute__((target("avx2,fma"), always_inline)) void pairs8(
    const float* plane, __m256i idx, __m256& first, __m256& second) {
  alignas(32) int32_t i[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(i), idx);
  auto pair = [&](int32_t q) {
    return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(plane + q)));
  };
  auto quad = [&](int32_t q0, int32_t q1) {
    return _mm_loadh_pi(pair(q0), reinterpret_cast<const __m64*>(plane + q1));
  };
  const __m256 lo = _mm256_set_m128(quad(i[2], i[3]), quad(i[0], i[1]));
  const __m256 hi = _mm256_set_m128(quad(i[6], i[7]), quad(i[4], i[5]));
  // lo = (f0 s0 f1 s1 | f2 s2 f3 s3), hi = (f4 s4 f5 s5 | f6 s6 f7 s7)
  const __m256 f = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // f0 f1 f4 f5 | f2 f3 f6 f7
  const __m256 sd = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  first = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(f), _MM_SHUFFLE(3, 1, 2, 0)));
  second = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sd), _MM_SHUFFLE(3, 1, 2, 0)));
}

template <bool kCollapse, bool kC1>
__attribute__((target("avx2,fma"))) void fit_block_avx2_f32(const FitArgs<float>& a,
                                                            int64_t n, int64_t p0,
                                                            int64_t len) {
  const int64_t hw = a.h * a.w;
  const int64_t jv = len & ~int64_t(7);  // pixels done eight at a time
  if (jv > 0) {
    alignas(32) float gx[kBlock], gy[kBlock], dcx[kBlock], dcy[kBlock], drx[kBlock],
        dry[kBlock], y0[kBlock];
    alignas(32) float sxx[kBlock], sxy[kBlock], syy[kBlock], bxs[kBlock], bys[kBlock];
    prologue<float>(a, n, p0, jv, gx, gy, dcx, dcy, drx, dry, y0);
    to_pixels<float>(a, jv, gx, gy, dcx, dcy, drx, dry);
    const __m256 one = _mm256_set1_ps(1.f);
    const __m256 x_lo = _mm256_set1_ps(a.x_lo), x_hi = _mm256_set1_ps(a.x_hi);
    const __m256 y_lo = _mm256_set1_ps(a.y_lo), y_hi = _mm256_set1_ps(a.y_hi);
    const __m256 zero = _mm256_setzero_ps();
    const __m256 x_max = _mm256_set1_ps(static_cast<float>(a.W - 1));
    const __m256 y_max = _mm256_set1_ps(static_cast<float>(a.H - 1));
    const __m256i vW = _mm256_set1_epi32(static_cast<int>(a.W));
    const __m256i Wm2 = _mm256_set1_epi32(static_cast<int>(a.W) - 2);
    const __m256i Hm2 = _mm256_set1_epi32(static_cast<int>(a.H) - 2);
    const float* planes = a.input + n * a.C * a.H * a.W;
    const float* go0 = a.grad_out + n * a.C * hw + p0;
    const int64_t plane_size = a.H * a.W;
    for (int64_t j = 0; j < jv; j += 8) {
      const __m256 vgx = _mm256_load_ps(gx + j), vgy = _mm256_load_ps(gy + j);
      const __m256 vdcx = _mm256_load_ps(dcx + j), vdcy = _mm256_load_ps(dcy + j);
      const __m256 vdrx = _mm256_load_ps(drx + j), vdry = _mm256_load_ps(dry + j);
      const __m256 vy0 = _mm256_load_ps(y0 + j);
      __m256 s_xx = _mm256_setzero_ps(), s_xy = s_xx, s_yy = s_xx, b_x = s_xx, b_y = s_xx;
      const float* nz = a.noise + p0 + j;
      for (int64_t k = 0; k < a.K; ++k) {
        const __m256 z0 = _mm256_loadu_ps(nz + k * hw);
        const __m256 z1 = _mm256_loadu_ps(nz + (a.K + k) * hw);
        __m256 ox = _mm256_add_ps(_mm256_mul_ps(vdcx, z0), _mm256_mul_ps(vdrx, z1));
        __m256 oy = _mm256_add_ps(_mm256_mul_ps(vdcy, z0), _mm256_mul_ps(vdry, z1));
        if (kCollapse) {
          ox = _mm256_add_ps(ox, _mm256_loadu_ps(nz + (2 * a.K + k) * hw));  // 1 px
          oy = _mm256_add_ps(oy, _mm256_loadu_ps(nz + (3 * a.K + k) * hw));
        }
        const __m256 px = _mm256_add_ps(ox, vgx), py = _mm256_add_ps(oy, vgy);
        const __m256 in = _mm256_and_ps(
            _mm256_and_ps(_mm256_cmp_ps(px, x_lo, _CMP_GE_OQ), _mm256_cmp_ps(px, x_hi, _CMP_LE_OQ)),
            _mm256_and_ps(_mm256_cmp_ps(py, y_lo, _CMP_GE_OQ), _mm256_cmp_ps(py, y_hi, _CMP_LE_OQ)));
        const __m256 mx = _mm256_and_ps(in, ox), my = _mm256_and_ps(in, oy);
        const __m256 x = _mm256_min_ps(_mm256_max_ps(px, zero), x_max);  // NaN -> 0
        const __m256 y = _mm256_min_ps(_mm256_max_ps(py, zero), y_max);
        const __m256i ix = _mm256_min_epi32(_mm256_cvttps_epi32(x), Wm2);
        const __m256i iy = _mm256_min_epi32(_mm256_cvttps_epi32(y), Hm2);
        const __m256 dw = _mm256_sub_ps(x, _mm256_cvtepi32_ps(ix));
        const __m256 dn = _mm256_sub_ps(y, _mm256_cvtepi32_ps(iy));
        const __m256i r0 = _mm256_add_epi32(_mm256_mullo_epi32(iy, vW), ix);
        const __m256i r1 = _mm256_add_epi32(r0, vW);
        __m256 yv = _mm256_setzero_ps();
        if (kC1) {  // three lerps (lerp2)
          __m256 p00, p01, p10, p11;
          pairs8(planes, r0, p00, p01);
          pairs8(planes, r1, p10, p11);
          const __m256 top = _mm256_add_ps(p00, _mm256_mul_ps(_mm256_sub_ps(p01, p00), dw));
          const __m256 bot = _mm256_add_ps(p10, _mm256_mul_ps(_mm256_sub_ps(p11, p10), dw));
          const __m256 v = _mm256_add_ps(top, _mm256_mul_ps(_mm256_sub_ps(bot, top), dn));
          yv = _mm256_mul_ps(v, _mm256_loadu_ps(go0 + j));
        } else {  // four corner weights, shared by the channels
          const __m256 de = _mm256_sub_ps(one, dw), ds = _mm256_sub_ps(one, dn);
          const __m256 w00 = _mm256_mul_ps(ds, de), w01 = _mm256_mul_ps(ds, dw);
          const __m256 w10 = _mm256_mul_ps(dn, de), w11 = _mm256_mul_ps(dn, dw);
          for (int64_t ch = 0; ch < a.C; ++ch) {
            const float* plane = planes + ch * plane_size;
            __m256 p00, p01, p10, p11;
            pairs8(plane, r0, p00, p01);
            pairs8(plane, r1, p10, p11);
            __m256 v = _mm256_mul_ps(p00, w00);
            v = _mm256_add_ps(v, _mm256_mul_ps(p01, w01));
            v = _mm256_add_ps(v, _mm256_mul_ps(p10, w10));
            v = _mm256_add_ps(v, _mm256_mul_ps(p11, w11));
            const __m256 t = _mm256_mul_ps(v, _mm256_loadu_ps(go0 + ch * hw + j));
            yv = ch == 0 ? t : _mm256_add_ps(yv, t);
          }
        }
        const __m256 r = _mm256_sub_ps(yv, vy0);
        s_xx = _mm256_add_ps(s_xx, _mm256_mul_ps(mx, mx));
        s_xy = _mm256_add_ps(s_xy, _mm256_mul_ps(mx, my));
        s_yy = _mm256_add_ps(s_yy, _mm256_mul_ps(my, my));
        b_x = _mm256_add_ps(b_x, _mm256_mul_ps(mx, r));
        b_y = _mm256_add_ps(b_y, _mm256_mul_ps(my, r));
      }
      _mm256_store_ps(sxx + j, s_xx);
      _mm256_store_ps(sxy + j, s_xy);
      _mm256_store_ps(syy + j, s_yy);
      _mm256_store_ps(bxs + j, b_x);
      _mm256_store_ps(bys + j, b_y);
    }
    solve<float, true>(a, n, p0, jv, sxx, sxy, syy, bxs, bys);
  }
  if (jv < len) fit_block<float, kCollapse, true>(a, n, p0 + jv, len - jv);
}

template <bool kCollapse, bool kC1>
__attribute__((target("avx2,fma"))) void fit_range_avx2_f32(const FitArgs<float>& a,
                                                            int64_t begin, int64_t end) {
  for_each_block<float, fit_block_avx2_f32<kCollapse, kC1>>(a, begin, end);
}


// The same as fit_block_avx2_f32 with AVX-512 (sixteen pixels per vector, masks for the
// comparisons, gathers of the corner pairs); the rest of a block goes to the AVX2 copy.
template <bool kCollapse, bool kC1>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void fit_block_avx512_f32(
    const FitArgs<float>& a, int64_t n, int64_t p0, int64_t len) {
  const int64_t hw = a.h * a.w;
  const int64_t jv = len & ~int64_t(15);  // pixels done sixteen at a time
  if (jv > 0) {
    alignas(64) float gx[kBlock], gy[kBlock], dcx[kBlock], dcy[kBlock], drx[kBlock],
        dry[kBlock], y0[kBlock];
    alignas(64) float sxx[kBlock], sxy[kBlock], syy[kBlock], bxs[kBlock], bys[kBlock];
    prologue<float>(a, n, p0, jv, gx, gy, dcx, dcy, drx, dry, y0);
    to_pixels<float>(a, jv, gx, gy, dcx, dcy, drx, dry);
    const __m512 one = _mm512_set1_ps(1.f), zero = _mm512_setzero_ps();
    const __m512 x_lo = _mm512_set1_ps(a.x_lo), x_hi = _mm512_set1_ps(a.x_hi);
    const __m512 y_lo = _mm512_set1_ps(a.y_lo), y_hi = _mm512_set1_ps(a.y_hi);
    const __m512 x_max = _mm512_set1_ps(static_cast<float>(a.W - 1));
    const __m512 y_max = _mm512_set1_ps(static_cast<float>(a.H - 1));
    const __m512i vW = _mm512_set1_epi32(static_cast<int>(a.W));
    const __m512i Wm2 = _mm512_set1_epi32(static_cast<int>(a.W) - 2);
    const __m512i Hm2 = _mm512_set1_epi32(static_cast<int>(a.H) - 2);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float* planes = a.input + n * a.C * a.H * a.W;
    const float* go0 = a.grad_out + n * a.C * hw + p0;
    const int64_t plane_size = a.H * a.W;
    for (int64_t j = 0; j < jv; j += 16) {
      const __m512 vgx = _mm512_load_ps(gx + j), vgy = _mm512_load_ps(gy + j);
      const __m512 vdcx = _mm512_load_ps(dcx + j), vdcy = _mm512_load_ps(dcy + j);
      const __m512 vdrx = _mm512_load_ps(drx + j), vdry = _mm512_load_ps(dry + j);
      const __m512 vy0 = _mm512_load_ps(y0 + j);
      __m512 s_xx = zero, s_xy = zero, s_yy = zero, b_x = zero, b_y = zero;
      const float* nz = a.noise + p0 + j;
      for (int64_t k = 0; k < a.K; ++k) {
        const __m512 z0 = _mm512_loadu_ps(nz + k * hw);
        const __m512 z1 = _mm512_loadu_ps(nz + (a.K + k) * hw);
        __m512 ox = _mm512_add_ps(_mm512_mul_ps(vdcx, z0), _mm512_mul_ps(vdrx, z1));
        __m512 oy = _mm512_add_ps(_mm512_mul_ps(vdcy, z0), _mm512_mul_ps(vdry, z1));
        if (kCollapse) {
          ox = _mm512_add_ps(ox, _mm512_loadu_ps(nz + (2 * a.K + k) * hw));  // 1 px
          oy = _mm512_add_ps(oy, _mm512_loadu_ps(nz + (3 * a.K + k) * hw));
        }
        const __m512 px = _mm512_add_ps(ox, vgx), py = _mm512_add_ps(oy, vgy);
        const __mmask16 in = _mm512_cmp_ps_mask(px, x_lo, _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(px, x_hi, _CMP_LE_OQ) &
                             _mm512_cmp_ps_mask(py, y_lo, _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(py, y_hi, _CMP_LE_OQ);
        const __m512 mx = _mm512_maskz_mov_ps(in, ox), my = _mm512_maskz_mov_ps(in, oy);
        const __m512 x = _mm512_min_ps(_mm512_max_ps(px, zero), x_max);  // NaN -> 0
        const __m512 y = _mm512_min_ps(_mm512_max_ps(py, zero), y_max);
        const __m512i ix = _mm512_min_epi32(_mm512_cvttps_epi32(x), Wm2);
        const __m512i iy = _mm512_min_epi32(_mm512_cvttps_epi32(y), Hm2);
        const __m512 dw = _mm512_sub_ps(x, _mm512_cvtepi32_ps(ix));
        const __m512 dn = _mm512_sub_ps(y, _mm512_cvtepi32_ps(iy));
        const __m512i r0 = _mm512_add_epi32(_mm512_mullo_epi32(iy, vW), ix);
        const __m512i r1 = _mm512_add_epi32(r0, vW);
        const __m512 de = _mm512_sub_ps(one, dw), ds = _mm512_sub_ps(one, dn);
        const __m512 w00 = _mm512_mul_ps(ds, de), w01 = _mm512_mul_ps(ds, dw);  // C > 1
        const __m512 w10 = _mm512_mul_ps(dn, de), w11 = _mm512_mul_ps(dn, dw);
        const __m256i r0l = _mm512_castsi512_si256(r0), r0h = _mm512_extracti64x4_epi64(r0, 1);
        const __m256i r1l = _mm512_castsi512_si256(r1), r1h = _mm512_extracti64x4_epi64(r1, 1);
        __m512 yv = zero;
        for (int64_t ch = 0; ch < (kC1 ? 1 : a.C); ++ch) {
          const double* plane = reinterpret_cast<const double*>(planes + ch * plane_size);
          const __m512 a0 = _mm512_castpd_ps(_mm512_i32gather_pd(r0l, plane, 4));
          const __m512 a1 = _mm512_castpd_ps(_mm512_i32gather_pd(r0h, plane, 4));
          const __m512 c0 = _mm512_castpd_ps(_mm512_i32gather_pd(r1l, plane, 4));
          const __m512 c1 = _mm512_castpd_ps(_mm512_i32gather_pd(r1h, plane, 4));
          const __m512 p00 = _mm512_permutex2var_ps(a0, even, a1);
          const __m512 p01 = _mm512_permutex2var_ps(a0, odd, a1);
          const __m512 p10 = _mm512_permutex2var_ps(c0, even, c1);
          const __m512 p11 = _mm512_permutex2var_ps(c0, odd, c1);
          __m512 v;
          if (kC1) {  // three lerps (lerp2)
            const __m512 top = _mm512_add_ps(p00, _mm512_mul_ps(_mm512_sub_ps(p01, p00), dw));
            const __m512 bot = _mm512_add_ps(p10, _mm512_mul_ps(_mm512_sub_ps(p11, p10), dw));
            v = _mm512_add_ps(top, _mm512_mul_ps(_mm512_sub_ps(bot, top), dn));
          } else {  // four corner weights, shared by the channels
            v = _mm512_mul_ps(p00, w00);
            v = _mm512_add_ps(v, _mm512_mul_ps(p01, w01));
            v = _mm512_add_ps(v, _mm512_mul_ps(p10, w10));
            v = _mm512_add_ps(v, _mm512_mul_ps(p11, w11));
          }
          const __m512 t = _mm512_mul_ps(v, _mm512_loadu_ps(go0 + ch * hw + j));
          yv = ch == 0 ? t : _mm512_add_ps(yv, t);
        }
        const __m512 r = _mm512_sub_ps(yv, vy0);
        s_xx = _mm512_add_ps(s_xx, _mm512_mul_ps(mx, mx));
        s_xy = _mm512_add_ps(s_xy, _mm512_mul_ps(mx, my));
        s_yy = _mm512_add_ps(s_yy, _mm512_mul_ps(my, my));
        b_x = _mm512_add_ps(b_x, _mm512_mul_ps(mx, r));
        b_y = _mm512_add_ps(b_y, _mm512_mul_ps(my, r));
      }
      _mm512_store_ps(sxx + j, s_xx);
      _mm512_store_ps(sxy + j, s_xy);
      _mm512_store_ps(syy + j, s_yy);
      _mm512_store_ps(bxs + j, b_x);
      _mm512_store_ps(bys + j, b_y);
    }
    solve<float, true>(a, n, p0, jv, sxx, sxy, syy, bxs, bys);
  }
  if (jv < len) fit_block_avx2_f32<kCollapse, kC1>(a, n, p0 + jv, len - jv);
}

template <bool kCollapse, bool kC1>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void fit_range_avx512_f32(
    const FitArgs<float>& a, int64_t begin, int64_t end) {
  for_each_block<float, fit_block_avx512_f32<kCollapse, kC1>>(a, begin, end);
}

static bool cpu_has_avx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
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
                        int64_t isa) {
#ifdef STNLAB_HAVE_AVX2_COPY
  if (isa < 2 && cpu_has_avx2()) {
    if constexpr (std::is_same_v<scalar_t, float> && kInside) {
      // C = 1: the channel loop and its accumulator compiled away (fewer live vectors).
      if (isa < 1 && cpu_has_avx512()) {
        if (a.C == 1) fit_range_avx512_f32<kCollapse, true>(a, begin, end);
        else fit_range_avx512_f32<kCollapse, false>(a, begin, end);
        return;
      }
      if (a.C == 1) fit_range_avx2_f32<kCollapse, true>(a, begin, end);
      else fit_range_avx2_f32<kCollapse, false>(a, begin, end);
      return;
    }
    fit_range_avx2<scalar_t, kCollapse, kInside>(a, begin, end);
    return;
  }
#endif
  fit_range_portable<scalar_t, kCollapse, kInside>(a, begin, end);
}

at::Tensor fit(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& grad_out,
               const at::Tensor& output, const at::Tensor& noise, bool collapse_noise,
               double eps_x, double eps_y, double bx, double by, bool align_corners,
               int64_t isa, double sigma, double noise_cx, double noise_cy) {
  TORCH_CHECK(input.device().is_cpu(), "linearized_fit: CPU tensors only");
  stnlab_fit::check_inputs("linearized_fit", input, grid, grad_out, output, noise);
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t h = grid.size(1), w = grid.size(2), K = noise.size(1);
  auto result = at::empty({N, h, w, 2}, grid.options());
  if (result.numel() == 0) return result;
  // The noise is a window of the pool at any offset; every image of the batch reads all of
  // it, with vector loads that straddle two cache lines unless it starts on a 64-byte
  // boundary (measured: 3-13 % of the kernel at C = 3 and 64). One aligned copy per call
  // (4 K h w values, what the Python side used to allocate) is cheaper than that.
  const at::Tensor noise_a =
      reinterpret_cast<uintptr_t>(noise.const_data_ptr()) % 64 == 0 ? noise : noise.clone();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "linearized_fit", [&] {
    FitArgs<scalar_t> a = stnlab_fit::make_args<scalar_t>(
        input, grid, grad_out, output, noise_a, result, eps_x, eps_y, bx, by, align_corners);
    a.sigma = static_cast<scalar_t>(sigma);
    a.ncx = static_cast<scalar_t>(noise_cx);
    a.ncy = static_cast<scalar_t>(noise_cy);
    a.fsx = a.sx * a.sigma;
    a.fsy = a.sy * a.sigma;
    const int64_t grain = std::max<int64_t>(kBlock, 32768 / std::max<int64_t>(1, K * (C + 2)));
    // kInside (see fit_block): W, H >= 2 and the bounds within kInsideSlack pixels of
    // [0, W-1] x [0, H-1]. The unnormalization is monotone, so checking the bounds
    // themselves suffices. With _stencil_bound's bounds they are 0 and W-1 up to rounding.
    const scalar_t slack = static_cast<scalar_t>(kInsideSlack);
    const bool inside = W >= 2 && H >= 2 && a.x_lo >= -slack && a.y_lo >= -slack &&
                        a.x_hi <= static_cast<scalar_t>(W - 1) + slack &&
                        a.y_hi <= static_cast<scalar_t>(H - 1) + slack &&
                        a.x_lo <= a.x_hi && a.y_lo <= a.y_hi;
    at::parallel_for(0, N * h * w, grain, [&](int64_t begin, int64_t end) {
      if (collapse_noise && inside) {
        fit_range_dispatch<scalar_t, true, true>(a, begin, end, isa);
      } else if (inside) {
        fit_range_dispatch<scalar_t, false, true>(a, begin, end, isa);
      } else if (collapse_noise) {
        fit_range_dispatch<scalar_t, true, false>(a, begin, end, isa);
      } else {
        fit_range_dispatch<scalar_t, false, false>(a, begin, end, isa);
      }
    });
  });
  return result;
}

// Which copy of the loops runs on this CPU (for tests and the benchmark notes).
std::string simd() {
#ifdef STNLAB_HAVE_AVX2_COPY
  if (cpu_has_avx512()) return "avx512";
  if (cpu_has_avx2()) return "avx2";
#endif
  return "portable";
}

// The whole sampler as one op with a C++ autograd node (sample): forward F.grid_sample's
// bilinear value, backward the bilinear input gradient and fit()'s grid gradient, the
// same calls as sampling/linearized.py's Python Function (_backward), so the same bits,
// without its Python work per call (the Function, the context, the backward's Python,
// ~40-60 us a call on a 2-core EPYC). sampling.linearized uses it outside torch.func
// transforms and torch.compile only; a call of fit() from it is counted in fit_calls.
std::atomic<int64_t> fit_calls_{0};

struct Sample : public torch::autograd::Function<Sample> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& grid, const at::Tensor& noise,
                            bool collapse_noise, double eps_x, double eps_y, double bx,
                            double by, bool align_corners, int64_t padding_mode, int64_t isa,
                            double sigma, double noise_cx, double noise_cy) {
    at::Tensor out = at::grid_sampler_2d(input, grid, 0, padding_mode, align_corners);
    ctx->save_for_backward({input, grid, out, noise});
    ctx->saved_data["collapse_noise"] = collapse_noise;
    ctx->saved_data["align_corners"] = align_corners;
    ctx->saved_data["padding_mode"] = padding_mode;
    ctx->saved_data["isa"] = isa;
    ctx->saved_data["scalars"] = std::vector<double>{eps_x, eps_y, bx, by, sigma, noise_cx,
                                                     noise_cy};
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &grid = saved[1], &out = saved[2], &noise = saved[3];
    const bool align_corners = ctx->saved_data["align_corners"].toBool();
    const int64_t padding_mode = ctx->saved_data["padding_mode"].toInt();
    const auto v = ctx->saved_data["scalars"].toDoubleVector();
    // The Python Function is once_differentiable; here a differentiable backward
    // (create_graph=True) is refused outright rather than silently treating the fitted
    // gradient as a constant.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "linearized_grid_sample: its backward is not differentiable "
                "(create_graph=True / double backward is not supported)");
    const at::Tensor go = grads[0].contiguous();
    at::Tensor grad_input, grad_grid;
    if (ctx->needs_input_grad(0)) {
      grad_input = std::get<0>(at::grid_sampler_2d_backward(go, input, grid, 0, padding_mode,
                                                            align_corners, {true, false}));
    }
    if (ctx->needs_input_grad(1)) {
      fit_calls_.fetch_add(1);
      grad_grid = fit(input.contiguous(), grid.contiguous(), go, out.contiguous(), noise,
                      ctx->saved_data["collapse_noise"].toBool(), v[0], v[1], v[2], v[3],
                      align_corners, ctx->saved_data["isa"].toInt(), v[4], v[5], v[6]);
    }
    torch::autograd::variable_list result(14);
    result[0] = grad_input;
    result[1] = grad_grid;
    return result;
  }
};

at::Tensor sample(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& noise,
                  bool collapse_noise, double eps_x, double eps_y, double bx, double by,
                  bool align_corners, int64_t padding_mode, int64_t isa, double sigma,
                  double noise_cx, double noise_cy) {
  return Sample::apply(input, grid, noise, collapse_noise, eps_x, eps_y, bx, by,
                       align_corners, padding_mode, isa, sigma, noise_cx, noise_cy);
}

// Without autograd (inference mode): the bilinear value.
at::Tensor sample_value(const at::Tensor& input, const at::Tensor& grid, const at::Tensor&,
                        bool, double, double, double, double, bool align_corners,
                        int64_t padding_mode, int64_t, double, double, double) {
  return at::grid_sampler_2d(input, grid, 0, padding_mode, align_corners);
}

int64_t fit_calls() { return fit_calls_.load(); }

}  // namespace

#define STNLAB_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)

STNLAB_LIBRARY(STNLAB_OPS_NAMESPACE, m) {
  m.def("fit(Tensor input, Tensor grid, Tensor grad_out, Tensor output, Tensor noise, "
        "bool collapse_noise, float eps_x, float eps_y, float bx, float by, "
        "bool align_corners, int isa=0, float sigma=1., float noise_cx=1., "
        "float noise_cy=1.) -> Tensor");
  m.def("simd() -> str", &simd);
  m.def("sample(Tensor input, Tensor grid, Tensor noise, bool collapse_noise, float eps_x, "
        "float eps_y, float bx, float by, bool align_corners, int padding_mode, int isa, "
        "float sigma, float noise_cx, float noise_cy) -> Tensor");
  m.def("fit_calls() -> int", &fit_calls);
}

TORCH_LIBRARY_IMPL(STNLAB_OPS_NAMESPACE, Autograd, m) { m.impl("sample", &sample); }
TORCH_LIBRARY_IMPL(STNLAB_OPS_NAMESPACE, CPU, m) { m.impl("sample", &sample_value); }

// A backend kernel (not a catch-all): torch.func transforms then unwrap their tensors
// before it runs (grad: the op is only ever called under no_grad; vmap: the batched
// fallback loops over the vmapped dimension).
TORCH_LIBRARY_IMPL(STNLAB_OPS_NAMESPACE, CPU, m) { m.impl("fit", &fit); }
