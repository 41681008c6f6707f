#pragma once
// 2-D stochastic pooling (Zeiler & Fergus, 2013), no padding, for non-negative finite inputs.
//
// Training: each window picks one tap with probability a_i / sum(a); the output is that tap's
// value and its index is recorded, so the backward routes the gradient like max pooling. An
// all-zero window outputs 0 and records its first tap. The draw for output element e (counted
// over the whole output tensor) is a pure function of (seed, e): the same seed gives the same
// samples whatever the number of threads.
// Evaluation: the probability-weighted average sum(a_i^2) / sum(a_i) (0 for an all-zero window).
// Sums are accumulated in double, in row-major window order, over the taps scaled by a power of
// two that brings the window's largest to [1, 2): exact, so results are those of the unscaled
// sums wherever those do not overflow (float64 squares beyond 1e154, four taps of 1e308).

#include <cassert>
#include <cmath>
#include <cstdint>
#include <utility>

#include "max_pool.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "shape.hpp"
#include "window.hpp"

namespace convpool {

struct StochasticPool2dParams {
  Pool2dGeometry geometry;  // padding must be 0, dilation 1
  uint64_t seed = 0;
  bool training = true;
};

// A uniform double in [0, 1) drawn from (seed, counter) with the SplitMix64 finalizer.
inline double stochastic_pool_uniform(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

namespace detail {

// Multiplication by 2^-e for e = the exponent of a window's largest tap, as two factors that are
// neither subnormal nor infinite for any double; up(y) multiplies by 2^e.
class WindowScale {
 public:
  explicit WindowScale(double largest) : exponent_(largest > 0 ? std::ilogb(largest) : 0) {
    high_ = std::ldexp(1.0, -exponent_ / 2);
    low_ = std::ldexp(1.0, -exponent_ - (-exponent_ / 2));
  }
  double down(double a) const { return a * high_ * low_; }
  double up(double y) const { return std::ldexp(y, exponent_); }

 private:
  int exponent_;
  double high_, low_;
};

// The window's taps (kh in [kh_begin, kh_end), kw in [kw_begin, kw_end)) scaled by WindowScale:
// their sum and the sum of their squares, in row-major window order.
template <typename T, class Tap>
std::pair<double, double> scaled_window_sums(const T* in, int64_t kh_begin, int64_t kh_end, int64_t kw_begin,
                                             int64_t kw_end, Tap tap, const WindowScale& scale) {
  double sum = 0, sum_sq = 0;
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
      const double a = scale.down(in[tap(kh, kw)]);
      sum += a;
      sum_sq += a * a;
    }
  return {sum, sum_sq};
}

template <typename T, class Tap>
T window_largest(const T* in, int64_t kh_begin, int64_t kh_end, int64_t kw_begin, int64_t kw_end, Tap tap) {
  T largest = T(0);
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) largest = std::max(largest, in[tap(kh, kw)]);
  return largest;
}

}  // namespace detail

// Number of elements that are negative, NaN or infinite (stochastic pooling refuses them).
template <typename T>
int64_t count_invalid_stochastic_inputs(const T* input, int64_t count) {
  int64_t invalid = 0;
#pragma omp simd reduction(+ : invalid)
  for (int64_t i = 0; i < count; ++i) invalid += !(input[i] >= T(0) && input[i] <= std::numeric_limits<T>::max());
  return invalid;
}

// indices (training only, may be null): flat index within the plane of the sampled tap.
template <typename T>
void stochastic_pool2d_forward(const T* input, T* output, int64_t* indices, const StochasticPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  assert(g.h.padding == 0 && g.w.padding == 0);
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t OH = H.output, OW = W.output;
  parallel_for_vectorized(g.planes * OH, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* in = input + (r / OH) * g.input_plane();
      const int64_t oh = r % OH;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t out_index = r * OW + ow;
        const int64_t kh_begin = H.first_tap(oh), kh_end = H.end_tap(oh);
        const int64_t kw_begin = W.first_tap(ow), kw_end = W.end_tap(ow);
        auto tap = [&](int64_t kh, int64_t kw) {
          return (H.start(oh) + kh * H.dilation) * W.input + W.start(ow) + kw * W.dilation;
        };
        const detail::WindowScale scale(detail::window_largest(in, kh_begin, kh_end, kw_begin, kw_end, tap));
        const auto [sum, sum_sq] = detail::scaled_window_sums(in, kh_begin, kh_end, kw_begin, kw_end, tap, scale);
        if (!p.training) {
          output[out_index] = sum > 0 ? static_cast<T>(scale.up(sum_sq / sum)) : T(0);
          continue;
        }
        const double target = stochastic_pool_uniform(p.seed, static_cast<uint64_t>(out_index)) * sum;
        int64_t chosen = tap(kh_begin, kw_begin), last_positive = -1;
        double cumulative = 0;
        bool found = sum <= 0;
        for (int64_t kh = kh_begin; kh < kh_end && !found; ++kh)
          for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
            const int64_t t = tap(kh, kw);
            if (in[t] <= T(0)) continue;
            last_positive = t;
            cumulative += scale.down(in[t]);
            if (cumulative > target) {
              chosen = t;
              found = true;
              break;
            }
          }
        // Rounding can leave the running sum at or below the target after the last tap.
        if (!found) chosen = last_positive;
        output[out_index] = in[chosen];
        if (indices) indices[out_index] = chosen;
      }
    }
  });
}

// Evaluation-mode gradient: d/da_i [sum(a^2)/sum(a)] = (2 a_i - y) / sum(a), taken as 0 for an
// all-zero window. grad_input is overwritten. (In training mode use pool2d_backward_by_indices.)
template <typename T>
void stochastic_pool2d_backward_eval(const T* grad_output, const T* input, T* grad_input,
                                     const StochasticPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  detail::for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T*) {
    const T* in = input + plane * g.input_plane();
    const T* go = grad_output + plane * g.output_plane();
    T* gi = grad_input + plane * g.input_plane();
    for (int64_t i = r0 * W.input; i < r1 * W.input; ++i) gi[i] = T(0);
    const int64_t oh_end = H.end_output_touching(r1);
    for (int64_t oh = H.first_output_touching(r0); oh < oh_end; ++oh) {
      const int64_t kh_begin = std::max(H.first_tap(oh), ceil_div(r0 - H.start(oh), H.dilation));
      const int64_t kh_end = std::min(H.end_tap(oh), ceil_div(r1 - H.start(oh), H.dilation));
      for (int64_t ow = 0; ow < W.output; ++ow) {
        const int64_t kw_begin = W.first_tap(ow), kw_end = W.end_tap(ow);
        auto tap = [&](int64_t kh, int64_t kw) {
          return (H.start(oh) + kh * H.dilation) * W.input + W.start(ow) + kw * W.dilation;
        };
        const int64_t window_kh_begin = H.first_tap(oh), window_kh_end = H.end_tap(oh);
        const detail::WindowScale scale(
            detail::window_largest(in, window_kh_begin, window_kh_end, kw_begin, kw_end, tap));
        const auto [sum, sum_sq] =
            detail::scaled_window_sums(in, window_kh_begin, window_kh_end, kw_begin, kw_end, tap, scale);
        if (!(sum > 0)) continue;
        // (2 a_i - y) / sum(a) is the same ratio in scaled units.
        const double y = sum_sq / sum, factor = go[oh * W.output + ow] / sum;
        for (int64_t kh = kh_begin; kh < kh_end; ++kh)
          for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
            const int64_t t = tap(kh, kw);
            gi[t] += static_cast<T>((2.0 * scale.down(in[t]) - y) * factor);
          }
      }
    }
  });
}

}  // namespace convpool
