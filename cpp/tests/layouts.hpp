#pragma once
// What the tests of channels-last kernels share: NCHW arrays rearranged channels last.

#include <cstdint>
#include <vector>

// An NCHW array of planes of `plane` values as the channels-last array of the same images.
template <typename V>
std::vector<V> to_channels_last(const std::vector<V>& nchw, int64_t channels, int64_t plane) {
  std::vector<V> nhwc(nchw.size());
  for (size_t i = 0; i < nchw.size(); ++i) {
    const int64_t image = static_cast<int64_t>(i) / (channels * plane);
    const int64_t rest = static_cast<int64_t>(i) % (channels * plane);
    nhwc[(image * plane + rest % plane) * channels + rest / plane] = nchw[i];
  }
  return nhwc;
}
