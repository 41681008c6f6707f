// Python bindings of stochastic_pool.hpp: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/stochastic_pool.hpp>

#include <random>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

StochasticPool2dParams stochastic_params(const char* fn, const SpatialShape& in, py::handle kernel_size,
                                         py::handle stride, bool training) {
  StochasticPool2dParams p;
  p.training = training;
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, py::int_(0), py::int_(1), false));
  return p;
}

template <typename T>
void require_stochastic_input(const char* fn, const py::array& input) {
  int64_t invalid;
  {
    py::gil_scoped_release release;
    invalid = count_invalid_stochastic_inputs(data_of<T>(input), static_cast<int64_t>(input.size()));
  }
  if (invalid)
    throw py::value_error(concat(fn, ": x must be non-negative and finite (e.g. the output of a ReLU); ", invalid,
                                 " of its ", input.size(), " elements of shape ", shape_string(shape_of(input)),
                                 " are negative, NaN or infinite"));
}

uint64_t to_seed(const char* fn, py::handle seed) {
  if (seed.is_none()) return (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  if (!is_integer(seed))
    throw py::type_error(concat(fn, ": seed must be None or an int, got ", py::repr(seed).cast<std::string>()));
  // Any Python int is accepted; its low 64 bits are the seed.
  const py::int_ value(py::reinterpret_borrow<py::object>(seed));
  return PyLong_AsUnsignedLongLongMask(value.ptr());
}

py::object stochastic_pool2d(py::handle x, py::handle kernel_size, py::handle stride, bool training, py::handle seed,
                             bool return_indices, py::handle out) {
  const char* fn = "stochastic_pool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  StochasticPool2dParams p = stochastic_params(fn, in, kernel_size, stride, training);
  if (return_indices && !training)
    throw py::value_error(concat(fn, ": return_indices=True needs training=True (evaluation samples nothing)"));
  p.seed = to_seed(fn, seed);
  const auto out_shape = output_shape(in, p.geometry);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    require_stochastic_input<T>(fn, input);
    Outputs outputs(fn, out, return_indices ? 2 : 1, {input});
    py::array_t<T> output = outputs.get<T>(0, out_shape);
    py::array_t<int64_t> indices;
    if (return_indices) indices = outputs.get<int64_t>(1, out_shape);
    {
      py::gil_scoped_release release;
      stochastic_pool2d_forward(data_of<T>(input), output.mutable_data(),
                                return_indices ? indices.mutable_data() : nullptr, p);
    }
    if (return_indices) return py::make_tuple(output, indices);
    return std::move(output);
  });
}

py::array stochastic_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle kernel_size,
                                     py::handle stride, bool training, py::handle out) {
  const char* fn = "stochastic_pool2d_backward";
  const auto [input, type, in] = pooling_input(x, fn);
  const StochasticPool2dParams p = stochastic_params(fn, in, kernel_size, stride, training);
  const auto out_shape = output_shape(in, p.geometry);
  CArray<int64_t> index_array;
  if (training) {
    if (indices.is_none())
      throw py::value_error(concat(fn,
                                   ": indices (from stochastic_pool2d(..., return_indices=True)) are required "
                                   "when training=True"));
    index_array = checked_indices(fn, indices, out_shape);
  }
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, out_shape, "the pooling of x gives");
    if (!training) require_stochastic_input<T>(fn, input);
    Outputs outputs(fn, out, 1, {grad, input, index_array});
    py::array_t<T> grad_input = outputs.get<T>(0, in.shape);
    if (training) check_indices_before_writing(fn, outputs, index_array, p.geometry.input_plane(), "the H*W of x");
    int64_t bad = 0;
    {
      py::gil_scoped_release release;
      if (training)
        bad = pool2d_backward_by_indices(grad.data(), index_array.data(), grad_input.mutable_data(), p.geometry);
      else
        stochastic_pool2d_backward_eval(grad.data(), data_of<T>(input), grad_input.mutable_data(), p);
    }
    require_valid_indices(fn, bad, p.geometry);
    return std::move(grad_input);
  });
}

}  // namespace

void register_stochastic_pool(py::module_& m) {
  m.def("stochastic_pool2d", &stochastic_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(), "training"_a = true,
        "seed"_a = py::none(), "return_indices"_a = false, "out"_a = py::none(), docs::stochastic_pool2d);
  m.def("stochastic_pool2d_backward", &stochastic_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a, "kernel_size"_a,
        "stride"_a = py::none(), "training"_a = true, "out"_a = py::none(), docs::stochastic_pool2d_backward);
}

}  // namespace convpool::bindings
