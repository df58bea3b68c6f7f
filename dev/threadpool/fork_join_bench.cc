// Fork/join cost of quanta::ThreadPool in microseconds: back-to-back tiny parallel_for
// calls, calls after a short serial gap (the decode pattern), and calls after a long idle.
// Build and run with dev/threadpool/run.sh (it can also build the pre-spinning pool).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// One cache line per thread so the work itself does not bounce lines between cores.
struct alignas(64) Slot {
  int64_t value = 0;
};

void busy_wait_us(double us) {
  const Clock::time_point t0 = Clock::now();
  while (us_since(t0) < us) {
  }
}

// Mean cost of one call over `calls` back-to-back calls; median over `reps` repetitions.
double back_to_back(quanta::ThreadPool& pool, std::vector<Slot>& slots, int calls, int reps) {
  const int64_t n = pool.n_threads();
  const auto work = [&](int64_t b, int64_t e, int t) { slots[t].value += e - b; };
  for (int i = 0; i < 1000; ++i) pool.parallel_for(n, 1, work);
  std::vector<double> per_call;
  for (int r = 0; r < reps; ++r) {
    const Clock::time_point t0 = Clock::now();
    for (int i = 0; i < calls; ++i) pool.parallel_for(n, 1, work);
    per_call.push_back(us_since(t0) / calls);
  }
  return median(per_call);
}

// Each call timed alone after `gap_us` of serial work on the caller; returns the samples.
std::vector<double> after_gap(quanta::ThreadPool& pool, std::vector<Slot>& slots, double gap_us,
                              int calls) {
  const int64_t n = pool.n_threads();
  const auto work = [&](int64_t b, int64_t e, int t) { slots[t].value += e - b; };
  std::vector<double> samples;
  samples.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    if (gap_us >= 1000) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(gap_us));
    } else {
      busy_wait_us(gap_us);
    }
    const Clock::time_point t0 = Clock::now();
    pool.parallel_for(n, 1, work);
    samples.push_back(us_since(t0));
  }
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 11;
  std::printf("| threads | scenario | median us/call | p90 us/call |\n|---|---|---|---|\n");
  for (int threads : {1, 2}) {
    quanta::ThreadPool pool(threads);
    std::vector<Slot> slots(threads);
    const double b2b = back_to_back(pool, slots, 20000, reps);
    std::printf("| %d | back-to-back (median of %d x 20000) | %.3f | - |\n", threads, reps, b2b);
    for (double gap : {10.0, 100.0}) {
      const std::vector<double> s = after_gap(pool, slots, gap, 2000 * reps / 11 + 200);
      std::printf("| %d | after %.0f us serial gap | %.3f | %.3f |\n", threads, gap, median(s),
                  percentile(s, 0.9));
    }
    const std::vector<double> idle = after_gap(pool, slots, 20000.0, 40);
    std::printf("| %d | after 20 ms idle (sleep) | %.3f | %.3f |\n", threads, median(idle),
                percentile(idle, 0.9));
  }
  return 0;
}
