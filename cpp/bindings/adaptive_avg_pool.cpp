// Python bindings of adaptive_avg_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/adaptive_avg_pool.hpp>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

AdaptiveAvgPool2dParams adaptive_params(const char* fn, const SpatialShape& in, py::handle output_size) {
  const Pair out = adaptive_output_size(fn, in, output_size);
  return AdaptiveAvgPool2dParams{in.planes(), in.height(), in.width(), out.h, out.w, in.layout, in.channels()};
}

py::array adaptive_avg_pool2d(py::handle x, py::handle output_size, py::handle layout, py::handle out) {
  const char* fn = "adaptive_avg_pool2d";
  const auto [input, type, in] = pooling_input(x, fn, parse_layout(fn, layout));
  const AdaptiveAvgPool2dParams p = adaptive_params(fn, in, output_size);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    return compute_array<T>(Outputs(fn, out, 1, {input}), in.with_spatial(p.out_h, p.out_w),
                            [&](T* result) { adaptive_avg_pool2d_forward(data_of<T>(input), result, p); });
  });
}

py::array adaptive_avg_pool2d_backward(py::handle grad_output, py::handle input_shape, py::handle layout,
                                       py::handle out) {
  const char* fn = "adaptive_avg_pool2d_backward";
  auto [grad, type] = to_float_array(grad_output, fn, "grad_output");
  const SpatialShape in =
      spatial_shape(to_shape(input_shape, fn, "input_shape"), fn, "input_shape", parse_layout(fn, layout));
  const std::vector<int64_t> grad_shape = shape_of(grad);
  if (grad_shape.size() != in.shape.size())
    throw py::value_error(concat(fn, ": grad_output has shape ", shape_string(grad_shape), " but input_shape ",
                                 shape_string(in.shape), " has another rank"));
  AdaptiveAvgPool2dParams p;
  p.planes = in.planes();
  p.in_h = in.height();
  p.in_w = in.width();
  p.layout = in.layout;
  p.channels = in.channels();
  p.out_h = grad_shape[in.height_axis()];
  p.out_w = grad_shape[in.height_axis() + 1];
  require_shape(fn, "grad_output", grad, in.with_spatial(p.out_h, p.out_w), "input_shape needs");
  if (p.out_h < 1 || p.out_w < 1 || p.out_h > kMaxWindowArgument || p.out_w > kMaxWindowArgument)
    throw py::value_error(concat(fn, ": grad_output has shape ", shape_string(grad_shape),
                                 ": its output size must be between 1 and 2**31"));
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    return compute_array<T>(Outputs(fn, out, 1, {grad}), in.shape,
                            [&](T* result) { adaptive_avg_pool2d_backward(data_of<T>(grad), result, p); });
  });
}

}  // namespace

void register_adaptive_avg_pool(py::module_& m) {
  m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, "x"_a, "output_size"_a, "layout"_a = "nchw", "out"_a = py::none(),
        docs::adaptive_avg_pool2d);
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, "grad_output"_a, "input_shape"_a,
        "layout"_a = "nchw", "out"_a = py::none(), docs::adaptive_avg_pool2d_backward);
}

}  // namespace convpool::bindings
