#pragma once
// Scratch memory that outlives a call: each calling thread keeps the largest buffer it has used and
// lends it to its next call. A layer's packed weights are as large as its work at batch 1 (9.4 MB
// for a 512-channel 3x3 layer); allocated and freed on every call, such a buffer goes back to the
// system and comes back as fresh pages, whose faults and zeroing then cost as much as the packing.
// What a thread keeps is bounded by the largest input it has been given.

#include <cstdint>
#include <memory>
#include <utility>

namespace convpool::detail {

template <typename T>
class ScratchBuffer {
 public:
  // At least `count` elements, uninitialized. A buffer taken while another is lent out (a nested
  // call) is a new allocation; when both are returned, the thread keeps the larger.
  explicit ScratchBuffer(int64_t count) {
    Cache& cache = thread_cache();
    if (cache.capacity >= count) {
      data_ = std::move(cache.data);
      capacity_ = std::exchange(cache.capacity, 0);
    } else {
      data_.reset(new T[count]);
      capacity_ = count;
    }
  }
  ScratchBuffer(ScratchBuffer&& other) noexcept
      : data_(std::move(other.data_)), capacity_(std::exchange(other.capacity_, 0)) {}
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(ScratchBuffer&&) = delete;
  ~ScratchBuffer() {
    Cache& cache = thread_cache();
    if (capacity_ > cache.capacity) {
      cache.data = std::move(data_);
      cache.capacity = capacity_;
    }
  }

  T* get() const { return data_.get(); }

 private:
  struct Cache {
    std::unique_ptr<T[]> data;
    int64_t capacity = 0;
  };
  static Cache& thread_cache() {
    thread_local Cache cache;
    return cache;
  }

  std::unique_ptr<T[]> data_;
  int64_t capacity_ = 0;
};

}  // namespace convpool::detail
