// End-to-end check against llama.cpp on every kernel path this machine runs: for every
// shared model with a golden file, the golden prompts' logits at every position (top-16),
// the full last-position logits and the greedy continuation (testlib/golden_logits.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "kernels/kernel_table.h"
#include "testlib/golden_logits.h"

namespace quanta {
namespace {

using GoldenCase = std::tuple<testlib::GoldenModel, std::string>;  // model, kernel path

class GoldenLogits : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenLogits, MatchesLlamaCpp) {
  const auto& [model, isa] = GetParam();
  kernels::select(isa);
  testlib::expect_golden_logits(model);
  kernels::select(kernels::available_isas().back());
}

INSTANTIATE_TEST_SUITE_P(SharedModels, GoldenLogits,
                         ::testing::Combine(::testing::ValuesIn(testlib::golden_models()),
                                            ::testing::ValuesIn(kernels::available_isas())),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param).name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name + "_" + std::get<1>(info.param);
                         });

}  // namespace
}  // namespace quanta
