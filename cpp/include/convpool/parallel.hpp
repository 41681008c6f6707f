#pragma once
// Threading policy shared by every kernel. Work is split into contiguous ranges of independent
// items (output rows, or plane/band pairs) and each output element has exactly one writer, so
// results never depend on the number of threads.

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace convpool {

namespace detail {
// Kept here rather than in OpenMP's per-thread ICV so that a setting made from one Python
// thread applies to kernels launched from any thread. 0 means "OpenMP's default".
inline std::atomic<int> requested_threads{0};

// libgomp's worker threads do not survive fork(): in a child forked after a parallel region has
// run, the next region waits for them forever. Such a child runs every kernel on its calling
// thread.
inline std::atomic<bool> team_started{false};
inline std::atomic<bool> forked_after_team{false};
inline const bool fork_handler_installed = [] {
  return pthread_atfork(nullptr, nullptr, [] {
           if (team_started.load()) forked_after_team.store(true);
         }) == 0;
}();
}  // namespace detail

// More threads than this only add scheduling and thread stacks: each OpenMP thread reserves a
// stack, and libgomp ends the process when it cannot create one.
inline int max_threads() { return 4 * std::max(omp_get_num_procs(), 1); }

inline void set_num_threads(int n) { detail::requested_threads.store(std::clamp(n, 1, max_threads())); }

inline int get_num_threads() {
  if (detail::forked_after_team.load()) return 1;
  const int n = detail::requested_threads.load();
  return n > 0 ? n : std::min(omp_get_max_threads(), max_threads());
}

// Calls body(begin, end) on disjoint contiguous chunks covering [0, count), one per thread.
// An exception from any chunk (std::bad_alloc from a thread's scratch) cannot leave an OpenMP
// region, which would terminate the process: the first one is kept and rethrown after the region.
template <class Body>
void parallel_for(int64_t count, Body&& body) {
  if (count <= 0) return;
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), count));
  if (threads <= 1) {
    body(int64_t{0}, count);
    return;
  }
  detail::team_started.store(true);
  std::exception_ptr failure;
  std::mutex failure_mutex;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = count * t / n, end = count * (t + 1) / n;
    try {
      if (begin < end) body(begin, end);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Backward passes scatter into the input, so they are partitioned by input ownership: every
// plane is cut into `bands` horizontal bands of input rows and each (plane, band) pair is one
// work item whose owner writes only its rows. Bands are only needed when there are fewer planes
// than threads; since each element still receives its contributions in the same fixed order,
// the banding never changes a result.
struct RowBands {
  int64_t planes, rows, bands;

  static RowBands for_planes(int64_t planes, int64_t rows) {
    const int64_t threads = get_num_threads();
    const int64_t bands =
        planes >= threads ? 1 : std::min<int64_t>(rows, (threads + planes - 1) / std::max<int64_t>(planes, 1));
    return RowBands{planes, rows, std::max<int64_t>(bands, 1)};
  }
  int64_t items() const { return planes * bands; }
  int64_t plane(int64_t item) const { return item / bands; }
  int64_t row_begin(int64_t item) const { return rows * (item % bands) / bands; }
  int64_t row_end(int64_t item) const { return rows * (item % bands + 1) / bands; }
};

}  // namespace convpool
