// CPU instruction-set features, read once from CPUID and XCR0 (the OS must also save the
// wider registers: YMM for AVX/AVX2, opmask+ZMM for AVX-512, the tiles for AMX). Kernel
// dispatch reads this.
#pragma once

#include <string>

namespace quanta {

// Every flag is true only when the CPU has the instructions AND the OS enables their state.
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  // AMX: the tile registers (AMX-TILE) with BF16 / INT8 tile products; also requires that
  // Linux granted this process the tile-data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked
  // for once at detection).
  bool amx_bf16 = false;
  bool amx_int8 = false;
};

// Detected on first call (thread-safe), then cached. All false on non-x86 machines.
const CpuFeatures& cpu_features();

// "avx2 fma f16c ..." (the flags that are set, in struct order); "none" when none is.
std::string describe(const CpuFeatures& features);

}  // namespace quanta
