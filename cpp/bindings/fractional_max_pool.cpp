// Python bindings of fractional_max_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released. The
// samples are drawn by the Python function (convpool/_fractional.py), which also turns an
// output_ratio into an output_size.

#include <convpool/fractional_max_pool.hpp>

#include <cmath>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

FractionalMaxPool2dParams fractional_params(const char* fn, const SpatialShape& in, py::handle kernel_size,
                                            py::handle output_size) {
  const Pair kernel = bounded_pair(fn, kernel_size, "kernel_size", 1, "positive");
  const Pair out = bounded_pair(fn, output_size, "output_size", 0, "non-negative");
  // Every window must fit: starts run up to in - kernel, one output apart at least.
  if (out.h + kernel.h - 1 > in.height() || out.w + kernel.w - 1 > in.width())
    throw py::value_error(concat(fn, ": output_size=", out.str(), " with kernel_size=", kernel.str(),
                                 " does not fit input ", shape_string(in.shape),
                                 ": output_size + kernel_size - 1 must be at most the input's size"));
  return FractionalMaxPool2dParams{in.planes(), in.height(), in.width(), out.h, out.w, kernel.h, kernel.w};
}

py::tuple fractional_max_pool2d(py::handle x, py::handle kernel_size, py::handle output_size, py::handle random_samples,
                                py::handle out) {
  const char* fn = "fractional_max_pool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  const FractionalMaxPool2dParams p = fractional_params(fn, in, kernel_size, output_size);
  const std::vector<int64_t> samples_shape{in.shape.size() == 4 ? in.shape[0] : 1, in.shape[in.shape.size() - 3], 2};
  return dispatch_float(type, [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    const CArray<T> samples = to_matching_array<T>(random_samples, fn, "_random_samples", "x");
    require_shape(fn, "_random_samples", samples, samples_shape, "x needs (N, C, 2):");
    const T* u = samples.data();
    for (int64_t i = 0; i < 2 * p.planes; ++i)
      if (!(u[i] >= T(0) && u[i] < T(1)))  // also refuses NaN
        throw py::value_error(concat(fn, ": _random_samples must lie in [0, 1), got ", u[i]));
    Outputs outputs(fn, out, 2, {input, samples});
    py::array_t<T> output = outputs.get<T>(0, in.with_spatial(p.out_h, p.out_w));
    py::array_t<int64_t> indices = outputs.get<int64_t>(1, in.with_spatial(p.out_h, p.out_w));
    {
      py::gil_scoped_release release;
      fractional_max_pool2d_forward(data_of<T>(input), u, output.mutable_data(), indices.mutable_data(), p);
    }
    return py::make_tuple(std::move(output), std::move(indices));
  });
}

py::array fractional_max_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle out) {
  const char* fn = "fractional_max_pool2d_backward";
  const auto [input, type, in] = pooling_input(x, fn);
  const CArray<int64_t> index_array = to_index_array(indices, fn, "indices");
  const std::vector<int64_t> out_shape = shape_of(index_array);
  if (out_shape.size() != in.shape.size() || !std::equal(in.shape.begin(), in.shape.end() - 2, out_shape.begin()))
    throw py::value_error(concat(fn, ": indices has shape ", shape_string(out_shape), " but x has shape ",
                                 shape_string(in.shape), ": they must share the dimensions before H and W"));
  FractionalMaxPool2dParams p{in.planes(), in.height(), in.width(), out_shape[out_shape.size() - 2], out_shape.back()};
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const CArray<T> grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, out_shape, "indices has");
    Outputs outputs(fn, out, 1, {grad, input, index_array});
    py::array_t<T> grad_input = outputs.get<T>(0, in.shape);
    check_indices_before_writing(fn, outputs, index_array, p.input_plane(), "the H*W of x");
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = fractional_max_pool2d_backward(grad.data(), index_array.data(), grad_input.mutable_data(), p);
    }
    require_indices_inside(fn, bad, p.input_plane(), "the H*W of x");
    return std::move(grad_input);
  });
}

}  // namespace

void register_fractional_max_pool(py::module_& m) {
  m.def("fractional_max_pool2d", &fractional_max_pool2d, "x"_a, "kernel_size"_a, "output_size"_a, "_random_samples"_a,
        "out"_a = py::none(), docs::fractional_max_pool2d);
  m.def("fractional_max_pool2d_backward", &fractional_max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a,
        "out"_a = py::none(), docs::fractional_max_pool2d_backward);
}

}  // namespace convpool::bindings
