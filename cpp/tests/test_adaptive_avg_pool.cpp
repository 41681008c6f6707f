#include <gtest/gtest.h>
#include <convpool/adaptive_avg_pool.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "layouts.hpp"

using namespace convpool;

// 7 x 9 planes to 3 x 4 (overlapping windows) and to 1 x 1 (global pooling), against the
// definition, and the backward as the forward's transpose.
TEST(AdaptiveAvgPool, MatchesTheDefinitionAndItsTranspose) {
  for (const auto& [out_h, out_w] : {std::pair<int64_t, int64_t>{3, 4}, {1, 1}, {9, 2}}) {
    const AdaptiveAvgPool2dParams p{2, 7, 9, out_h, out_w};
    std::vector<double> x(p.planes * p.in_h * p.in_w), y(p.planes * out_h * out_w), g(y.size()), gx(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.91 * static_cast<double>(i));
    adaptive_avg_pool2d_forward(x.data(), y.data(), p);
    adaptive_avg_pool2d_backward(g.data(), gx.data(), p);
    double forward_dot = 0, backward_dot = 0;
    for (int64_t plane = 0; plane < p.planes; ++plane)
      for (int64_t oh = 0; oh < out_h; ++oh)
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t h0 = oh * 7 / out_h, h1 = ((oh + 1) * 7 + out_h - 1) / out_h;
          const int64_t w0 = ow * 9 / out_w, w1 = ((ow + 1) * 9 + out_w - 1) / out_w;
          double sum = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) sum += x[(plane * 7 + h) * 9 + w];
          const int64_t o = (plane * out_h + oh) * out_w + ow;
          EXPECT_NEAR(y[o], sum / static_cast<double>((h1 - h0) * (w1 - w0)), 1e-14) << o;
          forward_dot += y[o] * g[o];
        }
    for (size_t i = 0; i < x.size(); ++i) backward_dot += x[i] * gx[i];
    EXPECT_NEAR(forward_dot, backward_dot, 1e-12);
  }
}

// Channels last: 70 channels (a whole block of 64 and a remainder), global pooling and overlapping
// windows, against the NCHW results transposed, bit for bit.
TEST(AdaptiveAvgPool, ChannelsLastEqualsTheNchwResultsTransposed) {
  const int64_t channels = 70;
  for (const auto& [out_h, out_w] : {std::pair<int64_t, int64_t>{1, 1}, {3, 4}, {9, 2}}) {
    AdaptiveAvgPool2dParams p{2 * channels, 7, 9, out_h, out_w};
    std::vector<float> x(p.planes * p.in_h * p.in_w), g(p.planes * out_h * out_w);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(std::cos(0.91 * static_cast<double>(i)));
    std::vector<float> y(g.size()), y_nhwc(g.size()), gx(x.size()), gx_nhwc(x.size());
    adaptive_avg_pool2d_forward(x.data(), y.data(), p);
    adaptive_avg_pool2d_backward(g.data(), gx.data(), p);
    AdaptiveAvgPool2dParams p_nhwc = p;
    p_nhwc.layout = Layout::nhwc;
    p_nhwc.channels = channels;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = out_h * out_w;
    adaptive_avg_pool2d_forward(to_channels_last(x, channels, in_plane).data(), y_nhwc.data(), p_nhwc);
    adaptive_avg_pool2d_backward(to_channels_last(g, channels, out_plane).data(), gx_nhwc.data(), p_nhwc);
    EXPECT_EQ(std::memcmp(to_channels_last(y, channels, out_plane).data(), y_nhwc.data(), y.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(to_channels_last(gx, channels, in_plane).data(), gx_nhwc.data(), gx.size() * sizeof(float)),
              0);
  }
}
