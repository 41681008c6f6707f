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

// Sums are taken column by column for windows larger than 2x2, else in row-major window order
// (window_sum_row_dispatch).
// Every window has a tap inside the input: PyTorch's limits (padding <= kernel / 2, and in
// ceil_mode a window starts inside the input or the left padding) guarantee it.
template <typename T>
void avg_pool2d_forward(const T* input, T* output, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  assert(g.h.dilation == 1 && g.w.dilation == 1);
  const int64_t OH = g.h.output, OW = g.w.output;
  parallel_for_vectorized(g.planes * OH, [&](int64_t begin, int64_t end) {
    detail::AvgPoolRowDivisors<T> divisors(p);
    std::vector<T> column = detail::column_scratch(g, T(0));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t oh = r % OH;
      T* out = output + r * OW;
      detail::window_sum_row_dispatch(input + (r / OH) * g.input_plane(), out, column.data(), g, oh,
                                      [](T v) { return v; });
      const T* divisor = divisors.row(oh);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) out[ow] /= divisor[ow];
    }
  });
}

// grad_input (planes x IH x IW) is overwritten.
template <typename T>
void avg_pool2d_backward(const T* grad_output, T* grad_input, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OW = g.w.output;
  detail::for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T* weights) {
    detail::AvgPoolRowDivisors<T> divisors(p);
    const T* go = grad_output + plane * g.output_plane();
    detail::window_sum_transpose_band(grad_input + plane * g.input_plane(), g, r0, r1, weights, [&](int64_t oh, T* w) {
      const T* divisor = divisors.row(oh);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) w[ow] = go[oh * OW + ow] / divisor[ow];
    });
  });
}

}  // namespace convpool
