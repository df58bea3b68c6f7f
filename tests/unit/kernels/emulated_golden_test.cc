// The golden comparisons against llama.cpp (testlib/golden_logits.h) on the SIMDe-emulated
// paths, for the shared models whose weight types those paths have kernels of their own for
// (Q4_0, Q8_0, Q4_K, Q6_K, F32, F16, BF16): the emulated kernels inside a whole model.
// Without AVX2 (no emulated paths) there are no cases, and EmulatedTables.AreListedAndSelectable
// fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/kernel_table.h"
#include "testlib/golden_logits.h"
#include "unit/kernels/emulated_isas.h"

namespace quanta {
namespace {

using EmulatedCase = std::tuple<testlib::GoldenModel, std::string>;  // model, emulated path

// Each shared model whose weight type an emulated path has kernels of its own for, on that
// path (the paths built on it reuse those kernels unchanged): Q4_0, Q8_0 and Q4_K_M (Q4_K
// and Q6_K) on the VNNI paths, F32, F16 and BF16 on avx512, BF16 on avx512bf16.
std::vector<EmulatedCase> emulated_cases() {
  const struct {
    const char* model_suffix;
    const char* isa;
  } pairs[] = {{"-q4_0", "avxvnni-simde"},    {"-q4_0", "avx512vnni-simde"},
               {"-q8_0", "avxvnni-simde"},    {"-q8_0", "avx512vnni-simde"},
               {"-Q8_0mix", "avx512vnni-simde"}, {"-f16", "avx512-simde"},
               {"-bf16", "avx512-simde"},     {"-bf16", "avx512bf16-simde"},
               {"-gqa-f32", "avx512-simde"},  {"-q4_k_m", "avxvnni-simde"},
               {"-q4_k_m", "avx512vnni-simde"}};
  const std::vector<std::string>& isas = kernels::emulated_isas();
  std::vector<EmulatedCase> out;
  for (const auto& pair : pairs) {
    if (std::find(isas.begin(), isas.end(), pair.isa) == isas.end()) continue;
    for (const testlib::GoldenModel& m : testlib::golden_models()) {
      if (std::string(m.name).ends_with(pair.model_suffix)) out.emplace_back(m, pair.isa);
    }
  }
  return out;
}

class EmulatedGolden : public ::testing::TestWithParam<EmulatedCase> {};

TEST_P(EmulatedGolden, MatchesLlamaCpp) {
  const auto& [model, isa] = GetParam();
  kernels::select(isa);
  testlib::expect_golden_logits(model);
  kernels::select(kernels::available_isas().back());
}

INSTANTIATE_TEST_SUITE_P(SharedModels, EmulatedGolden,
                         ::testing::ValuesIn(emulated_cases()),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param).name;
                           name += "_" + std::get<1>(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace quanta
