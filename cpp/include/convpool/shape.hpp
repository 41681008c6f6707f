#pragma once
// Window arithmetic shared by every pooling and convolution kernel: one place, signed 64-bit,
// PyTorch's formulas.

#include <algorithm>
#include <cstdint>
#include <vector>

namespace convpool {

// Floor division (rounds toward negative infinity), as PyTorch's div_rtn.
inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// The least multiple of `multiple` that is >= value (value >= 0).
inline int64_t round_up(int64_t value, int64_t multiple) { return ceil_div(value, multiple) * multiple; }

// PyTorch's pooling output size. In ceil_mode the last window must start inside the input or the
// left padding; a window starting in the right padding is dropped. May return <= 0: callers
// validate before running a kernel.
inline int64_t pooling_output_size(int64_t input_size, int64_t kernel_size, int64_t stride, int64_t padding,
                                   int64_t dilation, bool ceil_mode) {
  const int64_t span = dilation * (kernel_size - 1) + 1;
  int64_t out = floor_div(input_size + 2 * padding - span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && out > 0 && (out - 1) * stride >= input_size + padding) --out;
  return out;
}

// PyTorch's convolution output size; padding may differ on the two sides (padding="same" with an
// even dilated kernel puts the extra element after). May return <= 0: callers validate.
inline int64_t conv_output_size(int64_t input_size, int64_t kernel_size, int64_t stride, int64_t padding_before,
                                int64_t padding_after, int64_t dilation) {
  const int64_t span = dilation * (kernel_size - 1) + 1;
  return floor_div(input_size + padding_before + padding_after - span, stride) + 1;
}

// One spatial dimension of a pooling or convolution window: output position o reads the taps
// o*stride - padding + k*dilation for k in [0, kernel). `padding` is the padding before the
// input; the padding after it is implied by `output`.
struct WindowDim {
  int64_t input = 1, output = 1, kernel = 1, stride = 1, padding = 0, dilation = 1;

  int64_t start(int64_t o) const { return o * stride - padding; }

  // Taps of output o that fall inside the input: k in [first_tap(o), end_tap(o)).
  int64_t first_tap(int64_t o) const {
    const int64_t s = start(o);
    return s >= 0 ? 0 : std::min(kernel, ceil_div(-s, dilation));
  }
  int64_t end_tap(int64_t o) const {
    const int64_t s = start(o);
    if (s >= input) return first_tap(o);
    return std::max(first_tap(o), std::min(kernel, floor_div(input - 1 - s, dilation) + 1));
  }

  // Outputs whose tap k falls inside the input: o in [first_output(k), end_output(k)).
  int64_t first_output(int64_t k) const {
    return std::clamp<int64_t>(ceil_div(padding - k * dilation, stride), 0, output);
  }
  int64_t end_output(int64_t k) const {
    const int64_t last = floor_div(input - 1 + padding - k * dilation, stride);
    return std::clamp<int64_t>(last + 1, first_output(k), output);
  }

  // The taps that some output reads inside the input lie in [first_used_tap(), end_used_tap()),
  // since first_tap(o) and end_tap(o) only decrease as o grows. Loops over a row's taps keep to
  // it, so that a kernel far wider than the input (and its padding) costs nothing.
  int64_t first_used_tap() const { return first_tap(output - 1); }
  int64_t end_used_tap() const { return end_tap(0); }

  // Outputs whose window (dense, dilation 1) touches input rows [lo, hi).
  int64_t first_output_touching(int64_t lo) const {
    return std::clamp<int64_t>(ceil_div(lo + padding - dilation * (kernel - 1), stride), 0, output);
  }
  int64_t end_output_touching(int64_t hi) const {
    return std::clamp<int64_t>(floor_div(hi - 1 + padding, stride) + 1, 0, output);
  }

  // Average pooling's window extent: clipped to the padded input (count_include_pad) or to the
  // input itself, as PyTorch counts it.
  int64_t padded_count(int64_t o) const {
    const int64_t s = start(o);
    return std::min(s + kernel, input + padding) - s;
  }
  int64_t inside_count(int64_t o) const {
    const int64_t s = start(o);
    return std::max<int64_t>(0, std::min(s + kernel, input) - std::max<int64_t>(s, 0));
  }
};

// Where an image's channels lie in memory: NCHW, one plane per channel, or NHWC (channels last),
// each pixel's channels side by side.
enum class Layout { nchw, nhwc };

// The geometry of one 2-D pooling call; the batch and channel dimensions are folded into
// `planes` because every pooling op treats each H x W plane independently.
struct Pool2dGeometry {
  int64_t planes = 0;
  WindowDim h, w;
  // Channels last (Layout::nhwc), each image holds `channels` of the planes interleaved: value q
  // of plane (image n, channel c) lies at (n * H * W + q) * channels + c.
  Layout layout = Layout::nchw;
  int64_t channels = 1;

  int64_t images() const { return planes / channels; }

  int64_t input_plane() const { return h.input * w.input; }

  // Windows without dilation, larger than 2x2, are reduced over each input column first, then
  // across the columns: kH + kW steps per output at stride 1 instead of kH * kW, and contiguous
  // loads over the rows at any stride. Not where the scratch row would be far wider than the
  // input (a (1, 2^28) window padded by 2^27 on a 1-wide input).
  bool column_first() const {
    return h.dilation == 1 && w.dilation == 1 && h.kernel * w.kernel > 4 && column_scratch_width() <= 2 * w.input + 64;
  }
  // column_first's scratch row: the left padding, the input, and the windows' reach past it.
  int64_t column_scratch_width() const { return std::max(w.padding + w.input, (w.output - 1) * w.stride + w.kernel); }
  int64_t output_plane() const { return h.output * w.output; }
};

inline WindowDim make_window_dim(int64_t input, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                                 bool ceil_mode) {
  WindowDim d;
  d.input = input;
  d.kernel = kernel;
  d.stride = stride;
  d.padding = padding;
  d.dilation = dilation;
  d.output = pooling_output_size(input, kernel, stride, padding, dilation, ceil_mode);
  return d;
}

// Adaptive pooling's windows (PyTorch's): output i of a dimension of input size `in` and output
// size `out` covers [adaptive_start, adaptive_end). With in = q * out + r, i * in / out =
// i * q + i * r / out, whose products stay below out^2 (out is at most 2^31): no overflow for any
// input size.
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return i * (in / out) + i * (in % out) / out; }

inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return (i + 1) * (in / out) + ((i + 1) * (in % out) + out - 1) / out;
}

// The taps of each output position along one dimension that fall inside the input:
// [first[o], end[o]), computed once per call by the kernels that visit every output (each bound
// costs divisions).
struct TapRanges {
  std::vector<int64_t> first, end;
  explicit TapRanges(const WindowDim& d) : first(d.output), end(d.output) {
    for (int64_t o = 0; o < d.output; ++o) {
      first[o] = d.first_tap(o);
      end[o] = d.end_tap(o);
    }
  }
};

// Every output's window bounds along one dimension, computed once per call: their 128-bit
// divisions would otherwise cost more than a small window's work.
struct AdaptiveWindows {
  std::vector<int64_t> begin, end;
  AdaptiveWindows(int64_t in, int64_t out) : begin(out), end(out) {
    for (int64_t i = 0; i < out; ++i) {
      begin[i] = adaptive_start(i, in, out);
      end[i] = adaptive_end(i, in, out);
    }
  }
  int64_t size(int64_t i) const { return end[i] - begin[i]; }
};

// A convolution's geometry, the counterpart of Pool2dGeometry: x (batch, in_channels, h.input,
// w.input) in `layout`'s order, weight (out_channels, in_channels / groups, h.kernel, w.kernel).
struct Conv2dParams {
  int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  // h.padding and w.padding are the padding before the input; the padding after it is implied
  // by h.output and w.output.
  WindowDim h, w;
  // Compute 3x3 stride-1 convolutions (one group, dilation 1) and their input gradients through
  // Winograd's F(2x2, 3x3) where it saves work (conv.hpp): fewer multiply-adds, other rounding.
  bool winograd = false;
  Layout layout = Layout::nchw;  // of x and y (and their gradients); the weight's is always the same

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t taps() const { return h.kernel * w.kernel; }
  // The length of one output channel's weight, and of the matrix product's reduction.
  int64_t weight_row() const { return in_per_group() * taps(); }
  int64_t input_plane() const { return h.input * w.input; }
  int64_t output_plane() const { return h.output * w.output; }
  bool depthwise() const { return groups > 1 && groups == in_channels; }
};

}  // namespace convpool
