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

}  // namespace convpool::bindings
