#pragma once
// The tie-break and NaN arguments of max pooling, shared by its forward and backward bindings
// (two translation units: the two kernels are the slowest to compile).

#include <convpool/max_pool.hpp>

#include <string>

#include "pooling_args.hpp"

namespace convpool::bindings {

inline TieBreak parse_tie_break(const char* fn, const std::string& s) {
  if (s == "first") return TieBreak::first;
  if (s == "last") return TieBreak::last;
  if (s == "split") return TieBreak::split;
  throw py::value_error(concat(fn, ": tie_break must be 'first', 'last' or 'split', got '", s, "'"));
}

inline NanPolicy parse_nan(const char* fn, const std::string& s) {
  if (s == "propagate") return NanPolicy::propagate;
  if (s == "ignore") return NanPolicy::ignore;
  throw py::value_error(concat(fn, ": nan must be 'propagate' or 'ignore', got '", s, "'"));
}

inline MaxPool2dParams max_pool_params(const char* fn, const SpatialShape& in, py::handle kernel_size,
                                       py::handle stride, py::handle padding, py::handle dilation, bool ceil_mode,
                                       const std::string& tie_break, const std::string& nan) {
  MaxPool2dParams p;
  p.tie_break = parse_tie_break(fn, tie_break);
  p.nan = parse_nan(fn, nan);
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, padding, dilation, ceil_mode));
  return p;
}

// The backward of a max pooling of x (`input`, of shape `in`) to out_shape: the indices are
// required unless tie_break is split (which reads x instead), grad_output must have out_shape, and
// kernel(grad_output, indices or null, grad_input) runs without the GIL and returns the number of
// indices outside x's plane, which raise ValueError afterwards.
template <class Kernel>
py::array max_pool_gradient(const char* fn, py::handle grad_output, const PoolingInput& x, py::handle indices,
                            const std::vector<int64_t>& out_shape, TieBreak tie_break, py::handle out,
                            Kernel&& kernel) {
  const bool needs_indices = tie_break != TieBreak::split;
  if (needs_indices && indices.is_none())
    throw py::value_error(
        concat(fn, ": indices are required for tie_break='", tie_break == TieBreak::first ? "first" : "last", "'"));
  CArray<int64_t> index_array;
  if (!indices.is_none()) index_array = checked_indices(fn, indices, out_shape);
  return dispatch_float(x.type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, out_shape, "the pooling of x gives");
    Outputs outputs(fn, out, 1, {grad, x.array, index_array});
    py::array_t<T> grad_input = outputs.get<T>(0, x.shape.shape);
    const int64_t plane_size = x.shape.height() * x.shape.width();
    if (needs_indices) check_indices_before_writing(fn, outputs, index_array, plane_size, "the H*W of x");
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = kernel(grad.data(), needs_indices ? index_array.data() : nullptr, grad_input.mutable_data());
    }
    require_indices_inside(fn, bad, plane_size, "the H*W of x");
    return std::move(grad_input);
  });
}

}  // namespace convpool::bindings
