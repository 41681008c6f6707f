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

#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "avg_pool.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "shape.hpp"

namespace convpool {

struct LpPool2dParams {
  Pool2dGeometry geometry;  // padding must be 0, dilation 1
  double norm_type = 2.0;   // p > 0, finite
};

namespace detail {

// The per-element functions of Lp pooling, with p = 1 and p = 2 (kNorm) free of pow so that
// their loops vectorize; kNorm = 0 is any other p.
template <typename T, int kNorm>
struct LpNorm {
  T p, inv_p, p_minus_1;

  explicit LpNorm(double norm_type)
      : p(static_cast<T>(norm_type)), inv_p(static_cast<T>(1.0 / norm_type)), p_minus_1(static_cast<T>(norm_type - 1.0)) {}

  T power(T x) const {  // |x|^p
    if constexpr (kNorm == 1) return std::abs(x);
    if constexpr (kNorm == 2) return x * x;
    return std::pow(std::abs(x), p);
  }
  T root(T sum) const {  // sum^(1/p)
    if constexpr (kNorm == 1) return sum;
    if constexpr (kNorm == 2) return std::sqrt(sum);
    return std::pow(sum, inv_p);
  }
  T output_scale(T y) const {  // y^(p-1)
    if constexpr (kNorm == 1) return T(1);
    if constexpr (kNorm == 2) return y;
    return std::pow(y, p_minus_1);
  }
  T input_factor(T x) const {  // sign(x) |x|^(p-1), 0 at x == 0
    if (x == T(0)) return T(0);
    if constexpr (kNorm == 1) return x > T(0) ? T(1) : T(-1);
    if constexpr (kNorm == 2) return x;
    return std::copysign(std::pow(std::abs(x), p_minus_1), x);
  }
};

// Calls body(LpNorm<T, k>) for the k that fits norm_type.
template <typename T, class Body>
void with_lp_norm(double norm_type, Body&& body) {
  if (norm_type == 1.0) body(LpNorm<T, 1>(norm_type));
  else if (norm_type == 2.0) body(LpNorm<T, 2>(norm_type));
  else body(LpNorm<T, 0>(norm_type));
}

// Computes one output row of y. `column`: see window_sum_row_dispatch.
template <typename T, class Norm>
void lp_pool2d_row(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, const Norm& norm) {
  window_sum_row_dispatch(plane, out, column, g, oh, [&norm](T v) { return norm.power(v); });
#pragma omp simd
  for (int64_t ow = 0; ow < g.w.output; ++ow) out[ow] = norm.root(out[ow]);
}

}  // namespace detail

template <typename T>
void lp_pool2d_forward(const T* input, T* output, const LpPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  assert(g.h.padding == 0 && g.w.padding == 0 && p.norm_type > 0);
  const int64_t OH = g.h.output, OW = g.w.output;
  parallel_for_vectorized(g.planes * OH, [&](int64_t begin, int64_t end) {
    std::vector<T> column = detail::column_scratch(g, T(0));
    detail::with_lp_norm<T>(p.norm_type, [&](const auto& norm) {
      for (int64_t r = begin; r < end; ++r)
        detail::lp_pool2d_row(input + (r / OH) * g.input_plane(), output + r * OW, column.data(), g, r % OH, norm);
    });
  });
}

// grad_input (planes x IH x IW) is overwritten; y is recomputed from the input.
template <typename T>
void lp_pool2d_backward(const T* grad_output, const T* input, T* grad_input, const LpPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OW = g.w.output;
  detail::for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T* weights) {
    // y is recomputed in the forward pass's summation order, so it equals the forward's output.
    std::vector<T> column = detail::column_scratch(g, T(0));
    const T* in = input + plane * g.input_plane();
    const T* go = grad_output + plane * g.output_plane();
    T* gi = grad_input + plane * g.input_plane();
    detail::with_lp_norm<T>(p.norm_type, [&](const auto& norm) {
      // gi = input_factor(x) * sum over windows of grad_output / y^(p-1)
      detail::window_sum_transpose_band(gi, g, r0, r1, weights, [&](int64_t oh, T* w) {
        detail::lp_pool2d_row(in, w, column.data(), g, oh, norm);
#pragma omp simd
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T y = w[ow];
          w[ow] = y > T(0) ? go[oh * OW + ow] / norm.output_scale(y) : T(0);
        }
      });
#pragma omp simd
      for (int64_t i = r0 * g.w.input; i < r1 * g.w.input; ++i) gi[i] *= norm.input_factor(in[i]);
    });
  });
}

}  // namespace convpool
