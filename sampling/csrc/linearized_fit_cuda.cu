// Fused CUDA kernel of the linearized multi-sampler's backward pass: the GPU twin of
// linearized_fit.cpp (read that file's header for what is computed and why). One
// thread per (image, output pixel) does the footprint (torch.gradient's arithmetic), y0,
// the K auxiliary offsets from the shared noise field, the stencil mask, a zero-padded
// bilinear sample of all C channels with F.grid_sample's unnormalization, the five
// running sums and the closed-form 2x2 Tikhonov solve with the `det > 0` guard.
//
// The eager path on a GPU is launch-bound (about 40 small kernels per tile); this is one
// kernel and allocates only the (N, h, w, 2) result. Floating point: the eager path's
// operations in the same order in the tensor's dtype, compiled with --fmad=false; sums
// over the auxiliaries are sequential.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "linearized_fit_common.h"

#include <cstdint>

#ifndef STNLAB_OPS_NAMESPACE
#define STNLAB_OPS_NAMESPACE stnlab_linearized_cuda
#endif

namespace {

using stnlab_fit::FitArgs;

template <typename scalar_t>
__device__ __forceinline__ scalar_t tap(const scalar_t* plane, int ix, int iy, int W, int H) {
  return (ix >= 0 && ix < W && iy >= 0 && iy < H) ? plane[iy * W + ix] : scalar_t(0);
}

template <typename scalar_t, bool kCollapse>
__global__ void fit_kernel(const FitArgs<scalar_t> a) {
  const int64_t hw = a.h * a.w;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.N * hw) return;
  const int64_t n = idx / hw, p = idx - n * hw;
  const int64_t r = p / a.w, c = p - r * a.w;
  const scalar_t one = scalar_t(1);
  const scalar_t* g = a.grid + n * hw * 2;

  // Footprint: (g[+1] - g[-1]) / 2 inside, one-sided at the ends, 0 on an axis of length 1.
  const int64_t cl = c > 0 ? p - 1 : p, cr = c < a.w - 1 ? p + 1 : p;
  const int64_t ru = r > 0 ? p - a.w : p, rd = r < a.h - 1 ? p + a.w : p;
  const scalar_t dc = (c > 0 && c < a.w - 1) ? scalar_t(2) : one;
  const scalar_t dr = (r > 0 && r < a.h - 1) ? scalar_t(2) : one;
  const scalar_t gx = g[2 * p], gy = g[2 * p + 1];
  const scalar_t dcx = (g[2 * cr] - g[2 * cl]) / dc, dcy = (g[2 * cr + 1] - g[2 * cl + 1]) / dc;
  const scalar_t drx = (g[2 * rd] - g[2 * ru]) / dr, dry = (g[2 * rd + 1] - g[2 * ru + 1]) / dr;

  const scalar_t* out = a.output + n * a.C * hw + p;
  const scalar_t* go = a.grad_out + n * a.C * hw + p;
  scalar_t y0 = out[0] * go[0];
  for (int64_t ch = 1; ch < a.C; ++ch) y0 = y0 + out[ch * hw] * go[ch * hw];

  const int W = static_cast<int>(a.W), H = static_cast<int>(a.H);
  scalar_t sxx = 0, sxy = 0, syy = 0, bxs = 0, bys = 0;
  for (int64_t k = 0; k < a.K; ++k) {
    const scalar_t z0 = a.noise[k * hw + p], z1 = a.noise[(a.K + k) * hw + p];
    scalar_t ox = dcx * z0;
    ox = ox + drx * z1;
    scalar_t oy = dcy * z0;
    oy = oy + dry * z1;
    if (kCollapse) {
      ox = ox + a.noise[(2 * a.K + k) * hw + p];
      oy = oy + a.noise[(3 * a.K + k) * hw + p];
    }
    const scalar_t px = ox + gx, py = oy + gy;
    const bool in = (fabs(px) <= a.bx) && (fabs(py) <= a.by);
    const scalar_t mx = in ? ox : scalar_t(0), my = in ? oy : scalar_t(0);
    scalar_t x = (px + one) * a.sx - a.half;
    scalar_t y = (py + one) * a.sy - a.half;
    // Far outside (or NaN): clamp to just outside the image; every tap is then zero.
    x = x > scalar_t(-2) ? x : scalar_t(-2);
    x = x < scalar_t(W + 1) ? x : scalar_t(W + 1);
    y = y > scalar_t(-2) ? y : scalar_t(-2);
    y = y < scalar_t(H + 1) ? y : scalar_t(H + 1);
    const scalar_t fx = floor(x), fy = floor(y);
    const int ix = static_cast<int>(fx), iy = static_cast<int>(fy);
    const scalar_t dw = x - fx, de = one - dw, dn = y - fy, ds = one - dn;
    scalar_t yk = 0;
    for (int64_t ch = 0; ch < a.C; ++ch) {
      const scalar_t* plane = a.input + (n * a.C + ch) * a.H * a.W;
      const scalar_t v = tap(plane, ix, iy, W, H) * (ds * de) +
                         tap(plane, ix + 1, iy, W, H) * (ds * dw) +
                         tap(plane, ix, iy + 1, W, H) * (dn * de) +
                         tap(plane, ix + 1, iy + 1, W, H) * (dn * dw);
      yk = yk + v * go[ch * hw];
    }
    const scalar_t yd = yk - y0;
    sxx = sxx + mx * mx;
    sxy = sxy + mx * my;
    syy = syy + my * my;
    bxs = bxs + mx * yd;
    bys = bys + my * yd;
  }
  const scalar_t aa = sxx + a.eps_x, dd = syy + a.eps_y;
  const scalar_t det0 = aa * dd - sxy * sxy;
  const bool ok = det0 > scalar_t(0);
  const scalar_t det = ok ? det0 : one;
  a.result[2 * idx] = ok ? (dd * bxs - sxy * bys) / det : scalar_t(0);
  a.result[2 * idx + 1] = ok ? (aa * bys - sxy * bxs) / det : scalar_t(0);
}

at::Tensor fit(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& grad_out,
               const at::Tensor& output, const at::Tensor& noise, bool collapse_noise,
               double eps_x, double eps_y, double bx, double by, bool align_corners) {
  TORCH_CHECK(input.is_cuda(), "linearized_fit_cuda: CUDA tensors only");
  stnlab_fit::check_inputs("linearized_fit_cuda", input, grid, grad_out, output, noise);
  const c10::cuda::CUDAGuard guard(input.device());
  auto result = at::empty({input.size(0), grid.size(1), grid.size(2), 2}, grid.options());
  const int64_t total = result.numel() / 2;
  if (total == 0) return result;
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  TORCH_CHECK(blocks < (int64_t(1) << 31), "linearized_fit_cuda: too many pixels");
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "linearized_fit_cuda", [&] {
    const FitArgs<scalar_t> a = stnlab_fit::make_args<scalar_t>(
        input, grid, grad_out, output, noise, result, eps_x, eps_y, bx, by, align_corners);
    if (collapse_noise) {
      fit_kernel<scalar_t, true><<<static_cast<unsigned int>(blocks), threads, 0, stream>>>(a);
    } else {
      fit_kernel<scalar_t, false><<<static_cast<unsigned int>(blocks), threads, 0, stream>>>(a);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return result;
}

}  // namespace

TORCH_LIBRARY(STNLAB_OPS_NAMESPACE, m) {
  m.def("fit(Tensor input, Tensor grid, Tensor grad_out, Tensor output, Tensor noise, "
        "bool collapse_noise, float eps_x, float eps_y, float bx, float by, "
        "bool align_corners) -> Tensor");
}

// A backend kernel (not a catch-all): torch.func transforms then unwrap their tensors
// before it runs (grad: the op is only ever called under no_grad; vmap: the batched
// fallback loops over the vmapped dimension).
TORCH_LIBRARY_IMPL(STNLAB_OPS_NAMESPACE, CUDA, m) { m.impl("fit", &fit); }
