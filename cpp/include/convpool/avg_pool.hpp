#pragma once
// 2-D average pooling, forward and backward, with PyTorch's divisor rules; plus the window-sum
// building blocks that Lp pooling reuses.
//
// Divisor of output (oh, ow), as PyTorch: divisor_override if non-zero; else with
// count_include_pad the window clipped to the padded input (a ceil_mode window hanging past the
// right padding counts only what lies inside it); else the number of taps inside the input.
// Geometries must respect PyTorch's limits so that every window has a tap inside the input.

#include <cassert>
#include <cstdint>
#include <vector>

#include "parallel.hpp"
#include "shape.hpp"

namespace convpool {

struct AvgPool2dParams {
  Pool2dGeometry geometry;  // dilation must be 1
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

namespace detail {

// The divisor is separable, row factor * column factor (divisor_override: itself * 1).
inline int64_t avg_pool2d_divisor_factor(const AvgPool2dParams& p, const PoolDim& d, int64_t o, bool rows) {
  if (p.divisor_override != 0) return rows ? p.divisor_override : 1;
  return p.count_include_pad ? d.padded_count(o) : d.inside_count(o);
}

inline std::vector<int64_t> avg_pool2d_column_divisors(const AvgPool2dParams& p) {
  std::vector<int64_t> factors(static_cast<size_t>(p.geometry.w.output));
  for (int64_t ow = 0; ow < p.geometry.w.output; ++ow)
    factors[ow] = avg_pool2d_divisor_factor(p, p.geometry.w, ow, false);
  return factors;
}

}  // namespace detail

namespace detail {

// out[ow] = sum of f(x) over the taps of (oh, ow) inside the input, added in row-major window
// order so that every element has one fixed summation order.
template <typename T, int kStrideW, class Transform>
void window_sum_row(const T* plane, T* out, const Pool2dGeometry& g, int64_t oh, Transform f) {
  const PoolDim& H = g.h;
  const PoolDim& W = g.w;
  const int64_t sw = kStrideW > 0 ? kStrideW : W.stride;
  for (int64_t ow = 0; ow < W.output; ++ow) out[ow] = T(0);
  for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
    const T* row = plane + (H.start(oh) + kh * H.dilation) * W.input;
    for (int64_t kw = 0; kw < W.kernel; ++kw) {
      const int64_t offset = kw * W.dilation - W.padding;
      const int64_t ow_end = W.end_output(kw);
#pragma omp simd
      for (int64_t ow = W.first_output(kw); ow < ow_end; ++ow) out[ow] += f(row[ow * sw + offset]);
    }
  }
}

// Reduces output row oh of a separable geometry: column[iw] = reduce over the window's rows of
// f(x), then out[ow] = reduce over the window's columns. `column` holds IW elements.
template <typename T, class Transform, class Reduce>
void separable_window_row(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh,
                          T identity, Transform f, Reduce reduce) {
  const PoolDim& H = g.h;
  const PoolDim& W = g.w;
  const int64_t IW = W.input;
  for (int64_t iw = 0; iw < IW; ++iw) column[iw] = identity;
  for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
    const T* row = plane + (H.start(oh) + kh) * IW;
#pragma omp simd
    for (int64_t iw = 0; iw < IW; ++iw) column[iw] = reduce(column[iw], f(row[iw]));
  }
  for (int64_t ow = 0; ow < W.output; ++ow) out[ow] = identity;
  for (int64_t kw = 0; kw < W.kernel; ++kw) {
    const T* taps = column + kw - W.padding;
    const int64_t ow_end = W.end_output(kw);
#pragma omp simd
    for (int64_t ow = W.first_output(kw); ow < ow_end; ++ow) out[ow] = reduce(out[ow], taps[ow]);
  }
}

// `column` (IW elements) may be null when the caller has no scratch: the direct path is taken.
template <typename T, class Transform>
void window_sum_row_dispatch(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, Transform f) {
  if (column && g.separable())
    return separable_window_row(plane, out, column, g, oh, T(0), f, [](T a, T b) { return a + b; });
  switch (g.w.stride) {
    case 1: window_sum_row<T, 1>(plane, out, g, oh, f); break;
    case 2: window_sum_row<T, 2>(plane, out, g, oh, f); break;
    default: window_sum_row<T, 0>(plane, out, g, oh, f);
  }
}

// The transpose of a window sum, restricted to input rows [row_begin, row_end) of one plane:
// grad_input[tap] = sum over the windows containing tap of weight(window). `fill_weights(oh, w)`
// writes the OW weights of output row oh. Contributions arrive in row-major output order.
template <typename T, class FillWeights>
void window_sum_transpose_band(T* grad_input, const Pool2dGeometry& g, int64_t row_begin,
                               int64_t row_end, T* weights, FillWeights&& fill_weights) {
  const PoolDim& H = g.h;
  const PoolDim& W = g.w;
  for (int64_t i = row_begin * W.input; i < row_end * W.input; ++i) grad_input[i] = T(0);
  const int64_t oh_end = H.end_output_touching(row_end);
  for (int64_t oh = H.first_output_touching(row_begin); oh < oh_end; ++oh) {
    fill_weights(oh, weights);
    for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
      const int64_t ih = H.start(oh) + kh * H.dilation;
      if (ih < row_begin || ih >= row_end) continue;
      T* row = grad_input + ih * W.input;
      for (int64_t kw = 0; kw < W.kernel; ++kw) {
        const int64_t offset = kw * W.dilation - W.padding;
        const int64_t ow_end = W.end_output(kw);
#pragma omp simd
        for (int64_t ow = W.first_output(kw); ow < ow_end; ++ow) row[ow * W.stride + offset] += weights[ow];
      }
    }
  }
}

// Runs `band_body(plane, row_begin, row_end, weights)` for every (plane, band) work item, giving
// each thread a scratch row of OW weights.
template <typename T, class BandBody>
void for_each_input_band(const Pool2dGeometry& g, BandBody&& band_body) {
  const RowBands bands = RowBands::for_planes(g.planes, g.h.input);
  parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
    std::vector<T> weights(static_cast<size_t>(g.w.output));
    for (int64_t item = item_begin; item < item_end; ++item)
      band_body(bands.plane(item), bands.row_begin(item), bands.row_end(item), weights.data());
  });
}

}  // namespace detail

// Sums are taken in row-major window order, or column by column for separable geometries.
// Every window has a tap inside the input: PyTorch's limits (padding <= kernel / 2, and in
// ceil_mode a window starts inside the input or the left padding) guarantee it.
template <typename T>
void avg_pool2d_forward(const T* input, T* output, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  assert(g.h.dilation == 1 && g.w.dilation == 1);
  const int64_t OH = g.h.output, OW = g.w.output;
  parallel_for(g.planes * OH, [&](int64_t begin, int64_t end) {
    const std::vector<int64_t> column_divisors = detail::avg_pool2d_column_divisors(p);
    const int64_t* cd = column_divisors.data();
    std::vector<T> column(static_cast<size_t>(g.w.input));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t oh = r % OH;
      T* out = output + r * OW;
      detail::window_sum_row_dispatch(input + (r / OH) * g.input_plane(), out, column.data(), g, oh,
                                      [](T v) { return v; });
      const int64_t row_divisor = detail::avg_pool2d_divisor_factor(p, g.h, oh, true);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) out[ow] /= static_cast<T>(row_divisor * cd[ow]);
    }
  });
}

// grad_input (planes x IH x IW) is overwritten.
template <typename T>
void avg_pool2d_backward(const T* grad_output, T* grad_input, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OW = g.w.output;
  const std::vector<int64_t> column_divisors = detail::avg_pool2d_column_divisors(p);
  const int64_t* cd = column_divisors.data();
  detail::for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T* weights) {
    const T* go = grad_output + plane * g.output_plane();
    detail::window_sum_transpose_band(grad_input + plane * g.input_plane(), g, r0, r1, weights,
                                      [&](int64_t oh, T* w) {
                                        const int64_t row_divisor = detail::avg_pool2d_divisor_factor(p, g.h, oh, true);
#pragma omp simd
                                        for (int64_t ow = 0; ow < OW; ++ow)
                                          w[ow] = go[oh * OW + ow] / static_cast<T>(row_divisor * cd[ow]);
                                      });
  });
}

}  // namespace convpool
