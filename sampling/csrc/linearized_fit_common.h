// What the CPU (linearized_fit.cpp) and CUDA (linearized_fit_cuda.cu) kernels of the
// linearized sampler's backward share: the argument block, the input checks and the
// scalars of F.grid_sample's unnormalization. Host code only (the struct is plain data
// and is passed to the CUDA kernel by value).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

namespace stnlab_fit {

template <typename scalar_t>
struct FitArgs {
  const scalar_t* input;     // (N, C, H, W)
  const scalar_t* grid;      // (N, h, w, 2)
  const scalar_t* grad_out;  // (N, C, h, w)
  const scalar_t* output;    // (N, C, h, w)
  const scalar_t* noise;     // (4, K, h, w): z0, z1 (footprint units), cx, cy (normalized)
  scalar_t* result;          // (N, h, w, 2)
  int64_t N, C, H, W, h, w, K;
  scalar_t eps_x, eps_y;     // Tikhonov terms in normalized units (eps / ux^2, eps / uy^2)
  scalar_t bx, by;           // stencil bounds (normalized)
  scalar_t sx, sy, half;     // unnormalization: pixel = (g + 1) * s - half
  scalar_t x_lo, x_hi, y_lo, y_hi;  // pixel coordinates of the bounds (-bx, bx), (-by, by)
  // CPU kernel only (the CUDA kernel takes the scaled field): the noise is the raw N(0, 1)
  // variates, scaled in the kernel. z by sigma, c by (ncx, ncy) = (1/ux, 1/uy) in
  // normalized units; in input pixels the footprint is scaled by (fsx, fsy) = sigma (sx, sy)
  // and c is already one input pixel.
  scalar_t sigma = 1, ncx = 1, ncy = 1, fsx = 1, fsy = 1;
};

// Shapes, dtypes, devices and contiguity of the five inputs, as the Python caller
// promises them (a violation is a bug there, reported as a c10::Error).
inline void check_inputs(const char* name, const at::Tensor& input, const at::Tensor& grid,
                         const at::Tensor& grad_out, const at::Tensor& output,
                         const at::Tensor& noise) {
  TORCH_CHECK(input.dim() == 4 && grid.dim() == 4 && grid.size(3) == 2 && noise.dim() == 4 &&
                  noise.size(0) == 4,
              name, ": bad shapes");
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t h = grid.size(1), w = grid.size(2);
  TORCH_CHECK(grid.size(0) == N && grad_out.sizes() == output.sizes() &&
                  grad_out.size(0) == N && grad_out.size(1) == C && grad_out.size(2) == h &&
                  grad_out.size(3) == w && noise.size(2) == h && noise.size(3) == w,
              name, ": inconsistent shapes");
  for (const at::Tensor* t : {&grid, &grad_out, &output, &noise}) {
    TORCH_CHECK(t->scalar_type() == input.scalar_type() && t->device() == input.device(),
                name, ": all tensors must share one dtype and device");
    TORCH_CHECK(t->is_contiguous(), name, ": contiguous tensors only");
  }
  TORCH_CHECK(input.is_contiguous(), name, ": contiguous tensors only");
  // Corner offsets are int32 (clamped coordinates stay in [-2, W + 1] x [-2, H + 1]) and
  // the clamp bounds must be exact in float.
  TORCH_CHECK((H + 4) * (W + 4) < (int64_t(1) << 31) && W + 2 < (int64_t(1) << 24) &&
                  H + 2 < (int64_t(1) << 24),
              name, ": input planes too large for 32-bit offsets");
}

// The argument block: pointers, sizes, scalars, F.grid_sample's unnormalization
// (ATen's ComputeLocationBase, in scalar_t) and the pixel coordinates of the bounds.
template <typename scalar_t>
FitArgs<scalar_t> make_args(const at::Tensor& input, const at::Tensor& grid,
                            const at::Tensor& grad_out, const at::Tensor& output,
                            const at::Tensor& noise, at::Tensor& result, double eps_x,
                            double eps_y, double bx, double by, bool align_corners) {
  FitArgs<scalar_t> a;
  a.input = input.const_data_ptr<scalar_t>();
  a.grid = grid.const_data_ptr<scalar_t>();
  a.grad_out = grad_out.const_data_ptr<scalar_t>();
  a.output = output.const_data_ptr<scalar_t>();
  a.noise = noise.const_data_ptr<scalar_t>();
  a.result = result.mutable_data_ptr<scalar_t>();
  a.N = input.size(0); a.C = input.size(1); a.H = input.size(2); a.W = input.size(3);
  a.h = grid.size(1); a.w = grid.size(2); a.K = noise.size(1);
  a.eps_x = static_cast<scalar_t>(eps_x);
  a.eps_y = static_cast<scalar_t>(eps_y);
  a.bx = static_cast<scalar_t>(bx);
  a.by = static_cast<scalar_t>(by);
  if (align_corners) {
    a.sx = static_cast<scalar_t>(a.W - 1) / 2;
    a.sy = static_cast<scalar_t>(a.H - 1) / 2;
    a.half = scalar_t(0);
  } else {
    a.sx = static_cast<scalar_t>(a.W) / 2;
    a.sy = static_cast<scalar_t>(a.H) / 2;
    a.half = scalar_t(0.5);
  }
  a.fsx = a.sx;
  a.fsy = a.sy;
  a.x_lo = (-a.bx + scalar_t(1)) * a.sx - a.half;
  a.x_hi = (a.bx + scalar_t(1)) * a.sx - a.half;
  a.y_lo = (-a.by + scalar_t(1)) * a.sy - a.half;
  a.y_hi = (a.by + scalar_t(1)) * a.sy - a.half;
  return a;
}

}  // namespace stnlab_fit
