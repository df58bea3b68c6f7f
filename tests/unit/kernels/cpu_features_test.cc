// CPU feature detection agrees with the kernel's view (/proc/cpuinfo flags, which Linux
// clears for register state it does not enable), and the AVX2 path is offered exactly when
// its three features are present.
#include "core/cpu_features.h"

#include <gtest/gtest.h>

#include <fstream>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>

#include "kernels/kernel_table.h"

namespace quanta {
namespace {

// The "flags" of the first processor in /proc/cpuinfo; empty when unreadable.
std::set<std::string> proc_cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

TEST(CpuFeatures, MatchesProcCpuinfo) {
  const std::set<std::string> flags = proc_cpu_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags on this system";
  const CpuFeatures& f = cpu_features();
  const auto has = [&](const char* name) { return flags.count(name) != 0; };
  EXPECT_EQ(f.avx2, has("avx2"));
  EXPECT_EQ(f.fma, has("fma"));
  EXPECT_EQ(f.f16c, has("f16c"));
  EXPECT_EQ(f.avx512f, has("avx512f"));
  EXPECT_EQ(f.avx512bw, has("avx512bw"));
  EXPECT_EQ(f.avx512vl, has("avx512vl"));
  EXPECT_EQ(f.avx512dq, has("avx512dq"));
  EXPECT_EQ(f.avx512_vnni, has("avx512_vnni"));
  EXPECT_EQ(f.avx512_bf16, has("avx512_bf16"));
  EXPECT_EQ(f.avx_vnni, has("avx_vnni"));
  // The kernel grants the tile state on request (Linux 5.16+), so AMX follows the flags.
  EXPECT_EQ(f.amx_bf16, has("amx_tile") && has("amx_bf16"));
  EXPECT_EQ(f.amx_int8, has("amx_tile") && has("amx_int8"));
}

TEST(CpuFeatures, DescribeListsTheSetFlags) {
  CpuFeatures f;
  EXPECT_EQ(describe(f), "none");
  f.avx2 = f.f16c = f.avx512_vnni = true;
  EXPECT_EQ(describe(f), "avx2 f16c avx512_vnni");
  EXPECT_EQ(&cpu_features(), &cpu_features());  // detected once, cached
}

// Each x86 path is offered exactly when the CPU (and OS) supports its instructions.
TEST(CpuFeatures, EachPathOfferedExactlyWhenSupported) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  const struct {
    const char* isa;
    bool supported;
  } paths[] = {{"avx2", avx2},
               {"avxvnni", avx2 && f.avx_vnni},
               {"avx512", avx512},
               {"avx512vnni", avx512 && f.avx512_vnni},
               {"avx512bf16", avx512 && f.avx512_vnni && f.avx512_bf16},
               {"amx", avx512 && f.avx512_vnni && f.avx512_bf16 && f.amx_bf16 && f.amx_int8}};
  const std::vector<std::string> isas = kernels::available_isas();
  for (const auto& path : paths) {
    const bool offered = std::find(isas.begin(), isas.end(), path.isa) != isas.end();
    EXPECT_EQ(offered, path.supported) << path.isa << ": " << describe(f);
  }
}

}  // namespace
}  // namespace quanta
