// In-process A/B of two versions of q4_0_dot.cc: ab_objects.sh compiles each into its own
// namespace (-Dquanta=quanta_a / quanta_b) and links both here; the two matmul_rows_q4_0x8
// are called alternately on the same kQ4_0x8 weights (best time each) and their outputs
// compared bit for bit. Usage: ab_objects ROWS K TOKENS ROUNDS [CALLS_PER_ROUND]
// Built with -DQUANTA_AB_Q8_0X8 (AB_KERNEL=q8_0x8): q8_0_dot.cc's matmul_rows_q8_0x8 instead;
// with -DQUANTA_AB_Q4_KX8 (AB_KERNEL=q4_Kx8): q4_k_dot.cc's matmul_rows_q4_Kx8; with
// -DQUANTA_AB_Q6_KX8 (AB_KERNEL=q6_Kx8): kquant_dot.cc's matmul_rows_q6_Kx8.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/repack.h"

// Values per block, activation block bytes and where its scale sits (F16, or F32 for Q8_K).
#ifdef QUANTA_AB_Q6_KX8
#define QUANTA_AB_ROWS matmul_rows_q6_Kx8
constexpr size_t kAbWBlockBytes = 210;  // Q6_K weights: d F16 at 208
constexpr auto kAbLayout = quanta::kernels::WeightLayout::kQ6_Kx8;
constexpr auto kAbType = quanta::GgmlType::Q6_K;
constexpr int64_t kAbValues = 256;
constexpr size_t kAbABlockBytes = 292;
constexpr bool kAbF32ActScale = true;
#elif defined(QUANTA_AB_Q4_KX8)
#define QUANTA_AB_ROWS matmul_rows_q4_Kx8
constexpr size_t kAbWBlockBytes = 144;  // Q4_K weights: d, dmin F16 at 0, 2
constexpr auto kAbLayout = quanta::kernels::WeightLayout::kQ4_Kx8;
constexpr auto kAbType = quanta::GgmlType::Q4_K;
constexpr int64_t kAbValues = 256;
constexpr size_t kAbABlockBytes = 292;  // Q8_K: F32 d, 256 quants, 16 int16 sums
constexpr bool kAbF32ActScale = true;
#elif defined(QUANTA_AB_Q8_0X8)
#define QUANTA_AB_ROWS matmul_rows_q8_0x8
constexpr size_t kAbWBlockBytes = 34;  // Q8_0 weights
constexpr auto kAbLayout = quanta::kernels::WeightLayout::kQ8_0x8;
constexpr auto kAbType = quanta::GgmlType::Q8_0;
constexpr int64_t kAbValues = 32;
constexpr size_t kAbABlockBytes = 34;
constexpr bool kAbF32ActScale = false;
#else
#define QUANTA_AB_ROWS matmul_rows_q4_0x8
constexpr size_t kAbWBlockBytes = 18;  // Q4_0 weights
constexpr auto kAbLayout = quanta::kernels::WeightLayout::kQ4_0x8;
constexpr auto kAbType = quanta::GgmlType::Q4_0;
constexpr int64_t kAbValues = 32;
constexpr size_t kAbABlockBytes = 34;
constexpr bool kAbF32ActScale = false;
#endif

#define QUANTA_AB_DECLARE(ns)                                                                   \
  namespace ns::kernels::avx2 {                                                                 \
  void QUANTA_AB_ROWS(const uint8_t*, size_t, int64_t, const uint8_t*, size_t, int64_t, float*, \
                      int64_t, int64_t, int64_t);                                               \
  }
QUANTA_AB_DECLARE(quanta_a)
QUANTA_AB_DECLARE(quanta_b)

// QUANTA_ASSERT's handler for the two renamed copies (q4_k_dot.cc asserts its type).
namespace quanta_a {
[[noreturn]] void assert_failed(const char*, const char*, int) { std::abort(); }
}  // namespace quanta_a
namespace quanta_b {
[[noreturn]] void assert_failed(const char*, const char*, int) { std::abort(); }
}  // namespace quanta_b

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: ab_objects ROWS K TOKENS ROUNDS [CALLS_PER_ROUND]\n");
    return 2;
  }
  const int64_t rows = std::atoll(argv[1]), k = std::atoll(argv[2]), nt = std::atoll(argv[3]);
  const int rounds = std::atoi(argv[4]), calls = argc > 5 ? std::atoi(argv[5]) : 1;
  if (rows <= 0 || k <= 0 || k % kAbValues != 0 || nt <= 0 || rounds <= 0 || calls <= 0) {
    std::fprintf(stderr, "ab_objects: bad sizes (K must be a multiple of %lld)\n",
                 static_cast<long long>(kAbValues));
    return 2;
  }
  const int64_t nb = k / kAbValues;
  const size_t row_bytes = nb * kAbWBlockBytes, act_bytes = nb * kAbABlockBytes;
  std::mt19937 rng(1);
  std::vector<uint8_t> w(rows * row_bytes), packed(rows * row_bytes), act(nt * act_bytes);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  for (auto& b : act) b = static_cast<uint8_t>(rng());
  const auto set_scale = [&](uint8_t* p) {  // small finite f16 scales
    const uint16_t h = static_cast<uint16_t>(0x2000 + (rng() & 0x3ff));
    std::memcpy(p, &h, 2);
  };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      set_scale(&w[r * row_bytes + b * kAbWBlockBytes]);
      if (kAbType == quanta::GgmlType::Q6_K) set_scale(&w[r * row_bytes + b * kAbWBlockBytes + 208]);
      if (kAbType == quanta::GgmlType::Q4_K) set_scale(&w[r * row_bytes + b * kAbWBlockBytes + 2]);
    }
  }
  for (int64_t t = 0; t < nt; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = &act[t * act_bytes + b * kAbABlockBytes];
      if (kAbF32ActScale) {
        const float d = 1e-3f * static_cast<float>(1 + rng() % 1000);
        std::memcpy(blk, &d, sizeof d);
      } else {
        set_scale(blk);
      }
    }
  }
  quanta::kernels::repack_rows(kAbLayout, kAbType, k, w.data(), packed.data(), rows);
  std::vector<float> y[2] = {std::vector<float>(nt * rows), std::vector<float>(nt * rows)};
  decltype(&quanta_a::kernels::avx2::QUANTA_AB_ROWS) fn[2] = {
      &quanta_a::kernels::avx2::QUANTA_AB_ROWS, &quanta_b::kernels::avx2::QUANTA_AB_ROWS};
  double best[2] = {1e30, 1e30};
  for (int r = 0; r < rounds; ++r) {
    for (int v = 0; v < 2; ++v) {
      const double t0 = cpu_seconds();
      for (int c = 0; c < calls; ++c) {
        fn[v](packed.data(), row_bytes, k, act.data(), act_bytes, nt, y[v].data(), rows, 0, rows);
      }
      const double dt = (cpu_seconds() - t0) / calls;
      if (dt < best[v]) best[v] = dt;
    }
  }
  const double macs = static_cast<double>(rows) * k * nt, pairs = macs / 256;
  const bool same = std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0;
  std::printf("rows %lld k %lld tokens %lld: A %.1f GMAC/s (%.2f cycles/pair at 3.16 GHz), "
              "B %.1f (%.2f), outputs %s\n",
              static_cast<long long>(rows), static_cast<long long>(k), static_cast<long long>(nt),
              macs / best[0] * 1e-9, best[0] * 3.16e9 / pairs, macs / best[1] * 1e-9,
              best[1] * 3.16e9 / pairs, same ? "identical" : "DIFFER");
  return same ? 0 : 1;
}
