#pragma once
// 2-D adaptive max pooling: a fixed output size, whatever the input's, over PyTorch's adaptive
// windows (shape.hpp's adaptive_start and adaptive_end), with max_pool.hpp's rules for ties and
// NaN: taps are scanned in row-major window order; TieBreak::first keeps the first maximum,
// TieBreak::last the last, TieBreak::split reports the first and divides the gradient equally
// among all of them; NanPolicy::propagate lets any NaN win (the last NaN gives the index),
// NanPolicy::ignore reads NaN as -inf. Where out does not divide in, neighbouring windows
// overlap, and an input's gradient sums its windows' contributions, in output order. Every
// window holds at least one input, so no index is -1.
//
// Compiled once, not per instruction set (isa.hpp): each window keeps its maximum and where it
// was in one ordered scan, and neighbouring windows differ in size and start, so there are no
// lanes of equal work to vectorize across as max_pool.hpp's fixed windows have.

#include <cmath>
#include <cstdint>
#include <limits>

#include "max_pool.hpp"
#include "parallel.hpp"
#include "shape.hpp"
#include "window.hpp"

namespace convpool {

struct AdaptiveMaxPool2dParams {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  TieBreak tie_break = TieBreak::first;
  NanPolicy nan = NanPolicy::propagate;
  int64_t input_plane() const { return in_h * in_w; }
  int64_t output_plane() const { return out_h * out_w; }
};

namespace detail {

// A value as the params' NaN policy reads it: NanPolicy::ignore reads NaN as -inf.
template <typename T>
T read_under(NanPolicy nan, T v) {
  return std::isnan(v) && nan == NanPolicy::ignore ? -std::numeric_limits<T>::infinity() : v;
}

// The maximum of the window [h0, h1) x [w0, w1) under the params' rules and its flat index in the
// plane (the first maximum for TieBreak::split).
template <typename T>
struct WindowMax {
  T value;
  int64_t index;
};

template <typename T>
WindowMax<T> window_max(const T* plane, const AdaptiveMaxPool2dParams& p, int64_t h0, int64_t h1, int64_t w0,
                        int64_t w1) {
  const bool propagate_nan = p.nan == NanPolicy::propagate, last = p.tie_break == TieBreak::last;
  WindowMax<T> best{T(0), -1};
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) {
      const T v = read_under(p.nan, plane[ih * p.in_w + iw]);
      const bool takes =
          best.index < 0 || (propagate_nan && std::isnan(v)) || (last ? v >= best.value : v > best.value);
      if (takes) best = {v, ih * p.in_w + iw};
    }
  return best;
}

// window_max over a whole plane of n elements (global pooling, the usual case after a network's
// last convolution): a vectorized pass finds the largest number and whether a NaN is present,
// then a scan stops at the first (TieBreak::last: the last) position holding it, or the last
// NaN's when NaN propagates (finding it with vectorized index reductions measured slower). The
// value is that element's own, as the scan's is (the sign of a zero, a NaN's payload).
template <typename T>
WindowMax<T> plane_max(const T* plane, int64_t n, const AdaptiveMaxPool2dParams& p) {
  constexpr T kLowest = -std::numeric_limits<T>::infinity();
  T largest = kLowest;
  int64_t nans = 0;
  // A NaN compares false, so it never becomes the largest.
#pragma omp simd reduction(max : largest) reduction(+ : nans)
  for (int64_t i = 0; i < n; ++i) {
    const T v = plane[i];
    nans += v != v;
    largest = v > largest ? v : largest;
  }
  // Each scan is bounded by the plane: when another thread changes the input under the call, the
  // value sought may be gone, and position 0 is reported instead (any answer is then meaningless,
  // but the reads stay inside the plane).
  int64_t index = -1;
  if (nans && p.nan == NanPolicy::propagate) {
    for (int64_t i = n - 1; i >= 0 && index < 0; --i)
      if (std::isnan(plane[i])) index = i;
  } else if (p.tie_break == TieBreak::last) {
    for (int64_t i = n - 1; i >= 0 && index < 0; --i)
      if (read_under(p.nan, plane[i]) == largest) index = i;
  } else {
    for (int64_t i = 0; i < n && index < 0; ++i)
      if (read_under(p.nan, plane[i]) == largest) index = i;
  }
  if (index < 0) index = 0;
  return {read_under(p.nan, plane[index]), index};
}

}  // namespace detail

// y: planes x out_h x out_w; indices (may be null): the flat index of each maximum in its plane.
template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* y, int64_t* indices, const AdaptiveMaxPool2dParams& p) {
  if (p.out_h == 1 && p.out_w == 1) {
    parallel_for(p.planes, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const detail::WindowMax<T> best = detail::plane_max(x + plane * p.input_plane(), p.input_plane(), p);
        y[plane] = best.value;
        if (indices) indices[plane] = best.index;
      }
    });
    return;
  }
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(p.in_w, p.out_w);
  parallel_for(p.planes * p.out_h, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t plane = item / p.out_h, oh = item % p.out_h;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const detail::WindowMax<T> best = detail::window_max(x + plane * p.input_plane(), p, rows.begin[oh],
                                                             rows.end[oh], columns.begin[ow], columns.end[ow]);
        y[item * p.out_w + ow] = best.value;
        if (indices) indices[item * p.out_w + ow] = best.index;
      }
    }
  });
}

// grad_input (planes x in_h x in_w) is overwritten. TieBreak::first/last route each gradient to its
// recorded index (x is not read) and return the number of indices outside the plane, which pass
// nothing; TieBreak::split finds the ties again in x (indices are not read) and returns 0.
template <typename T>
int64_t adaptive_max_pool2d_backward(const T* grad_output, const T* x, const int64_t* indices, T* grad_input,
                                     const AdaptiveMaxPool2dParams& p) {
  if (p.tie_break != TieBreak::split)
    return scatter_by_indices(grad_output, indices, p.output_plane(), grad_input, p.planes, p.in_h, p.in_w,
                              [](T& element, T value) { element += value; });
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(p.in_w, p.out_w);
  // One thread per plane adds each input's shares in output order.
  parallel_for(p.planes, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const T* in = x + plane * p.input_plane();
      T* grad = grad_input + plane * p.input_plane();
      std::fill(grad, grad + p.input_plane(), T(0));
      for (int64_t oh = 0; oh < p.out_h; ++oh)
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          const int64_t h0 = rows.begin[oh], h1 = rows.end[oh], w0 = columns.begin[ow], w1 = columns.end[ow];
          const T best = detail::window_max(in, p, h0, h1, w0, w1).value;
          const auto tied = [&](int64_t ih, int64_t iw) {
            const T v = detail::read_under(p.nan, in[ih * p.in_w + iw]);
            return std::isnan(best) ? std::isnan(v) : v == best;
          };
          int64_t count = 0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) count += tied(ih, iw);
          const T share = grad_output[(plane * p.out_h + oh) * p.out_w + ow] / static_cast<T>(count);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw)
              if (tied(ih, iw)) grad[ih * p.in_w + iw] += share;
        }
    }
  });
  return 0;
}

}  // namespace convpool
