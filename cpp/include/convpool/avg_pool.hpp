#pragma once
// 2-D average pooling, forward and backward, with PyTorch's divisor rules, on the window sums of
// window.hpp.
//
// Divisor of output (oh, ow), as PyTorch: divisor_override if non-zero; else with
// count_include_pad the window clipped to the padded input (a ceil_mode window hanging past the
// right padding counts only what lies inside it); else the number of taps inside the input.
// Geometries must respect PyTorch's limits so that every window has a tap inside the input.

#include <cassert>
#include <cstdint>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"
#include "window.hpp"

namespace convpool {

struct AvgPool2dParams {
  Pool2dGeometry geometry;  // dilation must be 1
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

namespace detail {

// The divisor is separable, row factor * column factor (divisor_override: itself * 1).
inline int64_t avg_pool2d_divisor_factor(const AvgPool2dParams& p, const WindowDim& d, int64_t o, bool rows) {
  if (p.divisor_override != 0) return rows ? p.divisor_override : 1;
  return p.count_include_pad ? d.padded_count(o) : d.inside_count(o);
}

// The divisors of one output row as T (each the product of the two integer factors, rounded
// once), rebuilt only when the row factor changes: at the edge rows.
template <typename T>
class AvgPoolRowDivisors {
 public:
  explicit AvgPoolRowDivisors(const AvgPool2dParams& p)
      : params_(p), column_factors_(static_cast<size_t>(p.geometry.w.output)), divisors_(column_factors_.size()) {
    for (int64_t ow = 0; ow < p.geometry.w.output; ++ow)
      column_factors_[ow] = avg_pool2d_divisor_factor(p, p.geometry.w, ow, false);
  }

  const T* row(int64_t oh) {
    const int64_t factor = avg_pool2d_divisor_factor(params_, params_.geometry.h, oh, true);
    if (factor != row_factor_) {
      row_factor_ = factor;
      for (size_t ow = 0; ow < divisors_.size(); ++ow) divisors_[ow] = static_cast<T>(factor * column_factors_[ow]);
    }
    return divisors_.data();
  }

 private:
  const AvgPool2dParams& params_;
  std::vector<int64_t> column_factors_;
  std::vector<T> divisors_;
  int64_t row_factor_ = 0;  // no row factor is 0, so the first call fills divisors_
};

}  // namespace detail

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "avg_pool_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// Sums are taken column by column for windows larger than 2x2, else in row-major window order
// (window_sum_row_dispatch).
// Every window has a tap inside the input: PyTorch's limits (padding <= kernel / 2, and in
// ceil_mode a window starts inside the input or the left padding) guarantee it.
template <typename T>
void avg_pool2d_forward(const T* input, T* output, const AvgPool2dParams& p) {
  assert(p.geometry.h.dilation == 1 && p.geometry.w.dilation == 1);
  with_vector_isa([&](auto isa) { avg_pool2d_forward(isa, input, output, p); });
}

// grad_input (planes x IH x IW) is overwritten.
template <typename T>
void avg_pool2d_backward(const T* grad_output, T* grad_input, const AvgPool2dParams& p) {
  with_vector_isa([&](auto isa) { avg_pool2d_backward(isa, grad_output, grad_input, p); });
}

}  // namespace convpool
