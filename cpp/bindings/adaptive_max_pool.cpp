// Python bindings of adaptive_max_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/adaptive_max_pool.hpp>

#include <optional>

#include "docstrings.hpp"
#include "max_pool_args.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

AdaptiveMaxPool2dParams adaptive_max_params(const char* fn, const SpatialShape& in, py::handle output_size,
                                            const std::string& tie_break, const std::string& nan) {
  const Pair out = adaptive_output_size(fn, in, output_size);
  return AdaptiveMaxPool2dParams{
      in.planes(), in.height(), in.width(), out.h, out.w, parse_tie_break(fn, tie_break), parse_nan(fn, nan)};
}

py::object adaptive_max_pool2d(py::handle x, py::handle output_size, bool return_indices, const std::string& tie_break,
                               const std::string& nan) {
  const char* fn = "adaptive_max_pool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  const AdaptiveMaxPool2dParams p = adaptive_max_params(fn, in, output_size, tie_break, nan);
  const auto out_shape = in.with_spatial(p.out_h, p.out_w);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    py::array_t<T> output(out_shape);
    std::optional<py::array_t<int64_t>> indices;
    if (return_indices) indices.emplace(out_shape);
    {
      py::gil_scoped_release release;
      adaptive_max_pool2d_forward(data_of<T>(input), output.mutable_data(), indices ? indices->mutable_data() : nullptr,
                                  p);
    }
    if (return_indices) return py::make_tuple(std::move(output), std::move(*indices));
    return std::move(output);
  });
}

py::array adaptive_max_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle output_size,
                                       const std::string& tie_break, const std::string& nan) {
  const char* fn = "adaptive_max_pool2d_backward";
  const auto [input, type, in] = pooling_input(x, fn);
  const AdaptiveMaxPool2dParams p = adaptive_max_params(fn, in, output_size, tie_break, nan);
  const auto out_shape = in.with_spatial(p.out_h, p.out_w);
  const bool needs_indices = p.tie_break != TieBreak::split;
  if (needs_indices && indices.is_none())
    throw py::value_error(concat(fn, ": indices are required for tie_break='", tie_break, "'"));
  CArray<int64_t> index_array;
  if (!indices.is_none()) index_array = checked_indices(fn, indices, out_shape);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, out_shape, "the pooling of x gives");
    py::array_t<T> grad_input(in.shape);
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = adaptive_max_pool2d_backward(grad.data(), data_of<T>(input), needs_indices ? index_array.data() : nullptr,
                                         grad_input.mutable_data(), p);
    }
    if (bad)
      throw py::value_error(
          concat(fn, ": indices has ", bad, " value(s) outside [0, ", p.input_plane(), ") (the H*W of x)"));
    return std::move(grad_input);
  });
}

}  // namespace

void register_adaptive_max_pool(py::module_& m) {
  m.def("adaptive_max_pool2d", &adaptive_max_pool2d, "x"_a, "output_size"_a, "return_indices"_a = false,
        "tie_break"_a = "first", "nan"_a = "propagate", docs::adaptive_max_pool2d);
  m.def("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a,
        "output_size"_a, "tie_break"_a = "first", "nan"_a = "propagate", docs::adaptive_max_pool2d_backward);
}

}  // namespace convpool::bindings
