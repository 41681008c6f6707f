// Python bindings of adaptive_max_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/adaptive_max_pool.hpp>

#include <optional>
#include <type_traits>

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
                               const std::string& nan, py::handle out) {
  const char* fn = "adaptive_max_pool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  const AdaptiveMaxPool2dParams p = adaptive_max_params(fn, in, output_size, tie_break, nan);
  const auto out_shape = in.with_spatial(p.out_h, p.out_w);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    Outputs outputs(fn, out, return_indices ? 2 : 1, {input});
    py::array_t<T> output = outputs.get<T>(0, out_shape);
    std::optional<py::array_t<int64_t>> indices;
    if (return_indices) indices.emplace(outputs.get<int64_t>(1, out_shape));
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
                                       const std::string& tie_break, const std::string& nan, py::handle out) {
  const char* fn = "adaptive_max_pool2d_backward";
  const PoolingInput input = pooling_input(x, fn);
  const AdaptiveMaxPool2dParams p = adaptive_max_params(fn, input.shape, output_size, tie_break, nan);
  return max_pool_gradient(fn, grad_output, input, indices, input.shape.with_spatial(p.out_h, p.out_w), p.tie_break,
                           out, [&](const auto* grad, const int64_t* index, auto* grad_input) {
                             using T = std::remove_const_t<std::remove_pointer_t<decltype(grad)>>;
                             return adaptive_max_pool2d_backward(grad, data_of<T>(input.array), index, grad_input, p);
                           });
}

}  // namespace

void register_adaptive_max_pool(py::module_& m) {
  m.def("adaptive_max_pool2d", &adaptive_max_pool2d, "x"_a, "output_size"_a, "return_indices"_a = false,
        "tie_break"_a = "first", "nan"_a = "propagate", "out"_a = py::none(), docs::adaptive_max_pool2d);
  m.def("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a,
        "output_size"_a, "tie_break"_a = "first", "nan"_a = "propagate", "out"_a = py::none(),
        docs::adaptive_max_pool2d_backward);
}

}  // namespace convpool::bindings
