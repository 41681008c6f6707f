// Python binding of max_pool.hpp's backward pass: convert -> validate -> allocate (with the GIL)
// -> release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/max_pool.hpp>

#include <type_traits>

#include "docstrings.hpp"
#include "max_pool_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

py::array max_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle kernel_size,
                              py::handle stride, py::handle padding, py::handle dilation, bool ceil_mode,
                              const std::string& tie_break, const std::string& nan, py::handle layout, py::handle out) {
  const char* fn = "max_pool2d_backward";
  const PoolingInput input = pooling_input(x, fn, parse_layout(fn, layout));
  const MaxPool2dParams p =
      max_pool_params(fn, input.shape, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan);
  return max_pool_gradient(fn, grad_output, input, indices, output_shape(input.shape, p.geometry), p.tie_break, out,
                           [&](const auto* grad, const int64_t* index, auto* grad_input) {
                             using T = std::remove_const_t<std::remove_pointer_t<decltype(grad)>>;
                             return max_pool2d_backward(grad, data_of<T>(input.array), index, grad_input, p);
                           });
}

}  // namespace

void register_max_pool_backward(py::module_& m) {
  m.def("max_pool2d_backward", &max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false, "tie_break"_a = "first",
        "nan"_a = "propagate", "layout"_a = "nchw", "out"_a = py::none(), docs::max_pool2d_backward);
}

}  // namespace convpool::bindings
