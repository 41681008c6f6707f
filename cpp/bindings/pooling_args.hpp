#pragma once
// Argument checks shared by the pooling bindings (one translation unit per family, so that the
// families' kernels compile in parallel): shapes, window arguments and their geometry.

#include <convpool/shape.hpp>
#include <convpool/window.hpp>

#include <string>
#include <vector>

#include "common.hpp"

namespace convpool::bindings {

// A (C, H, W) or (N, C, H, W) input, or (H, W, C) or (N, H, W, C) channels last, with the batch
// and channels folded into planes.
struct SpatialShape {
  std::vector<int64_t> shape;
  Layout layout = Layout::nchw;

  size_t height_axis() const { return shape.size() - (layout == Layout::nhwc ? 3 : 2); }
  int64_t channels() const { return layout == Layout::nhwc ? shape.back() : shape[shape.size() - 3]; }
  int64_t planes() const { return shape.size() == 4 ? shape[0] * channels() : channels(); }
  int64_t height() const { return shape[height_axis()]; }
  int64_t width() const { return shape[height_axis() + 1]; }
  std::vector<int64_t> with_spatial(int64_t h, int64_t w) const {
    auto s = shape;
    s[height_axis()] = h;
    s[height_axis() + 1] = w;
    return s;
  }
};

inline SpatialShape spatial_shape(const std::vector<int64_t>& shape, const char* fn, const char* name,
                                  Layout layout = Layout::nchw) {
  const bool rank_ok = shape.size() == 3 || shape.size() == 4;
  bool sizes_ok = rank_ok;
  for (size_t d = shape.size() == 4 ? 1 : 0; rank_ok && d < shape.size(); ++d) sizes_ok &= shape[d] > 0;
  if (!sizes_ok)
    throw py::value_error(concat(fn, ": ", name, " must be ",
                                 layout == Layout::nhwc ? "(H, W, C) or (N, H, W, C)" : "(C, H, W) or (N, C, H, W)",
                                 " with non-zero C, H, W, got shape ", shape_string(shape)));
  return SpatialShape{shape, layout};
}

// The pooled input `x` of `fn`: a float array, its dtype and its shape.
struct PoolingInput {
  py::array array;
  FloatType type;
  SpatialShape shape;
};

inline PoolingInput pooling_input(py::handle x, const char* fn, Layout layout = Layout::nchw) {
  auto [array, type] = to_float_array(x, fn, "x");
  SpatialShape shape = spatial_shape(shape_of(array), fn, "x", layout);
  return {std::move(array), type, std::move(shape)};
}

// A shape given as a sequence of ints (a backward pass's input_shape).
inline std::vector<int64_t> to_shape(py::handle obj, const char* fn, const char* name) {
  auto refuse = [&] {
    return py::type_error(
        concat(fn, ": ", name, " must be a sequence of ints, got ", py::repr(obj).cast<std::string>()));
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

// An adaptive pooling's output_size: an int or an (h, w) pair, each positive or None (the input's
// size).
inline Pair adaptive_output_size(const char* fn, const SpatialShape& in, py::handle output_size) {
  auto refuse = [&] {
    return py::type_error(concat(fn, ": output_size must be an int or a pair of ints or None, got ",
                                 py::repr(output_size).cast<std::string>()));
  };
  py::object h = py::reinterpret_borrow<py::object>(output_size), w = h;
  if (!is_integer(output_size)) {
    if (!py::isinstance<py::sequence>(output_size) || py::isinstance<py::str>(output_size)) throw refuse();
    const auto pair = py::reinterpret_borrow<py::sequence>(output_size);
    if (pair.size() != 2) throw refuse();
    h = pair[0];
    w = pair[1];
  }
  auto size = [&](const py::object& value, int64_t input) {
    if (value.is_none()) return input;
    if (!is_integer(value)) throw refuse();
    const int64_t v = to_int64(value, fn, "output_size");
    if (v < 1 || v > kMaxWindowArgument)
      throw py::value_error(concat(fn, ": output_size=", py::repr(output_size).cast<std::string>(),
                                   " must be positive (and at most 2**31)"));
    return v;
  };
  return Pair{size(h, in.height()), size(w, in.width())};
}

// A pooling's stride: None or an empty sequence (torch.nn.functional's stride=()) means the
// kernel size.
inline Pair stride_or_kernel(const char* fn, py::handle stride, const Pair& kernel) {
  const bool default_stride = stride.is_none() || (is_sequence(stride) && py::len(stride) == 0);
  return default_stride ? kernel : bounded_pair(fn, stride, "stride", 1, "positive");
}

struct WindowArgs {
  Pair kernel, stride, padding, dilation;
  bool ceil_mode;
};

inline WindowArgs window_args(const char* fn, py::handle kernel_size, py::handle stride, py::handle padding,
                              py::handle dilation, bool ceil_mode) {
  WindowArgs a;
  a.kernel = bounded_pair(fn, kernel_size, "kernel_size", 1, "positive");
  a.stride = stride_or_kernel(fn, stride, a.kernel);
  a.padding = bounded_pair(fn, padding, "padding", 0, "non-negative");
  a.dilation = bounded_pair(fn, dilation, "dilation", 1, "positive");
  a.ceil_mode = ceil_mode;
  if (a.padding.h > a.kernel.h / 2 || a.padding.w > a.kernel.w / 2)
    throw py::value_error(
        concat(fn, ": padding=", a.padding.str(), " must be at most half of kernel_size=", a.kernel.str()));
  return a;
}

inline Pool2dGeometry checked_geometry(const char* fn, const SpatialShape& in, const WindowArgs& a) {
  Pool2dGeometry g;
  g.planes = in.planes();
  g.layout = in.layout;
  g.channels = in.channels();
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

inline std::vector<int64_t> output_shape(const SpatialShape& in, const Pool2dGeometry& g) {
  return in.with_spatial(g.h.output, g.w.output);
}

// The int64 indices of a pooling whose output has shape out_shape.
inline CArray<int64_t> checked_indices(const char* fn, py::handle indices, const std::vector<int64_t>& out_shape) {
  CArray<int64_t> index_array = to_index_array(indices, fn, "indices");
  require_shape(fn, "indices", index_array, out_shape, "the pooling of x gives");
  return index_array;
}

// ValueError for `outside` indices outside [0, plane_size) other than -1; `plane` says which
// plane they index.
inline void require_indices_inside(const char* fn, int64_t outside, int64_t plane_size, const char* plane) {
  if (outside)
    throw py::value_error(
        concat(fn, ": indices has ", outside, " value(s) outside [0, ", plane_size, ") (", plane, ") other than -1"));
}

inline void require_valid_indices(const char* fn, int64_t bad, const Pool2dGeometry& g) {
  require_indices_inside(fn, bad, g.input_plane(), "the H*W of x");
}

// The index-routing kernels count the indices outside their plane as they go, and the binding
// refuses the call afterwards: that costs no extra pass, but the results have been written by
// then. When they go into a caller's out=, the indices are checked first instead, so that a
// refused call leaves out as it was.
inline void check_indices_before_writing(const char* fn, const Outputs& outputs, const CArray<int64_t>& indices,
                                         int64_t plane_size, const char* plane) {
  if (!outputs.any_given()) return;
  int64_t outside;
  {
    py::gil_scoped_release release;
    outside = count_indices_outside(indices.data(), static_cast<int64_t>(indices.size()), plane_size);
  }
  require_indices_inside(fn, outside, plane_size, plane);
}

}  // namespace convpool::bindings
