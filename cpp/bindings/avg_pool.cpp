// Python bindings of avg_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/avg_pool.hpp>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

AvgPool2dParams avg_params(const char* fn, const SpatialShape& in, py::handle kernel_size, py::handle stride,
                           py::handle padding, bool ceil_mode, bool count_include_pad, py::handle divisor_override) {
  AvgPool2dParams p;
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, padding, py::int_(1), ceil_mode));
  p.count_include_pad = count_include_pad;
  if (!divisor_override.is_none()) {
    if (!is_integer(divisor_override))
      throw py::type_error(concat(fn, ": divisor_override must be None or an int, got ",
                                  py::repr(divisor_override).cast<std::string>()));
    p.divisor_override = to_int64(divisor_override, fn, "divisor_override");
    if (p.divisor_override == 0) throw py::value_error(concat(fn, ": divisor_override must be non-zero"));
    if (p.divisor_override > kMaxWindowArgument || p.divisor_override < -kMaxWindowArgument)
      throw py::value_error(concat(fn, ": divisor_override=", p.divisor_override, " is too large"));
  }
  return p;
}

py::array avg_pool2d(py::handle x, py::handle kernel_size, py::handle stride, py::handle padding, bool ceil_mode,
                     bool count_include_pad, py::handle divisor_override, py::handle layout, py::handle out) {
  const char* fn = "avg_pool2d";
  const auto [input, type, in] = pooling_input(x, fn, parse_layout(fn, layout));
  const AvgPool2dParams p =
      avg_params(fn, in, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    return compute_array<T>(Outputs(fn, out, 1, {input}), output_shape(in, p.geometry),
                            [&](T* result) { avg_pool2d_forward(data_of<T>(input), result, p); });
  });
}

py::array avg_pool2d_backward(py::handle grad_output, py::handle input_shape, py::handle kernel_size, py::handle stride,
                              py::handle padding, bool ceil_mode, bool count_include_pad, py::handle divisor_override,
                              py::handle layout, py::handle out) {
  const char* fn = "avg_pool2d_backward";
  auto [grad, type] = to_float_array(grad_output, fn, "grad_output");
  const SpatialShape in =
      spatial_shape(to_shape(input_shape, fn, "input_shape"), fn, "input_shape", parse_layout(fn, layout));
  const AvgPool2dParams p =
      avg_params(fn, in, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  require_shape(fn, "grad_output", grad, output_shape(in, p.geometry), "the pooling of input_shape gives");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    return compute_array<T>(Outputs(fn, out, 1, {grad}), in.shape,
                            [&](T* result) { avg_pool2d_backward(data_of<T>(grad), result, p); });
  });
}

}  // namespace

void register_avg_pool(py::module_& m) {
  m.def("avg_pool2d", &avg_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
        "ceil_mode"_a = false, "count_include_pad"_a = true, "divisor_override"_a = py::none(), "layout"_a = "nchw",
        "out"_a = py::none(), docs::avg_pool2d);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, "grad_output"_a, "input_shape"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false, "count_include_pad"_a = true,
        "divisor_override"_a = py::none(), "layout"_a = "nchw", "out"_a = py::none(), docs::avg_pool2d_backward);
}

}  // namespace convpool::bindings
