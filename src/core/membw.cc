// Streaming-read bandwidth: every pass, all threads start together (a barrier), each reads its
// contiguous slice once, and the pass ends when the last one finishes. AVX2 loads where the
// CPU has them (one function compiled for AVX2 by attribute, chosen at run time), else 64-bit
// loads; both keep enough loads in flight to saturate DRAM. Each thread's CPU time per pass
// tells whether another process took its core during the pass.
#include "core/membw.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <ctime>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/system.h"

namespace quanta {
namespace {

constexpr size_t kSliceAlign = 4096;

// XOR of all 64-bit words of [p, p + n); n is a multiple of 128. The result is consumed so
// that the loads cannot be removed.
uint64_t read_words(const std::byte* p, size_t n) {
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t a[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n / 8; i += 16) {
    for (int j = 0; j < 4; ++j) {
      a[j] ^= w[i + j] ^ w[i + 4 + j] ^ w[i + 8 + j] ^ w[i + 12 + j];
    }
  }
  return a[0] ^ a[1] ^ a[2] ^ a[3];
}

__attribute__((target("avx2"))) uint64_t read_avx2(const std::byte* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(x, 0) ^ _mm256_extract_epi64(x, 1) ^
                               _mm256_extract_epi64(x, 2) ^ _mm256_extract_epi64(x, 3));
}

using ReadFn = uint64_t (*)(const std::byte*, size_t);

ReadFn pick_reader() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? read_avx2 : read_words;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Times passes over slices of `buf`: the fastest pass in seconds and the count of passes in
// which no thread was descheduled.
BandwidthResult time_passes(const AlignedBuffer& buf, int n_threads, size_t slice, int passes) {
  const ReadFn read = pick_reader();
  std::atomic<uint64_t> sink{0};
  std::vector<double> cpu(n_threads);  // [n_threads] CPU seconds of the current pass
  double t_start = 0.0, best = 1e30;
  int clean = 0;
  bool starting = true;
  // The completion step runs once per phase while every thread waits: it stamps the start of
  // a pass, then its end.
  auto on_phase = [&]() noexcept {
    const double t = now_seconds();
    if (!starting) {
      best = std::min(best, t - t_start);
      if (*std::min_element(cpu.begin(), cpu.end()) >= 0.9 * (t - t_start)) ++clean;
    }
    t_start = t;
    starting = !starting;
  };
  std::barrier sync(n_threads, on_phase);
  const auto body = [&](int thread) {
    const std::byte* p = buf.data() + static_cast<size_t>(thread) * slice;
    uint64_t acc = 0;
    for (int pass = 0; pass < passes; ++pass) {
      sync.arrive_and_wait();
      const double c0 = thread_cpu_seconds();
      acc ^= read(p, slice);
      cpu[thread] = thread_cpu_seconds() - c0;
      sync.arrive_and_wait();
    }
    sink.fetch_xor(acc, std::memory_order_relaxed);
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < n_threads; ++t) workers.emplace_back(body, t);
  body(0);
  for (std::thread& w : workers) w.join();
  BandwidthResult r;
  r.bytes_per_s = static_cast<double>(slice) * n_threads / best;
  r.clean_passes = clean;
  return r;
}

}  // namespace

BandwidthResult measure_read_bandwidth(const BandwidthOptions& o) {
  if (o.n_threads < 1) fail("bandwidth: n_threads must be >= 1 (got %d)", o.n_threads);
  if (o.passes < 1) fail("bandwidth: passes must be >= 1 (got %d)", o.passes);
  const size_t slice = o.buffer_bytes / o.n_threads / kSliceAlign * kSliceAlign;
  if (slice == 0) {
    fail("bandwidth: a %zu-byte buffer is too small for %d threads", o.buffer_bytes, o.n_threads);
  }
  AlignedBuffer buf(slice * o.n_threads);  // zero-filled: every page is touched before timing
  return time_passes(buf, o.n_threads, slice, o.passes);
}

}  // namespace quanta
