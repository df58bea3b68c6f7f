// Compute rate of KernelTable::matmul_rows for products with many tokens (prefill, batched
// decode): one thread, a weight matrix that stays in L3, GMAC/s per second of the thread's
// CPU time (which other processes on a shared machine distort less than wall time); the
// best of the repetitions (the least disturbed one) and the median.
//   gemm_bench [--types q4_0,q8_0] [--rows 2048] [--k 2048] [--tokens 1,16,64] [--reps 5]
// Types "q4_0x8" / "q8_0x8" are Q4_0 / Q8_0 repacked to WeightLayout::kQ4_0x8 / kQ8_0x8,
// "f16x16" / "bf16x16" F16 / BF16 in the panel layouts kF16x16 / kBF16x16 (kernels/repack.h),
// "q4_Kx8" / "q6_Kx8" Q4_K / Q6_K repacked to kQ4_Kx8 / kQ6_Kx8.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/repack.h"
#include "quant/types.h"

namespace {

using quanta::GgmlType;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  return out;
}

GgmlType type_by_name(const std::string& name) {
  for (uint32_t c = 0; c < quanta::kGgmlTypeCount; ++c) {
    const auto t = static_cast<GgmlType>(c);
    if (quanta::is_supported_type(t) && name == quanta::type_name(t)) return t;
  }
  std::fprintf(stderr, "unknown type %s\n", name.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> types = {"q4_0", "q8_0", "q4_K", "q6_K", "f16"};
  std::vector<std::string> tokens = {"1", "16", "64"};
  int64_t rows = 2048, k = 2048;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--types")
      types = split(argv[i + 1]);
    else if (f == "--tokens")
      tokens = split(argv[i + 1]);
    else if (f == "--rows")
      rows = std::atoll(argv[i + 1]);
    else if (f == "--k")
      k = std::atoll(argv[i + 1]);
    else if (f == "--reps")
      reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const auto& table = quanta::kernels::active();
  std::printf(
      "| type | tokens | GMAC/s per CPU-second: best, median of %d | isa %s, %lld x %lld |\n", reps,
      table.isa, static_cast<long long>(rows), static_cast<long long>(k));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const std::string& name : types) {
    using quanta::kernels::WeightLayout;
    const WeightLayout layout = name == "q4_0x8"    ? WeightLayout::kQ4_0x8
                                : name == "q8_0x8"  ? WeightLayout::kQ8_0x8
                                : name == "f16x16"  ? WeightLayout::kF16x16
                                : name == "bf16x16" ? WeightLayout::kBF16x16
                                : name == "bf16x16pairs" ? WeightLayout::kBF16x16Pairs
                                : name == "q4_Kx8"  ? WeightLayout::kQ4_Kx8
                                : name == "q6_Kx8"  ? WeightLayout::kQ6_Kx8
                                                    : WeightLayout::kGguf;
    const bool packed = layout != WeightLayout::kGguf;
    const GgmlType type = type_by_name(packed ? name.substr(0, name.find('x')) : name);
    const GgmlType act = quanta::type_traits(type).vec_dot_type;
    const size_t rb = quanta::row_size(type, k), ab = quanta::row_size(act, k);
    std::vector<uint8_t> w(rb * rows);
    std::vector<float> row(k);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = dist(rng);
      quanta::quantize_row(type, row.data(), w.data() + r * rb, k);
    }
    quanta::kernels::repack_rows(layout, type, k, w.data(), w.data(), rows);
    const quanta::kernels::MatmulRowsFn rows_fn = table.rows_fn(layout);
    for (const std::string& ts : tokens) {
      const int64_t n = std::atoll(ts.c_str());
      std::vector<uint8_t> xq(ab * n);
      for (int64_t t = 0; t < n; ++t) {
        for (float& v : row) v = dist(rng);
        table.from_float[static_cast<uint32_t>(act)](row.data(), xq.data() + t * ab, k);
      }
      std::vector<float> y(rows * n);
      const double macs = static_cast<double>(rows) * k * n;
      const int inner = std::max<int>(1, static_cast<int>(5e8 / macs));
      std::vector<double> rates;
      for (int rep = 0; rep < reps; ++rep) {
        const double c0 = cpu_seconds();
        for (int it = 0; it < inner; ++it) {
          rows_fn(type, w.data(), rb, k, xq.data(), ab, n, y.data(), rows, 0, rows);
        }
        rates.push_back(macs * inner / (cpu_seconds() - c0) / 1e9);
      }
      std::sort(rates.begin(), rates.end());
      std::printf("| %s | %lld | %.1f, %.1f | |\n", name.c_str(), static_cast<long long>(n),
                  rates.back(), rates[rates.size() / 2]);
      std::fflush(stdout);
    }
  }
  return 0;
}
