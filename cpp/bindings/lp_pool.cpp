// Python bindings of lp_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/lp_pool.hpp>

#include <cmath>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

LpPool2dParams lp_params(const char* fn, const SpatialShape& in, double norm_type, py::handle kernel_size,
                         py::handle stride, bool ceil_mode) {
  if (!(norm_type > 0) || !std::isfinite(norm_type))
    throw py::value_error(concat(fn, ": norm_type must be a positive finite number, got ", norm_type,
                                 std::isinf(norm_type) ? " (use max_pool2d for the infinity norm)" : ""));
  LpPool2dParams p;
  p.norm_type = norm_type;
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, py::int_(0), py::int_(1), ceil_mode));
  return p;
}

py::array lp_pool2d(py::handle x, double norm_type, py::handle kernel_size, py::handle stride, bool ceil_mode,
                    py::handle out) {
  const char* fn = "lp_pool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  const LpPool2dParams p = lp_params(fn, in, norm_type, kernel_size, stride, ceil_mode);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    return compute_array<T>(Outputs(fn, out, 1, {input}), output_shape(in, p.geometry),
                            [&](T* result) { lp_pool2d_forward(data_of<T>(input), result, p); });
  });
}

py::array lp_pool2d_backward(py::handle grad_output, py::handle x, double norm_type, py::handle kernel_size,
                             py::handle stride, bool ceil_mode, py::handle out) {
  const char* fn = "lp_pool2d_backward";
  const auto [input, type, in] = pooling_input(x, fn);
  const LpPool2dParams p = lp_params(fn, in, norm_type, kernel_size, stride, ceil_mode);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, output_shape(in, p.geometry), "the pooling of x gives");
    return compute_array<T>(Outputs(fn, out, 1, {grad, input}), in.shape,
                            [&](T* result) { lp_pool2d_backward(grad.data(), data_of<T>(input), result, p); });
  });
}

}  // namespace

void register_lp_pool(py::module_& m) {
  m.def("lp_pool2d", &lp_pool2d, "x"_a, "norm_type"_a, "kernel_size"_a, "stride"_a = py::none(), "ceil_mode"_a = false,
        "out"_a = py::none(), docs::lp_pool2d);
  m.def("lp_pool2d_backward", &lp_pool2d_backward, "grad_output"_a, "x"_a, "norm_type"_a, "kernel_size"_a,
        "stride"_a = py::none(), "ceil_mode"_a = false, "out"_a = py::none(), docs::lp_pool2d_backward);
}

}  // namespace convpool::bindings
