// Bindings of activation.hpp.

#include <convpool/activation.hpp>

#include "common.hpp"
#include "docstrings.hpp"

namespace convpool::bindings {

namespace {

py::array relu(py::handle x, py::handle residual, py::handle out) {
  const char* fn = "relu";
  auto [input, type] = to_float_array(x, fn, "x");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    CArray<T> added;
    if (!residual.is_none()) {
      added = to_matching_array<T>(residual, fn, "residual", "x");
      require_shape(fn, "residual", added, shape_of(input), "x has shape");
    }
    const T* added_data = residual.is_none() ? nullptr : added.data();
    return compute_array<T>(Outputs(fn, out, 1, {input, added}), shape_of(input), [&](T* result) {
      relu_forward(data_of<T>(input), added_data, result, static_cast<int64_t>(input.size()));
    });
  });
}

py::array relu_backward(py::handle grad_output, py::handle y, py::handle out) {
  const char* fn = "relu_backward";
  auto [output, type] = to_float_array(y, fn, "y");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const CArray<T> grad = to_matching_array<T>(grad_output, fn, "grad_output", "y");
    require_shape(fn, "grad_output", grad, shape_of(output), "y has shape");
    return compute_array<T>(Outputs(fn, out, 1, {grad, output}), shape_of(output), [&](T* result) {
      convpool::relu_backward(grad.data(), data_of<T>(output), result, static_cast<int64_t>(output.size()));
    });
  });
}

}  // namespace

void register_activation(py::module_& m) {
  using namespace pybind11::literals;
  m.def("relu", &relu, "x"_a, "residual"_a = py::none(), "out"_a = py::none(), docs::relu);
  m.def("relu_backward", &relu_backward, "grad_output"_a, "y"_a, "out"_a = py::none(), docs::relu_backward);
}

}  // namespace convpool::bindings
