// Python bindings of conv2d: convert -> validate -> allocate (with the GIL) -> release the GIL ->
// kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/conv.hpp>
#include <convpool/conv_transpose.hpp>

#include <memory>
#include <optional>
#include <type_traits>
#include <variant>

#include "common.hpp"
#include "docstrings.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

// Padding on each side of each spatial dimension; "same" can put one more element after.
struct Padding {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  std::string text;  // as the user wrote it, for messages
};

Padding parse_padding(const char* fn, py::handle padding, const Pair& kernel, const Pair& stride,
                      const Pair& dilation) {
  Padding p;
  if (py::isinstance<py::str>(padding)) {
    const auto mode = padding.cast<std::string>();
    p.text = concat("'", mode, "'");
    if (mode == "valid") return p;
    if (mode != "same")
      throw py::value_error(concat(fn, ": padding must be an int, a pair, 'valid' or 'same', got '", mode, "'"));
    if (stride.h != 1 || stride.w != 1)
      throw py::value_error(concat(fn, ": padding='same' requires stride=1, got stride=", stride.str()));
    // PyTorch's rule: the total padding is dilation * (kernel - 1); an odd total puts the extra
    // element after the input.
    const int64_t total_h = dilation.h * (kernel.h - 1), total_w = dilation.w * (kernel.w - 1);
    p.top = total_h / 2;
    p.bottom = total_h - p.top;
    p.left = total_w / 2;
    p.right = total_w - p.left;
    return p;
  }
  const Pair pair = bounded_pair(fn, padding, "padding", 0, "non-negative");
  p.top = p.bottom = pair.h;
  p.left = p.right = pair.w;
  p.text = pair.str();
  return p;
}

// Everything a conv2d call is about, validated: the kernel's params and the Python-side shapes.
struct ConvCall {
  Conv2dParams params;
  std::vector<int64_t> x_shape, weight_shape, y_shape;
  bool batched;
};

// The ranks and sizes of x (in `layout`) and of a weight laid out as `weight_layout`.
ConvCall checked_ranks(const char* fn, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& weight_shape,
                       const char* weight_layout, Layout layout = Layout::nchw) {
  ConvCall call;
  call.x_shape = x_shape;
  call.weight_shape = weight_shape;
  call.batched = x_shape.size() == 4;
  const bool nhwc = layout == Layout::nhwc;
  if (x_shape.size() != 3 && x_shape.size() != 4)
    throw py::value_error(concat(fn, ": x must be ",
                                 nhwc ? "(N, H, W, C_in) or (H, W, C_in)" : "(N, C_in, H, W) or (C_in, H, W)",
                                 nhwc ? " (layout='nhwc')" : "", ", got shape ", shape_string(x_shape)));
  for (size_t d = call.batched ? 1 : 0; d < x_shape.size(); ++d)
    if (x_shape[d] < 1)
      throw py::value_error(concat(fn, ": x must have non-zero C_in, H and W, got shape ", shape_string(x_shape)));
  if (weight_shape.size() != 4)
    throw py::value_error(concat(fn, ": weight must be ", weight_layout, ", got shape ", shape_string(weight_shape)));
  for (int64_t d : weight_shape)
    if (d < 1)
      throw py::value_error(concat(fn, ": weight has a zero-size dimension: shape ", shape_string(weight_shape)));
  return call;
}

int64_t checked_groups(const char* fn, py::handle groups) {
  if (!is_integer(groups))
    throw py::type_error(concat(fn, ": groups must be an int, got ", py::repr(groups).cast<std::string>()));
  const int64_t g = to_int64(groups, fn, "groups");
  if (g < 1) throw py::value_error(concat(fn, ": groups=", g, " must be positive"));
  return g;
}

// The dimensions of x's channels, height and width in `layout`, counted from its end.
struct Axes {
  size_t channels, height, width;
  Axes(Layout layout, size_t rank)
      : channels(layout == Layout::nhwc ? rank - 1 : rank - 3),
        height(layout == Layout::nhwc ? rank - 3 : rank - 2),
        width(layout == Layout::nhwc ? rank - 2 : rank - 1) {}
};

ConvCall check_conv(const char* fn, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& weight_shape,
                    py::handle stride, py::handle padding, py::handle dilation, py::handle groups,
                    Layout layout = Layout::nchw) {
  ConvCall call = checked_ranks(fn, x_shape, weight_shape, "(C_out, C_in / groups, kH, kW)", layout);
  const Axes axes(layout, x_shape.size());
  const int64_t g = checked_groups(fn, groups);
  const int64_t batch = call.batched ? x_shape[0] : 1, in_channels = x_shape[axes.channels];
  const int64_t out_channels = weight_shape[0];
  if (in_channels % g != 0 || out_channels % g != 0)
    throw py::value_error(concat(fn, ": groups=", g, " must divide both C_in=", in_channels, " (x shape ",
                                 shape_string(x_shape), ") and C_out=", out_channels, " (weight shape ",
                                 shape_string(weight_shape), ")"));
  if (weight_shape[1] != in_channels / g)
    throw py::value_error(concat(fn, ": weight shape ", shape_string(weight_shape),
                                 " needs C_in / groups = ", in_channels / g, " in dimension 1 for x shape ",
                                 shape_string(x_shape), " and groups=", g));
  const Pair kernel{weight_shape[2], weight_shape[3]};
  if (kernel.h > kMaxWindowArgument || kernel.w > kMaxWindowArgument)
    throw py::value_error(concat(fn, ": kernel size ", kernel.str(), " is too large"));
  const Pair s = bounded_pair(fn, stride, "stride", 1, "positive");
  const Pair d = bounded_pair(fn, dilation, "dilation", 1, "positive");
  const Padding pad = parse_padding(fn, padding, kernel, s, d);
  const int64_t h = x_shape[axes.height], w = x_shape[axes.width];

  Conv2dParams& p = call.params;
  p.layout = layout;
  p.batch = batch;
  p.in_channels = in_channels;
  p.out_channels = out_channels;
  p.groups = g;
  p.h = WindowDim{h, conv_output_size(h, kernel.h, s.h, pad.top, pad.bottom, d.h), kernel.h, s.h, pad.top, d.h};
  p.w = WindowDim{w, conv_output_size(w, kernel.w, s.w, pad.left, pad.right, d.w), kernel.w, s.w, pad.left, d.w};
  if (p.h.output < 1 || p.w.output < 1) {
    const bool dilated = d.h != 1 || d.w != 1;
    throw py::value_error(concat(fn, ": kernel size ", kernel.str(), " (weight shape ", shape_string(weight_shape),
                                 ") too large for input ", shape_string(x_shape), " with padding=", pad.text,
                                 dilated ? concat(" and dilation=", d.str()) : std::string()));
  }
  call.y_shape = x_shape;
  call.y_shape[axes.channels] = out_channels;
  call.y_shape[axes.height] = p.h.output;
  call.y_shape[axes.width] = p.w.output;
  return call;
}

// Allocates the gradients `wanted` asks for (x's, the weight's, and `bias_channels` for the
// bias), runs backward(grad_input, grad_weight, grad_bias) without the GIL (null for each not
// asked for), and returns the three, None in place of each not asked for.
template <typename T, class Backward>
py::tuple gradients(Outputs&& outputs, const ConvCall& call, const Needs& wanted, int64_t bias_channels,
                    Backward&& backward) {
  auto grad_input = outputs.get_if<T>(0, wanted.input, "input", call.x_shape);
  auto grad_weight = outputs.get_if<T>(1, wanted.weight, "weight", call.weight_shape);
  auto grad_bias = outputs.get_if<T>(2, wanted.bias, "bias", {bias_channels});
  {
    py::gil_scoped_release release;
    backward(grad_input ? grad_input->mutable_data() : nullptr, grad_weight ? grad_weight->mutable_data() : nullptr,
             grad_bias ? grad_bias->mutable_data() : nullptr);
  }
  return py::make_tuple(array_or_none(grad_input), array_or_none(grad_weight), array_or_none(grad_bias));
}

// PackedConv2dWeight's winograd argument: True or False.
bool parse_winograd(const char* fn, py::handle winograd) {
  if (!py::isinstance<py::bool_>(winograd))
    throw py::type_error(concat(fn, ": winograd must be True or False, got ", py::repr(winograd).cast<std::string>()));
  return winograd.cast<bool>();
}

// convpool.PackedConv2dWeight: a conv2d weight packed once (PackedConvWeight), of either dtype.
class PackedConv2dWeight {
 public:
  PackedConv2dWeight(py::handle weight, py::handle winograd) {
    const char* fn = "PackedConv2dWeight";
    winograd_ = parse_winograd(fn, winograd);
    auto [array, type] = to_float_array(weight, fn, "weight");
    shape_ = shape_of(array);
    if (shape_.size() != 4)
      throw py::value_error(
          concat(fn, ": weight must be (C_out, C_in / groups, kH, kW), got shape ", shape_string(shape_)));
    for (int64_t d : shape_)
      if (d < 1) throw py::value_error(concat(fn, ": weight has a zero-size dimension: shape ", shape_string(shape_)));
    const int64_t row = shape_[1] * shape_[2] * shape_[3];
    dispatch_float(type, [&](auto zero) {
      using T = decltype(zero);
      packed_ = std::make_unique<PackedConvWeight<T>>(data_of<T>(array), shape_[0], row, winograd_);
    });
  }

  const std::vector<int64_t>& shape() const { return shape_; }
  bool winograd() const { return winograd_; }

  // The packed weight of dtype T, or a TypeError when the call's x is of the other dtype.
  template <typename T>
  const PackedConvWeight<T>& as(const char* fn) const {
    const auto* packed = std::get_if<std::unique_ptr<PackedConvWeight<T>>>(&packed_);
    if (!packed)
      throw py::type_error(concat(fn, ": weight is a PackedConv2dWeight of ", dtype_name(), " but x is ",
                                  convpool::bindings::dtype_name<T>()));
    return **packed;
  }

  const char* dtype_name() const {
    return std::holds_alternative<std::unique_ptr<PackedConvWeight<float>>>(packed_) ? "float32" : "float64";
  }

  // The weight it holds, as a read-only array that keeps `self` alive.
  static py::array weight(py::handle self) {
    const auto& packed = self.cast<const PackedConv2dWeight&>();
    return std::visit(
        [&](const auto& held) -> py::array {
          py::array view(py::dtype::of<std::remove_const_t<std::remove_pointer_t<decltype(held->weight())>>>(),
                         packed.shape_, {}, held->weight(), self);
          py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
          return view;
        },
        packed.packed_);
  }

 private:
  std::vector<int64_t> shape_;
  bool winograd_;
  std::variant<std::unique_ptr<PackedConvWeight<float>>, std::unique_ptr<PackedConvWeight<double>>> packed_;
};

// The winograd argument of conv2d and conv2d_backward: None takes the PackedConv2dWeight's own
// flag (False for a plain weight); True or False given with a packed weight must agree with it,
// since the packed weight decides which layouts it holds.
bool winograd_for_call(const char* fn, py::handle winograd, py::handle weight) {
  const bool packed = py::isinstance<PackedConv2dWeight>(weight);
  const bool packed_flag = packed && weight.cast<const PackedConv2dWeight&>().winograd();
  if (winograd.is_none()) return packed_flag;
  if (!py::isinstance<py::bool_>(winograd))
    throw py::type_error(
        concat(fn, ": winograd must be None, True or False, got ", py::repr(winograd).cast<std::string>()));
  const bool asked = winograd.cast<bool>();
  if (packed && asked != packed_flag)
    throw py::value_error(
        concat(fn, ": winograd=", asked ? "True" : "False", " disagrees with the weight, a ",
               "PackedConv2dWeight packed with winograd=", packed_flag ? "True" : "False",
               ": pass winograd=None (the packed weight decides) or pack it with winograd=", asked ? "True" : "False"));
  return asked;
}

// conv2d's weight: an array of x's dtype, or a PackedConv2dWeight of that dtype (then `packed`
// too, and `array` the weight it holds).
template <typename T>
struct ConvWeight {
  CArray<T> array;
  const PackedConvWeight<T>* packed = nullptr;
};

template <typename T>
ConvWeight<T> conv_weight(py::handle weight, const char* fn) {
  if (!py::isinstance<PackedConv2dWeight>(weight)) return {to_matching_array<T>(weight, fn, "weight", "x")};
  const PackedConvWeight<T>& packed = weight.cast<const PackedConv2dWeight&>().as<T>(fn);
  return {py::reinterpret_steal<CArray<T>>(PackedConv2dWeight::weight(weight).release()), &packed};
}

py::array conv2d(py::handle x, py::handle weight, py::handle bias, py::handle stride, py::handle padding,
                 py::handle dilation, py::handle groups, py::handle activation, py::handle out, py::handle winograd,
                 py::handle layout) {
  const char* fn = "conv2d";
  const bool use_winograd = winograd_for_call(fn, winograd, weight);
  const Activation applied = parse_activation(fn, activation);
  const Layout order = parse_layout(fn, layout);
  auto [input, type] = to_float_array(x, fn, "x");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto [w, packed] = conv_weight<T>(weight, fn);
    ConvCall call = check_conv(fn, shape_of(input), shape_of(w), stride, padding, dilation, groups, order);
    call.params.winograd = use_winograd;
    CArray<T> b;
    if (!bias.is_none()) {
      b = to_matching_array<T>(bias, fn, "bias", "x");
      require_shape(fn, "bias", b, {call.params.out_channels},
                    "weight shape " + shape_string(call.weight_shape) + " needs (C_out,) =");
    }
    py::array_t<T> output = Outputs(fn, out, 1, {input, w, b}).get<T>(0, call.y_shape);
    {
      py::gil_scoped_release release;
      const T* bias_data = bias.is_none() ? nullptr : b.data();
      if (packed)
        conv2d_forward(data_of<T>(input), *packed, bias_data, output.mutable_data(), call.params, applied);
      else
        conv2d_forward(data_of<T>(input), w.data(), bias_data, output.mutable_data(), call.params, applied);
    }
    return std::move(output);
  });
}

py::tuple conv2d_backward(py::handle grad_output, py::handle x, py::handle weight, py::handle stride,
                          py::handle padding, py::handle dilation, py::handle groups, py::handle needs, py::handle out,
                          py::handle winograd, py::handle layout) {
  const char* fn = "conv2d_backward";
  const bool use_winograd = winograd_for_call(fn, winograd, weight);
  const Layout order = parse_layout(fn, layout);
  auto [input, type] = to_float_array(x, fn, "x");
  const Needs wanted = parse_needs(fn, needs);
  return dispatch_float(type, [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    const CArray<T> w = conv_weight<T>(weight, fn).array;
    ConvCall call = check_conv(fn, shape_of(input), shape_of(w), stride, padding, dilation, groups, order);
    call.params.winograd = use_winograd;
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, call.y_shape, "the convolution of x gives");
    return gradients<T>(Outputs(fn, out, 3, {grad, input, w}), call, wanted, call.params.out_channels,
                        [&](T* grad_input, T* grad_weight, T* grad_bias) {
                          conv2d_backward(grad.data(), data_of<T>(input), w.data(), grad_input, grad_weight, grad_bias,
                                          call.params);
                        });
  });
}

// The transposed convolution's call, validated: `params` describes the convolution it transposes
// (conv_transpose.hpp), from y's shape to x's.
ConvCall check_conv_transpose(const char* fn, const std::vector<int64_t>& x_shape,
                              const std::vector<int64_t>& weight_shape, py::handle stride, py::handle padding,
                              py::handle output_padding, py::handle groups, py::handle dilation) {
  ConvCall call = checked_ranks(fn, x_shape, weight_shape, "(C_in, C_out / groups, kH, kW)");
  const int64_t g = checked_groups(fn, groups);
  const int64_t in_channels = x_shape[x_shape.size() - 3];
  if (in_channels % g != 0)
    throw py::value_error(
        concat(fn, ": groups=", g, " must divide C_in=", in_channels, " (x shape ", shape_string(x_shape), ")"));
  if (weight_shape[0] != in_channels)
    throw py::value_error(concat(fn, ": weight shape ", shape_string(weight_shape), " needs C_in = ", in_channels,
                                 " in dimension 0 for x shape ", shape_string(x_shape)));
  const Pair kernel{weight_shape[2], weight_shape[3]};
  if (kernel.h > kMaxWindowArgument || kernel.w > kMaxWindowArgument)
    throw py::value_error(concat(fn, ": kernel size ", kernel.str(), " is too large"));
  const Pair s = bounded_pair(fn, stride, "stride", 1, "positive");
  const Pair d = bounded_pair(fn, dilation, "dilation", 1, "positive");
  const Pair pad = bounded_pair(fn, padding, "padding", 0, "non-negative");
  const Pair extra = bounded_pair(fn, output_padding, "output_padding", 0, "non-negative");
  if ((extra.h >= s.h && extra.h >= d.h) || (extra.w >= s.w && extra.w >= d.w))
    throw py::value_error(concat(fn, ": output_padding=", extra.str(), " must be smaller than the stride ", s.str(),
                                 " or the dilation ", d.str(), " in each dimension"));
  const int64_t h = x_shape[x_shape.size() - 2], w = x_shape.back();
  // In floating point first: a huge stride must be refused, not overflow.
  const auto output_size = [](int64_t in, int64_t k, int64_t st, int64_t p, int64_t dl, int64_t op) {
    return static_cast<double>(in - 1) * static_cast<double>(st) - 2.0 * static_cast<double>(p) +
           static_cast<double>(dl) * static_cast<double>(k - 1) + static_cast<double>(op) + 1.0;
  };
  const double out_h = output_size(h, kernel.h, s.h, pad.h, d.h, extra.h);
  const double out_w = output_size(w, kernel.w, s.w, pad.w, d.w, extra.w);
  if (out_h < 1 || out_w < 1)
    throw py::value_error(concat(fn, ": padding=", pad.str(), " leaves no output for x shape ", shape_string(x_shape),
                                 " and weight shape ", shape_string(weight_shape), " (output size ", out_h, " x ",
                                 out_w, ")"));
  if (out_h * out_w > 9e15)
    throw py::value_error(concat(fn, ": the output (", out_h, " x ", out_w, " per channel) is too large"));

  Conv2dParams& p = call.params;
  p.batch = call.batched ? x_shape[0] : 1;
  p.in_channels = weight_shape[1] * g;
  p.out_channels = in_channels;
  p.groups = g;
  p.h = WindowDim{static_cast<int64_t>(out_h), h, kernel.h, s.h, pad.h, d.h};
  p.w = WindowDim{static_cast<int64_t>(out_w), w, kernel.w, s.w, pad.w, d.w};
  call.y_shape = x_shape;
  call.y_shape[call.y_shape.size() - 3] = p.in_channels;
  call.y_shape[call.y_shape.size() - 2] = p.h.input;
  call.y_shape.back() = p.w.input;
  return call;
}

py::array conv_transpose2d(py::handle x, py::handle weight, py::handle bias, py::handle stride, py::handle padding,
                           py::handle output_padding, py::handle groups, py::handle dilation, py::handle out) {
  const char* fn = "conv_transpose2d";
  auto [input, type] = to_float_array(x, fn, "x");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    const auto w = to_matching_array<T>(weight, fn, "weight", "x");
    const ConvCall call =
        check_conv_transpose(fn, shape_of(input), shape_of(w), stride, padding, output_padding, groups, dilation);
    CArray<T> b;
    if (!bias.is_none()) {
      b = to_matching_array<T>(bias, fn, "bias", "x");
      require_shape(fn, "bias", b, {call.params.in_channels},
                    "weight shape " + shape_string(call.weight_shape) + " and groups need (C_out,) =");
    }
    py::array_t<T> output = Outputs(fn, out, 1, {input, w, b}).get<T>(0, call.y_shape);
    {
      py::gil_scoped_release release;
      conv_transpose2d_forward(data_of<T>(input), w.data(), bias.is_none() ? nullptr : b.data(), output.mutable_data(),
                               call.params);
    }
    return std::move(output);
  });
}

py::tuple conv_transpose2d_backward(py::handle grad_output, py::handle x, py::handle weight, py::handle stride,
                                    py::handle padding, py::handle output_padding, py::handle groups,
                                    py::handle dilation, py::handle needs, py::handle out) {
  const char* fn = "conv_transpose2d_backward";
  auto [input, type] = to_float_array(x, fn, "x");
  const Needs wanted = parse_needs(fn, needs);
  return dispatch_float(type, [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    const auto w = to_matching_array<T>(weight, fn, "weight", "x");
    const ConvCall call =
        check_conv_transpose(fn, shape_of(input), shape_of(w), stride, padding, output_padding, groups, dilation);
    const auto grad = to_matching_array<T>(grad_output, fn, "grad_output", "x");
    require_shape(fn, "grad_output", grad, call.y_shape, "the transposed convolution of x gives");
    return gradients<T>(Outputs(fn, out, 3, {grad, input, w}), call, wanted, call.params.in_channels,
                        [&](T* grad_input, T* grad_weight, T* grad_bias) {
                          conv_transpose2d_backward(grad.data(), data_of<T>(input), w.data(), grad_input, grad_weight,
                                                    grad_bias, call.params);
                        });
  });
}

}  // namespace

void register_conv(py::module_& m) {
  py::class_<PackedConv2dWeight>(m, "PackedConv2dWeight", docs::PackedConv2dWeight)
      .def(py::init<py::handle, py::handle>(), "weight"_a, "winograd"_a = false)
      .def_property_readonly("weight", &PackedConv2dWeight::weight, "The weight it holds (a read-only array).")
      .def_property_readonly(
          "shape",
          [](const PackedConv2dWeight& self) {
            const std::vector<int64_t>& shape = self.shape();
            return py::make_tuple(shape[0], shape[1], shape[2], shape[3]);
          },
          "(C_out, C_in / groups, kH, kW).")
      .def_property_readonly(
          "dtype", [](const PackedConv2dWeight& self) { return py::dtype(self.dtype_name()); }, "float32 or float64.")
      .def_property_readonly("winograd", &PackedConv2dWeight::winograd,
                             "Whether 3x3 stride-1 convolutions take Winograd's F(2x2, 3x3) where it saves work.")
      .def("__repr__",
           [](const PackedConv2dWeight& self) {
             return concat("PackedConv2dWeight(shape=", shape_string(self.shape()), ", dtype=", self.dtype_name(),
                           self.winograd() ? ", winograd=True)" : ")");
           })
      // It never changes, so a copy may share it; pickled, it is its weight, packed again on load.
      .def("__copy__", [](py::handle self) { return py::reinterpret_borrow<py::object>(self); })
      .def(
          "__deepcopy__", [](py::handle self, py::handle) { return py::reinterpret_borrow<py::object>(self); },
          "memo"_a)
      .def("__reduce__", [](py::handle self) {
        return py::make_tuple(py::type::of(self), py::make_tuple(PackedConv2dWeight::weight(self).attr("copy")(),
                                                                 self.cast<const PackedConv2dWeight&>().winograd()));
      });
  m.def("conv2d", &conv2d, "x"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1,
        "groups"_a = 1, "activation"_a = py::none(), "out"_a = py::none(), "winograd"_a = py::none(),
        "layout"_a = "nchw", docs::conv2d);
  m.def("conv2d_backward", &conv2d_backward, "grad_output"_a, "x"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0,
        "dilation"_a = 1, "groups"_a = 1, "needs"_a = py::make_tuple("input", "weight", "bias"), "out"_a = py::none(),
        "winograd"_a = py::none(), "layout"_a = "nchw", docs::conv2d_backward);
  m.def("conv_transpose2d", &conv_transpose2d, "x"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1,
        "padding"_a = 0, "output_padding"_a = 0, "groups"_a = 1, "dilation"_a = 1, "out"_a = py::none(),
        docs::conv_transpose2d);
  m.def("conv_transpose2d_backward", &conv_transpose2d_backward, "grad_output"_a, "x"_a, "weight"_a, "stride"_a = 1,
        "padding"_a = 0, "output_padding"_a = 0, "groups"_a = 1, "dilation"_a = 1,
        "needs"_a = py::make_tuple("input", "weight", "bias"), "out"_a = py::none(), docs::conv_transpose2d_backward);
}

}  // namespace convpool::bindings
