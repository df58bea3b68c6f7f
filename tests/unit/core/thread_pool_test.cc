// ThreadPool: every index visited exactly once, chunks respect the grain, thread indices
// are in range, and many back-to-back fork/joins complete.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace quanta {
namespace {

TEST(ThreadPool, VisitsEveryIndexOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, ChunksAreGrainAlignedAndThreadIndicesInRange) {
  ThreadPool pool(3);
  std::atomic<int> bad{0};
  pool.parallel_for(100, 16, [&](int64_t b, int64_t e, int thread) {
    if (b % 16 != 0 || (e % 16 != 0 && e != 100)) bad.fetch_add(1);
    if (thread < 0 || thread >= 3) bad.fetch_add(1);
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST(ThreadPool, ManyForkJoins) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 2000; ++round) {
    pool.parallel_for(10, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  }
  EXPECT_EQ(sum.load(), 20000);
}

TEST(ThreadPool, EmptyRangeRunsNothing) {
  ThreadPool pool(2);
  bool ran = false;
  pool.parallel_for(0, 1, [&](int64_t, int64_t) { ran = true; });
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace quanta
