// The headers used directly from C++: pinned semantics, a naive reference on random
// configurations, and thread-count independence. Built under ASan/UBSan in CI.
#include <gtest/gtest.h>
#include <convpool/convpool.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "layouts.hpp"

using namespace convpool;

namespace {

struct Config {
  int64_t planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil_mode;

  Pool2dGeometry geometry() const {
    return Pool2dGeometry{planes, make_window_dim(h, kh, sh, ph, dh, ceil_mode),
                          make_window_dim(w, kw, sw, pw, dw, ceil_mode)};
  }
};

std::vector<Config> random_configs(unsigned seed, int count, bool padding, bool dilation) {
  std::mt19937 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::vector<Config> configs;
  while (static_cast<int>(configs.size()) < count) {
    Config c{uniform(1, 3),
             uniform(1, 13),
             uniform(1, 13),
             uniform(1, 7),
             uniform(1, 7),
             uniform(1, 3),
             uniform(1, 3),
             0,
             0,
             dilation ? uniform(1, 2) : 1,
             dilation ? uniform(1, 2) : 1,
             uniform(0, 1) == 1};
    if (padding) {
      c.ph = uniform(0, c.kh / 2);
      c.pw = uniform(0, c.kw / 2);
    }
    const auto g = c.geometry();
    if (g.h.output >= 1 && g.w.output >= 1) configs.push_back(c);
  }
  return configs;
}

// The naive window scan of the README's max pooling rules.
void reference_max_pool(const std::vector<float>& x, const Pool2dGeometry& g, bool last, std::vector<float>& out,
                        std::vector<int64_t>& idx) {
  out.assign(g.planes * g.output_plane(), 0);
  idx.assign(out.size(), 0);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oh = 0; oh < g.h.output; ++oh)
      for (int64_t ow = 0; ow < g.w.output; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = -1;
        for (int64_t kh = 0; kh < g.h.kernel; ++kh)
          for (int64_t kw = 0; kw < g.w.kernel; ++kw) {
            const int64_t ih = g.h.start(oh) + kh * g.h.dilation, iw = g.w.start(ow) + kw * g.w.dilation;
            if (ih < 0 || ih >= g.h.input || iw < 0 || iw >= g.w.input) continue;
            const float v = x[p * g.input_plane() + ih * g.w.input + iw];
            if (best_index < 0 || (last ? v >= best : v > best) || std::isnan(v)) {
              best = v;
              best_index = ih * g.w.input + iw;
            }
          }
        out[p * g.output_plane() + oh * g.w.output + ow] = best;
        idx[p * g.output_plane() + oh * g.w.output + ow] = best_index;
      }
}

class ThreadCount : public ::testing::Test {
 protected:
  void TearDown() override { set_num_threads(saved_); }
  int saved_ = get_num_threads();
};

}  // namespace

TEST(MaxPool, PinnedTieRules) {
  const std::vector<double> x{0, 5, 5, 0};
  MaxPool2dParams p;
  p.geometry = Pool2dGeometry{1, make_window_dim(1, 1, 1, 0, 1, false), make_window_dim(4, 2, 1, 0, 1, false)};
  const std::vector<double> ones(3, 1.0);
  const std::vector<std::vector<double>> expected{{0, 2, 1, 0}, {0, 1, 2, 0}, {0, 1.5, 1.5, 0}};
  const TieBreak rules[] = {TieBreak::first, TieBreak::last, TieBreak::split};
  for (int r = 0; r < 3; ++r) {
    p.tie_break = rules[r];
    std::vector<double> out(3), grad(4);
    std::vector<int64_t> idx(3);
    max_pool2d_forward(x.data(), out.data(), idx.data(), p);
    EXPECT_EQ(max_pool2d_backward(ones.data(), x.data(), idx.data(), grad.data(), p), 0);
    EXPECT_EQ(grad, expected[r]);
  }
}

// Small integers tie often; every third configuration also holds NaN and infinities.
TEST(MaxPool, RandomConfigsMatchNaiveScan) {
  std::mt19937 rng(3);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  int config_number = 0;
  for (const Config& c : random_configs(1, 90, true, true)) {
    const auto g = c.geometry();
    std::vector<float> x(g.planes * g.input_plane());
    const bool with_specials = config_number++ % 3 == 0;
    for (auto& v : x) {
      const int draw = std::uniform_int_distribution<int>(-2, with_specials ? 5 : 2)(rng);
      v = draw <= 2 ? static_cast<float>(draw) : specials[draw - 3];
    }
    for (bool last : {false, true}) {
      MaxPool2dParams p{g, last ? TieBreak::last : TieBreak::first, NanPolicy::propagate};
      std::vector<float> out(g.planes * g.output_plane()), expected_out;
      std::vector<int64_t> idx(out.size()), expected_idx;
      max_pool2d_forward(x.data(), out.data(), idx.data(), p);
      reference_max_pool(x, g, last, expected_out, expected_idx);
      auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
      };
      EXPECT_TRUE(same_bits(out, expected_out));
      EXPECT_EQ(idx, expected_idx);
      std::vector<float> values_only(out.size());
      max_pool2d_forward(x.data(), values_only.data(), nullptr, p);
      EXPECT_TRUE(same_bits(values_only, expected_out));
    }
  }
}

// Channels last: the same configurations on images of 70 channels (a whole block of 64 and a
// remainder), every tie rule and NaN policy, against the NCHW results transposed, bit for bit.
TEST(MaxPool, ChannelsLastEqualsTheNchwResultsTransposed) {
  std::mt19937 rng(4);
  const int64_t channels = 70;
  for (const Config& c : random_configs(2, 12, true, true)) {
    Pool2dGeometry g = c.geometry();
    g.planes *= channels;
    std::vector<float> x(g.planes * g.input_plane()), grad(g.planes * g.output_plane());
    for (auto& v : x) {
      const int draw = std::uniform_int_distribution<int>(-2, 3)(rng);
      v = draw <= 2 ? static_cast<float>(draw) : std::numeric_limits<float>::quiet_NaN();
    }
    for (auto& v : grad) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    const auto transposed = [](const auto& nchw, int64_t plane) { return to_channels_last(nchw, channels, plane); };
    Pool2dGeometry g_nhwc = g;
    g_nhwc.layout = Layout::nhwc;
    g_nhwc.channels = channels;
    const auto x_nhwc = transposed(x, g.input_plane()), grad_nhwc = transposed(grad, g.output_plane());
    for (TieBreak tie_break : {TieBreak::first, TieBreak::last, TieBreak::split})
      for (NanPolicy nan : {NanPolicy::propagate, NanPolicy::ignore}) {
        std::vector<float> out(grad.size()), out_nhwc(grad.size()), gx(x.size()), gx_nhwc(x.size());
        std::vector<int64_t> idx(grad.size()), idx_nhwc(grad.size());
        max_pool2d_forward(x.data(), out.data(), idx.data(), MaxPool2dParams{g, tie_break, nan});
        max_pool2d_forward(x_nhwc.data(), out_nhwc.data(), idx_nhwc.data(), MaxPool2dParams{g_nhwc, tie_break, nan});
        max_pool2d_backward(grad.data(), x.data(), idx.data(), gx.data(), MaxPool2dParams{g, tie_break, nan});
        max_pool2d_backward(grad_nhwc.data(), x_nhwc.data(), idx_nhwc.data(), gx_nhwc.data(),
                            MaxPool2dParams{g_nhwc, tie_break, nan});
        const auto out_t = transposed(out, g.output_plane()), gx_t = transposed(gx, g.input_plane());
        EXPECT_EQ(std::memcmp(out_t.data(), out_nhwc.data(), out.size() * sizeof(float)), 0);
        EXPECT_EQ(transposed(idx, g.output_plane()), idx_nhwc);
        EXPECT_EQ(std::memcmp(gx_t.data(), gx_nhwc.data(), gx.size() * sizeof(float)), 0);
      }
  }
}

TEST(MaxPool, OutOfPlaneIndicesAreCountedNotWritten) {
  MaxPool2dParams p;
  p.geometry = Pool2dGeometry{1, make_window_dim(2, 2, 2, 0, 1, false), make_window_dim(2, 2, 2, 0, 1, false)};
  const float grad_output = 1;
  const int64_t bad[] = {4, -2, std::numeric_limits<int64_t>::max()};
  for (int64_t index : bad) {
    std::vector<float> grad(4, 7.0f);
    EXPECT_EQ(max_pool2d_backward(&grad_output, static_cast<const float*>(nullptr), &index, grad.data(), p), 1);
    EXPECT_EQ(grad, std::vector<float>(4, 0.0f));
  }
}

TEST(MaxUnpool, PutsThePooledValuesBackAndCountsBadIndices) {
  // A 2x2 pooling of a 4x4 plane, unpooled: the maxima return to their places, zeros elsewhere,
  // and the backward gathers the gradient from the same places.
  MaxPool2dParams pool;
  pool.geometry = Pool2dGeometry{1, make_window_dim(4, 2, 2, 0, 1, false), make_window_dim(4, 2, 2, 0, 1, false)};
  std::vector<float> x(16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 16);
  std::vector<float> pooled(4), unpooled(16), grad(4);
  std::vector<int64_t> indices(4);
  max_pool2d_forward(x.data(), pooled.data(), indices.data(), pool);
  const MaxUnpool2dParams p{1, 4, 4, 4};
  EXPECT_EQ(max_unpool2d_forward(pooled.data(), indices.data(), unpooled.data(), p), 0);
  for (size_t i = 0; i < x.size(); ++i) {
    const bool picked = std::find(indices.begin(), indices.end(), static_cast<int64_t>(i)) != indices.end();
    EXPECT_EQ(unpooled[i], picked ? x[i] : 0.0f) << i;
  }
  EXPECT_EQ(max_unpool2d_backward(x.data(), indices.data(), grad.data(), p), 0);
  EXPECT_EQ(grad, pooled);
  std::vector<int64_t> bad = {-1, 16, -2, 3};
  EXPECT_EQ(max_unpool2d_forward(pooled.data(), bad.data(), unpooled.data(), p), 2);
  EXPECT_EQ(max_unpool2d_backward(x.data(), bad.data(), grad.data(), p), 2);
  EXPECT_EQ(grad, (std::vector<float>{0, 0, 0, x[3]}));
}

TEST(AdaptiveMaxPool, OverlappingWindowsFollowTheTieRule) {
  // Three inputs to two outputs: windows [0, 2) and [1, 3) share the middle input.
  const float x[] = {0, 5, 5}, ones[] = {1, 1};
  const struct {
    TieBreak rule;
    std::vector<int64_t> indices;
    std::vector<float> grad;
  } cases[] = {{TieBreak::first, {1, 1}, {0, 2, 0}},
               {TieBreak::last, {1, 2}, {0, 1, 1}},
               {TieBreak::split, {1, 1}, {0, 1.5f, 0.5f}}};
  for (const auto& c : cases) {
    const AdaptiveMaxPool2dParams p{1, 1, 3, 1, 2, c.rule, NanPolicy::propagate};
    float y[2];
    int64_t indices[2];
    adaptive_max_pool2d_forward(x, y, indices, p);
    EXPECT_EQ(y[0], 5);
    EXPECT_EQ(y[1], 5);
    EXPECT_EQ(std::vector<int64_t>(indices, indices + 2), c.indices);
    std::vector<float> grad(3);
    EXPECT_EQ(adaptive_max_pool2d_backward(ones, x, indices, grad.data(), p), 0);
    EXPECT_EQ(grad, c.grad);
  }
}

TEST(FractionalMaxPool, PseudoRandomWindowsOverlapAndSumTheirGradients) {
  // 7 inputs to 3 outputs of 3 with sample 0.5: alpha = 2, starts 0, int(3) - int(1) = 2, and the
  // last at 7 - 3 = 4, so windows [0, 3), [2, 5) and [4, 7) share inputs 2 and 4.
  const float x[] = {1, 2, 9, 3, 9, 0, 4}, samples[] = {0.5f, 0.0f}, ones[] = {1, 1, 1};
  const FractionalMaxPool2dParams p{1, 1, 7, 1, 3, 1, 3};
  float y[3];
  int64_t indices[3];
  fractional_max_pool2d_forward(x, samples, y, indices, p);
  EXPECT_EQ(std::vector<float>(y, y + 3), (std::vector<float>{9, 9, 9}));
  EXPECT_EQ(std::vector<int64_t>(indices, indices + 3), (std::vector<int64_t>{2, 2, 4}));  // the first maximum
  std::vector<float> grad(7);
  EXPECT_EQ(fractional_max_pool2d_backward(ones, indices, grad.data(), p), 0);
  EXPECT_EQ(grad, (std::vector<float>{0, 0, 2, 0, 1, 0, 0}));
  const int64_t outside[] = {2, 7, -5};
  EXPECT_EQ(fractional_max_pool2d_backward(ones, outside, grad.data(), p), 2);
}

TEST(Pooling, WindowsFarWiderThanTheInputCostOnlyTheTapsTheyRead) {
  // A (1, 2^28) window padded by 2^27 on a 1-wide row: its column-first scratch would be 2^28
  // wide, so the direct row path runs, over the one tap inside the input.
  constexpr int64_t kWide = int64_t{1} << 28;
  const Pool2dGeometry g{1, make_window_dim(1, 1, 1, 0, 1, false),
                         make_window_dim(1, kWide, kWide, kWide / 2, 1, false)};
  ASSERT_EQ(g.w.output, 1);
  EXPECT_FALSE(g.column_first());
  EXPECT_EQ(g.w.end_used_tap() - g.w.first_used_tap(), 1);
  const double x = 3.5;
  double y = 0, grad = 0;
  int64_t index = -2;
  MaxPool2dParams max;
  max.geometry = g;
  max_pool2d_forward(&x, &y, &index, max);
  EXPECT_EQ(y, 3.5);
  EXPECT_EQ(index, 0);
  const double one = 1;
  max.tie_break = TieBreak::split;
  max_pool2d_backward(&one, &x, static_cast<const int64_t*>(nullptr), &grad, max);
  EXPECT_EQ(grad, 1.0);
  AvgPool2dParams avg;
  avg.geometry = g;
  avg.count_include_pad = false;
  avg_pool2d_forward(&x, &y, avg);
  EXPECT_EQ(y, 3.5);
  // Ordinary windows keep the column-first reductions.
  EXPECT_TRUE(
      (Pool2dGeometry{1, make_window_dim(7, 3, 2, 1, 1, false), make_window_dim(7, 3, 2, 1, 1, false)}.column_first()));
}

TEST(AvgPool, PyTorchDivisorsAtTheEdges) {
  // Width 4, kernel 2, padding 1: windows [-1,1) [1,3) [3,5).
  const std::vector<float> x{0, 1, 2, 3};
  AvgPool2dParams p;
  p.geometry = Pool2dGeometry{1, make_window_dim(1, 1, 1, 0, 1, false), make_window_dim(4, 2, 2, 1, 1, false)};
  std::vector<float> out(3);
  avg_pool2d_forward(x.data(), out.data(), p);
  EXPECT_EQ(out, (std::vector<float>{0, 1.5, 1.5}));
  p.count_include_pad = false;
  avg_pool2d_forward(x.data(), out.data(), p);
  EXPECT_EQ(out, (std::vector<float>{0, 1.5, 3}));
  p.divisor_override = 4;
  avg_pool2d_forward(x.data(), out.data(), p);
  EXPECT_EQ(out, (std::vector<float>{0, 0.75, 0.75}));
}

// README's summation order: windows of more than 4 taps sum each column top to bottom, then
// the column sums left to right; smaller ones sum in row-major order. Compared bit for bit.
TEST(AvgPool, RandomConfigsSumInTheDocumentedOrder) {
  std::mt19937 rng(4);
  for (const Config& c : random_configs(3, 60, true, false)) {
    const auto g = c.geometry();
    std::vector<float> x(g.planes * g.input_plane());
    for (auto& v : x) v = std::normal_distribution<float>()(rng);
    const AvgPool2dParams p{g, false, 0};
    std::vector<float> out(g.planes * g.output_plane());
    avg_pool2d_forward(x.data(), out.data(), p);
    for (int64_t plane = 0; plane < g.planes; ++plane)
      for (int64_t oh = 0; oh < g.h.output; ++oh)
        for (int64_t ow = 0; ow < g.w.output; ++ow) {
          auto tap = [&](int64_t kh, int64_t kw) {
            const int64_t ih = g.h.start(oh) + kh, iw = g.w.start(ow) + kw;
            const bool inside = ih >= 0 && ih < g.h.input && iw >= 0 && iw < g.w.input;
            return inside ? x[plane * g.input_plane() + ih * g.w.input + iw] : 0.0f;
          };
          float sum = 0.0f;
          if (g.h.kernel * g.w.kernel > 4) {
            for (int64_t kw = 0; kw < g.w.kernel; ++kw) {
              float column = 0.0f;
              for (int64_t kh = 0; kh < g.h.kernel; ++kh) column += tap(kh, kw);
              sum += column;
            }
          } else {
            for (int64_t kh = 0; kh < g.h.kernel; ++kh)
              for (int64_t kw = 0; kw < g.w.kernel; ++kw) sum += tap(kh, kw);
          }
          const float divisor = static_cast<float>(g.h.inside_count(oh) * g.w.inside_count(ow));
          EXPECT_EQ(out[(plane * g.h.output + oh) * g.w.output + ow], sum / divisor);
        }
  }
}

// Channels last: 70 channels, with and without padding in the divisor, windows of 4 taps or
// fewer (row-major sums) and larger ones (column sums), against the NCHW results transposed.
TEST(AvgPool, ChannelsLastEqualsTheNchwResultsTransposed) {
  std::mt19937 rng(5);
  const int64_t channels = 70;
  for (const Config& c : random_configs(6, 12, true, false)) {
    for (bool count_include_pad : {false, true}) {
      AvgPool2dParams p;
      p.geometry = c.geometry();
      p.geometry.planes *= channels;
      p.count_include_pad = count_include_pad;
      const Pool2dGeometry& g = p.geometry;
      std::vector<double> x(g.planes * g.input_plane()), grad(g.planes * g.output_plane());
      for (auto& v : x) v = std::uniform_real_distribution<double>(-1e3, 1e3)(rng);
      for (auto& v : grad) v = std::uniform_real_distribution<double>(-1e3, 1e3)(rng);
      AvgPool2dParams p_nhwc = p;
      p_nhwc.geometry.layout = Layout::nhwc;
      p_nhwc.geometry.channels = channels;
      std::vector<double> out(grad.size()), out_nhwc(grad.size()), gx(x.size()), gx_nhwc(x.size());
      avg_pool2d_forward(x.data(), out.data(), p);
      avg_pool2d_forward(to_channels_last(x, channels, g.input_plane()).data(), out_nhwc.data(), p_nhwc);
      avg_pool2d_backward(grad.data(), gx.data(), p);
      avg_pool2d_backward(to_channels_last(grad, channels, g.output_plane()).data(), gx_nhwc.data(), p_nhwc);
      const auto out_t = to_channels_last(out, channels, g.output_plane());
      const auto gx_t = to_channels_last(gx, channels, g.input_plane());
      EXPECT_EQ(std::memcmp(out_t.data(), out_nhwc.data(), out.size() * sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(gx_t.data(), gx_nhwc.data(), gx.size() * sizeof(double)), 0);
    }
  }
}

TEST(LpPool, TrueSumOfAbsolutePowers) {
  const std::vector<double> x{3, -4, 0, 0};
  LpPool2dParams p;
  p.geometry = Pool2dGeometry{1, make_window_dim(2, 2, 2, 0, 1, false), make_window_dim(2, 2, 2, 0, 1, false)};
  double out = 0;
  lp_pool2d_forward(x.data(), &out, p);
  EXPECT_DOUBLE_EQ(out, 5.0);
  const double grad_output = 1;
  std::vector<double> grad(4);
  lp_pool2d_backward(&grad_output, x.data(), grad.data(), p);
  const double expected[] = {0.6, -0.8, 0, 0};
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(grad[i], expected[i]);
}

TEST(StochasticPool, InvalidInputsAreCounted) {
  const float x[] = {0, 1, -1, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
  EXPECT_EQ(count_invalid_stochastic_inputs(x, 5), 3);
}

TEST_F(ThreadCount, EveryKernelIsBitwiseIdenticalForAnyThreadCount) {
  std::mt19937 rng(5);
  for (const Config& c : random_configs(2, 25, false, false)) {
    const auto g = c.geometry();
    std::vector<float> x(g.planes * g.input_plane());
    for (auto& v : x) v = static_cast<float>(std::uniform_int_distribution<int>(0, 3)(rng)) * 0.5f;
    std::vector<float> grad_output(g.planes * g.output_plane());
    for (size_t i = 0; i < grad_output.size(); ++i) grad_output[i] = std::cos(static_cast<float>(i));

    auto run = [&] {
      std::vector<std::vector<float>> floats;
      std::vector<std::vector<int64_t>> ints;
      for (TieBreak rule : {TieBreak::first, TieBreak::last, TieBreak::split}) {
        MaxPool2dParams p{g, rule, NanPolicy::propagate};
        std::vector<float> out(grad_output.size()), grad(x.size());
        std::vector<int64_t> idx(out.size());
        max_pool2d_forward(x.data(), out.data(), idx.data(), p);
        max_pool2d_backward(grad_output.data(), x.data(), idx.data(), grad.data(), p);
        floats.push_back(out), floats.push_back(grad), ints.push_back(idx);
      }
      AvgPool2dParams a{g, true, 0};
      std::vector<float> out(grad_output.size()), grad(x.size());
      avg_pool2d_forward(x.data(), out.data(), a);
      avg_pool2d_backward(grad_output.data(), grad.data(), a);
      floats.push_back(out), floats.push_back(grad);
      LpPool2dParams l{g, 3.0};
      lp_pool2d_forward(x.data(), out.data(), l);
      lp_pool2d_backward(grad_output.data(), x.data(), grad.data(), l);
      floats.push_back(out), floats.push_back(grad);
      StochasticPool2dParams s{g, 77, true};
      std::vector<int64_t> idx(out.size());
      stochastic_pool2d_forward(x.data(), out.data(), idx.data(), s);
      floats.push_back(out), ints.push_back(idx);
      s.training = false;
      stochastic_pool2d_forward(x.data(), out.data(), nullptr, s);
      stochastic_pool2d_backward_eval(grad_output.data(), x.data(), grad.data(), s);
      floats.push_back(out), floats.push_back(grad);
      return std::make_pair(floats, ints);
    };
    set_num_threads(1);
    const auto serial = run();
    for (int n : {2, 3, 4}) {
      set_num_threads(n);
      const auto parallel = run();
      ASSERT_EQ(serial.second, parallel.second);
      for (size_t i = 0; i < serial.first.size(); ++i)
        ASSERT_EQ(
            0, std::memcmp(serial.first[i].data(), parallel.first[i].data(), serial.first[i].size() * sizeof(float)));
    }
  }
}
