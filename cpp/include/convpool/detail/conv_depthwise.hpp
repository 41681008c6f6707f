#pragma once
// The depthwise paths of conv.hpp (one input channel per group), which have no reduction over
// channels to feed a matrix product: each plane runs the depthwise plane kernels.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../parallel.hpp"
#include "../shape.hpp"
#include "conv_kernels.hpp"
#include "conv_packing.hpp"
#include "conv_padded_rows.hpp"

namespace convpool::detail {

// The depthwise kernels copy whole planes through the forward's geometry.
inline bool depthwise_applies(const Conv2dParams& p) { return p.depthwise() && forward_correlation(p).copy_bounded(); }

// The input gradient: at stride 1 a correlation with the flipped kernel, through its own bounded
// copy; strided, the forward correlation's copy split into phases.
inline bool depthwise_input_gradient_applies(const Conv2dParams& p) {
  if (!p.depthwise()) return false;
  return unit_stride(p) ? input_gradient_correlation(p).copy_bounded() : depthwise_applies(p);
}

// Each input plane goes whole into a per-thread DirectTile of one channel (at stride > 1 split
// into phase planes), so that every tap reads whole rows at unit stride and the vector kernels
// run without bounds checks; they write the output in place, masking the last vector of a row.
template <typename T>
struct DepthwisePlane {
  DirectGeometry gm;
  DirectTile<T> tile;

  DepthwisePlane(DirectGeometry geometry, int lanes) : gm(whole(geometry)), tile(gm, 1, lanes) {}

  static DirectGeometry whole(DirectGeometry geometry) {
    geometry.tile_positions = std::numeric_limits<int64_t>::max();
    return geometry;
  }
  int64_t row_stride() const { return gm.padded_w(); }
  const int64_t* offsets() const { return tile.offsets.data(); }

  void fill(const T* source) { tile.fill(source, 1, gm, 0, gm.out_h); }

  // The transpose of fill: source (in_h x in_w) receives the phase planes' values at the
  // positions fill took them from; positions no window reads get zero.
  void gather(T* source) const {
    const int64_t rows = gm.phase_rows(gm.out_h), cols = gm.padded_w();
    // Source columns [0, first) lie inside the phase planes' columns.
    const int64_t first = std::clamp<int64_t>(gm.sw * cols - gm.left, 0, gm.in_w);
    for (int64_t ih = 0; ih < gm.in_h; ++ih) {
      T* out = source + ih * gm.in_w;
      const int64_t padded_row = ih + gm.top, r = padded_row / gm.sh;
      if (r >= rows) {
        std::fill(out, out + gm.in_w, T(0));
        continue;
      }
      const T* phases = tile.padded.data() + padded_row % gm.sh * gm.sw * gm.phase_plane() + r * cols;
      // Column iw comes from phase (iw + left) % sw, column (iw + left) / sw.
      if (gm.sw == 2) {  // a constant step lets the compiler vectorize with shuffles
        const T* even = phases + gm.left % 2 * gm.phase_plane() + gm.left / 2;
        const T* odd = phases + (gm.left + 1) % 2 * gm.phase_plane() + (gm.left + 1) / 2;
        const int64_t pairs = first / 2;
#pragma omp simd
        for (int64_t j = 0; j < pairs; ++j) {
          out[2 * j] = even[j];
          out[2 * j + 1] = odd[j];
        }
        if (first % 2) out[first - 1] = even[pairs];
      } else {
        for (int64_t iw = 0; iw < first; ++iw)
          out[iw] = phases[(iw + gm.left) % gm.sw * gm.phase_plane() + (iw + gm.left) / gm.sw];
      }
      std::fill(out + first, out + gm.in_w, T(0));
    }
  }
};

template <typename T>
void conv2d_forward_depthwise(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p,
                              Activation activation) {
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(forward_geometry<T>(p), kernels.lanes);
    for (int64_t item = begin; item < end; ++item) {
      plane.fill(x + item * p.input_plane());

      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co) {
        T* const out = y + (n * p.out_channels + co) * p.output_plane();
        kernels.plane(plane.tile.padded.data(), plane.row_stride(), weight + co * taps, p.h.kernel, p.w.kernel,
                      plane.offsets(), false, bias ? bias[co] : T(0), out, p.h.output, p.w.output, p.w.output);
        activate_rows(activation, out, 1, p.output_plane(), 0);
      }
    }
  });
}

// Phase (a, b) of the padded input gradient, the positions (r * sh + a, c * sw + b), is a
// stride-1 correlation of the output gradient with the taps that land on that phase, tap
// (kh, kw) shifted by (kh * dh / sh, kw * dw / sw): every phase element is written once, the
// vector kernels accumulating in registers, and the phases are then gathered into place.
template <typename T>
void conv2d_backward_input_depthwise_strided(const T* grad_output, const T* weight, T* grad_input,
                                             const Conv2dParams& p) {
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t multiplier = p.out_per_group(), taps = p.taps(), phases = h.stride * w.stride;
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  const DirectGeometry gm = DepthwisePlane<T>::whole(forward_geometry<T>(p));
  // The output gradient padded by the taps' reach, so that each phase's correlation reads whole rows.
  const int64_t reach_h = (h.kernel - 1) * h.dilation / h.stride, reach_w = (w.kernel - 1) * w.dilation / w.stride;
  const int64_t grad_rows = gm.phase_rows(h.output) + reach_h;
  const int64_t grad_cols = round_up(gm.padded_w(), kernels.lanes) + reach_w;
  std::vector<int64_t> phase_taps(phases + 1), tap_order,
      offsets;  // phase ph's taps: [phase_taps[ph], phase_taps[ph + 1])
  for (int64_t a = 0; a < h.stride; ++a)
    for (int64_t b = 0; b < w.stride; ++b) {
      for (int64_t kh = 0; kh < h.kernel; ++kh)
        for (int64_t kw = 0; kw < w.kernel; ++kw)
          if (kh * h.dilation % h.stride == a && kw * w.dilation % w.stride == b) {
            tap_order.push_back(kh * w.kernel + kw);
            offsets.push_back((reach_h - kh * h.dilation / h.stride) * grad_cols + reach_w -
                              kw * w.dilation / w.stride);
          }
      phase_taps[a * w.stride + b + 1] = static_cast<int64_t>(tap_order.size());
    }
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(gm, kernels.lanes);
    std::vector<T> padded_grad(grad_rows * grad_cols + kernels.lanes), coefficients(taps);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co) {
        copy_into_zeroed(grad_output + (n * p.out_channels + co) * p.output_plane(), h.output, w.output, reach_h,
                         reach_w, padded_grad.data(), grad_rows, grad_cols);
        for (int64_t t = 0; t < taps; ++t) coefficients[t] = weight[co * taps + tap_order[t]];
        for (int64_t phase = 0; phase < phases; ++phase) {
          // A phase no tap lands on (a 1x1 kernel's odd columns at stride 2) gets zeros.
          const int64_t first = phase_taps[phase], count = phase_taps[phase + 1] - first;
          kernels.plane(padded_grad.data(), grad_cols, coefficients.data() + first, 1, count, offsets.data() + first,
                        co > ci * multiplier, T(0), plane.tile.padded.data() + phase * gm.phase_plane(),
                        gm.phase_rows(h.output), gm.padded_w(), gm.padded_w());
        }
      }
      plane.gather(grad_input + item * p.input_plane());
    }
  });
}

// Stride 1: the input gradient is a depthwise convolution of the padded output gradient with the
// flipped kernel, summed over the channel multiplier.
template <typename T>
void conv2d_backward_input_depthwise(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  if (!unit_stride(p)) return conv2d_backward_input_depthwise_strided(grad_output, weight, grad_input, p);
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(input_gradient_correlation(p), kernels.lanes);
    std::vector<T> flipped(taps);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co) {
        plane.fill(grad_output + (n * p.out_channels + co) * p.output_plane());
        std::reverse_copy(weight + co * taps, weight + (co + 1) * taps, flipped.begin());
        kernels.plane(plane.tile.padded.data(), plane.row_stride(), flipped.data(), h.kernel, w.kernel, plane.offsets(),
                      co > ci * multiplier, T(0), grad_input + item * p.input_plane(), h.input, w.input, w.input);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight_depthwise(const T* grad_output, const T* x, T* grad_weight, const Conv2dParams& p) {
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.out_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(forward_geometry<T>(p), kernels.lanes);
    for (int64_t co = begin; co < end; ++co) {
      T* sums = grad_weight + co * taps;
      std::fill(sums, sums + taps, T(0));
      for (int64_t n = 0; n < p.batch; ++n) {
        plane.fill(x + (n * p.in_channels + co / multiplier) * p.input_plane());
        kernels.weight_plane(plane.tile.padded.data(), plane.row_stride(),
                             grad_output + (n * p.out_channels + co) * p.output_plane(), p.h.output, p.w.output,
                             p.w.output, p.h.kernel, p.w.kernel, plane.offsets(), sums);
      }
    }
  });
}

}  // namespace convpool::detail
