#pragma once
// 2-D stochastic pooling (Zeiler & Fergus, 2013), no padding, for non-negative finite inputs.
//
// Training: each window picks one tap with probability a_i / sum(a); the output is that tap's
// value and its index is recorded, so the backward routes the gradient like max pooling. An
// all-zero window outputs 0 and records its first tap. The draw for output element e (counted
// over the whole output tensor) is a pure function of (seed, e): the same seed gives the same
// samples whatever the number of threads.
// Evaluation: the probability-weighted average sum(a_i^2) / sum(a_i) (0 for an all-zero window).
// Sums are accumulated in double, in row-major window order; where float64 squares would overflow
// or underflow, over the taps scaled by the power of two that brings the window's largest to
// [1, 2) (exact, so the results do not depend on whether the scaling was needed).
//
// Compiled once, not per instruction set (isa.hpp): a draw walks its window's running sum until
// the sum passes it, a loop whose length depends on the data, and the per-element generator and
// the double sums dominate the rest.

#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>

#include "parallel.hpp"
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

// Multiplication by 2^-e, e = the exponent of a window's largest tap clamped to [-1000, 1000]:
// one normal factor (exact), which brings the largest to [1, 2) or, for the extreme exponents,
// far enough from both ends of the range that no square overflows or underflows. up(y)
// multiplies by 2^e. The default is e = 0.
class WindowScale {
 public:
  WindowScale() = default;
  explicit WindowScale(double largest)
      : exponent_(largest > 0 ? std::clamp(std::ilogb(largest), -1000, 1000) : 0),
        factor_(std::ldexp(1.0, -exponent_)) {}
  double down(double a) const { return a * factor_; }
  bool identity() const { return exponent_ == 0; }
  double up(double y) const { return std::ldexp(y, exponent_); }

 private:
  int exponent_ = 0;
  double factor_ = 1;
};

// A window's sum and sum of squares (row-major window order) in the units of `scale`.
struct WindowSums {
  double sum = 0, sum_sq = 0;
  WindowScale scale;
};

// The taps kh in [kh_begin, kh_end), kw in [kw_begin, kw_end). float64 squares overflow beyond
// 1e154 and lose their precision below 1e-154 (squares of float32 inputs never do): only then are
// the taps scaled, exactly, and summed again.
template <typename T, class Tap>
WindowSums window_sums(const T* in, int64_t kh_begin, int64_t kh_end, int64_t kw_begin, int64_t kw_end, Tap tap) {
  WindowSums window;
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
      const double a = in[tap(kh, kw)];
      window.sum += a;
      window.sum_sq += a * a;
    }
  const bool overflow = !(window.sum_sq <= std::numeric_limits<double>::max());
  const bool underflow = window.sum > 0 && window.sum_sq < 0x1p-800;
  if (!overflow && !underflow) return window;
  T largest = T(0);
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) largest = std::max(largest, in[tap(kh, kw)]);
  window = WindowSums{0, 0, WindowScale(largest)};
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
      const double a = window.scale.down(in[tap(kh, kw)]);
      window.sum += a;
      window.sum_sq += a * a;
    }
  return window;
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
  parallel_for(g.planes * OH, [&](int64_t begin, int64_t end) {
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
        const detail::WindowSums window = detail::window_sums(in, kh_begin, kh_end, kw_begin, kw_end, tap);
        if (!p.training) {
          output[out_index] = window.sum > 0 ? static_cast<T>(window.scale.up(window.sum_sq / window.sum)) : T(0);
          continue;
        }
        const double target = stochastic_pool_uniform(p.seed, static_cast<uint64_t>(out_index)) * window.sum;
        int64_t chosen = tap(kh_begin, kw_begin), last_positive = -1;
        bool found = window.sum <= 0;
        // The running sum in the units of window.sum; unscaled windows skip the multiplication,
        // which is on the scan's critical path.
        const auto scan = [&](auto in_sum_units) {
          double cumulative = 0;
          for (int64_t kh = kh_begin; kh < kh_end && !found; ++kh)
            for (int64_t kw = kw_begin; kw < kw_end; ++kw) {
              const int64_t t = tap(kh, kw);
              if (in[t] <= T(0)) continue;
              last_positive = t;
              cumulative += in_sum_units(in[t]);
              if (cumulative > target) {
                chosen = t;
                found = true;
                break;
              }
            }
        };
        if (window.scale.identity())
          scan([](T a) { return static_cast<double>(a); });
        else
          scan([&](T a) { return window.scale.down(a); });
        // Rounding can leave the running sum at or below the target after the last tap. When the
        // input changed under the call (another thread writing it after the binding's check),
        // the scan may find no positive tap at all: the first tap stays chosen, inside the window.
        if (!found && last_positive >= 0) chosen = last_positive;
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
        const auto [sum, sum_sq, scale] =
            detail::window_sums(in, window_kh_begin, window_kh_end, kw_begin, kw_end, tap);
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
