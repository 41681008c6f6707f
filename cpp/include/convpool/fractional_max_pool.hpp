#pragma once
// Fractional max pooling (Graham 2014) as PyTorch's fractional_max_pool2d computes it:
// kernel_h x kernel_w windows whose starts step pseudo-randomly by about in / out. Each plane has
// a pair of samples u in [0, 1), the first for the width and the second for the height; along a
// dimension of `in` inputs and `out` outputs, window i < out - 1 starts at
// int((i + u) * alpha) - int(u * alpha) with alpha = (in - kernel) / (out - 1), computed in T,
// and the last window at in - kernel. A window's maximum is its first strictly greatest value in
// row-major order, except that a NaN wins over any number (the last NaN gives the index): PyTorch's
// rule, so that given the same samples the outputs and indices are PyTorch's. Windows overlap
// when kernel > in / out, and an input's gradient then sums its windows' contributions, in
// output order.
//
// Layouts: x (planes, in_h, in_w), samples (planes, 2), y and indices (planes, out_h, out_w); an
// index is a flat position in its input plane.
//
// Compiled once, not per instruction set (isa.hpp): each window's start is pseudo-random, and its
// maximum and position come from one ordered scan, as in adaptive_max_pool.hpp.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "parallel.hpp"
#include "window.hpp"

namespace convpool {

struct FractionalMaxPool2dParams {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1, kernel_h = 1, kernel_w = 1;
  int64_t input_plane() const { return in_h * in_w; }
  int64_t output_plane() const { return out_h * out_w; }
};

namespace detail {

// The window starts along one dimension for sample u. PyTorch's formula puts every start in
// [0, in - kernel] for u in [0, 1) in exact arithmetic, but in T the product rounds (float32 rows
// wider than 2^24 put starts past in - kernel), and another thread may change the samples after
// the binding checked them: the clamp keeps every window inside its row whatever T, the sizes
// and the samples, and changes no start that was already inside.
template <typename T>
void fractional_starts(T u, int64_t in, int64_t out, int64_t kernel, int64_t* starts) {
  const int64_t last = in - kernel;
  if (out > 1) {
    const T alpha = static_cast<T>(last) / static_cast<T>(out - 1);
    // Out-of-range samples (NaN included) are taken as 0: the conversions below need finite values.
    if (!(u >= T(0) && u < T(1))) u = T(0);
    for (int64_t i = 0; i < out - 1; ++i) {
      const int64_t start = static_cast<int64_t>((static_cast<T>(i) + u) * alpha) - static_cast<int64_t>(u * alpha);
      starts[i] = std::clamp<int64_t>(start, 0, last);
    }
  }
  if (out > 0) starts[out - 1] = last;
}

}  // namespace detail

template <typename T>
void fractional_max_pool2d_forward(const T* x, const T* samples, T* y, int64_t* indices,
                                   const FractionalMaxPool2dParams& p) {
  parallel_for(p.planes, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> rows(p.out_h), columns(p.out_w);
    for (int64_t plane = begin; plane < end; ++plane) {
      detail::fractional_starts(samples[2 * plane], p.in_w, p.out_w, p.kernel_w, columns.data());
      detail::fractional_starts(samples[2 * plane + 1], p.in_h, p.out_h, p.kernel_h, rows.data());
      const T* in = x + plane * p.input_plane();
      for (int64_t oh = 0; oh < p.out_h; ++oh)
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          int64_t best = rows[oh] * p.in_w + columns[ow];
          T value = in[best];
          for (int64_t ih = rows[oh]; ih < rows[oh] + p.kernel_h; ++ih)
            for (int64_t iw = columns[ow]; iw < columns[ow] + p.kernel_w; ++iw) {
              const T v = in[ih * p.in_w + iw];
              if (v > value || std::isnan(v)) {
                value = v;
                best = ih * p.in_w + iw;
              }
            }
          const int64_t o = (plane * p.out_h + oh) * p.out_w + ow;
          y[o] = value;
          indices[o] = best;
        }
    }
  });
}

// grad_input (planes x in_h x in_w) is overwritten with each output's gradient routed to its
// recorded index. Returns the number of indices outside the input plane, which pass nothing.
template <typename T>
int64_t fractional_max_pool2d_backward(const T* grad_output, const int64_t* indices, T* grad_input,
                                       const FractionalMaxPool2dParams& p) {
  return scatter_by_indices(grad_output, indices, p.output_plane(), grad_input, p.planes, p.in_h, p.in_w,
                            [](T& element, T value) { element += value; });
}

}  // namespace convpool
