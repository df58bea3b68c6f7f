// ThreadPool: spinning fork/join. The caller publishes a job by storing an atomic job word,
// runs thread 0's share itself and spins on a completion count; idle workers spin, then
// yield, then sleep on a condition variable (Dekker handshake on sleepers_ avoids lost wakes).
// Dynamic jobs count only the workers that joined before the caller ran out of work.
#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "core/error.h"

namespace quanta {
namespace {

using Clock = std::chrono::steady_clock;

// Job word: sequence << 32 | kDynamicJob if the split is dynamic | active threads.
constexpr uint64_t kActiveMask = 0x7fffffffull;
constexpr uint64_t kDynamicJob = 0x80000000ull;
// Gate word: sequence << 32 | kGateClosed once no worker may join | workers in the job.
constexpr uint64_t kGateCount = 0x7fffffffull;
constexpr uint64_t kGateClosed = 0x80000000ull;
// The caller pause-spins this long for the workers, then sleeps: a core left idle lets the
// kernel move a runnable worker onto it, which yielding would not.
constexpr int64_t kCallerSpinUs = 50;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// A gap this long between two polls of a spin loop means another task had this core: the
// machine is oversubscribed, so the waiter should block (a woken sleeper is scheduled
// promptly, a spinner waits for its time slice). A preempted worker then blocks without
// spinning for a window of 20 ms, doubled up to 0.5 s while preemptions recur.
constexpr int64_t kPreemptedUs = 100;
constexpr int64_t kMinContendedNs = 20'000'000;
constexpr int64_t kMaxContendedNs = 500'000'000;
constexpr int64_t kContendedSpinUs = 0;

// Spin-wait pacing: pause for spin_us, then sched_yield on every step; expired() turns true
// after limit_us, or at once when the waiter was preempted. The clock is read every 64
// pauses, so the fast path is just pauses.
class Backoff {
 public:
  // limit_us <= 0: expired() from the start (block without spinning).
  Backoff(int64_t spin_us, int64_t limit_us)
      : spin_us_(spin_us), limit_us_(limit_us), yielding_(limit_us <= 0) {}

  void step() {
    if (!yielding_) {
      cpu_relax();
      if ((++pauses_ & 63) != 0) return;
      if (pauses_ == 64) {
        start_ = last_ = Clock::now();
        return;
      }
      poll_clock();
      yielding_ = elapsed_us_ >= spin_us_;
      return;
    }
    std::this_thread::yield();
    poll_clock();
  }

  bool expired() const { return preempted_ || (yielding_ && elapsed_us_ >= limit_us_); }

  // Whether the wait was preempted, counting the time since the last poll; the clock is
  // read only if the wait lasted past the first 64 pauses.
  bool preempted_at_end() {
    if (pauses_ >= 64) poll_clock();
    return preempted_;
  }

 private:
  void poll_clock() {
    const Clock::time_point now = Clock::now();
    preempted_ |= now - last_ > std::chrono::microseconds(kPreemptedUs);
    elapsed_us_ = std::chrono::duration_cast<std::chrono::microseconds>(now - start_).count();
    last_ = now;
  }

  int64_t spin_us_;
  int64_t limit_us_;
  int64_t elapsed_us_ = 0;
  uint32_t pauses_ = 0;
  bool yielding_;
  bool preempted_ = false;
  Clock::time_point start_{};
  Clock::time_point last_{};
};

}  // namespace

ThreadPool::ThreadPool(int n_threads, SplitMode split, IdlePolicy idle)
    : n_threads_(std::max(1, n_threads)), split_(split), idle_(idle) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);  // published by the job word's store
  publish(++sequence_ << 32);
  for (auto& t : workers_) t.join();
}

bool ThreadPool::publish(uint64_t word) {
  // seq_cst store then seq_cst load, mirrored in wait_for_job: either we see the sleeper
  // or the sleeper sees the new word before it blocks.
  job_word_.store(word, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return false;
  { std::lock_guard<std::mutex> lock(sleep_mutex_); }  // a sleeper is now inside wait()
  wake_cv_.notify_all();
  return true;
}

uint64_t ThreadPool::wait_for_job(uint64_t seen, Contention& contention) {
  const bool contended = now_ns() < contention.until_ns;
  Backoff backoff(contended ? kContendedSpinUs : idle_.spin_us,
                  contended ? kContendedSpinUs : idle_.sleep_after_us);
  uint64_t word;
  while ((word = job_word_.load(std::memory_order_acquire)) == seen && !backoff.expired()) {
    backoff.step();
  }
  if (backoff.preempted_at_end()) {
    // Preempted again within a window of the last one ending: the load persists.
    const int64_t now = now_ns();
    const bool recurring = now < contention.until_ns + contention.window_ns;
    contention.window_ns =
        recurring ? std::min(2 * contention.window_ns, kMaxContendedNs) : kMinContendedNs;
    contention.until_ns = now + contention.window_ns;
  }
  if (word != seen) return word;
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  while ((word = job_word_.load(std::memory_order_seq_cst)) == seen) wake_cv_.wait(lock);
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return word;
}

void ThreadPool::run_share(int index) {
  if (!dynamic_) {
    const int64_t begin = index * chunk_;
    fn_(ctx_, begin, std::min(n_, begin + chunk_), index);
    return;
  }
  // Guided self-scheduling: claim ~1/(2*threads) of what is left, at least one grain.
  const int64_t divisor = 2 * static_cast<int64_t>(n_threads_);
  for (;;) {
    int64_t begin = next_.load(std::memory_order_relaxed);
    int64_t size;
    do {
      if (begin >= n_) return;
      const int64_t grains = std::max<int64_t>(1, (n_ - begin) / grain_ / divisor);
      size = grains * grain_;
    } while (!next_.compare_exchange_weak(begin, begin + size, std::memory_order_relaxed));
    fn_(ctx_, begin, std::min(n_, begin + size), index);
  }
}

bool ThreadPool::join(uint64_t word) {
  const uint64_t sequence = word >> 32;
  uint64_t gate = gate_.load(std::memory_order_acquire);
  do {
    if ((gate >> 32) != sequence || (gate & kGateClosed) != 0) return false;
  } while (!gate_.compare_exchange_weak(gate, gate + 1, std::memory_order_acq_rel,
                                        std::memory_order_acquire));
  return true;
}

void ThreadPool::wait_for_workers(bool woke_sleepers) {
  // No worker joins a dynamic job from here on: all its items are claimed.
  gate_.fetch_or(kGateClosed, std::memory_order_acq_rel);
  // Woken workers need many microseconds and may be queued on this very core (wake-affine
  // placement): spinning here would only delay them.
  const int64_t spin_us = woke_sleepers ? kContendedSpinUs : kCallerSpinUs;
  Backoff backoff(spin_us, spin_us);
  while ((gate_.load(std::memory_order_acquire) & kGateCount) != 0) {
    if (backoff.expired()) {
      // Same handshake as the sleeping workers, mirrored in finish_share.
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      caller_waiting_.store(true, std::memory_order_seq_cst);
      while ((gate_.load(std::memory_order_seq_cst) & kGateCount) != 0) done_cv_.wait(lock);
      caller_waiting_.store(false, std::memory_order_relaxed);
      return;
    }
    backoff.step();
  }
}

void ThreadPool::finish_share() {
  // After the decrement the job (and its ctx) may be gone; only pool members are touched.
  if ((gate_.fetch_sub(1, std::memory_order_seq_cst) & kGateCount) == 1 &&
      caller_waiting_.load(std::memory_order_seq_cst)) {
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }  // the caller is now inside wait()
    done_cv_.notify_one();
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t n_grains = (n + grain - 1) / grain;
  int64_t active = std::min<int64_t>(n_threads_, n_grains);
  if (active == 1) {  // touches no pool state: any thread may run it at any time
    fn(ctx, 0, n, 0);
    return;
  }
  // The job fields below belong to one call: a second call while one runs (nested in fn, or
  // from another thread: contexts sharing this pool used concurrently) is a bug. The
  // exchange claims the pool; its acquire pairs with the release that ends the last call,
  // so a call from another thread sees that call's writes.
  QUANTA_ASSERT(!busy_.exchange(true, std::memory_order_acquire));
  // Job fields are plain: workers read them only after acquiring the new job word (and, for
  // a dynamic job, joining it), and they are not rewritten before every worker counted in
  // the gate has left it.
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain;
  dynamic_ = split_ == SplitMode::kDynamic;
  if (dynamic_) {
    next_.store(0, std::memory_order_relaxed);
  } else {
    chunk_ = (n_grains + n_threads_ - 1) / n_threads_ * grain;
    active = (n + chunk_ - 1) / chunk_;
  }
  // A contiguous job counts its active workers up front (each owns a chunk); a dynamic one
  // counts the workers that join while items are left, so a late or sleeping worker never
  // holds up the caller.
  ++sequence_;
  gate_.store(dynamic_ ? sequence_ << 32
                       : (sequence_ << 32) | kGateClosed | static_cast<uint64_t>(active - 1),
              std::memory_order_relaxed);
  const bool woke_sleepers =
      publish((sequence_ << 32) | (dynamic_ ? kDynamicJob : 0) | static_cast<uint64_t>(active));
  try {
    run_share(0);
  } catch (...) {
    wait_for_workers(woke_sleepers);  // ctx may live in the frame the exception is about to unwind
    busy_.store(false, std::memory_order_release);
    throw;
  }
  wait_for_workers(woke_sleepers);
  busy_.store(false, std::memory_order_release);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  Contention contention;
  for (;;) {
    seen = wait_for_job(seen, contention);
    if (stop_.load(std::memory_order_relaxed)) return;
    // Inactive threads, and dynamic jobs' late comers, touch nothing but the job and gate
    // words: the caller does not wait for them, so the plain job fields may already belong
    // to a later job.
    if (index >= static_cast<int64_t>(seen & kActiveMask)) continue;
    if ((seen & kDynamicJob) != 0 && !join(seen)) continue;
    run_share(index);
    finish_share();
  }
}

}  // namespace quanta
