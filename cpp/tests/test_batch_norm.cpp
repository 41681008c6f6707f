#include <gtest/gtest.h>
#include <convpool/batch_norm.hpp>

#include <cmath>
#include <cstring>
#include <vector>

using namespace convpool;

namespace {

// Planes of 37 elements: a whole block of running sums plus a partial one.
BatchNorm2dParams shape(bool training, bool relu) {
  BatchNorm2dParams p;
  p.batch = 3;
  p.channels = 5;
  p.plane = 37;
  p.training = training;
  p.activation = relu ? Activation::relu : Activation::none;
  p.momentum = 0.25;
  return p;
}

std::vector<double> values(int64_t count, double scale, double offset) {
  std::vector<double> v(count);
  for (int64_t i = 0; i < count; ++i) v[i] = offset + scale * std::sin(0.7 * static_cast<double>(i));
  return v;
}

}  // namespace

TEST(BatchNorm, TrainingForwardNormalizesEachChannelAndUpdatesTheRunningStatistics) {
  const BatchNorm2dParams p = shape(true, false);
  const int64_t count = p.batch * p.channels * p.plane, m = p.per_channel();
  const auto x = values(count, 3.0, 1.0), weight = values(p.channels, 1.0, 2.0), bias = values(p.channels, 0.5, 0.0);
  std::vector<double> y(count), mean(p.channels), invstd(p.channels), running_mean(p.channels, 0.5),
      running_var(p.channels, 2.0);
  batch_norm2d_forward(x.data(), weight.data(), bias.data(), running_mean.data(), running_var.data(), y.data(),
                       mean.data(), invstd.data(), p);
  for (int64_t c = 0; c < p.channels; ++c) {
    double sum = 0, squares = 0;
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t q = 0; q < p.plane; ++q) sum += x[(n * p.channels + c) * p.plane + q];
    const double expected_mean = sum / m;
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t q = 0; q < p.plane; ++q)
        squares += std::pow(x[(n * p.channels + c) * p.plane + q] - expected_mean, 2);
    const double expected_invstd = 1 / std::sqrt(squares / m + p.eps);
    EXPECT_NEAR(mean[c], expected_mean, 1e-12);
    EXPECT_NEAR(invstd[c], expected_invstd, 1e-12);
    EXPECT_NEAR(running_mean[c], 0.75 * 0.5 + 0.25 * expected_mean, 1e-12);
    EXPECT_NEAR(running_var[c], 0.75 * 2.0 + 0.25 * squares / (m - 1), 1e-12);
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t q = 0; q < p.plane; ++q) {
        const int64_t i = (n * p.channels + c) * p.plane + q;
        EXPECT_NEAR(y[i], (x[i] - expected_mean) * expected_invstd * weight[c] + bias[c], 1e-12) << i;
      }
  }
}

TEST(BatchNorm, ResultsAreBitwiseIdenticalForAnyThreadCount) {
  const BatchNorm2dParams p = shape(true, true);
  const int64_t count = p.batch * p.channels * p.plane;
  const auto x = values(count, 2.0, 0.3), grad = values(count, 1.0, 0.1), weight = values(p.channels, 1.0, 1.0);
  const int saved_threads = get_num_threads();
  std::vector<std::vector<float>> first;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    const std::vector<float> xf(x.begin(), x.end()), gf(grad.begin(), grad.end()), wf(weight.begin(), weight.end());
    std::vector<float> y(count), mean(p.channels), invstd(p.channels), gx(count), gw(p.channels), gb(p.channels);
    float* no_running_statistics = nullptr;
    batch_norm2d_forward(xf.data(), wf.data(), wf.data(), no_running_statistics, no_running_statistics, y.data(),
                         mean.data(), invstd.data(), p);
    batch_norm2d_backward(gf.data(), xf.data(), y.data(), wf.data(), mean.data(), invstd.data(), gx.data(), gw.data(),
                          gb.data(), p);
    const std::vector<std::vector<float>> results{y, mean, invstd, gx, gw, gb};
    if (first.empty()) first = results;
    for (size_t r = 0; r < results.size(); ++r)
      EXPECT_EQ(std::memcmp(results[r].data(), first[r].data(), results[r].size() * sizeof(float)), 0)
          << "result " << r << " at " << threads << " threads";
  }
  set_num_threads(saved_threads);
}

TEST(BatchNorm, EvaluationUsesTheRunningStatisticsAndLeavesThemAlone) {
  const BatchNorm2dParams p = shape(false, true);
  const int64_t count = p.batch * p.channels * p.plane;
  const auto x = values(count, 2.0, 0.0);
  std::vector<double> y(count), mean(p.channels), invstd(p.channels), running_mean(p.channels, 0.25),
      running_var(p.channels, 4.0), gx(count);
  batch_norm2d_forward(x.data(), static_cast<const double*>(nullptr), static_cast<const double*>(nullptr),
                       running_mean.data(), running_var.data(), y.data(), mean.data(), invstd.data(), p);
  const std::vector<double> grad(count, 1.0);
  batch_norm2d_backward(grad.data(), x.data(), y.data(), static_cast<const double*>(nullptr), mean.data(),
                        invstd.data(), gx.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr), p);
  const double expected_invstd = 1 / std::sqrt(4.0 + p.eps);
  for (int64_t i = 0; i < count; ++i) {
    EXPECT_NEAR(y[i], std::max(0.0, (x[i] - 0.25) * expected_invstd), 1e-12) << i;
    EXPECT_EQ(gx[i], y[i] > 0 ? expected_invstd : 0.0) << i;  // the ReLU's mask, then the scale
  }
  EXPECT_EQ(running_mean[0], 0.25);
  EXPECT_EQ(running_var[0], 4.0);
}

// Channels last: 70 channels (a whole block of 64 and a remainder), planes of several chunks.
TEST(BatchNorm, ChannelsLastEqualsTheNchwResultsTransposedBitForBit) {
  BatchNorm2dParams p;
  p.batch = 2;
  p.channels = 70;
  p.plane = 2100;
  p.activation = Activation::relu;
  const int64_t count = p.batch * p.channels * p.plane;
  const auto x64 = values(count, 2.0, 0.3), grad64 = values(count, 1.0, 0.1), weight64 = values(p.channels, 1.0, 1.0);
  const std::vector<float> x(x64.begin(), x64.end()), grad(grad64.begin(), grad64.end()),
      weight(weight64.begin(), weight64.end());
  const auto transposed = [&p](const std::vector<float>& nchw) {
    std::vector<float> nhwc(nchw.size());
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t c = 0; c < p.channels; ++c)
        for (int64_t q = 0; q < p.plane; ++q)
          nhwc[(n * p.plane + q) * p.channels + c] = nchw[(n * p.channels + c) * p.plane + q];
    return nhwc;
  };
  std::vector<std::vector<float>> results[2];
  for (const Layout layout : {Layout::nchw, Layout::nhwc}) {
    p.layout = layout;
    const bool nhwc = layout == Layout::nhwc;
    const std::vector<float> xl = nhwc ? transposed(x) : x, gl = nhwc ? transposed(grad) : grad;
    std::vector<float> y(count), mean(p.channels), invstd(p.channels), running_mean(p.channels, 0.5f),
        running_var(p.channels, 2.0f), gx(count), gw(p.channels), gb(p.channels);
    batch_norm2d_forward(xl.data(), weight.data(), weight.data(), running_mean.data(), running_var.data(), y.data(),
                         mean.data(), invstd.data(), p);
    batch_norm2d_backward(gl.data(), xl.data(), y.data(), weight.data(), mean.data(), invstd.data(), gx.data(),
                          gw.data(), gb.data(), p);
    results[nhwc] = {y, mean, invstd, running_mean, running_var, gx, gw, gb};
  }
  for (const size_t r : {0, 5}) results[0][r] = transposed(results[0][r]);
  for (size_t r = 0; r < results[0].size(); ++r)
    EXPECT_EQ(std::memcmp(results[0][r].data(), results[1][r].data(), results[0][r].size() * sizeof(float)), 0)
        << "result " << r;
}
