// Python bindings of the pooling kernels: convert -> validate -> allocate (with the GIL) ->
// release the GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/avg_pool.hpp>
#include <convpool/lp_pool.hpp>
#include <convpool/max_pool.hpp>
#include <convpool/stochastic_pool.hpp>

#include <cmath>
#include <random>

#include "common.hpp"
#include "docstrings.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

// A (C, H, W) or (N, C, H, W) input, with the batch and channels folded into planes.
struct SpatialShape {
  std::vector<int64_t> shape;
  int64_t planes() const { return shape.size() == 4 ? shape[0] * shape[1] : shape[0]; }
  int64_t height() const { return shape[shape.size() - 2]; }
  int64_t width() const { return shape.back(); }
  std::vector<int64_t> with_spatial(int64_t h, int64_t w) const {
    auto s = shape;
    s[s.size() - 2] = h;
    s.back() = w;
    return s;
  }
};

SpatialShape spatial_shape(const std::vector<int64_t>& shape, const char* fn, const char* name) {
  const bool rank_ok = shape.size() == 3 || shape.size() == 4;
  bool sizes_ok = rank_ok;
  for (size_t d = shape.size() == 4 ? 1 : 0; rank_ok && d < shape.size(); ++d) sizes_ok &= shape[d] > 0;
  if (!sizes_ok)
    throw py::value_error(concat(fn, ": ", name, " must be (C, H, W) or (N, C, H, W) with non-zero C, H, W, got shape ",
                                 shape_string(shape)));
  return SpatialShape{shape};
}

struct WindowArgs {
  Pair kernel, stride, padding, dilation;
  bool ceil_mode;
};

WindowArgs window_args(const char* fn, py::handle kernel_size, py::handle stride, py::handle padding,
                       py::handle dilation, bool ceil_mode) {
  WindowArgs a;
  a.kernel = bounded_pair(fn, kernel_size, "kernel_size", 1, "positive");
  a.stride = stride.is_none() ? a.kernel : bounded_pair(fn, stride, "stride", 1, "positive");
  a.padding = bounded_pair(fn, padding, "padding", 0, "non-negative");
  a.dilation = bounded_pair(fn, dilation, "dilation", 1, "positive");
  a.ceil_mode = ceil_mode;
  if (a.padding.h > a.kernel.h / 2 || a.padding.w > a.kernel.w / 2)
    throw py::value_error(concat(fn, ": padding=", a.padding.str(), " must be at most half of kernel_size=",
                                 a.kernel.str()));
  return a;
}

Pool2dGeometry checked_geometry(const char* fn, const SpatialShape& in, const WindowArgs& a) {
  Pool2dGeometry g;
  g.planes = in.planes();
  g.h = make_window_dim(in.height(), a.kernel.h, a.stride.h, a.padding.h, a.dilation.h, a.ceil_mode);
  g.w = make_window_dim(in.width(), a.kernel.w, a.stride.w, a.padding.w, a.dilation.w, a.ceil_mode);
  if (g.h.output < 1 || g.w.output < 1) {
    const bool dilated = a.dilation.h != 1 || a.dilation.w != 1;
    throw py::value_error(concat(fn, ": kernel_size=", a.kernel.str(), " too large for input ", shape_string(in.shape),
                                 " with padding=", a.padding.str(),
                                 dilated ? concat(" and dilation=", a.dilation.str()) : std::string()));
  }
  return g;
}

std::vector<int64_t> output_shape(const SpatialShape& in, const Pool2dGeometry& g) {
  return in.with_spatial(g.h.output, g.w.output);
}

TieBreak parse_tie_break(const char* fn, const std::string& s) {
  if (s == "first") return TieBreak::first;
  if (s == "last") return TieBreak::last;
  if (s == "split") return TieBreak::split;
  throw py::value_error(concat(fn, ": tie_break must be 'first', 'last' or 'split', got '", s, "'"));
}

NanPolicy parse_nan(const char* fn, const std::string& s) {
  if (s == "propagate") return NanPolicy::propagate;
  if (s == "ignore") return NanPolicy::ignore;
  throw py::value_error(concat(fn, ": nan must be 'propagate' or 'ignore', got '", s, "'"));
}

void require_valid_indices(const char* fn, int64_t bad, const Pool2dGeometry& g) {
  if (bad)
    throw py::value_error(concat(fn, ": indices has ", bad, " value(s) outside [0, ", g.input_plane(),
                                 ") (the H*W of x) other than -1"));
}

// ---------------------------------------------------------------------------------------------
// max pooling

py::object max_pool2d(py::handle x, py::handle kernel_size, py::handle stride, py::handle padding,
                      py::handle dilation, bool ceil_mode, bool return_indices, const std::string& tie_break,
                      const std::string& nan) {
  const char* fn = "max_pool2d";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  MaxPool2dParams p;
  p.tie_break = parse_tie_break(fn, tie_break);
  p.nan = parse_nan(fn, nan);
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, padding, dilation, ceil_mode));
  const auto out_shape = output_shape(in, p.geometry);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    py::array_t<T> output(out_shape);
    py::array_t<int64_t> indices;
    if (return_indices) indices = py::array_t<int64_t>(out_shape);
    {
      py::gil_scoped_release release;
      max_pool2d_forward(data_of<T>(input), output.mutable_data(), return_indices ? indices.mutable_data() : nullptr, p);
    }
    if (return_indices) return py::make_tuple(output, indices);
    return std::move(output);
  });
}

py::array max_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices, py::handle kernel_size,
                              py::handle stride, py::handle padding, py::handle dilation, bool ceil_mode,
                              const std::string& tie_break, const std::string& nan) {
  const char* fn = "max_pool2d_backward";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  MaxPool2dParams p;
  p.tie_break = parse_tie_break(fn, tie_break);
  p.nan = parse_nan(fn, nan);
  p.geometry = checked_geometry(fn, in, window_args(fn, kernel_size, stride, padding, dilation, ceil_mode));
  const auto out_shape = output_shape(in, p.geometry);
  const bool needs_indices = p.tie_break != TieBreak::split;
  if (needs_indices && indices.is_none())
    throw py::value_error(concat(fn, ": indices are required for tie_break='", tie_break, "'"));
  CArray<int64_t> index_array;
  if (!indices.is_none()) {
    index_array = to_index_array(indices, fn, "indices");
    require_shape(fn, "indices", index_array, out_shape, "the pooling of x gives");
  }
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

// ---------------------------------------------------------------------------------------------
// average pooling

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
                     bool count_include_pad, py::handle divisor_override) {
  const char* fn = "avg_pool2d";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  const AvgPool2dParams p =
      avg_params(fn, in, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    py::array_t<T> output(output_shape(in, p.geometry));
    {
      py::gil_scoped_release release;
      avg_pool2d_forward(data_of<T>(input), output.mutable_data(), p);
    }
    return std::move(output);
  });
}

std::vector<int64_t> to_shape(py::handle obj, const char* fn, const char* name) {
  auto refuse = [&] {
    return py::type_error(concat(fn, ": ", name, " must be a sequence of ints, got ", py::repr(obj).cast<std::string>()));
  };
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj)) throw refuse();
  std::vector<int64_t> shape;
  try {
    // Owning references: items such as a NumPy array's rows are created by the iteration.
    for (const py::object d : py::reinterpret_borrow<py::sequence>(obj)) {
      if (!is_integer(d)) throw refuse();
      shape.push_back(to_int64(d, fn, name));
    }
  } catch (py::error_already_set&) {  // objects that claim to be sequences but cannot be iterated
    throw refuse();
  }
  if (shape.empty()) throw refuse();
  return shape;
}

py::array avg_pool2d_backward(py::handle grad_output, py::handle input_shape, py::handle kernel_size,
                              py::handle stride, py::handle padding, bool ceil_mode, bool count_include_pad,
                              py::handle divisor_override) {
  const char* fn = "avg_pool2d_backward";
  auto [grad, type] = to_float_array(grad_output, fn, "grad_output");
  const SpatialShape in = spatial_shape(to_shape(input_shape, fn, "input_shape"), fn, "input_shape");
  const AvgPool2dParams p =
      avg_params(fn, in, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  require_shape(fn, "grad_output", grad, output_shape(in, p.geometry), "the pooling of input_shape gives");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    py::array_t<T> grad_input(in.shape);
    {
      py::gil_scoped_release release;
      avg_pool2d_backward(data_of<T>(grad), grad_input.mutable_data(), p);
    }
    return std::move(grad_input);
  });
}

// ---------------------------------------------------------------------------------------------
// Lp pooling

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

py::array lp_pool2d(py::handle x, double norm_type, py::handle kernel_size, py::handle stride, bool ceil_mode) {
  const char* fn = "lp_pool2d";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  const LpPool2dParams p = lp_params(fn, in, norm_type, kernel_size, stride, ceil_mode);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    py::array_t<T> output(output_shape(in, p.geometry));
    {
      py::gil_scoped_release release;
      lp_pool2d_forward(data_of<T>(input), output.mutable_data(), p);
    }
    return std::move(output);
  });
}

py::array lp_pool2d_backward(py::handle grad_output, py::handle x, double norm_type, py::handle kernel_size,
                             py::handle stride, bool ceil_mode) {
  const char* fn = "lp_pool2d_backward";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  const LpPool2dParams p = lp_params(fn, in, norm_type, kernel_size, stride, ceil_mode);
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, output_shape(in, p.geometry), "the pooling of x gives");
    py::array_t<T> grad_input(in.shape);
    {
      py::gil_scoped_release release;
      lp_pool2d_backward(grad.data(), data_of<T>(input), grad_input.mutable_data(), p);
    }
    return std::move(grad_input);
  });
}

// ---------------------------------------------------------------------------------------------
// stochastic pooling

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

py::object stochastic_pool2d(py::handle x, py::handle kernel_size, py::handle stride, bool training,
                             py::handle seed, bool return_indices) {
  const char* fn = "stochastic_pool2d";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  StochasticPool2dParams p = stochastic_params(fn, in, kernel_size, stride, training);
  if (return_indices && !training)
    throw py::value_error(concat(fn, ": return_indices=True needs training=True (evaluation samples nothing)"));
  p.seed = to_seed(fn, seed);
  const auto out_shape = output_shape(in, p.geometry);
  return dispatch_float(type, [&](auto zero) -> py::object {
    using T = decltype(zero);
    require_stochastic_input<T>(fn, input);
    py::array_t<T> output(out_shape);
    py::array_t<int64_t> indices;
    if (return_indices) indices = py::array_t<int64_t>(out_shape);
    {
      py::gil_scoped_release release;
      stochastic_pool2d_forward(data_of<T>(input), output.mutable_data(),
                                return_indices ? indices.mutable_data() : nullptr, p);
    }
    if (return_indices) return py::make_tuple(output, indices);
    return std::move(output);
  });
}

py::array stochastic_pool2d_backward(py::handle grad_output, py::handle x, py::handle indices,
                                     py::handle kernel_size, py::handle stride, bool training) {
  const char* fn = "stochastic_pool2d_backward";
  auto [input, type] = to_float_array(x, fn, "x");
  const SpatialShape in = spatial_shape(shape_of(input), fn, "x");
  const StochasticPool2dParams p = stochastic_params(fn, in, kernel_size, stride, training);
  const auto out_shape = output_shape(in, p.geometry);
  CArray<int64_t> index_array;
  if (training) {
    if (indices.is_none())
      throw py::value_error(concat(fn, ": indices (from stochastic_pool2d(..., return_indices=True)) are required "
                                       "when training=True"));
    index_array = to_index_array(indices, fn, "indices");
    require_shape(fn, "indices", index_array, out_shape, "the pooling of x gives");
  }
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, out_shape, "the pooling of x gives");
    if (!training) require_stochastic_input<T>(fn, input);
    py::array_t<T> grad_input(in.shape);
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

void register_pooling(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
        "dilation"_a = 1, "ceil_mode"_a = false, "return_indices"_a = false, "tie_break"_a = "first",
        "nan"_a = "propagate", docs::max_pool2d);
  m.def("max_pool2d_backward", &max_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false, "tie_break"_a = "first",
        "nan"_a = "propagate", docs::max_pool2d_backward);
  m.def("avg_pool2d", &avg_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
        "ceil_mode"_a = false, "count_include_pad"_a = true, "divisor_override"_a = py::none(), docs::avg_pool2d);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, "grad_output"_a, "input_shape"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false, "count_include_pad"_a = true,
        "divisor_override"_a = py::none(), docs::avg_pool2d_backward);
  m.def("lp_pool2d", &lp_pool2d, "x"_a, "norm_type"_a, "kernel_size"_a, "stride"_a = py::none(),
        "ceil_mode"_a = false, docs::lp_pool2d);
  m.def("lp_pool2d_backward", &lp_pool2d_backward, "grad_output"_a, "x"_a, "norm_type"_a, "kernel_size"_a,
        "stride"_a = py::none(), "ceil_mode"_a = false, docs::lp_pool2d_backward);
  m.def("stochastic_pool2d", &stochastic_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(),
        "training"_a = true, "seed"_a = py::none(), "return_indices"_a = false, docs::stochastic_pool2d);
  m.def("stochastic_pool2d_backward", &stochastic_pool2d_backward, "grad_output"_a, "x"_a, "indices"_a,
        "kernel_size"_a, "stride"_a = py::none(), "training"_a = true, docs::stochastic_pool2d_backward);
}

}  // namespace convpool::bindings
