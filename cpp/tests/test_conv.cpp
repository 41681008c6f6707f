// conv2d from C++: a naive reference on random configurations (groups, depthwise, stride,
// dilation, asymmetric padding, tiles larger than one register block), the micro-kernel at every
// instruction set this CPU has, and thread-count independence; conv_transpose2d as the adjoint
// of the same reference. Built under ASan/UBSan in CI.
#include <gtest/gtest.h>
#include <convpool/conv.hpp>
#include <convpool/conv_transpose.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace convpool;

namespace {

struct ConvCase {
  Conv2dParams p;
  std::vector<double> x, weight, bias, grad_output;
};

Conv2dParams make_params(int64_t n, int64_t ci, int64_t co, int64_t groups, int64_t h, int64_t w, int64_t kh,
                         int64_t kw, int64_t sh, int64_t sw, int64_t ph0, int64_t ph1, int64_t pw0, int64_t pw1,
                         int64_t dh, int64_t dw) {
  Conv2dParams p;
  p.batch = n;
  p.in_channels = ci;
  p.out_channels = co;
  p.groups = groups;
  p.h = WindowDim{h, conv_output_size(h, kh, sh, ph0, ph1, dh), kh, sh, ph0, dh};
  p.w = WindowDim{w, conv_output_size(w, kw, sw, pw0, pw1, dw), kw, sw, pw0, dw};
  return p;
}

std::vector<ConvCase> random_cases(unsigned seed, int count) {
  std::mt19937 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::normal_distribution<double> normal;
  std::vector<ConvCase> cases;
  while (static_cast<int>(cases.size()) < count) {
    const int64_t groups = uniform(1, 3), depthwise = uniform(0, 3) == 0;
    const int64_t ci = depthwise ? groups : groups * uniform(1, 5);
    const int64_t co = groups * uniform(1, depthwise ? 2 : 15);
    const int64_t kh = uniform(1, 5), kw = uniform(1, 5);
    ConvCase c;
    c.p =
        make_params(uniform(1, 3), ci, co, groups, uniform(1, 19), uniform(1, 40), kh, kw, uniform(1, 3), uniform(1, 3),
                    uniform(0, 2), uniform(0, 2), uniform(0, 2), uniform(0, 2), uniform(1, 2), uniform(1, 2));
    if (c.p.h.output < 1 || c.p.w.output < 1) continue;
    auto fill = [&](std::vector<double>& v, int64_t size) {
      v.resize(size);
      for (auto& e : v) e = normal(rng);
    };
    fill(c.x, c.p.batch * ci * c.p.input_plane());
    fill(c.weight, co * c.p.weight_row());
    fill(c.bias, co);
    fill(c.grad_output, c.p.batch * co * c.p.output_plane());
    cases.push_back(std::move(c));
  }
  return cases;
}

// Straight from the definition, accumulating in long double.
struct Reference {
  std::vector<double> y, grad_input, grad_weight, grad_bias;
};

Reference reference(const ConvCase& c) {
  const Conv2dParams& p = c.p;
  Reference r;
  r.y.assign(p.batch * p.out_channels * p.output_plane(), 0);
  r.grad_input.assign(c.x.size(), 0);
  r.grad_weight.assign(c.weight.size(), 0);
  r.grad_bias.assign(p.out_channels, 0);
  std::vector<long double> gi(c.x.size()), gw(c.weight.size());
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t co = 0; co < p.out_channels; ++co)
      for (int64_t oh = 0; oh < p.h.output; ++oh)
        for (int64_t ow = 0; ow < p.w.output; ++ow) {
          const int64_t out = ((n * p.out_channels + co) * p.h.output + oh) * p.w.output + ow;
          long double sum = c.bias[co];
          const int64_t g = co / p.out_per_group();
          for (int64_t cl = 0; cl < p.in_per_group(); ++cl)
            for (int64_t kh = 0; kh < p.h.kernel; ++kh)
              for (int64_t kw = 0; kw < p.w.kernel; ++kw) {
                const int64_t ih = p.h.start(oh) + kh * p.h.dilation, iw = p.w.start(ow) + kw * p.w.dilation;
                if (ih < 0 || ih >= p.h.input || iw < 0 || iw >= p.w.input) continue;
                const int64_t in = ((n * p.in_channels + g * p.in_per_group() + cl) * p.h.input + ih) * p.w.input + iw;
                const int64_t wi = (co * p.in_per_group() + cl) * p.taps() + kh * p.w.kernel + kw;
                sum += static_cast<long double>(c.weight[wi]) * c.x[in];
                gi[in] += static_cast<long double>(c.weight[wi]) * c.grad_output[out];
                gw[wi] += static_cast<long double>(c.x[in]) * c.grad_output[out];
              }
          r.y[out] = static_cast<double>(sum);
          r.grad_bias[co] += c.grad_output[out];
        }
  for (size_t i = 0; i < gi.size(); ++i) r.grad_input[i] = static_cast<double>(gi[i]);
  for (size_t i = 0; i < gw.size(); ++i) r.grad_weight[i] = static_cast<double>(gw[i]);
  return r;
}

struct Result {
  std::vector<double> y, grad_input, grad_weight, grad_bias;
};

Result run(const ConvCase& c) {
  Result r;
  r.y.resize(c.p.batch * c.p.out_channels * c.p.output_plane());
  r.grad_input.resize(c.x.size());
  r.grad_weight.resize(c.weight.size());
  r.grad_bias.resize(c.bias.size());
  conv2d_forward(c.x.data(), c.weight.data(), c.bias.data(), r.y.data(), c.p);
  conv2d_backward(c.grad_output.data(), c.x.data(), c.weight.data(), r.grad_input.data(), r.grad_weight.data(),
                  r.grad_bias.data(), c.p);
  return r;
}

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], 1e-9 * (1 + std::abs(expected[i]))) << what << " element " << i;
}

// A case of the given shape with normally distributed values.
ConvCase normal_case(const Conv2dParams& p, unsigned seed) {
  ConvCase c;
  c.p = p;
  c.x.resize(p.batch * p.in_channels * p.input_plane());
  c.weight.resize(p.out_channels * p.weight_row());
  c.bias.resize(p.out_channels);
  c.grad_output.resize(p.batch * p.out_channels * p.output_plane());
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  for (auto* v : {&c.x, &c.weight, &c.bias, &c.grad_output})
    for (auto& e : *v) e = normal(rng);
  return c;
}

void expect_matches_reference(const ConvCase& c) {
  const Reference expected = reference(c);
  const Result actual = run(c);
  expect_close(actual.y, expected.y, "y");
  expect_close(actual.grad_input, expected.grad_input, "grad_input");
  expect_close(actual.grad_weight, expected.grad_weight, "grad_weight");
  expect_close(actual.grad_bias, expected.grad_bias, "grad_bias");
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(get_num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

TEST(Conv2d, MatchesNaiveReferenceOnRandomConfigurations) {
  for (const ConvCase& c : random_cases(7, 60)) {
    const Reference expected = reference(c);
    const Result actual = run(c);
    SCOPED_TRACE(testing::Message() << "N=" << c.p.batch << " Ci=" << c.p.in_channels << " Co=" << c.p.out_channels
                                    << " groups=" << c.p.groups << " H=" << c.p.h.input << " W=" << c.p.w.input
                                    << " k=" << c.p.h.kernel << "x" << c.p.w.kernel << " s=" << c.p.h.stride << ","
                                    << c.p.w.stride << " d=" << c.p.h.dilation << "," << c.p.w.dilation);
    expect_close(actual.y, expected.y, "y");
    expect_close(actual.grad_input, expected.grad_input, "grad_input");
    expect_close(actual.grad_weight, expected.grad_weight, "grad_weight");
    expect_close(actual.grad_bias, expected.grad_bias, "grad_bias");
  }
}

// (batch, channels, pixels) to (batch, pixels, channels): NCHW to NHWC.
std::vector<double> channels_last(const std::vector<double>& planes, int64_t batch, int64_t channels) {
  const int64_t pixels = static_cast<int64_t>(planes.size()) / std::max<int64_t>(1, batch * channels);
  std::vector<double> out(planes.size());
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t q = 0; q < pixels; ++q)
        out[(n * pixels + q) * channels + c] = planes[(n * channels + c) * pixels + q];
  return out;
}

// The same random configurations with NHWC activations (Conv2dParams::layout): the reference's
// results, transposed, for the forward and the three gradients.
TEST(Conv2d, ChannelsLastMatchesTheReferenceTransposed) {
  for (const ConvCase& c : random_cases(8, 60)) {
    const Reference expected = reference(c);
    const int64_t n = c.p.batch, ci = c.p.in_channels, co = c.p.out_channels;
    Conv2dParams p = c.p;
    p.layout = Layout::nhwc;
    const std::vector<double> x = channels_last(c.x, n, ci), grad_output = channels_last(c.grad_output, n, co);
    std::vector<double> y(expected.y.size()), grad_input(c.x.size()), grad_weight(c.weight.size()), grad_bias(co);
    conv2d_forward(x.data(), c.weight.data(), c.bias.data(), y.data(), p);
    conv2d_backward(grad_output.data(), x.data(), c.weight.data(), grad_input.data(), grad_weight.data(),
                    grad_bias.data(), p);
    SCOPED_TRACE(testing::Message() << "N=" << n << " Ci=" << ci << " Co=" << co << " groups=" << p.groups
                                    << " H=" << p.h.input << " W=" << p.w.input << " k=" << p.h.kernel << "x"
                                    << p.w.kernel << " s=" << p.h.stride << "," << p.w.stride);
    expect_close(y, channels_last(expected.y, n, co), "y");
    expect_close(grad_input, channels_last(expected.grad_input, n, ci), "grad_input");
    expect_close(grad_weight, expected.grad_weight, "grad_weight");
    expect_close(grad_bias, expected.grad_bias, "grad_bias");
  }
}

// The transposed convolution of x_t (shaped as the convolution's output) is the reference's input
// gradient for grad_output = x_t; its input gradient, for g shaped as the convolution's input, is
// the reference's forward of g; its weight gradient the reference's, with x = g.
TEST(ConvTranspose2d, IsTheAdjointOfTheReferenceConvolution) {
  for (ConvCase c : random_cases(11, 40)) {
    const Conv2dParams& p = c.p;
    const std::vector<double> x_t = c.grad_output, g = c.x;
    std::vector<double> transposed_bias(p.in_channels);
    for (size_t i = 0; i < transposed_bias.size(); ++i) transposed_bias[i] = 0.25 * static_cast<double>(i) - 1;
    std::fill(c.bias.begin(), c.bias.end(), 0.0);
    const Reference expected = reference(c);

    std::vector<double> y(g.size()), grad_input(x_t.size()), grad_weight(c.weight.size()), grad_bias(p.in_channels);
    conv_transpose2d_forward(x_t.data(), c.weight.data(), transposed_bias.data(), y.data(), p);
    conv_transpose2d_backward(g.data(), x_t.data(), c.weight.data(), grad_input.data(), grad_weight.data(),
                              grad_bias.data(), p);
    std::vector<double> expected_y = expected.grad_input, expected_grad_bias(p.in_channels, 0);
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t ch = 0; ch < p.in_channels; ++ch)
        for (int64_t q = 0; q < p.input_plane(); ++q) {
          expected_y[(n * p.in_channels + ch) * p.input_plane() + q] += transposed_bias[ch];
          expected_grad_bias[ch] += g[(n * p.in_channels + ch) * p.input_plane() + q];
        }
    expect_close(y, expected_y, "y");
    expect_close(grad_input, expected.y, "grad_input");
    expect_close(grad_weight, expected.grad_weight, "grad_weight");
    expect_close(grad_bias, expected_grad_bias, "grad_bias");
  }
}

TEST(Conv2d, LargerThanOneTileMatchesReference) {
  // Each path with more positions than a tile, a reduction deeper than a depth block and a weight
  // gradient whose images are split into chunks: 3x3 at strides 1 and 2 (direct), 1x1 with many
  // channels (direct) and the same at stride 2 (im2col panels).
  expect_matches_reference(normal_case(make_params(3, 30, 13, 1, 23, 29, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 3));
  expect_matches_reference(normal_case(make_params(3, 30, 13, 1, 45, 57, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 4));
  expect_matches_reference(normal_case(make_params(2, 300, 40, 1, 13, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 6));
  expect_matches_reference(normal_case(make_params(2, 300, 40, 1, 25, 33, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 7));
}

TEST(Conv2d, FewChannelDirectPathOverSeveralRowTilesMatchesReference) {
  // Stride 1, direct for the input gradient too: an image taller than one row tile, an uneven
  // split of 11 images into chunks, groups, dilation and asymmetric padding.
  expect_matches_reference(normal_case(make_params(11, 6, 6, 2, 64, 70, 3, 2, 1, 1, 2, 1, 0, 3, 2, 1), 5));
}

TEST(Conv2d, ChannelVectorPathMatchesReference) {
  // Narrow outputs and deep reductions put the output channels in the vector lanes: partial last
  // vectors of channels, partial register tiles of rows and columns, groups, dilation, padding.
  const Conv2dParams shapes[] = {make_params(3, 8, 31, 1, 11, 11, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1),
                                 make_params(2, 12, 34, 2, 9, 12, 5, 4, 1, 1, 1, 2, 0, 1, 1, 2),
                                 make_params(2, 6, 16, 1, 12, 12, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1)};
  unsigned seed = 20;
  for (const Conv2dParams& p : shapes) {
    ASSERT_TRUE(
        detail::uses_channel_vectors<double>(p.out_per_group(), p.weight_row(), detail::forward_geometry<double>(p)));
    expect_matches_reference(normal_case(p, seed++));
  }
}

TEST(Conv2d, StridedDirectPathOverSeveralRowTilesMatchesReference) {
  // Strides (3, 2) split each tile into six phase planes: several row tiles, dilation and
  // asymmetric padding, with taps reading every phase.
  expect_matches_reference(normal_case(make_params(2, 40, 7, 1, 230, 41, 5, 3, 3, 2, 2, 1, 0, 2, 2, 1), 8));
}

TEST(Conv2d, DepthwiseThreeAndFiveSquareMatchesReference) {
  // The 3x3 and 5x5 depthwise kernels keep rows in registers: planes of 1, 2 and more than 8
  // output rows (the row blocks' edges), widths around whole vectors (masked last vectors),
  // channel multipliers 1 and 2, no padding, column dilation and padding wider than the kernel's
  // reach.
  unsigned seed = 20;
  for (int64_t k : {3, 5})
    for (int64_t height : {k, k + 1, int64_t{13}, int64_t{21}})
      for (int64_t width : {k, int64_t{17}, int64_t{18}, int64_t{33}})
        for (int64_t multiplier : {1, 2}) {
          SCOPED_TRACE(testing::Message()
                       << "k=" << k << " H=" << height << " W=" << width << " multiplier=" << multiplier);
          const int64_t pad = k / 2;
          expect_matches_reference(normal_case(
              make_params(2, 3, 3 * multiplier, 3, height, width, k, k, 1, 1, pad, pad, pad, pad, 1, 1), ++seed));
          expect_matches_reference(
              normal_case(make_params(1, 2, 2 * multiplier, 2, height, width, k, k, 1, 1, 0, 0, 0, 0, 1, 1), ++seed));
          expect_matches_reference(normal_case(
              make_params(1, 2, 2 * multiplier, 2, height, width + 2, k, k, 1, 1, k, 0, 0, 2 * k, 1, 2), ++seed));
        }
}

TEST(Conv2d, StridedDepthwiseMatchesReference) {
  // Strided depthwise planes are split into phases and the input gradient gathered back: odd and
  // even left padding (which phase a row starts on), input columns and rows that no window reads,
  // a phase no tap lands on (1x1 at stride 2), dilation, strides (3, 2) and (1, 2), multiplier 2.
  unsigned seed = 40;
  for (int64_t width : {9, 10, 16, 23})
    for (int64_t padding : {0, 1, 2}) {
      SCOPED_TRACE(testing::Message() << "W=" << width << " padding=" << padding);
      expect_matches_reference(normal_case(
          make_params(2, 3, 3, 3, width + 1, width, 3, 3, 2, 2, padding, padding, padding, padding, 1, 1), ++seed));
      expect_matches_reference(
          normal_case(make_params(1, 2, 4, 2, 11, width, 3, 5, 3, 2, padding, 0, padding, 1, 2, 1), ++seed));
      expect_matches_reference(
          normal_case(make_params(1, 2, 2, 2, 7, width, 1, 1, 2, 2, 0, 0, padding, 0, 1, 1), ++seed));
      expect_matches_reference(
          normal_case(make_params(2, 2, 2, 2, 6, width, 3, 3, 1, 2, padding, padding, 1, 0, 1, 2), ++seed));
    }
}

TEST(Conv2d, StridesAndDilationsFarPastTheInputTakeTheMatrixProductPaths) {
  // A phase-split copy of these would hold stride_h * stride_w planes (up to 2^62 of them): the
  // direct and depthwise paths must not be chosen, and the matrix products must give the
  // reference values, with no overflow in the geometry arithmetic (UBSan).
  constexpr int64_t kHuge = int64_t{1} << 31;
  const Conv2dParams shapes[] = {make_params(2, 3, 4, 1, 8, 8, 3, 3, kHuge, kHuge, 0, 0, 0, 0, 1, 1),
                                 make_params(1, 3, 4, 1, 8, 8, 3, 3, 10000, 1, 0, 0, 0, 0, 1, 1),
                                 make_params(2, 3, 3, 3, 8, 8, 3, 3, kHuge - 1, 10000, 0, 0, 0, 0, 1, 1),
                                 make_params(1, 3, 3, 3, 1, 1, 3, 2, 1, 1, 2000, 2000, 1, 1, 2000, 1),
                                 make_params(1, 4, 4, 1, 1, 1, 2, 2, 1, 1, 5000, 5000, 5000, 5000, 10000, 10000)};
  unsigned seed = 30;
  for (const Conv2dParams& p : shapes) {
    ASSERT_FALSE(detail::forward_correlation(p).copy_bounded());
    EXPECT_FALSE(detail::direct_applies(p));
    EXPECT_FALSE(detail::depthwise_applies(p));
    expect_matches_reference(normal_case(p, seed++));
  }
  // The layers of real networks keep the direct paths.
  EXPECT_TRUE(detail::direct_applies(make_params(8, 3, 64, 1, 224, 224, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1)));
  EXPECT_TRUE(detail::depthwise_applies(make_params(16, 128, 128, 128, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1)));
}

TEST(Conv2d, EmptyBatchWritesZeroWeightAndBiasGradients) {
  const Conv2dParams p = make_params(0, 3, 3, 3, 1 << 20, 1 << 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
  std::vector<double> weight(p.out_channels * p.weight_row(), 1.0), grad_weight(weight.size(), 5.0);
  std::vector<double> grad_bias(p.out_channels, 5.0);
  conv2d_backward<double>(nullptr, nullptr, weight.data(), nullptr, grad_weight.data(), grad_bias.data(), p);
  for (double v : grad_weight) EXPECT_EQ(v, 0.0);
  for (double v : grad_bias) EXPECT_EQ(v, 0.0);
}

TEST(Conv2d, BitwiseIdenticalForAnyThreadCount) {
  for (const ConvCase& c : random_cases(11, 20)) {
    Result one, many;
    {
      ThreadsGuard guard(1);
      one = run(c);
    }
    for (int threads : {2, 3, 5}) {
      ThreadsGuard guard(threads);
      many = run(c);
      EXPECT_EQ(one.y, many.y);
      EXPECT_EQ(one.grad_input, many.grad_input);
      EXPECT_EQ(one.grad_weight, many.grad_weight);
      EXPECT_EQ(one.grad_bias, many.grad_bias);
    }
  }
}

// One packed weight serves every call: each random configuration's forward through a
// PackedConvWeight equals the plain forward bit for bit, called twice (the second reads the kept
// panels) and on a second input size, which can take another path or register tile; the source
// array may change after packing.
TEST(Conv2d, PackedWeightGivesThePlainForwardBitForBit) {
  for (ConvCase c : random_cases(13, 40)) {
    Conv2dParams larger = c.p;
    larger.batch = 2;
    larger.h.input = c.p.h.input + 9;
    larger.h.output = conv_output_size(larger.h.input, larger.h.kernel, larger.h.stride, larger.h.padding,
                                       larger.h.padding, larger.h.dilation);
    const PackedConvWeight<double> packed(c.weight.data(), c.p.out_channels, c.p.weight_row());
    const std::vector<double> weight = c.weight;
    std::fill(c.weight.begin(), c.weight.end(), std::nan(""));
    for (const Conv2dParams& p : {c.p, c.p, larger}) {
      const ConvCase shaped = normal_case(p, 3);
      std::vector<double> plain(p.batch * p.out_channels * p.output_plane()), from_packed(plain.size());
      conv2d_forward(shaped.x.data(), weight.data(), shaped.bias.data(), plain.data(), p, Activation::relu);
      conv2d_forward(shaped.x.data(), packed, shaped.bias.data(), from_packed.data(), p, Activation::relu);
      EXPECT_EQ(plain, from_packed);
    }
  }
}

// Winograd's F(2x2, 3x3) path, called directly (conv2d_forward takes it only where it saves work)
// on 3x3 stride-1 shapes with odd and even sizes, chunks that span rows of tiles and images, and
// any padding: the reference's results to rounding, with bias and ReLU; and bitwise the same for
// any thread count.
TEST(Conv2d, WinogradMatchesReference) {
  std::mt19937 rng(17);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t pad = uniform(0, 2), h = uniform(3 - 2 * pad > 1 ? 3 - 2 * pad : 1, 23),
                  w = uniform(3 - 2 * pad > 1 ? 3 - 2 * pad : 1, 41);
    const Conv2dParams p =
        make_params(uniform(1, 3), uniform(1, 20), uniform(1, 30), 1, h, w, 3, 3, 1, 1, pad, pad, pad, pad, 1, 1);
    if (p.h.output < 1 || p.w.output < 1) continue;
    ASSERT_TRUE(detail::winograd_applies(p));
    const ConvCase c = normal_case(p, static_cast<unsigned>(trial));
    const PackedConvWeight<double> packed(c.weight.data(), p.out_channels, p.weight_row(), true);
    const auto panels = [&](int rows) { return detail::Panels<double>(packed.winograd_panels(rows)); };
    std::vector<double> y(p.batch * p.out_channels * p.output_plane()), relu(y.size());
    std::vector<double> expected = reference(c).y;
    ASSERT_TRUE(detail::conv2d_forward_winograd(c.x.data(), panels, c.bias.data(), y.data(), p,
                                                detail::winograd_plan<double>(p), Activation::none));
    expect_close(y, expected, "winograd y");
    for (double& e : expected) e = std::max(e, 0.0);
    for (int threads : {1, 2, 3}) {
      ThreadsGuard guard(threads);
      ASSERT_TRUE(detail::conv2d_forward_winograd(c.x.data(), panels, c.bias.data(), relu.data(), p,
                                                  detail::winograd_plan<double>(p), Activation::relu));
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(relu[i], std::max(y[i], 0.0)) << "element " << i;
    }
  }
}

// Where it saves work, conv2d_forward on a Winograd-packed weight takes it: the results differ from
// the direct path's in the last bits (and equal the reference to rounding); a plain packed weight
// gives the direct path's bits.
TEST(Conv2d, WinogradPackedWeightTakesTheWinogradPathWhereItPays) {
  const Conv2dParams p = make_params(2, 40, 48, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
  ASSERT_TRUE(detail::winograd_plan_if_it_pays<double>(p));
  const ConvCase c = normal_case(p, 5);
  const PackedConvWeight<double> winograd(c.weight.data(), p.out_channels, p.weight_row(), true);
  std::vector<double> direct(p.batch * p.out_channels * p.output_plane()), fast(direct.size());
  conv2d_forward(c.x.data(), c.weight.data(), c.bias.data(), direct.data(), p);
  conv2d_forward(c.x.data(), winograd, c.bias.data(), fast.data(), p);
  EXPECT_NE(direct, fast);
  expect_close(fast, reference(c).y, "winograd y");
  // 3x3 outputs: 4 tiles of 2x2 hold 16 outputs for 9.
  const Conv2dParams small = make_params(1, 40, 48, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
  EXPECT_FALSE(detail::winograd_plan_if_it_pays<float>(small));
  // 32 channels: the transforms cost more than they save.
  EXPECT_FALSE(
      detail::winograd_plan_if_it_pays<float>(make_params(2, 32, 48, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)));
}

// Conv2dParams::winograd on plain weights: the forward and the input gradient (a Winograd
// convolution of the output gradient with the flipped, transposed kernels) equal the reference to
// rounding; the weight and bias gradients keep the direct sums, bit for bit.
TEST(Conv2d, WinogradParamMatchesReferenceForwardAndInputGradient) {
  for (int64_t pad : {0, 1, 2}) {
    Conv2dParams p = make_params(2, 48, 40, 1, 22, 25, 3, 3, 1, 1, pad, pad, pad, pad, 1, 1);
    p.winograd = true;
    ASSERT_TRUE(detail::winograd_plan_if_it_pays<double>(p));
    ASSERT_TRUE(detail::winograd_input_gradient(p) &&
                detail::winograd_plan_if_it_pays<double>(*detail::winograd_input_gradient(p)));
    const ConvCase c = normal_case(p, static_cast<unsigned>(pad));
    const Reference expected = reference(c);
    const Result fast = run(c);
    expect_close(fast.y, expected.y, "y");
    expect_close(fast.grad_input, expected.grad_input, "grad_input");
    ConvCase plain = c;
    plain.p.winograd = false;
    const Result direct = run(plain);
    EXPECT_NE(fast.y, direct.y);
    EXPECT_NE(fast.grad_input, direct.grad_input);
    EXPECT_EQ(fast.grad_weight, direct.grad_weight);
    EXPECT_EQ(fast.grad_bias, direct.grad_bias);
  }
}

TEST(Gemm, MicroKernelHandlesEdgeTilesAndAccumulation) {
  const GemmMicroKernel<float>& kernel = gemm_micro_kernel<float>();
  const int mr = kernel.mr, nr = kernel.nr, depth = 5;
  std::vector<float> a(depth * mr), b(depth * nr);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) - 3;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) - 2;
  const int ldc = nr + 3, m_valid = mr - 1, n_valid = nr - 2;
  std::vector<float> c(mr * ldc, 100.0f), init(mr);
  for (int i = 0; i < mr; ++i) init[i] = static_cast<float>(i);
  kernel.run(depth, a.data(), b.data(), c.data(), ldc, m_valid, n_valid, false, init.data());
  kernel.run(depth, a.data(), b.data(), c.data(), ldc, m_valid, n_valid, true, nullptr);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < ldc; ++j) {
      const bool inside = i < m_valid && j < n_valid;
      float dot = 0;
      for (int s = 0; inside && s < depth; ++s) dot += a[s * mr + i] * b[s * nr + j];
      const float expected = inside ? init[i] + 2 * dot : 100.0f;
      EXPECT_EQ(c[i * ldc + j], expected) << "row " << i << " column " << j;
    }
}
