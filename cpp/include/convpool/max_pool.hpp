#pragma once
// 2-D max pooling, forward and backward, with a user-chosen rule for tied maxima.
//
// Semantics (docs/semantics.md, "Max pooling", has the full statement):
// - Padding is virtual: padded taps are skipped, so they are never selected.
// - Taps are scanned in row-major window order. NanPolicy::propagate keeps PyTorch's rule (any NaN
//   wins; the last NaN in scan order gives the index); NanPolicy::ignore treats NaN as -inf.
// - TieBreak::first selects the first maximal tap, TieBreak::last the last one; TieBreak::split
//   reports the first in the forward pass and divides the gradient equally among all of them.
// - A window none of whose taps lies inside the input (possible with dilation) yields -inf and
//   index -1, and passes no gradient.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"
#include "window.hpp"

namespace convpool {

enum class TieBreak { first, last, split };
enum class NanPolicy { propagate, ignore };

struct MaxPool2dParams {
  Pool2dGeometry geometry;
  TieBreak tie_break = TieBreak::first;
  NanPolicy nan = NanPolicy::propagate;
};

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "max_pool_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// output: planes x OH x OW (in p.geometry.layout's order). indices (optional, may be null): flat
// index within the input plane (ih * IW + iw, in either layout) of the selected tap, or -1 for a
// window with no tap inside the input.
template <typename T>
void max_pool2d_forward(const T* input, T* output, int64_t* indices, const MaxPool2dParams& p) {
  assert(p.geometry.h.output > 0 && p.geometry.w.output > 0);
  with_vector_isa([&](auto isa) { max_pool2d_forward(isa, input, output, indices, p); });
}

// grad_input (planes x IH x IW) is overwritten. TieBreak::first/last route each gradient to its
// recorded index (input is not read; see pool2d_backward_by_indices for the return value);
// TieBreak::split recomputes the ties from `input` (indices are not read) and returns 0.
template <typename T>
int64_t max_pool2d_backward(const T* grad_output, const T* input, const int64_t* indices, T* grad_input,
                            const MaxPool2dParams& p) {
  if (p.tie_break != TieBreak::split) return pool2d_backward_by_indices(grad_output, indices, grad_input, p.geometry);
  with_vector_isa([&](auto isa) { max_pool2d_backward_split(isa, grad_output, input, grad_input, p); });
  return 0;
}

}  // namespace convpool
