// Python binding of max_pool.hpp's forward pass: convert -> validate -> allocate (with the GIL)
// -> release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/max_pool.hpp>

#include "docstrings.hpp"
#include "max_pool_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

py::object max_pool2d(py::handle x, py::handle kernel_size, py::handle stride, py::handle padding, py::handle dilation,
                      bool ceil_mode, bool return_indices, const std::string& tie_break, const std::string& nan,
                      py::handle layout, py::handle out) {
  const char* fn = "max_pool2d";
  const auto [input, type, in] = pooling_input(x, fn, parse_layout(fn, layout));
  const MaxPool2dParams p = max_pool_params(fn, in, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan);
  const auto out_shape = output_shape(in, p.geometry);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    Outputs outputs(fn, out, return_indices ? 2 : 1, {input});
    py::array_t<T> output = outputs.get<T>(0, out_shape);
    py::array_t<int64_t> indices;
    if (return_indices) indices = outputs.get<int64_t>(1, out_shape);
    {
      py::gil_scoped_release release;
      max_pool2d_forward(data_of<T>(input), output.mutable_data(), return_indices ? indices.mutable_data() : nullptr,
                         p);
    }
    if (return_indices) return py::make_tuple(output, indices);
    return std::move(output);
  });
}

}  // namespace

void register_max_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1,
        "ceil_mode"_a = false, "return_indices"_a = false, "tie_break"_a = "first", "nan"_a = "propagate",
        "layout"_a = "nchw", "out"_a = py::none(), docs::max_pool2d);
}

}  // namespace convpool::bindings
