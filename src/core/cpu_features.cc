// CPUID + XCR0 feature detection. CPUID says what the silicon has; XCR0 (read with xgetbv,
// valid only when CPUID reports OSXSAVE) says which register state the OS saves on context
// switches. A vector ISA is usable only when both agree.
#include "core/cpu_features.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define QUANTA_AMX_PERMISSION 1
#endif
#if defined(__x86_64__) || defined(__i386__)
#define QUANTA_X86 1
#else
#define QUANTA_X86 0
#endif

namespace quanta {
namespace {

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

bool bit(uint32_t reg, int b) {
  return ((reg >> b) & 1u) != 0;
}

// XCR0 bits: 1 SSE, 2 AVX (upper YMM), 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM.
constexpr uint64_t kXcr0Ymm = (1u << 1) | (1u << 2);
constexpr uint64_t kXcr0Zmm = kXcr0Ymm | (1u << 5) | (1u << 6) | (1u << 7);
// XCR0 bits 17 XTILECFG, 18 XTILEDATA (the AMX tile state).
constexpr uint64_t kXcr0Tiles = (1u << 17) | (1u << 18);

// Linux (5.16+) hands a process the 8 KiB tile-data state only on request: without it the
// first tile instruction faults. True when granted (or already granted).
bool request_amx_permission() {
#if QUANTA_AMX_PERMISSION
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

#if QUANTA_X86
CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  if (__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx) == 0) return CpuidRegs{};
  return r;
}

uint32_t max_leaf() {
  return __get_cpuid_max(0, nullptr);
}

// xgetbv(0) without needing -mxsave on this file.
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#else
CpuidRegs cpuid(uint32_t, uint32_t) {
  return CpuidRegs{};
}
uint32_t max_leaf() {
  return 0;
}
uint64_t read_xcr0() {
  return 0;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
  if (max_leaf() < 1) return f;
  const CpuidRegs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.ecx, 27);
  const bool avx = bit(l1.ecx, 28);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_ok = (xcr0 & kXcr0Ymm) == kXcr0Ymm;
  const bool zmm_ok = (xcr0 & kXcr0Zmm) == kXcr0Zmm;
  if (!ymm_ok) return f;
  f.fma = bit(l1.ecx, 12);
  f.f16c = bit(l1.ecx, 29);
  if (max_leaf() < 7) return f;
  const CpuidRegs l7 = cpuid(7, 0);
  const CpuidRegs l7s1 = l7.eax >= 1 ? cpuid(7, 1) : CpuidRegs{};
  f.avx2 = bit(l7.ebx, 5);
  f.avx_vnni = bit(l7s1.eax, 4);
  if (zmm_ok) {
    f.avx512f = bit(l7.ebx, 16);
    f.avx512bw = f.avx512f && bit(l7.ebx, 30);
    f.avx512vl = f.avx512f && bit(l7.ebx, 31);
    f.avx512dq = f.avx512f && bit(l7.ebx, 17);
    f.avx512_vnni = f.avx512f && bit(l7.ecx, 11);
    f.avx512_bf16 = f.avx512f && bit(l7s1.eax, 5);
  }
  // CPUID.7.0:EDX bits 22 AMX-BF16, 24 AMX-TILE, 25 AMX-INT8.
  const bool tiles = bit(l7.edx, 24) && (xcr0 & kXcr0Tiles) == kXcr0Tiles;
  if (tiles && (bit(l7.edx, 22) || bit(l7.edx, 25)) && request_amx_permission()) {
    f.amx_bf16 = bit(l7.edx, 22);
    f.amx_int8 = bit(l7.edx, 25);
  }
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string describe(const CpuFeatures& f) {
  const struct {
    bool on;
    const char* name;
  } flags[] = {{f.avx2, "avx2"},
               {f.fma, "fma"},
               {f.f16c, "f16c"},
               {f.avx512f, "avx512f"},
               {f.avx512bw, "avx512bw"},
               {f.avx512vl, "avx512vl"},
               {f.avx512dq, "avx512dq"},
               {f.avx512_vnni, "avx512_vnni"},
               {f.avx512_bf16, "avx512_bf16"},
               {f.avx_vnni, "avx_vnni"},
               {f.amx_bf16, "amx_bf16"},
               {f.amx_int8, "amx_int8"}};
  std::string out;
  for (const auto& flag : flags) {
    if (!flag.on) continue;
    if (!out.empty()) out += ' ';
    out += flag.name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace quanta
