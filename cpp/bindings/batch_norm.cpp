// Python bindings of batch_norm.hpp: convert -> validate -> allocate (with the GIL) -> release the
// GIL -> kernel. The running statistics are updated in place, so they must be arrays the kernel can
// write: never silently copied.

#include <convpool/batch_norm.hpp>

#include <cmath>
#include <optional>
#include <string>

#include "common.hpp"
#include "docstrings.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

// x must be (N, C, H, W), or (N, H, W, C) channels last; the kernel sees (N, C, H * W) in that order.
BatchNorm2dParams batch_norm_shape(const char* fn, const std::vector<int64_t>& shape, py::handle layout) {
  BatchNorm2dParams p;
  p.layout = parse_layout(fn, layout);
  const bool nhwc = p.layout == Layout::nhwc;
  if (shape.size() != 4)
    throw py::value_error(
        concat(fn, ": x must be ", nhwc ? "(N, H, W, C)" : "(N, C, H, W)", ", got shape ", shape_string(shape)));
  p.batch = shape[0];
  p.channels = shape[nhwc ? 3 : 1];
  p.plane = shape[nhwc ? 1 : 2] * shape[nhwc ? 2 : 3];
  if (p.channels < 1) throw py::value_error(concat(fn, ": x must have C >= 1, got shape ", shape_string(shape)));
  return p;
}

// A per-channel array (C,) of x's dtype, or None.
template <typename T>
std::optional<CArray<T>> channel_array(const char* fn, py::handle obj, const char* name, const BatchNorm2dParams& p) {
  if (obj.is_none()) return std::nullopt;
  CArray<T> a = to_matching_array<T>(obj, fn, name, "x");
  require_shape(fn, name, a, {p.channels}, "x has C =");
  return a;
}

// A running statistic, updated in place: a writable C-contiguous (C,) array of x's dtype.
template <typename T>
std::optional<py::array_t<T>> running_array(const char* fn, py::handle obj, const char* name,
                                            const BatchNorm2dParams& p) {
  if (obj.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(concat(fn, ": ", name, " is updated in place and must be a NumPy array, got ",
                                py::repr(py::type::of(obj)).cast<std::string>()));
  const auto a = py::reinterpret_borrow<py::array>(obj);
  if (!py::isinstance<py::array_t<T>>(a))  // the same dtype, native byte order
    throw py::type_error(concat(fn, ": ", name, " is ", py::str(a.dtype()).cast<std::string>(), " but x is ",
                                dtype_name<T>(), " (", name, " is updated in place, so it is not converted)"));
  require_shape(fn, name, a, {p.channels}, "x has C =");
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(concat(fn, ": ", name, " is updated in place and must be a writable contiguous array"));
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

template <typename T>
const T* or_null(const std::optional<CArray<T>>& a) {
  return a ? a->data() : nullptr;
}

// An optional argument among the arrays an out must not overlap (an empty array for None).
template <class Array>
py::array or_empty(const std::optional<Array>& a) {
  return a ? py::array(*a) : py::array();
}

py::tuple batch_norm2d(py::handle x, py::handle weight, py::handle bias, py::handle running_mean,
                       py::handle running_var, bool training, double momentum, double eps, py::handle activation,
                       py::handle layout, py::handle out) {
  const char* fn = "batch_norm2d";
  auto [input, type] = to_float_array(x, fn, "x");
  BatchNorm2dParams p = batch_norm_shape(fn, shape_of(input), layout);
  p.training = training;
  p.momentum = momentum;
  p.eps = eps;
  p.activation = parse_activation(fn, activation);
  if (!std::isfinite(momentum)) throw py::value_error(concat(fn, ": momentum must be finite, got ", momentum));
  // As PyTorch: the batch variance of a constant channel is 0, so training needs eps > 0; the
  // running variance of evaluation may make eps = 0 meaningful.
  if ((training ? !(eps > 0) : !(eps >= 0)) || !std::isfinite(eps))
    throw py::value_error(
        concat(fn, ": eps must be finite and ", training ? "positive in training" : "non-negative", ", got ", eps));
  if (running_mean.is_none() != running_var.is_none())
    throw py::value_error(concat(fn, ": running_mean and running_var must both be given or both be None"));
  if (!training && running_mean.is_none())
    throw py::value_error(concat(fn, ": evaluation (training=False) needs running_mean and running_var"));
  if (training && p.per_channel() <= 1)
    throw py::value_error(
        concat(fn, ": training needs more than one value per channel, got x shape ", shape_string(shape_of(input))));
  return dispatch_float(type, [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    const auto w = channel_array<T>(fn, weight, "weight", p);
    const auto b = channel_array<T>(fn, bias, "bias", p);
    auto mean = running_array<T>(fn, running_mean, "running_mean", p);
    auto var = running_array<T>(fn, running_var, "running_var", p);
    // Training updates the running statistics, which evaluation only reads.
    std::vector<py::array> read{input, or_empty(w), or_empty(b)};
    if (!training) read.insert(read.end(), {or_empty(mean), or_empty(var)});
    Outputs outputs(fn, out, 3, std::move(read));
    if (training && mean) outputs.updated_in_place("running_mean", *mean);
    if (training && var) outputs.updated_in_place("running_var", *var);
    py::array_t<T> output = outputs.get<T>(0, shape_of(input));
    py::array_t<T> save_mean = outputs.get<T>(1, {p.channels}), save_invstd = outputs.get<T>(2, {p.channels});
    T* running_mean_data = mean ? mean->mutable_data() : nullptr;
    T* running_var_data = var ? var->mutable_data() : nullptr;
    {
      py::gil_scoped_release release;
      batch_norm2d_forward(data_of<T>(input), or_null(w), or_null(b), running_mean_data, running_var_data,
                           output.mutable_data(), save_mean.mutable_data(), save_invstd.mutable_data(), p);
    }
    return py::make_tuple(output, save_mean, save_invstd);
  });
}

py::tuple batch_norm2d_backward(py::handle grad_output, py::handle x, py::handle weight, py::handle saved_mean,
                                py::handle saved_invstd, bool training, py::handle needs, py::handle activation,
                                py::handle output, py::handle layout, py::handle out) {
  const char* fn = "batch_norm2d_backward";
  auto [input, type] = to_float_array(x, fn, "x");
  BatchNorm2dParams p = batch_norm_shape(fn, shape_of(input), layout);
  p.training = training;
  p.activation = parse_activation(fn, activation);
  const Needs wanted = parse_needs(fn, needs);
  const bool relu = p.activation == Activation::relu;
  if (relu && output.is_none())
    throw py::value_error(concat(fn, ": activation='relu' needs the forward's output (output=...)"));
  return dispatch_float(type, [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, shape_of(input), "x has shape");
    std::optional<CArray<T>> y;
    if (relu) {
      y = to_matching_array<T>(output, fn, "output", "x");
      require_shape(fn, "output", *y, shape_of(input), "x has shape");
    }
    const auto w = channel_array<T>(fn, weight, "weight", p);
    const auto mean = channel_array<T>(fn, saved_mean, "saved_mean", p);
    const auto invstd = channel_array<T>(fn, saved_invstd, "saved_invstd", p);
    if (!mean || !invstd) throw py::value_error(concat(fn, ": saved_mean and saved_invstd are required"));
    Outputs outputs(fn, out, 3, {grad, input, or_empty(y), or_empty(w), *mean, *invstd});
    auto grad_input = outputs.get_if<T>(0, wanted.input, "input", shape_of(input));
    auto grad_weight = outputs.get_if<T>(1, wanted.weight, "weight", {p.channels});
    auto grad_bias = outputs.get_if<T>(2, wanted.bias, "bias", {p.channels});
    T* gi = grad_input ? grad_input->mutable_data() : nullptr;
    T* gw = grad_weight ? grad_weight->mutable_data() : nullptr;
    T* gb = grad_bias ? grad_bias->mutable_data() : nullptr;
    {
      py::gil_scoped_release release;
      batch_norm2d_backward(grad.data(), data_of<T>(input), or_null(y), or_null(w), mean->data(), invstd->data(), gi,
                            gw, gb, p);
    }
    return py::make_tuple(array_or_none(grad_input), array_or_none(grad_weight), array_or_none(grad_bias));
  });
}

}  // namespace

void register_batch_norm(py::module_& m) {
  m.def("batch_norm2d", &batch_norm2d, "x"_a, "weight"_a = py::none(), "bias"_a = py::none(),
        "running_mean"_a = py::none(), "running_var"_a = py::none(), "training"_a = true, "momentum"_a = 0.1,
        "eps"_a = 1e-5, "activation"_a = py::none(), "layout"_a = "nchw", "out"_a = py::none(), docs::batch_norm2d);
  m.def("batch_norm2d_backward", &batch_norm2d_backward, "grad_output"_a, "x"_a, "weight"_a, "saved_mean"_a,
        "saved_invstd"_a, "training"_a = true, "needs"_a = py::make_tuple("input", "weight", "bias"),
        "activation"_a = py::none(), "output"_a = py::none(), "layout"_a = "nchw", "out"_a = py::none(),
        docs::batch_norm2d_backward);
}

}  // namespace convpool::bindings
