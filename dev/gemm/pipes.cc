// Throughput of the AVX2 instructions the integer and float GEMM kernels are built from, on
// this core: 12 independent register chains per loop iteration (no memory traffic), one or
// two instruction kinds per loop, reported as instructions per nanosecond and per cycle of
// the FMA clock estimate. Tells which instructions share execution pipes (the ceiling of a
// kernel is set by the pipes its inner loop saturates). Build: dev/gemm/build.sh.
#include <time.h>

#include <cstdio>

namespace {

// "op %%ymm15,%%ymmN,%%ymmN" for 12 registers; an odd/even pair of kinds alternates.
#define QUANTA_PIPE_CLOBBERS                                                                   \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
      "xmm11"
#define QUANTA_PIPE_LOOP(A, B)                                                                    \
  [](long n) {                                                                                    \
    __asm__ volatile("vzeroall" ::: "memory");                                                    \
    for (long i = 0; i < n; ++i) {                                                                \
      __asm__ volatile(A " %%ymm15,%%ymm0,%%ymm0\n\t" B " %%ymm15,%%ymm1,%%ymm1\n\t" A              \
                         " %%ymm15,%%ymm2,%%ymm2\n\t" B " %%ymm15,%%ymm3,%%ymm3\n\t" A              \
                         " %%ymm15,%%ymm4,%%ymm4\n\t" B " %%ymm15,%%ymm5,%%ymm5\n\t" A              \
                         " %%ymm15,%%ymm6,%%ymm6\n\t" B " %%ymm15,%%ymm7,%%ymm7\n\t" A              \
                         " %%ymm15,%%ymm8,%%ymm8\n\t" B " %%ymm15,%%ymm9,%%ymm9\n\t" A              \
                         " %%ymm15,%%ymm10,%%ymm10\n\t" B " %%ymm15,%%ymm11,%%ymm11\n\t" ::      \
                           : QUANTA_PIPE_CLOBBERS);                                               \
    }                                                                                             \
  }

// This thread's CPU time in seconds (robust against other processes sharing the core).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Best of 3 timings of n iterations (12 instructions each), in instructions per nanosecond
// of CPU time. The registers start at zero (vzeroall): no denormal or NaN slow paths.
template <class Loop>
double rate(Loop loop) {
  constexpr long kIters = 50'000'000;
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = cpu_seconds();
    loop(kIters);
    const double s = cpu_seconds() - t0;
    if (12.0 * kIters / s / 1e9 > best) best = 12.0 * kIters / s / 1e9;
  }
  return best;
}

}  // namespace

int main() {
  // vfmadd231ps throughput is 2 per cycle on every AVX2 core: the clock estimate.
  const double fma = rate(QUANTA_PIPE_LOOP("vfmadd231ps", "vfmadd231ps"));
  const double ghz = fma / 2.0;
  std::printf("| instructions (alternating) | per ns | per cycle at %.2f GHz |\n|---|---:|---:|\n", ghz);
  const auto row = [&](const char* name, double r) {
    std::printf("| %s | %.2f | %.2f |\n", name, r, r / ghz);
  };
  row("vfmadd231ps", fma);
  row("vpmaddubsw", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vpmaddubsw")));
  row("vpmaddwd", rate(QUANTA_PIPE_LOOP("vpmaddwd", "vpmaddwd")));
  row("vmulps", rate(QUANTA_PIPE_LOOP("vmulps", "vmulps")));
  row("vpaddw", rate(QUANTA_PIPE_LOOP("vpaddw", "vpaddw")));
  row("vpmaddubsw + vpmaddwd", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vpmaddwd")));
  row("vpmaddubsw + vfmadd231ps", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vfmadd231ps")));
  row("vpmaddubsw + vpaddw", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vpaddw")));
  row("vpmaddubsw + vpsignb", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vpsignb")));
  row("vpmaddubsw + vpand", rate(QUANTA_PIPE_LOOP("vpmaddubsw", "vpand")));
  return 0;
}
