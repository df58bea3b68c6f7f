// A fixed set of worker threads for data-parallel loops. One fork/join per call, no
// allocation per call: work is a function pointer plus context, split into ranges. Workers
// spin on an atomic word between calls (then yield, then sleep) so a fork/join costs ~1 us.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace quanta {

// How parallel_for divides [0, n) among the threads.
enum class SplitMode {
  // n_threads contiguous chunks of equal size (multiples of `grain`): thread t gets chunk t.
  // Best for uniform work streaming memory (matrix rows); one call of fn per thread.
  kContiguous,
  // Guided self-scheduling: threads repeatedly claim pieces from a shared counter, each
  // piece a multiple of `grain`, shrinking as the range runs out. Balances uneven work (and
  // threads slowed by other load); fn may be called several times per thread and a thread
  // may get no work at all. The caller waits only for workers that joined the call before
  // every piece was claimed: a worker still asleep or preempted holds nothing up.
  kDynamic,
};

// How an idle worker waits for the next parallel_for: it spins (pause instruction) for
// spin_us, then spins with sched_yield until sleep_after_us (counted from the start of the
// wait), then sleeps on a condition variable until the next call wakes it (costs tens of
// us). {0, 0} never spins. A worker whose spin was preempted (another task wanted the
// core) sleeps at once for the next 20 ms, up to 0.5 s while preemptions recur: on a busy
// machine a sleeper is scheduled sooner than a spinner.
struct IdlePolicy {
  int64_t spin_us = 100;
  int64_t sleep_after_us = 5000;
};

class ThreadPool {
 public:
  // fn(ctx, begin, end, thread): processes items [begin, end) on thread `thread` in
  // [0, n_threads()), so callers can index per-thread scratch.
  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);

  // n_threads >= 1, the calling thread included (values < 1 mean 1).
  explicit ThreadPool(int n_threads, SplitMode split = SplitMode::kContiguous,
                      IdlePolicy idle = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }
  // Workers asleep on the condition variable right now (diagnostics and tests).
  int sleeping_workers() const { return sleepers_.load(std::memory_order_relaxed); }
  SplitMode split() const { return split_; }
  // Changes the split of later calls; only from the thread that calls parallel_for.
  void set_split(SplitMode split) { split_ = split; }

  // Runs fn over [0, n) split by split() into pieces whose boundaries are multiples of
  // `grain` (except the end n); the calling thread works as thread 0. Returns when all work
  // is done. Any thread may call, one call at a time: several users (contexts) may share a
  // pool when their calls never overlap; fn must not call parallel_for on the same pool.
  // Both are checked (QUANTA_ASSERT) for calls that use more than one thread.
  // An exception from thread 0's fn propagates once the workers are done; fn must not throw
  // on the other threads (std::terminate).
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
  static constexpr int kCacheLine = 64;

  // A worker's record of being preempted while it spun: until until_ns (steady clock, ns)
  // it blocks without spinning; window_ns doubles while preemptions keep recurring.
  struct Contention {
    int64_t until_ns = 0;
    int64_t window_ns = 0;
  };

  void worker_loop(int index);
  uint64_t wait_for_job(uint64_t seen, Contention& contention);  // next job word != seen
  void run_share(int index);    // thread `index`'s part of the current job
  bool publish(uint64_t word);  // stores the job word; true if it woke sleeping workers
  bool join(uint64_t word);     // worker: enters dynamic job `word` unless the gate closed
  void wait_for_workers(bool woke_sleepers);  // caller: closes the gate, waits for its count
  void finish_share();                        // worker: leaves the gate, wakes the caller

  const int n_threads_;
  SplitMode split_;
  const IdlePolicy idle_;
  std::vector<std::thread> workers_;

  // Written by the caller, read by the spinning workers: one cache line. job_word_ =
  // (sequence << 32) | active threads; its release store publishes the plain job fields,
  // which stay unchanged until every active worker has finished. The sequence may wrap:
  // workers only compare the word with the last one they saw.
  alignas(kCacheLine) std::atomic<uint64_t> job_word_{0};
  std::atomic<int> sleepers_{0};  // workers asleep (or about to be) on wake_cv_
  std::atomic<bool> stop_{false};
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  int64_t chunk_ = 0;     // kContiguous: items per thread (a multiple of grain_)
  bool dynamic_ = false;  // the current job uses SplitMode::kDynamic

  // (sequence << 32) | closed bit | workers in the current job: for a contiguous job its
  // active workers (threads 1..active-1) from the start, for a dynamic one those that joined
  // before the caller closed the gate. The caller spins until the count is 0, then sleeps on
  // done_cv_ with caller_waiting_ set.
  alignas(kCacheLine) std::atomic<uint64_t> gate_{0};
  std::atomic<bool> caller_waiting_{false};
  // kDynamic: first unclaimed item.
  alignas(kCacheLine) std::atomic<int64_t> next_{0};
  // Caller side: jobs published so far; a parallel_for is running (claimed by an exchange:
  // catches nested and overlapping calls).
  alignas(kCacheLine) uint64_t sequence_ = 0;
  std::atomic<bool> busy_{false};

  // Sleeping fallback for long-idle workers and a long-waiting caller.
  alignas(kCacheLine) std::mutex sleep_mutex_;
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
};

}  // namespace quanta
