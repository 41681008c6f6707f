// Python bindings of max_unpool.hpp: convert -> validate -> allocate (with the GIL) -> release the
// GIL -> kernel. Nothing touches a Python object while the GIL is released.

#include <convpool/max_unpool.hpp>

#include "docstrings.hpp"
#include "pooling_args.hpp"

namespace convpool::bindings {

namespace {

using namespace pybind11::literals;

constexpr const char* kUnpooledPlane = "the output's H*W";

// The output plane of an unpooling of `in` (x's shape, or the indices'), PyTorch's rule: by
// default (H - 1) * stride - 2 * padding + kernel_size; an output_size (H, W) or (N, C, H, W)
// overrides it by less than the stride either way.
MaxUnpool2dParams unpool_params(const char* fn, const SpatialShape& in, py::handle kernel_size, py::handle stride,
                                py::handle padding, py::handle output_size) {
  const Pair kernel = bounded_pair(fn, kernel_size, "kernel_size", 1, "positive");
  const Pair step = stride_or_kernel(fn, stride, kernel);
  const Pair pad = bounded_pair(fn, padding, "padding", 0, "non-negative");
  // In floating point first: a huge stride must be refused, not overflow.
  const auto default_size = [](int64_t in_size, int64_t k, int64_t s, int64_t p) {
    return static_cast<double>(in_size - 1) * static_cast<double>(s) - 2.0 * static_cast<double>(p) +
           static_cast<double>(k);
  };
  const double default_h = default_size(in.height(), kernel.h, step.h, pad.h);
  const double default_w = default_size(in.width(), kernel.w, step.w, pad.w);
  double out_h = default_h, out_w = default_w;
  if (!output_size.is_none()) {
    const std::vector<int64_t> size = to_shape(output_size, fn, "output_size");
    if (size.size() != 2 && size.size() != in.shape.size())
      throw py::value_error(concat(fn, ": output_size=", shape_string(size), " must be (H, W) or have x's ",
                                   in.shape.size(), " dimensions"));
    out_h = static_cast<double>(size[size.size() - 2]);
    out_w = static_cast<double>(size.back());
    const bool h_ok = out_h > default_h - step.h && out_h < default_h + step.h;
    const bool w_ok = out_w > default_w - step.w && out_w < default_w + step.w;
    if (!h_ok || !w_ok)
      throw py::value_error(concat(fn, ": output_size=", shape_string(size), " must be within the stride ", step.str(),
                                   " of the default size (", default_h, ", ", default_w, ") for x shape ",
                                   shape_string(in.shape)));
  }
  if (out_h < 1 || out_w < 1)
    throw py::value_error(concat(fn, ": padding=", pad.str(), " leaves no output for x shape ", shape_string(in.shape),
                                 " and kernel_size=", kernel.str()));
  if (out_h * out_w * static_cast<double>(in.planes()) > 9e15)
    throw py::value_error(concat(fn, ": the output (", out_h, " x ", out_w, " per plane) is too large"));
  MaxUnpool2dParams p;
  p.planes = in.planes();
  p.input_plane = in.height() * in.width();
  p.out_h = static_cast<int64_t>(out_h);
  p.out_w = static_cast<int64_t>(out_w);
  return p;
}

py::array max_unpool2d(py::handle x, py::handle indices, py::handle kernel_size, py::handle stride, py::handle padding,
                       py::handle output_size, py::handle out) {
  const char* fn = "max_unpool2d";
  const auto [input, type, in] = pooling_input(x, fn);
  const MaxUnpool2dParams p = unpool_params(fn, in, kernel_size, stride, padding, output_size);
  const CArray<int64_t> index_array = to_index_array(indices, fn, "indices");
  require_shape(fn, "indices", index_array, in.shape, "x has");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    Outputs outputs(fn, out, 1, {input, index_array});
    py::array_t<T> output = outputs.get<T>(0, in.with_spatial(p.out_h, p.out_w));
    check_indices_before_writing(fn, outputs, index_array, p.output_plane(), kUnpooledPlane);
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = max_unpool2d_forward(data_of<T>(input), index_array.data(), output.mutable_data(), p);
    }
    require_indices_inside(fn, bad, p.output_plane(), kUnpooledPlane);
    return std::move(output);
  });
}

py::array max_unpool2d_backward(py::handle grad_output, py::handle indices, py::handle kernel_size, py::handle stride,
                                py::handle padding, py::handle output_size, py::handle out) {
  const char* fn = "max_unpool2d_backward";
  auto [grad, type] = to_float_array(grad_output, fn, "grad_output");
  const CArray<int64_t> index_array = to_index_array(indices, fn, "indices");
  const SpatialShape in = spatial_shape(shape_of(index_array), fn, "indices");
  const MaxUnpool2dParams p = unpool_params(fn, in, kernel_size, stride, padding, output_size);
  require_shape(fn, "grad_output", grad, in.with_spatial(p.out_h, p.out_w), "the unpooling of indices gives");
  return dispatch_float(type, [&](auto zero) -> py::array {
    using T = decltype(zero);
    Outputs outputs(fn, out, 1, {grad, index_array});
    py::array_t<T> grad_input = outputs.get<T>(0, in.shape);
    check_indices_before_writing(fn, outputs, index_array, p.output_plane(), kUnpooledPlane);
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = max_unpool2d_backward(data_of<T>(grad), index_array.data(), grad_input.mutable_data(), p);
    }
    require_indices_inside(fn, bad, p.output_plane(), kUnpooledPlane);
    return std::move(grad_input);
  });
}

}  // namespace

void register_max_unpool(py::module_& m) {
  m.def("max_unpool2d", &max_unpool2d, "x"_a, "indices"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
        "output_size"_a = py::none(), "out"_a = py::none(), docs::max_unpool2d);
  m.def("max_unpool2d_backward", &max_unpool2d_backward, "grad_output"_a, "indices"_a, "kernel_size"_a,
        "stride"_a = py::none(), "padding"_a = 0, "output_size"_a = py::none(), "out"_a = py::none(),
        docs::max_unpool2d_backward);
}

}  // namespace convpool::bindings
