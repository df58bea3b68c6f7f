// Registers the AVX-512 and VNNI kernel tables compiled for AVX2 with SIMDe (see
// tests/CMakeLists.txt), so every test of kernels_tests also runs on them: "<isa>-simde"
// paths, built as dispatch.cc builds the native ones. Builds without them (not x86, the
// sanitizer build) register none.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "unit/kernels/emulated_isas.h"

#ifndef QUANTA_TEST_EMULATED_KERNELS
#define QUANTA_TEST_EMULATED_KERNELS 0
#endif

namespace quanta::kernels {
#if QUANTA_TEST_EMULATED_KERNELS
namespace avx512_emulated {
void fill_table(KernelTable& t);
}
namespace avx512vnni_emulated {
void fill_table(KernelTable& t);
}
namespace avx512bf16_emulated {
void fill_table(KernelTable& t);
}
namespace avxvnni_emulated {
void fill_table(KernelTable& t);
}
#endif

namespace {

#if QUANTA_TEST_EMULATED_KERNELS
KernelTable emulated_table(const KernelTable& base, const char* isa, void (*fill)(KernelTable&)) {
  KernelTable t = base;
  t.isa = isa;
  fill(t);
  return t;
}

std::vector<std::string> register_emulated_tables() {
  const KernelTable* avx2 = find_table("avx2");
  if (avx2 == nullptr) return {};
  static const KernelTable avxvnni =
      emulated_table(*avx2, "avxvnni-simde", avxvnni_emulated::fill_table);
  static const KernelTable avx512 =
      emulated_table(*avx2, "avx512-simde", avx512_emulated::fill_table);
  static const KernelTable avx512vnni =
      emulated_table(avx512, "avx512vnni-simde", avx512vnni_emulated::fill_table);
  static const KernelTable avx512bf16 =
      emulated_table(avx512vnni, "avx512bf16-simde", avx512bf16_emulated::fill_table);
  std::vector<std::string> names;
  for (const KernelTable* t : {&avxvnni, &avx512, &avx512vnni, &avx512bf16}) {
    register_isa(t->isa, t);
    names.emplace_back(t->isa);
  }
  return names;
}
#else
std::vector<std::string> register_emulated_tables() { return {}; }
#endif

// Registered before main, so every test of the binary sees them in available_isas().
const bool g_registered = !emulated_isas().empty();

TEST(EmulatedTables, AreListedAndSelectable) {
  if (!QUANTA_TEST_EMULATED_KERNELS) GTEST_SKIP() << "this build compiles no emulated paths";
  ASSERT_TRUE(g_registered) << "this machine has no AVX2, the emulation's base";
  const std::vector<std::string> isas = available_isas();
  for (const std::string& name : emulated_isas()) {
    EXPECT_NE(std::find(isas.begin(), isas.end(), name), isas.end()) << name;
    select(name);
    EXPECT_EQ(active().isa, name);
  }
  select(available_isas().back());
}

}  // namespace

const std::vector<std::string>& emulated_isas() {
  static const std::vector<std::string> names = register_emulated_tables();
  return names;
}

}  // namespace quanta::kernels
