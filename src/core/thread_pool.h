// A fixed set of worker threads for data-parallel loops. One fork/join per call, no
// allocation per call: work is a function pointer plus context, split into contiguous ranges.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace quanta {

class ThreadPool {
 public:
  // fn(ctx, begin, end, thread): processes items [begin, end) on thread `thread` in
  // [0, n_threads()), so callers can index per-thread scratch.
  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);

  explicit ThreadPool(int n_threads);  // n_threads >= 1, the calling thread included
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Splits [0, n) into n_threads contiguous chunks (each a multiple of `grain` except the
  // last) and runs them in parallel; returns when all are done.
  void parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx);

  // Convenience wrapper for a callable `f(begin, end)` or `f(begin, end, thread)`; the
  // callable lives on the caller's stack, so nothing is allocated.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, const F& f) {
    parallel_for(
        n, grain,
        [](void* ctx, int64_t b, int64_t e, int thread) {
          const F& fn = *static_cast<const F*>(ctx);
          if constexpr (std::is_invocable_v<const F&, int64_t, int64_t, int>) {
            fn(b, e, thread);
          } else {
            fn(b, e);
          }
        },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

 private:
  void worker_loop(int index);
  void run_chunk(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;  // bumped for each parallel_for
  int pending_ = 0;          // workers still running the current generation
  bool stop_ = false;
  // Current job.
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
};

}  // namespace quanta
