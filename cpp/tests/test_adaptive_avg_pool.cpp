#include <gtest/gtest.h>
#include <convpool/adaptive_avg_pool.hpp>

#include <cmath>
#include <vector>

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
