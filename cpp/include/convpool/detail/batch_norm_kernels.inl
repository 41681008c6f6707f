// The kernels of batch_norm.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

inline constexpr int64_t kBatchNormPartials = 32;
// Terms added in T before a partial sum joins the double total: at most 64 per partial sum, so the
// vector loops run at T's width and float32 sums keep about 1e-6 relative accuracy.
inline constexpr int64_t kBatchNormChunk = 64 * kBatchNormPartials;

// The total of the 32 running sums: folded in T to 8 (j + 16, then j + 8: whole-vector additions),
// then those 8 added in order in double. A fixed order, without a chain of 32 dependent additions,
// which would cost more than a small plane's own sums.
template <typename T>
double fold_sum(T (&partial)[kBatchNormPartials]) {
  for (int64_t width = kBatchNormPartials / 2; width >= 8; width /= 2)
    for (int64_t j = 0; j < width; ++j) partial[j] += partial[j + width];
  double total = 0;
  for (int64_t j = 0; j < 8; ++j) total += partial[j];
  return total;
}

// The sums of each term(q, A{}) (computed and returned in A) over q in [0, count): term q goes to
// running sum q % 32 in A, and every chunk of 2048 terms adds its 32 sums (fold_sum) to a double
// total. The order is fixed by count alone.
template <typename A, class... Terms>
std::array<double, sizeof...(Terms)> ordered_sums(int64_t count, Terms... terms) {
  constexpr size_t kTerms = sizeof...(Terms);
  std::array<double, kTerms> total{};
  for (int64_t start = 0; start < count; start += kBatchNormChunk) {
    const int64_t length = std::min(kBatchNormChunk, count - start);
    const int64_t whole = length / kBatchNormPartials * kBatchNormPartials;
    A partial[kTerms][kBatchNormPartials] = {};
    for (int64_t q = 0; q < whole; q += kBatchNormPartials) {
#pragma omp simd
      for (int64_t j = 0; j < kBatchNormPartials; ++j) {
        size_t t = 0;
        ((partial[t++][j] += terms(start + q + j, A{})), ...);
      }
    }
    for (int64_t q = whole; q < length; ++q) {
      size_t t = 0;
      ((partial[t++][q - whole] += terms(start + q, A{})), ...);
    }
    for (size_t t = 0; t < kTerms; ++t) total[t] += fold_sum(partial[t]);
  }
  return total;
}

// ordered_sums in T, at T's vector width. float32 partial sums (and squares) overflow where
// float64 ones do not, for values beyond about 1e19 (squares) or 1e36 (sums of 64): a float32
// plane whose sums are not all finite is summed again with double terms, so that a result is
// inf or NaN only where the double sums of the same values are. Whether a plane is summed again
// depends on its values alone, never on the number of threads.
template <typename T, class... Terms>
std::array<double, sizeof...(Terms)> plane_sums(int64_t count, Terms... terms) {
  std::array<double, sizeof...(Terms)> sums = ordered_sums<T>(count, terms...);
  if constexpr (std::is_same_v<T, float>) {
    if (!std::all_of(sums.begin(), sums.end(), [](double v) { return std::isfinite(v); }))
      sums = ordered_sums<double>(count, terms...);
  }
  return sums;
}

// Channels last, the planes of one image are interleaved: pixel q of channel c at q * channels + c.
// Their sums are taken a block of up to kBatchNormLanes channels at a time, vectorized over the
// channels: each pixel's block is a few whole cache lines, which the hardware prefetchers follow
// from pixel to pixel, and the block's running sums stay in the level-1 cache.
inline constexpr int64_t kBatchNormLanes = 64;
using LaneSums = std::array<double, kBatchNormLanes>;

// ordered_sums for `lanes` (<= kBatchNormLanes) planes at once, term(q, lane, A{}) the lane's
// term q: each lane's terms go to its running sums and its double total exactly as ordered_sums
// adds a plane's, so that a channels-last plane's sums equal its NCHW sums bit for bit.
// kLanes > 0 fixes `lanes` at compile time, for the vector loop without a remainder.
template <typename A, int64_t kLanes, class... Terms>
std::array<LaneSums, sizeof...(Terms)> ordered_lane_sums(int64_t count, int64_t any_lanes, Terms... terms) {
  const int64_t lanes = kLanes > 0 ? kLanes : any_lanes;
  constexpr size_t kTerms = sizeof...(Terms);
  std::array<LaneSums, kTerms> total{};
  for (int64_t start = 0; start < count; start += kBatchNormChunk) {
    const int64_t length = std::min(kBatchNormChunk, count - start);
    // Running sums past the chunk's length would stay 0, and adding 0 changes no sum (a -0 total
    // becomes +0 either way, in the double total's first addition): they are left out.
    const int64_t used = std::min(length, kBatchNormPartials);
    A partial[kTerms][kBatchNormPartials][kBatchNormLanes];
    for (size_t t = 0; t < kTerms; ++t)
      for (int64_t j = 0; j < used; ++j) std::fill_n(partial[t][j], lanes, A(0));
    for (int64_t q = 0; q < length; ++q) {
      const int64_t j = q % kBatchNormPartials;
#pragma omp simd
      for (int64_t lane = 0; lane < lanes; ++lane) {
        size_t t = 0;
        ((partial[t++][j][lane] += terms(start + q, lane, A{})), ...);
      }
    }
    for (size_t t = 0; t < kTerms; ++t) {  // fold_sum, lane by lane
      for (int64_t width = kBatchNormPartials / 2; width >= 8; width /= 2)
        for (int64_t j = 0; j + width < used; ++j)
#pragma omp simd
          for (int64_t lane = 0; lane < lanes; ++lane) partial[t][j][lane] += partial[t][j + width][lane];
      double chunk[kBatchNormLanes] = {};
      for (int64_t j = 0; j < std::min<int64_t>(8, used); ++j)
#pragma omp simd
        for (int64_t lane = 0; lane < lanes; ++lane) chunk[lane] += partial[t][j][lane];
      for (int64_t lane = 0; lane < lanes; ++lane) total[t][lane] += chunk[lane];
    }
  }
  return total;
}

// plane_sums for `lanes` planes at once: a float32 lane whose sums are not all finite takes the
// sums of double terms, as plane_sums gives that plane.
template <typename T, class... Terms>
std::array<LaneSums, sizeof...(Terms)> lane_sums(int64_t count, int64_t lanes, Terms... terms) {
  auto sums = lanes == 64   ? ordered_lane_sums<T, 64>(count, lanes, terms...)
              : lanes == 32 ? ordered_lane_sums<T, 32>(count, lanes, terms...)
              : lanes == 16 ? ordered_lane_sums<T, 16>(count, lanes, terms...)
                            : ordered_lane_sums<T, 0>(count, lanes, terms...);
  if constexpr (std::is_same_v<T, float>) {
    const auto finite = [&sums](int64_t lane) {
      return std::all_of(sums.begin(), sums.end(), [lane](const LaneSums& s) { return std::isfinite(s[lane]); });
    };
    bool all_finite = true;
    for (int64_t lane = 0; lane < lanes; ++lane) all_finite = all_finite && finite(lane);
    if (!all_finite) {
      const auto wide = ordered_lane_sums<double, 0>(count, lanes, terms...);
      for (int64_t lane = 0; lane < lanes; ++lane)
        if (!finite(lane))
          for (size_t t = 0; t < sums.size(); ++t) sums[t][lane] = wide[t][lane];
    }
  }
  return sums;
}

// Calls visit(n, first_channel, lanes) for every block of kBatchNormLanes channels of every image,
// in parallel.
template <class Visit>
void for_each_channel_block(const BatchNorm2dParams& p, Visit visit) {
  const int64_t blocks = (p.channels + kBatchNormLanes - 1) / kBatchNormLanes;
  parallel_for(p.batch * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t first = item % blocks * kBatchNormLanes;
      visit(item / blocks, first, std::min(kBatchNormLanes, p.channels - first));
    }
  });
}

// The moments of one plane (image n, channel c) about a reference r, its mean rounded to T:
// sum(x - r) and sum((x - r)^2), from which any mean's squared deviations follow exactly.
struct PlaneMoments {
  double reference, deviations, squares;
};

// Every plane's moments, in parallel: two passes over a plane, the second from the cache. A
// plane whose sum is not finite (an infinity or NaN among its values) has no mean to centre on:
// its moments are taken about 0, so that an infinite mean stays infinite instead of inf - inf.
template <typename T>
void plane_moments(const T* x, const BatchNorm2dParams& p, PlaneMoments* moments) {
  parallel_for(p.batch * p.channels, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* plane = x + r * p.plane;
      const double sum = plane_sums<T>(p.plane, [plane](int64_t q, auto a) { return decltype(a)(plane[q]); })[0];
      const T reference = std::isfinite(sum) ? static_cast<T>(sum / static_cast<double>(p.plane)) : T(0);
      const auto [deviations, squares] = plane_sums<T>(
          p.plane, [plane, reference](int64_t q, auto a) { return decltype(a)(plane[q]) - decltype(a)(reference); },
          [plane, reference](int64_t q, auto a) {
            const auto deviation = decltype(a)(plane[q]) - decltype(a)(reference);
            return deviation * deviation;
          });
      moments[r] = {reference, deviations, squares};
    }
  });
}

// plane_moments of channels-last x: the same moments, a block of channels of one image at a time.
template <typename T>
void channels_last_moments(const T* x, const BatchNorm2dParams& p, PlaneMoments* moments) {
  const int64_t stride = p.channels;
  for_each_channel_block(p, [&](int64_t n, int64_t first, int64_t lanes) {
    const T* block = x + n * p.plane * stride + first;
    const LaneSums sum = lane_sums<T>(p.plane, lanes, [block, stride](int64_t q, int64_t lane, auto a) {
      return decltype(a)(block[q * stride + lane]);
    })[0];
    T reference[kBatchNormLanes] = {};
    for (int64_t lane = 0; lane < lanes; ++lane)
      reference[lane] = std::isfinite(sum[lane]) ? static_cast<T>(sum[lane] / static_cast<double>(p.plane)) : T(0);
    const auto deviation = [block, stride, &reference](int64_t q, int64_t lane, auto a) {
      using A = decltype(a);
      return A(block[q * stride + lane]) - A(reference[lane]);
    };
    const auto [deviations, squares] =
        lane_sums<T>(p.plane, lanes, deviation, [&deviation](int64_t q, int64_t lane, auto a) {
          const auto d = deviation(q, lane, a);
          return d * d;
        });
    for (int64_t lane = 0; lane < lanes; ++lane)
      moments[n * p.channels + first + lane] = {static_cast<double>(reference[lane]), deviations[lane], squares[lane]};
  });
}

template <typename T>
void batch_norm2d_forward(VectorIsa, const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, T* y,
                          T* save_mean, T* save_invstd, const BatchNorm2dParams& p) {
  const int64_t planes = p.batch * p.channels;
  std::vector<PlaneMoments> moments(p.training ? planes : 0);
  if (p.training) {
    if (p.layout == Layout::nhwc)
      channels_last_moments(x, p, moments.data());
    else
      plane_moments(x, p, moments.data());
  }
  std::vector<T> alpha(p.channels), beta(p.channels);
  const double count = static_cast<double>(p.per_channel()), plane = static_cast<double>(p.plane);
  for (int64_t c = 0; c < p.channels; ++c) {
    double mean, invstd;
    if (p.training) {
      // Over the planes in image order: the total, then the squared deviations from the channel's
      // mean, sum((x - mean)^2) = squares - 2 (mean - r) deviations + n (mean - r)^2 per plane.
      double total = 0, deviations = 0;
      for (int64_t n = 0; n < p.batch; ++n) {
        const PlaneMoments& m = moments[n * p.channels + c];
        total += plane * m.reference + m.deviations;
      }
      mean = total / count;
      for (int64_t n = 0; n < p.batch; ++n) {
        const PlaneMoments& m = moments[n * p.channels + c];
        const double shift = mean - m.reference;
        deviations += m.squares - 2.0 * shift * m.deviations + plane * shift * shift;
      }
      invstd = 1.0 / std::sqrt(deviations / count + p.eps);
      if (running_mean) running_mean[c] = static_cast<T>((1.0 - p.momentum) * running_mean[c] + p.momentum * mean);
      if (running_var)
        running_var[c] = static_cast<T>((1.0 - p.momentum) * running_var[c] + p.momentum * deviations / (count - 1.0));
    } else {
      mean = running_mean[c];
      invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + p.eps);
    }
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    const double scale = (weight ? weight[c] : 1.0) * invstd;
    alpha[c] = static_cast<T>(scale);
    beta[c] = static_cast<T>((bias ? bias[c] : 0.0) - mean * scale);
  }
  const bool relu = p.activation == Activation::relu;
  if (p.layout == Layout::nhwc) {
    parallel_for(p.batch * p.plane, [&](int64_t begin, int64_t end) {
      for (int64_t pixel = begin; pixel < end; ++pixel) {
        const T* in = x + pixel * p.channels;
        T* out = y + pixel * p.channels;
#pragma omp simd
        for (int64_t c = 0; c < p.channels; ++c) {
          const T value = in[c] * alpha[c] + beta[c];
          out[c] = relu ? relu_of(value) : value;
        }
      }
    });
    return;
  }
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T a = alpha[r % p.channels], b = beta[r % p.channels];
      const T* in = x + r * p.plane;
      T* out = y + r * p.plane;
#pragma omp simd
      for (int64_t q = 0; q < p.plane; ++q) {
        const T value = in[q] * a + b;
        out[q] = relu ? relu_of(value) : value;
      }
    }
  });
}

// The backward with the ReLU's mask (kRelu: no gradient where y <= 0) or without it.
template <bool kRelu, typename T>
void batch_norm2d_backward_masked(const T* grad_output, const T* x, const T* y, const T* weight, const T* save_mean,
                                  const T* save_invstd, T* grad_input, T* grad_weight, T* grad_bias,
                                  const BatchNorm2dParams& p) {
  const int64_t planes = p.batch * p.channels;
  // The gradient reaching the normalization.
  const auto grad_at = [grad_output, y](int64_t i) {
    if constexpr (!kRelu) return grad_output[i];
    return relu_gradient(grad_output[i], y[i]);
  };
  const bool needs_sums = grad_weight || grad_bias || (grad_input && p.training);
  std::vector<double> sums(needs_sums ? planes : 0), dots(sums.size());  // of grad, and of grad * (x - mean)
  if (needs_sums && p.layout == Layout::nhwc) {
    const int64_t stride = p.channels;
    for_each_channel_block(p, [&](int64_t n, int64_t first, int64_t lanes) {
      const int64_t block = n * p.plane * stride + first;
      const T* mean = save_mean + first;
      const auto [sum, dot] = lane_sums<T>(
          p.plane, lanes,
          [&grad_at, block, stride](int64_t q, int64_t lane, auto a) {
            return decltype(a)(grad_at(block + q * stride + lane));
          },
          [&grad_at, x, block, stride, mean](int64_t q, int64_t lane, auto a) {
            using A = decltype(a);
            const int64_t i = block + q * stride + lane;
            return A(grad_at(i)) * (A(x[i]) - A(mean[lane]));
          });
      for (int64_t lane = 0; lane < lanes; ++lane) {
        sums[n * p.channels + first + lane] = sum[lane];
        dots[n * p.channels + first + lane] = dot[lane];
      }
    });
  } else if (needs_sums) {
    parallel_for(planes, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t first = r * p.plane;
        const T mean = save_mean[r % p.channels];
        const auto [sum, dot] = plane_sums<T>(
            p.plane, [&grad_at, first](int64_t q, auto a) { return decltype(a)(grad_at(first + q)); },
            [&grad_at, x, first, mean](int64_t q, auto a) {
              using A = decltype(a);
              return A(grad_at(first + q)) * (A(x[first + q]) - A(mean));
            });
        sums[r] = sum;
        dots[r] = dot;
      }
    });
  }
  // grad_input = a * grad + b * x + shift. Training: w * invstd * (grad - sum / M - (x - mean)
  // * invstd^2 * dot / M), the batch statistics depending on x; evaluation: w * invstd * grad.
  std::vector<T> a(p.channels), b(p.channels), shift(p.channels);
  const double count = static_cast<double>(p.per_channel());
  for (int64_t c = 0; c < p.channels; ++c) {
    double sum = 0, dot = 0;
    for (int64_t n = 0; n < (needs_sums ? p.batch : 0); ++n) {
      sum += sums[n * p.channels + c];
      dot += dots[n * p.channels + c];
    }
    const double invstd = save_invstd[c], scale = (weight ? weight[c] : 1.0) * invstd;
    if (grad_bias) grad_bias[c] = static_cast<T>(sum);
    if (grad_weight) grad_weight[c] = static_cast<T>(dot * invstd);
    const double k = p.training ? dot / count * invstd * invstd : 0.0;
    a[c] = static_cast<T>(scale);
    b[c] = static_cast<T>(-scale * k);
    shift[c] = static_cast<T>(p.training ? scale * (save_mean[c] * k - sum / count) : 0.0);
  }
  if (!grad_input) return;
  if (p.layout == Layout::nhwc) {
    parallel_for(p.batch * p.plane, [&](int64_t begin, int64_t end) {
      for (int64_t pixel = begin; pixel < end; ++pixel) {
        const int64_t first = pixel * p.channels;
#pragma omp simd
        for (int64_t c = 0; c < p.channels; ++c)
          grad_input[first + c] = grad_at(first + c) * a[c] + x[first + c] * b[c] + shift[c];
      }
    });
    return;
  }
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % p.channels, first = r * p.plane;
      const T ac = a[c], bc = b[c], shift_c = shift[c];
#pragma omp simd
      for (int64_t i = first; i < first + p.plane; ++i) grad_input[i] = grad_at(i) * ac + x[i] * bc + shift_c;
    }
  });
}

template <typename T>
void batch_norm2d_backward(VectorIsa, const T* grad_output, const T* x, const T* y, const T* weight, const T* save_mean,
                           const T* save_invstd, T* grad_input, T* grad_weight, T* grad_bias,
                           const BatchNorm2dParams& p) {
  if (p.activation == Activation::relu)
    batch_norm2d_backward_masked<true>(grad_output, x, y, weight, save_mean, save_invstd, grad_input, grad_weight,
                                       grad_bias, p);
  else
    batch_norm2d_backward_masked<false>(grad_output, x, y, weight, save_mean, save_invstd, grad_input, grad_weight,
                                        grad_bias, p);
}
