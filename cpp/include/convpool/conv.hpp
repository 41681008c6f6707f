#pragma once
// 2-D convolution (cross-correlation, as every framework defines it): forward, and the gradients
// with respect to the input, the weight and the bias.
//
// Layouts: x (N, C_in, H, W), weight (C_out, C_in / groups, KH, KW), bias (C_out), y (N, C_out,
// OH, OW), all C-contiguous; or, with Conv2dParams::layout NHWC, x (N, H, W, C_in) and y (N, OH,
// OW, C_out), which take the channels-last paths (detail/conv_channels_last.hpp), while the NCHW
// ones are described here. The arithmetic runs in the register-tiled micro-kernels of
// detail/conv_kernels.hpp, on per-thread buffers sized for the caches (never the whole batch).
// The forward and weight gradient read zero-padded input rows in place ("direct" paths), and so
// does the input gradient at stride 1; at larger strides it is one stride-1 correlation per
// phase of the input. Where those do not apply (huge strides or dilations, short reductions of
// the weight gradient, one or two input channels) panels of the im2col matrix are gathered tile
// by tile. Depthwise convolutions (one input channel per group) run a kernel of their own, since
// they have no reduction over channels to feed a matrix product.
//
// Determinism: every output element is computed by one thread, from contributions added in an
// order fixed by the shapes alone; the weight gradient of a small layer is split over a fixed
// number of image chunks whose partial sums are added in chunk order. Results are therefore
// bitwise identical for any number of threads.

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "detail/conv_channels_last.hpp"
#include "detail/conv_depthwise.hpp"
#include "detail/conv_direct.hpp"
#include "detail/conv_gemm.hpp"
#include "detail/conv_winograd.hpp"
#include "isa.hpp"
#include "shape.hpp"

#define CONVPOOL_VECTOR_KERNELS "conv_bias_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// A convolution weight packed once for the micro-kernels, for weights that stop changing
// (inference). Each forward call otherwise packs the weight into register-tile panels (output
// channels side by side, step by step through the reduction), which for a layer of many channels
// on a small plane costs a large part of the call: a 3x3 layer of 512 channels holds 9.4 MB of
// weights for 49 output positions per image. The panels for a register-tile height and a number
// of groups are packed the first time a call needs them and kept (a layer meets one or two); the
// object holds its own copy of the weight, so it stays valid whatever happens to the array it was
// packed from.
//
// With `winograd`, 3x3 convolutions at stride 1 and dilation 1 with one group run Winograd's
// F(2x2, 3x3) (detail/conv_winograd.hpp) where it saves work: 2.25 times fewer multiply-adds,
// rounded differently from the definition's sums. Other calls are unchanged.
template <typename T>
class PackedConvWeight {
 public:
  // weight: out_channels rows of weight_row = C_in / groups * kH * kW values, as conv2d_forward's.
  PackedConvWeight(const T* weight, int64_t out_channels, int64_t weight_row, bool winograd = false)
      : weight_(weight, weight + out_channels * weight_row),
        out_channels_(out_channels),
        weight_row_(weight_row),
        winograd_(winograd) {}
  PackedConvWeight(const PackedConvWeight&) = delete;
  PackedConvWeight& operator=(const PackedConvWeight&) = delete;

  const T* weight() const { return weight_.data(); }
  int64_t out_channels() const { return out_channels_; }
  int64_t weight_row() const { return weight_row_; }
  bool winograd() const { return winograd_; }

  // The panels of `panel_rows` output channels of each of `groups` groups; safe to call from
  // several threads (one packs, the others wait for it).
  const T* panels(int64_t groups, int panel_rows) const {
    const int64_t m = out_channels_ / groups;
    return find_or_pack(
        {groups, panel_rows, Packing::rows}, groups * detail::group_stride(m, weight_row_, panel_rows), [&](T* out) {
          detail::pack_group_panels_into<T>(
              groups, m, weight_row_, panel_rows,
              [&](int64_t g, int64_t i, int64_t d) { return weight_[(g * m + i) * weight_row_ + d]; }, out);
        });
  }

  // The Winograd-transformed 3x3 weight (one group) as panels of `panel_rows` output channels, one
  // group of panels per point of the transform.
  const T* winograd_panels(int panel_rows) const {
    const int64_t in_channels = weight_row_ / 9;
    return find_or_pack(
        {1, panel_rows, Packing::winograd},
        detail::kWinogradPoints * detail::group_stride(out_channels_, in_channels, panel_rows), [&](T* out) {
          detail::pack_winograd_panels_into(weight_.data(), out_channels_, in_channels, panel_rows, out);
        });
  }

  // The channels-last paths' panels of `columns` output channels for p's groups and kernel
  // (detail/pack_channels_last_weight_into).
  const T* channels_last_panels(const Conv2dParams& p, int columns) const {
    return find_or_pack({p.groups, columns, Packing::channels_last}, detail::channels_last_weight_size(p, columns),
                        [&](T* out) { detail::pack_channels_last_weight_into(weight_.data(), p, columns, out); });
  }

 private:
  enum class Packing { rows, winograd, channels_last };
  struct Key {
    int64_t groups;
    int panel_size;  // rows or columns of a register tile
    Packing packing;
    bool operator==(const Key& other) const {
      return groups == other.groups && panel_size == other.panel_size && packing == other.packing;
    }
  };
  struct Layout {
    Key key;
    std::unique_ptr<T[]> panels;
  };

  template <class Pack>
  const T* find_or_pack(const Key& key, int64_t size, Pack&& pack) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const Layout& layout : layouts_)
      if (layout.key == key) return layout.panels.get();
    std::unique_ptr<T[]> panels(new T[size]);
    pack(panels.get());
    layouts_.push_back({key, std::move(panels)});
    return layouts_.back().panels.get();
  }

  std::vector<T> weight_;
  int64_t out_channels_, weight_row_;
  bool winograd_;
  mutable std::mutex mutex_;
  mutable std::vector<Layout> layouts_;
};

namespace detail {

// The same convolution on NCHW arrays.
inline Conv2dParams as_nchw(Conv2dParams p) {
  p.layout = Layout::nchw;
  return p;
}

// Runs run(in_planes, out_planes) on NCHW copies of `batch` NHWC images: `in` (in_pixels of
// in_channels each) transposed before, and `out` (out_pixels of out_channels) transposed back after.
template <typename T, class Run>
void through_nchw(const T* in, T* out, int64_t batch, int64_t in_pixels, int64_t in_channels, int64_t out_pixels,
                  int64_t out_channels, Run&& run) {
  ScratchBuffer<T> in_planes(batch * in_pixels * in_channels), out_planes(batch * out_pixels * out_channels);
  transpose_images(in, in_planes.get(), batch, in_pixels, in_channels);
  run(static_cast<const T*>(in_planes.get()), out_planes.get());
  transpose_images(out_planes.get(), out, batch, out_channels, out_pixels);
}

// The channels-last forward on `weight` (its panels of r output channels panels_for(r)): the
// depthwise loops, the NCHW kernels (forward_nchw(x_planes, y_planes)) on transposed copies
// where the output channels fill too little of a vector, else the channels-last product.
template <typename T, class PanelsFor, class ForwardNchw>
void conv2d_forward_nhwc(const T* x, const T* weight, PanelsFor&& panels_for, ForwardNchw&& forward_nchw, const T* bias,
                         T* y, const Conv2dParams& p, Activation activation) {
  if (p.batch == 0) return;
  if (p.depthwise()) return conv2d_forward_depthwise_channels_last(x, weight, bias, y, p, activation);
  if (!channels_last_fills<T>(p.out_per_group()))
    return through_nchw(x, y, p.batch, p.input_plane(), p.in_channels, p.output_plane(), p.out_channels, forward_nchw);
  conv2d_forward_channels_last(x, panels_for, bias, y, p, activation);
}

// The forward pass on a weight whose panels of r output channels are panels_for(r).
template <typename T, class PanelsFor>
void conv2d_forward_on_panels(const T* x, const T* weight, PanelsFor&& panels_for, const T* bias, T* y,
                              const Conv2dParams& p, Activation activation) {
  if (p.batch == 0) return;
  if (depthwise_applies(p))
    conv2d_forward_depthwise(x, weight, bias, y, p, activation);
  else if (direct_applies(p))
    conv2d_forward_direct(x, panels_for, bias, y, p, activation);
  else
    conv2d_forward_gemm(x, panels_for, bias, y, p, activation);
}

}  // namespace detail

// y = activation(conv2d(x, weight) + bias); bias may be null. The activation is applied to each
// output tile right after it is computed, while it is in the cache.
template <typename T>
void conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p,
                    Activation activation = Activation::none) {
  if (p.layout == Layout::nhwc)
    return detail::conv2d_forward_nhwc(
        x, weight,
        [&](int columns) {
          detail::ScratchBuffer<T> packed(detail::channels_last_weight_size(p, columns));
          detail::pack_channels_last_weight_into(weight, p, columns, packed.get());
          return detail::Panels<T>(std::move(packed));
        },
        [&](const T* x_planes, T* y_planes) {
          conv2d_forward(x_planes, weight, bias, y_planes, detail::as_nchw(p), activation);
        },
        bias, y, p, activation);
  // Where F(2x2, 3x3) meets an infinite or NaN value, the direct sums give the results instead.
  if (const auto plan = p.winograd ? detail::winograd_plan_if_it_pays<T>(p) : std::nullopt)
    if (detail::conv2d_forward_winograd(x, detail::winograd_packing_on_call(weight, p.out_channels, p.in_channels),
                                        bias, y, p, *plan, activation))
      return;
  const int64_t m = p.out_per_group(), depth = p.weight_row();
  detail::conv2d_forward_on_panels(
      x, weight,
      detail::packing_on_call<T>(p.groups, m, depth,
                                 [=](int64_t g, int64_t i, int64_t d) { return weight[(g * m + i) * depth + d]; }),
      bias, y, p, activation);
}

// The same with a weight packed ahead; its shape must be p's (C_out rows of p.weight_row()).
template <typename T>
void conv2d_forward(const T* x, const PackedConvWeight<T>& weight, const T* bias, T* y, const Conv2dParams& p,
                    Activation activation = Activation::none) {
  assert(weight.out_channels() == p.out_channels && weight.weight_row() == p.weight_row());
  if (p.layout == Layout::nhwc)
    return detail::conv2d_forward_nhwc(
        x, weight.weight(), [&](int columns) { return detail::Panels<T>(weight.channels_last_panels(p, columns)); },
        [&](const T* x_planes, T* y_planes) {
          conv2d_forward(x_planes, weight, bias, y_planes, detail::as_nchw(p), activation);
        },
        bias, y, p, activation);
  if (const auto plan = weight.winograd() ? detail::winograd_plan_if_it_pays<T>(p) : std::nullopt)
    if (detail::conv2d_forward_winograd(
            x, [&](int panel_rows) { return detail::Panels<T>(weight.winograd_panels(panel_rows)); }, bias, y, p, *plan,
            activation))
      return;
  detail::conv2d_forward_on_panels(
      x, weight.weight(), [&](int panel_rows) { return detail::Panels<T>(weight.panels(p.groups, panel_rows)); }, bias,
      y, p, activation);
}

// The gradients of conv2d_forward; each of grad_input, grad_weight and grad_bias may be null to
// skip it. x is read only for grad_weight and weight only for grad_input.
template <typename T>
void conv2d_backward(const T* grad_output, const T* x, const T* weight, T* grad_input, T* grad_weight, T* grad_bias,
                     const Conv2dParams& p) {
  if (p.batch == 0) {  // the sums over no images; nothing else is read or written
    if (grad_weight) std::fill(grad_weight, grad_weight + p.out_channels * p.weight_row(), T(0));
    if (grad_bias) std::fill(grad_bias, grad_bias + p.out_channels, T(0));
    return;
  }
  if (p.layout == Layout::nhwc) {
    if (grad_input) {
      if (p.depthwise())
        detail::conv2d_backward_input_depthwise_channels_last(grad_output, weight, grad_input, p);
      else if (!detail::channels_last_fills<T>(p.in_per_group()))
        detail::through_nchw(grad_output, grad_input, p.batch, p.output_plane(), p.out_channels, p.input_plane(),
                             p.in_channels, [&](const T* grad_planes, T* grad_input_planes) {
                               conv2d_backward(grad_planes, static_cast<const T*>(nullptr), weight, grad_input_planes,
                                               static_cast<T*>(nullptr), static_cast<T*>(nullptr), detail::as_nchw(p));
                             });
      else
        detail::conv2d_backward_input_channels_last(grad_output, weight, grad_input, p);
    }
    if (grad_weight) {
      if (p.depthwise()) {
        detail::conv2d_backward_weight_depthwise_channels_last(grad_output, x, grad_weight, p);
      } else if (!detail::channels_last_fills<T>(p.out_per_group())) {
        detail::ScratchBuffer<T> x_planes(p.batch * p.input_plane() * p.in_channels);
        detail::ScratchBuffer<T> grad_planes(p.batch * p.output_plane() * p.out_channels);
        detail::transpose_images(x, x_planes.get(), p.batch, p.input_plane(), p.in_channels);
        detail::transpose_images(grad_output, grad_planes.get(), p.batch, p.output_plane(), p.out_channels);
        conv2d_backward(static_cast<const T*>(grad_planes.get()), static_cast<const T*>(x_planes.get()), weight,
                        static_cast<T*>(nullptr), grad_weight, static_cast<T*>(nullptr), detail::as_nchw(p));
      } else {
        detail::conv2d_backward_weight_channels_last(grad_output, x, grad_weight, p);
      }
    }
    if (grad_bias)
      with_vector_isa([&](auto isa) { conv2d_backward_bias_channels_last(isa, grad_output, grad_bias, p); });
    return;
  }
  const std::optional<Conv2dParams> winograd_gradient = p.winograd ? detail::winograd_input_gradient(p) : std::nullopt;
  const auto gradient_plan = winograd_gradient ? detail::winograd_plan_if_it_pays<T>(*winograd_gradient) : std::nullopt;
  bool input_gradient_done = false;
  if (grad_input && gradient_plan) {
    const std::vector<T> flipped = detail::flipped_transposed(weight, p.out_channels, p.in_channels);
    // Where F(2x2, 3x3) meets an infinite or NaN value, the direct paths below give the gradient.
    input_gradient_done = detail::conv2d_forward_winograd(
        grad_output, detail::winograd_packing_on_call(flipped.data(), p.in_channels, p.out_channels),
        static_cast<const T*>(nullptr), grad_input, *winograd_gradient, *gradient_plan, Activation::none);
  }
  if (grad_input && !input_gradient_done) {
    if (detail::depthwise_input_gradient_applies(p))
      detail::conv2d_backward_input_depthwise(grad_output, weight, grad_input, p);
    else if (detail::direct_input_gradient_applies(p))
      detail::conv2d_backward_input_direct(grad_output, weight, grad_input, p);
    else if (detail::phase_input_gradient_applies(p))
      detail::conv2d_backward_input_phases(grad_output, weight, grad_input, p);
    else
      detail::conv2d_backward_input_col2im(grad_output, weight, grad_input, p);
  }
  if (grad_weight) {
    if (detail::depthwise_applies(p))
      detail::conv2d_backward_weight_depthwise(grad_output, x, grad_weight, p);
    else if (detail::direct_weight_gradient_applies(p, x))
      detail::conv2d_backward_weight_direct(grad_output, x, grad_weight, p);
    else
      detail::conv2d_backward_weight_gemm(grad_output, x, grad_weight, p);
  }
  if (grad_bias) with_vector_isa([&](auto isa) { conv2d_backward_bias(isa, grad_output, grad_bias, p); });
}

}  // namespace convpool
