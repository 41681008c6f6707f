// Python binding of max_pool.hpp's backward pass: convert -> validate -> allocate (with the GIL)
// -> release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/max_pool.hpp>

#include "docstrings.hpp"
#include "max_pool_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

py::array max_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle kernel_size,
                              py::handle stride, py::handle padding, py::handle dilation, bool ceil_mode,
                              const std::string& tie_break, const std::string& nan) {
  const char* fn = "max_pool2d_backward";
  const auto [input, type, in] = pooling_input(x, fn);
  const MaxPool2dParams p = max_pool_params(fn, in, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan);
  const auto out_shape = output_shape(in, p.geometry);
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
      bad = max_pool2d_backward(grad.data(), data_of<T>(input), needs_indices ? index_array.data() : nullptr,
                                grad_input.mutable_data(), p);
    }
    require_valid_indices(fn, bad, p.geometry);
    return std::move(grad_input);
  });
}

}  // namespace

void register_max_pool_backward(py::module_& m) {
  m.def("max_pool2d_backward", &max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false, "tie_break"_a = "first",
        "nan"_a = "propagate", docs::max_pool2d_backward);
}

}  // namespace convpool::bindings
