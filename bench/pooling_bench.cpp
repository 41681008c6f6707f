// Micro-benchmarks of the pooling kernels on shapes from real networks, in milliseconds.
// bytes_per_second counts the bytes a kernel must move at least (inputs read once, outputs written
// once), so GB/s can be set against this machine's copy bandwidth.
//
//   cmake --preset bench && cmake --build --preset bench && ./build/bench/bench/convpool_bench

#include <benchmark/benchmark.h>
#include <convpool/convpool.hpp>

#include <cstdint>
#include <random>
#include <vector>

using namespace convpool;

namespace {

struct Shape {
  int64_t n, c, h, w, k, s, p;
};

// (32,64,112,112) k3 s2 p1: ResNet/VGG-sized early pooling, DRAM-resident.
// (32,64,112,112) k2 s2: VGG-style non-overlapping pooling.
// (64,6,28,28) k2 s2: LeNet-5 after conv1.
// (8,16,64,64) k7 s1 p3: a large stride-1 window.
const Shape kShapes[] = {
    {32, 64, 112, 112, 3, 2, 1}, {32, 64, 112, 112, 2, 2, 0}, {64, 6, 28, 28, 2, 2, 0}, {8, 16, 64, 64, 7, 1, 3}};

Pool2dGeometry geometry(const Shape& s, bool padded = true) {
  const int64_t pad = padded ? s.p : 0;
  return Pool2dGeometry{s.n * s.c, make_window_dim(s.h, s.k, s.s, pad, 1, false),
                        make_window_dim(s.w, s.k, s.s, pad, 1, false)};
}

std::vector<float> random_input(int64_t count, bool non_negative) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = non_negative ? std::abs(normal(rng)) : normal(rng);
  return v;
}

void label(benchmark::State& state, const Shape& s) {
  state.SetLabel("(" + std::to_string(s.n) + "," + std::to_string(s.c) + "," + std::to_string(s.h) + "," +
                 std::to_string(s.w) + ") k" + std::to_string(s.k) + " s" + std::to_string(s.s) + " p" +
                 std::to_string(s.p) + " threads=" + std::to_string(get_num_threads()));
}

void set_bytes(benchmark::State& state, int64_t bytes) { state.SetBytesProcessed(state.iterations() * bytes); }

void BM_max_pool2d_forward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const bool with_indices = state.range(1);
  MaxPool2dParams p{geometry(s), TieBreak::first, NanPolicy::propagate};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> out(g.planes * g.output_plane());
  std::vector<int64_t> idx(with_indices ? out.size() : 0);
  for (auto _ : state) max_pool2d_forward(x.data(), out.data(), with_indices ? idx.data() : nullptr, p);
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4 + idx.size() * 8);
}

void BM_max_pool2d_backward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const auto rule = static_cast<TieBreak>(state.range(1));
  MaxPool2dParams p{geometry(s), rule, NanPolicy::propagate};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> out(g.planes * g.output_plane()), grad(x.size());
  std::vector<int64_t> idx(out.size());
  max_pool2d_forward(x.data(), out.data(), idx.data(), p);
  for (auto _ : state) max_pool2d_backward(out.data(), x.data(), idx.data(), grad.data(), p);
  label(state, s);
  // first/last read grad_output and indices; split reads grad_output and x.
  set_bytes(state, out.size() * 4 + grad.size() * 4 + (rule == TieBreak::split ? x.size() * 4 : idx.size() * 8));
}

void BM_avg_pool2d_forward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  AvgPool2dParams p{geometry(s), true, 0};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> out(g.planes * g.output_plane());
  for (auto _ : state) avg_pool2d_forward(x.data(), out.data(), p);
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4);
}

void BM_avg_pool2d_backward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  AvgPool2dParams p{geometry(s), true, 0};
  const auto& g = p.geometry;
  const auto grad_output = random_input(g.planes * g.output_plane(), false);
  std::vector<float> grad(g.planes * g.input_plane());
  for (auto _ : state) avg_pool2d_backward(grad_output.data(), grad.data(), p);
  label(state, s);
  set_bytes(state, (grad_output.size() + grad.size()) * 4);
}

void BM_lp_pool2d_forward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  LpPool2dParams p{geometry(s, false), 2.0};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> out(g.planes * g.output_plane());
  for (auto _ : state) lp_pool2d_forward(x.data(), out.data(), p);
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4);
}

void BM_lp_pool2d_backward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  LpPool2dParams p{geometry(s, false), 2.0};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> grad_output(g.planes * g.output_plane(), 1.0f), grad(x.size());
  for (auto _ : state) lp_pool2d_backward(grad_output.data(), x.data(), grad.data(), p);
  label(state, s);
  set_bytes(state, (x.size() + grad_output.size() + grad.size()) * 4);
}

void BM_stochastic_pool2d_forward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  StochasticPool2dParams p{geometry(s, false), 1, true};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), true);
  std::vector<float> out(g.planes * g.output_plane());
  std::vector<int64_t> idx(out.size());
  for (auto _ : state) stochastic_pool2d_forward(x.data(), out.data(), idx.data(), p);
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4 + idx.size() * 8);
}

void BM_stochastic_pool2d_backward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  StochasticPool2dParams p{geometry(s, false), 1, true};
  const auto& g = p.geometry;
  const auto x = random_input(g.planes * g.input_plane(), true);
  std::vector<float> out(g.planes * g.output_plane()), grad(x.size());
  std::vector<int64_t> idx(out.size());
  stochastic_pool2d_forward(x.data(), out.data(), idx.data(), p);
  for (auto _ : state) pool2d_backward_by_indices(out.data(), idx.data(), grad.data(), g);
  label(state, s);
  set_bytes(state, out.size() * 4 + idx.size() * 8 + grad.size() * 4);
}

void all_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t i = 0; i < 4; ++i) b->Args({i});
}

// Unpooling the k3 s2 / k2 s2 pooling's output back to its input's shape, and the gather back.
void BM_max_unpool2d(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const bool backward = state.range(1);
  MaxPool2dParams pool{geometry(s), TieBreak::first, NanPolicy::propagate};
  const auto& g = pool.geometry;
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> pooled(g.planes * g.output_plane()), unpooled(x.size());
  std::vector<int64_t> idx(pooled.size());
  max_pool2d_forward(x.data(), pooled.data(), idx.data(), pool);
  const MaxUnpool2dParams p{g.planes, g.output_plane(), g.h.input, g.w.input};
  for (auto _ : state) {
    if (backward)
      max_unpool2d_backward(x.data(), idx.data(), pooled.data(), p);
    else
      max_unpool2d_forward(pooled.data(), idx.data(), unpooled.data(), p);
  }
  label(state, s);
  set_bytes(state, (pooled.size() + x.size()) * 4 + idx.size() * 8);
}

// Adaptive max pooling of each shape's input to its pooled output size (overlapping windows where
// the sizes do not divide), forward with indices, or the split backward.
void BM_adaptive_max_pool2d(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const bool backward = state.range(1);
  const Pool2dGeometry g = geometry(s);
  const AdaptiveMaxPool2dParams p{g.planes,   g.h.input,       g.w.input,           g.h.output,
                                  g.w.output, TieBreak::split, NanPolicy::propagate};
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> out(g.planes * g.output_plane()), grad(x.size());
  std::vector<int64_t> idx(out.size());
  for (auto _ : state) {
    if (backward)
      adaptive_max_pool2d_backward(out.data(), x.data(), idx.data(), grad.data(), p);
    else
      adaptive_max_pool2d_forward(x.data(), out.data(), idx.data(), p);
  }
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4 + (backward ? x.size() * 4 : idx.size() * 8));
}

// Fractional max pooling of each shape's input to its pooled output size with the shape's kernel
// (pseudo-random starts, fixed samples), forward with indices, or the backward from them.
void BM_fractional_max_pool2d(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const bool backward = state.range(1);
  const Pool2dGeometry g = geometry(s);
  const FractionalMaxPool2dParams p{g.planes, g.h.input, g.w.input, g.h.output, g.w.output, s.k, s.k};
  const auto x = random_input(g.planes * g.input_plane(), false);
  std::vector<float> samples(2 * g.planes, 0.5f), out(g.planes * g.output_plane()), grad(x.size());
  std::vector<int64_t> idx(out.size());
  fractional_max_pool2d_forward(x.data(), samples.data(), out.data(), idx.data(), p);
  for (auto _ : state) {
    if (backward)
      fractional_max_pool2d_backward(out.data(), idx.data(), grad.data(), p);
    else
      fractional_max_pool2d_forward(x.data(), samples.data(), out.data(), idx.data(), p);
  }
  label(state, s);
  set_bytes(state, (x.size() + out.size()) * 4 + idx.size() * 8);
}

}  // namespace

BENCHMARK(BM_max_pool2d_forward)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->ArgNames({"shape", "indices"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_max_pool2d_backward)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1, 2}})
    ->ArgNames({"shape", "tie"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_avg_pool2d_forward)->Apply(all_shapes)->ArgName("shape")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_avg_pool2d_backward)->Apply(all_shapes)->ArgName("shape")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_lp_pool2d_forward)->Apply(all_shapes)->ArgName("shape")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_lp_pool2d_backward)->Apply(all_shapes)->ArgName("shape")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stochastic_pool2d_forward)
    ->Apply(all_shapes)
    ->ArgName("shape")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stochastic_pool2d_backward)
    ->Apply(all_shapes)
    ->ArgName("shape")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adaptive_max_pool2d)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->ArgNames({"shape", "backward"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_fractional_max_pool2d)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->ArgNames({"shape", "backward"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_max_unpool2d)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->ArgNames({"shape", "backward"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
