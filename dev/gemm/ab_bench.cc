// Alternating A/B timing of matmul_rows for several weight types/layouts on one thread: each
// round calls every type once (1024 rows unless --rows), and the best time per type over the
// rounds is reported as GMAC per CPU-second. Robust to this VM's fast/slow phases (a few
// seconds each), which shift whole gemm_bench runs by ~30%.
//   ab_bench --types q4_0x8,q4_K,q4_Kx8 --tokens 64 --k 2048 [--rows 1024] [--rounds 60]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/repack.h"
#include "quant/types.h"

namespace {

using quanta::GgmlType;
using quanta::kernels::WeightLayout;

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Weight names as gemm_bench: a ggml type name, or <type>x8 / <type>x16 for a repacked layout.
struct Case {
  std::string name;
  GgmlType type;
  WeightLayout layout;
  std::vector<uint8_t> w, x;
  size_t rb = 0, ab = 0;
  double best = 1e30;
};

WeightLayout layout_of(const std::string& name) {
  if (name == "q4_0x8") return WeightLayout::kQ4_0x8;
  if (name == "q8_0x8") return WeightLayout::kQ8_0x8;
  if (name == "q4_Kx8") return WeightLayout::kQ4_Kx8;
  if (name == "q6_Kx8") return WeightLayout::kQ6_Kx8;
  if (name == "f16x16") return WeightLayout::kF16x16;
  if (name == "bf16x16") return WeightLayout::kBF16x16;
  return WeightLayout::kGguf;
}

GgmlType type_by_name(const std::string& name) {
  for (uint32_t code = 0; code < quanta::kGgmlTypeCount; ++code) {
    const auto type = static_cast<GgmlType>(code);
    if (quanta::is_supported_type(type) && name == quanta::type_name(type)) return type;
  }
  std::fprintf(stderr, "unknown type %s\n", name.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names = {"q4_0x8", "q4_K"};
  int64_t rows = 1024, k = 2048, n = 64;
  int rounds = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--types") {
      names = split(argv[i + 1]);
    } else if (f == "--tokens") {
      n = std::atoll(argv[i + 1]);
    } else if (f == "--k") {
      k = std::atoll(argv[i + 1]);
    } else if (f == "--rows") {
      rows = std::atoll(argv[i + 1]);
    } else if (f == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const auto& table = quanta::kernels::active();
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(k), y(rows * n);
  std::vector<Case> cases;
  for (const std::string& name : names) {
    Case c;
    c.name = name;
    c.layout = layout_of(name);
    c.type = type_by_name(c.layout == WeightLayout::kGguf ? name : name.substr(0, name.rfind('x')));
    const GgmlType act = quanta::type_traits(c.type).vec_dot_type;
    c.rb = quanta::row_size(c.type, k);
    c.ab = quanta::row_size(act, k);
    c.w.resize(c.rb * rows);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = dist(rng);
      quanta::quantize_row(c.type, row.data(), c.w.data() + r * c.rb, k);
    }
    quanta::kernels::repack_rows(c.layout, c.type, k, c.w.data(), c.w.data(), rows);
    c.x.resize(c.ab * n);
    for (int64_t t = 0; t < n; ++t) {
      for (float& v : row) v = dist(rng);
      table.from_float[static_cast<uint32_t>(act)](row.data(), c.x.data() + t * c.ab, k);
    }
    cases.push_back(std::move(c));
  }
  for (int it = 0; it < rounds; ++it) {
    for (Case& c : cases) {
      const double t0 = cpu_seconds();
      table.rows_fn(c.layout)(c.type, c.w.data(), c.rb, k, c.x.data(), c.ab, n, y.data(), rows, 0,
                              rows);
      c.best = std::min(c.best, cpu_seconds() - t0);
    }
  }
  for (const Case& c : cases) {
    std::printf("%s %.1f  ", c.name.c_str(), static_cast<double>(rows * k * n) / c.best / 1e9);
  }
  std::printf("(GMAC/s, best of %d; %lld x %lld, %lld tokens, isa %s)\n", rounds,
              static_cast<long long>(rows), static_cast<long long>(k), static_cast<long long>(n),
              table.isa);
  return 0;
}
