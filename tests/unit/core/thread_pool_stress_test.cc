// ThreadPool under stress: 100k back-to-back tiny fork/joins with every result checked,
// workers and caller forced through the sleeping paths (a lost wake-up hangs, caught by a
// watchdog), idle pools that stop burning CPU, and pools destroyed while spinning, asleep,
// or right after work.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace quanta {
namespace {

// Aborts the test binary if the scope is not left within `seconds` (a hang = lost wake-up).
class Watchdog {
 public:
  explicit Watchdog(int seconds)
      : thread_([this, seconds] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: no progress in %d s (lost wake-up?)\n", seconds);
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// One round: n items stamped with `round`; returns false if any item was missed.
bool stamp_round(ThreadPool& pool, std::vector<int64_t>& out, int64_t n, int64_t round) {
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = round * 8 + i;
  });
  for (int64_t i = 0; i < n; ++i) {
    if (out[i] != round * 8 + i) return false;
  }
  return true;
}

TEST(ThreadPoolStress, HundredThousandTinyCalls) {
  Watchdog watchdog(300);
  ThreadPool pool(2);
  std::vector<int64_t> out(8, -1);
  for (int64_t round = 0; round < 100000; ++round) {
    pool.set_split(round % 3 == 2 ? SplitMode::kDynamic : SplitMode::kContiguous);
    ASSERT_TRUE(stamp_round(pool, out, 2 + round % 7, round)) << round;
  }
}

TEST(ThreadPoolStress, OversubscribedTinyCalls) {
  // More threads than this machine's cores: waiters must yield or sleep, not starve workers.
  Watchdog watchdog(300);
  for (int threads : {3, 4}) {
    ThreadPool pool(threads);
    std::vector<int64_t> out(8, -1);
    for (int64_t round = 0; round < 5000; ++round) {
      ASSERT_TRUE(stamp_round(pool, out, 1 + round % 8, round)) << threads << " " << round;
    }
  }
}

TEST(ThreadPoolStress, WorkersThatSleepAtOnceAreWoken) {
  // spin 0 / sleep after 0: every idle wait goes to the condition variable, so each call
  // races a worker going to sleep against the caller's publish; in dynamic rounds the caller
  // often finishes alone and closes the gate while a woken worker tries to join.
  Watchdog watchdog(300);
  for (int threads : {2, 3}) {
    ThreadPool pool(threads, SplitMode::kContiguous, IdlePolicy{0, 0});
    std::vector<int64_t> out(8, -1);
    for (int64_t round = 0; round < 20000; ++round) {
      pool.set_split(round % 2 == 1 ? SplitMode::kDynamic : SplitMode::kContiguous);
      ASSERT_TRUE(stamp_round(pool, out, 1 + round % 8, round)) << threads << " " << round;
    }
  }
}

TEST(ThreadPoolStress, CallsSpacedAroundTheSleepThreshold) {
  // Gaps of 0..60 us with a 20 us sleep threshold: workers are caught spinning, yielding,
  // going to sleep and asleep.
  Watchdog watchdog(300);
  ThreadPool pool(2, SplitMode::kContiguous, IdlePolicy{5, 20});
  std::vector<int64_t> out(8, -1);
  for (int64_t round = 0; round < 5000; ++round) {
    pool.set_split(round % 2 == 1 ? SplitMode::kDynamic : SplitMode::kContiguous);
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(round % 61);
    while (std::chrono::steady_clock::now() < until) {
    }
    ASSERT_TRUE(stamp_round(pool, out, 2 + round % 7, round)) << round;
  }
}

TEST(ThreadPoolStress, CallerSleepsWhileWorkersRunLongShares) {
  // Worker shares take ~0.3 ms, far past the caller's spin: it sleeps and must be woken.
  Watchdog watchdog(300);
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(3);
  for (int round = 0; round < 200; ++round) {
    pool.parallel_for(3, 1, [&](int64_t b, int64_t e, int t) {
      if (t != 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
      hits[b].fetch_add(1);
    });
  }
  for (auto& h : hits) EXPECT_EQ(h.load(), 200);
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

TEST(ThreadPoolStress, IdlePoolStopsBurningCpu) {
  // Default policy: spin <= 5 ms after the last call, then sleep. Over 300 ms of idle
  // wall time a spinning worker would use ~300 ms of CPU; a sleeping one ~0.
  ThreadPool pool(2);
  std::vector<int64_t> out(8, -1);
  ASSERT_TRUE(stamp_round(pool, out, 8, 1));
  for (int i = 0; i < 200 && pool.sleeping_workers() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(pool.sleeping_workers(), 1);
  const double cpu0 = process_cpu_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(process_cpu_ms() - cpu0, 30.0);
  ASSERT_TRUE(stamp_round(pool, out, 8, 2));  // and the sleepers wake up again
}

TEST(ThreadPoolStress, DestroyWhileIdleAsleepOrRightAfterWork) {
  Watchdog watchdog(300);
  for (int i = 0; i < 100; ++i) {
    const int threads = 2 + i % 3;
    { ThreadPool never_used(threads); }
    {
      ThreadPool after_work(threads);
      std::vector<int64_t> out(8, -1);
      ASSERT_TRUE(stamp_round(after_work, out, 8, i));
    }
    if (i % 10 == 0) {
      ThreadPool asleep(threads, SplitMode::kContiguous, IdlePolicy{1, 100});
      std::vector<int64_t> out(8, -1);
      ASSERT_TRUE(stamp_round(asleep, out, 8, i));
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  }
}

}  // namespace
}  // namespace quanta
