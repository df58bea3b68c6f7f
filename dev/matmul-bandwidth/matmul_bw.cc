// Weight-streaming rate of KernelTable::matmul_rows per weight type and ISA: a TinyLlama-sized
// row block (rows x k, default 5632 x 2048), 1..4 tokens, 1 and 2 threads. Copies of the
// matrix (>= 512 MiB in all, well past the L3) are cycled so every product reads DRAM.
// Prints GB/s of weight bytes read (median of the repetitions) as a Markdown table.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/system.h"
#include "core/thread_pool.h"
#include "kernels/kernel_table.h"
#include "quant/types.h"

namespace {

using quanta::GgmlType;

struct Options {
  int64_t rows = 5632;
  int64_t k = 2048;
  int reps = 5;
  size_t min_total = size_t{512} << 20;
  std::vector<int> tokens = {1};
  std::vector<std::string> types = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1",
                                    "q5_0", "q5_1", "q4_K", "q5_K", "q6_K"};
  std::vector<std::string> isas = {"ref", "avx2"};
};

std::vector<int> parse_ints(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p != '\0';) {
    out.push_back(std::atoi(p));
    const char* comma = std::strchr(p, ',');
    if (comma == nullptr) break;
    p = comma + 1;
  }
  return out;
}

std::vector<std::string> parse_strings(const char* s) {
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

// One weight type's copies and activations, and the timing of one configuration.
struct Workload {
  GgmlType type;
  size_t row_bytes;
  size_t act_row_bytes;
  std::vector<quanta::AlignedBuffer> copies;
  std::vector<float> x;
};

Workload make_workload(const Options& o, GgmlType type, int max_tokens) {
  Workload w{type, quanta::row_size(type, o.k), 0, {}, {}};
  const GgmlType act = quanta::type_traits(type).vec_dot_type;
  w.act_row_bytes = quanta::row_size(act, o.k);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const size_t bytes = w.row_bytes * o.rows;
  quanta::AlignedBuffer first(bytes);
  std::vector<float> row(o.k);
  for (int64_t r = 0; r < o.rows; ++r) {
    for (float& v : row) v = dist(rng);
    quanta::kernels::reference().from_float[static_cast<uint32_t>(type)](
        row.data(), first.as<uint8_t>() + r * w.row_bytes, o.k);
  }
  const size_t n_copies = std::max<size_t>(2, (o.min_total + bytes - 1) / bytes);
  for (size_t c = 0; c < n_copies; ++c) {
    quanta::AlignedBuffer b(bytes);
    std::memcpy(b.data(), first.data(), bytes);
    w.copies.push_back(std::move(b));
  }
  w.x.resize(static_cast<size_t>(o.k) * max_tokens);
  for (float& v : w.x) v = dist(rng);
  return w;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Median GB/s of weight bytes over `reps` passes through every copy. With one thread,
// `cpu_rate` also gets the rate per second of this thread's CPU time, which a busy machine
// (other processes taking the core) does not distort.
double measure(const Options& o, Workload& w, int n_tokens, quanta::ThreadPool& pool,
               double* cpu_rate) {
  const auto& table = quanta::kernels::active();
  const GgmlType act = quanta::type_traits(w.type).vec_dot_type;
  std::vector<uint8_t> xq(w.act_row_bytes * n_tokens);
  for (int t = 0; t < n_tokens; ++t) {
    table.from_float[static_cast<uint32_t>(act)](&w.x[t * o.k], &xq[t * w.act_row_bytes], o.k);
  }
  std::vector<float> y(static_cast<size_t>(o.rows) * n_tokens);
  std::vector<double> rates, cpu_rates;
  for (int rep = 0; rep < o.reps; ++rep) {
    const double t0 = quanta::now_seconds();
    const double c0 = thread_cpu_seconds();
    for (auto& copy : w.copies) {
      const uint8_t* wp = copy.as<uint8_t>();
      pool.parallel_for(o.rows, 16, [&](int64_t b, int64_t e) {
        table.matmul_rows(w.type, wp, w.row_bytes, o.k, xq.data(), w.act_row_bytes, n_tokens,
                          y.data(), o.rows, b, e);
      });
    }
    const double dt = quanta::now_seconds() - t0;
    const double dc = thread_cpu_seconds() - c0;
    const double gb = static_cast<double>(w.row_bytes * o.rows * w.copies.size()) / 1e9;
    rates.push_back(gb / dt);
    cpu_rates.push_back(gb / dc);
  }
  std::sort(rates.begin(), rates.end());
  std::sort(cpu_rates.begin(), cpu_rates.end());
  *cpu_rate = pool.n_threads() == 1 ? cpu_rates[cpu_rates.size() / 2] : 0.0;
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<int> threads = {1, 2};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rows")
      o.rows = std::atoll(argv[i + 1]);
    else if (flag == "--k")
      o.k = std::atoll(argv[i + 1]);
    else if (flag == "--reps")
      o.reps = std::atoi(argv[i + 1]);
    else if (flag == "--tokens")
      o.tokens = parse_ints(argv[i + 1]);
    else if (flag == "--threads")
      threads = parse_ints(argv[i + 1]);
    else if (flag == "--types")
      o.types = parse_strings(argv[i + 1]);
    else if (flag == "--isas")
      o.isas = parse_strings(argv[i + 1]);
    else if (flag == "--mib")
      o.min_total = static_cast<size_t>(std::atoll(argv[i + 1])) << 20;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const int max_tokens = *std::max_element(o.tokens.begin(), o.tokens.end());
  std::printf("matmul_rows weight streaming, %lld rows x k=%lld, median of %d, GB/s\n\n",
              static_cast<long long>(o.rows), static_cast<long long>(o.k), o.reps);
  std::printf("| type | isa | tokens | threads | GB/s | GB/s per CPU-second |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const std::string& name : o.types) {
    Workload w = make_workload(o, type_by_name(name), max_tokens);
    for (const std::string& isa : o.isas) {
      quanta::kernels::select(isa);
      for (int nt : o.tokens) {
        for (int th : threads) {
          quanta::ThreadPool pool(th);
          double cpu_gbs = 0.0;
          const double gbs = measure(o, w, nt, pool, &cpu_gbs);
          char cpu[32] = "";
          if (cpu_gbs > 0) std::snprintf(cpu, sizeof cpu, "%.1f", cpu_gbs);
          std::printf("| %s | %s | %d | %d | %.1f | %s |\n", name.c_str(), isa.c_str(), nt, th, gbs,
                      cpu);
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
