#pragma once
// 2-D power-average (Lp) pooling: y = (sum over the window of |x|^p)^(1/p), no padding.
//
// PyTorch computes avg_pool(x^p) * kH*kW, which differs from this in two places: for negative
// inputs with odd or fractional p (PyTorch raises x, not |x|, to the power), and for ceil_mode
// windows cut by the input edge (PyTorch rescales their partial sum to the full kernel area).
// Here the sum is always the true sum over the taps inside the input.
//
// Gradient: dy/dx = sign(x) |x|^(p-1) / y^(p-1); it is taken as 0 where x == 0 or y == 0
// (PyTorch yields NaN for an all-zero window with p = 2).
//
// p = 1 and p = 2 sum |x| and x^2 directly, in the order of average pooling (a sum of squares
// beyond the type's range is inf, as in PyTorch). Any other p is computed in double relative to
// each window's largest |x| = m, y = m (sum of (|x| / m)^p)^(1/p) summed in row-major window
// order, so that no power overflows: as p grows, y tends to the max norm m (p = 1e300 gives m)
// and the gradient to grad_output split among the largest taps.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"
#include "window.hpp"

namespace convpool {

struct LpPool2dParams {
  Pool2dGeometry geometry;  // padding must be 0, dilation 1
  double norm_type = 2.0;   // p > 0, finite
};

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "lp_pool_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

template <typename T>
void lp_pool2d_forward(const T* input, T* output, const LpPool2dParams& p) {
  assert(p.geometry.h.padding == 0 && p.geometry.w.padding == 0 && p.norm_type > 0);
  with_vector_isa([&](auto isa) { lp_pool2d_forward(isa, input, output, p); });
}

// grad_input (planes x IH x IW) is overwritten.
template <typename T>
void lp_pool2d_backward(const T* grad_output, const T* input, T* grad_input, const LpPool2dParams& p) {
  with_vector_isa([&](auto isa) { lp_pool2d_backward(isa, grad_output, input, grad_input, p); });
}

}  // namespace convpool
