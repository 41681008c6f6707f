#pragma once
// Max unpooling, PyTorch's max_unpool2d: the partial inverse of max pooling, which puts each
// input value at the position its index names in an output of zeros.
//
// Layouts: x and indices (planes, H, W), y (planes, OH, OW); an index is a flat position in one
// OH x OW plane, as max_pool2d's return_indices gives them. Index -1 (an empty window of a
// pooling with NaN ignored) places nothing. Where two inputs name one position, the later in
// row-major order is kept; max pooling only repeats an index for the same input element, hence
// the same value.
//
// Compiled once, not per instruction set (isa.hpp): a scatter and a gather by index, bound by
// memory, not arithmetic; the index check before writing into a caller's out (window.hpp) is the
// loop that vectorizes, and it is compiled per set.

#include <atomic>
#include <cstdint>

#include "parallel.hpp"
#include "window.hpp"

namespace convpool {

struct MaxUnpool2dParams {
  int64_t planes = 1, input_plane = 1, out_h = 1, out_w = 1;
  int64_t output_plane() const { return out_h * out_w; }
};

// y = zeros, then y[plane][indices[i]] = x[i] in order. Returns the number of indices that are
// neither -1 nor inside the output plane; those are skipped.
template <typename T>
int64_t max_unpool2d_forward(const T* x, const int64_t* indices, T* y, const MaxUnpool2dParams& p) {
  return scatter_by_indices(x, indices, p.input_plane, y, p.planes, p.out_h, p.out_w,
                            [](T& element, T value) { element = value; });
}

// grad_input[i] = grad_output[plane][indices[i]], zero for index -1. Returns the number of
// indices outside the plane other than -1 (their gradient is zero).
template <typename T>
int64_t max_unpool2d_backward(const T* grad_output, const int64_t* indices, T* grad_input, const MaxUnpool2dParams& p) {
  const int64_t out_plane = p.output_plane();
  std::atomic<int64_t> bad_indices{0};
  parallel_for(p.planes, [&](int64_t begin, int64_t end) {
    int64_t bad = 0;
    for (int64_t plane = begin; plane < end; ++plane) {
      const T* g = grad_output + plane * out_plane;
      const int64_t* idx = indices + plane * p.input_plane;
      T* out = grad_input + plane * p.input_plane;
      // Branch-free: an index outside reads element 0 and selects zero, so that the loop's speed
      // does not depend on how the branch predictor or the code layout treat a rare case.
      for (int64_t i = 0; i < p.input_plane; ++i) {
        const int64_t o = idx[i];
        const bool inside = static_cast<uint64_t>(o) < static_cast<uint64_t>(out_plane);
        const T value = g[inside ? o : 0];
        out[i] = inside ? value : T(0);
        bad += !inside & (o != -1);
      }
    }
    if (bad) bad_indices += bad;
  });
  return bad_indices.load();
}

}  // namespace convpool
