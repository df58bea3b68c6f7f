// Kernel dispatch: every ISA this machine can run is selectable and computes the same
// products as the scalar reference; QUANTA_FORCE_ISA picks a path at first use and unknown
// or unavailable names are rejected with a message listing the available ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/kernel_table.h"

namespace quanta::kernels {
namespace {

TEST(Dispatch, ReferenceIsAlwaysAvailable) {
  const std::vector<std::string> isas = available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), "ref");
  EXPECT_STREQ(reference().isa, "ref");
}

TEST(Dispatch, SelectSwitchesTheActiveTable) {
  for (const std::string& isa : available_isas()) {
    select(isa);
    EXPECT_EQ(active().isa, isa);
    EXPECT_NE(active().matmul_rows, nullptr);
    for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
      const auto type = static_cast<GgmlType>(code);
      if (!is_supported_type(type)) continue;
      EXPECT_NE(active().vec_dot[code], nullptr) << isa << " " << type_name(type);
      const auto act = static_cast<uint32_t>(type_traits(type).vec_dot_type);
      EXPECT_NE(active().from_float[act], nullptr) << isa << " " << type_name(type);
    }
    // Every path multiplies every layout (weights repacked under another path stay usable).
    for (int l = 1; l < kWeightLayoutCount; ++l) {
      EXPECT_NE(active().packed_rows[l], nullptr) << isa << " layout " << l;
    }
  }
  select(available_isas().back());
  // The reference never asks for repacking; AVX2 repacks Q4_0, Q8_0, F16, BF16 and Q4_K.
  for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
    EXPECT_EQ(reference().preferred_layout[code], WeightLayout::kGguf) << code;
  }
  if (std::string(active().isa) == "avx2") {
    EXPECT_EQ(active().preferred_layout[static_cast<uint32_t>(GgmlType::Q4_0)],
              WeightLayout::kQ4_0x8);
    EXPECT_EQ(active().preferred_layout[static_cast<uint32_t>(GgmlType::Q8_0)],
              WeightLayout::kQ8_0x8);
    EXPECT_EQ(active().preferred_layout[static_cast<uint32_t>(GgmlType::F16)],
              WeightLayout::kF16x16);
    EXPECT_EQ(active().preferred_layout[static_cast<uint32_t>(GgmlType::BF16)],
              WeightLayout::kBF16x16);
    EXPECT_EQ(active().preferred_layout[static_cast<uint32_t>(GgmlType::Q4_K)],
              WeightLayout::kQ4_Kx8);
  }
}

TEST(Dispatch, UnknownIsaIsRejected) {
  for (const char* bad : {"avx9000", "AVX2", "", "avx512_vnni_turbo"}) {
    try {
      select(bad);
      FAIL() << "expected an error for '" << bad << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
      for (const std::string& isa : available_isas()) {
        EXPECT_NE(msg.find(isa), std::string::npos) << msg;  // lists what exists
      }
    }
  }
}

// QUANTA_FORCE_ISA is read once, at the first use of active(): each case runs in a fresh
// child process (death-test machinery) whose exit code reports what it saw.
class ForceIsaEnv : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Sets QUANTA_FORCE_ISA (or clears it for null), then exits 0 if active() is `want`, 3 on a
// quanta::Error (message on stderr), 1 otherwise.
[[noreturn]] void child_expect_active(const char* env, const std::string& want) {
  if (env != nullptr) {
    setenv("QUANTA_FORCE_ISA", env, 1);
  } else {
    unsetenv("QUANTA_FORCE_ISA");
  }
  try {
    const KernelTable& t = active();
    std::exit(want == t.isa ? 0 : 1);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(3);
  }
}

TEST_F(ForceIsaEnv, DefaultIsTheBestAvailable) {
  const std::string best = available_isas().back();
  EXPECT_EXIT(child_expect_active(nullptr, best), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(child_expect_active("", best), ::testing::ExitedWithCode(0), "");
}

TEST_F(ForceIsaEnv, ForcesEachAvailableIsa) {
  for (const std::string& isa : available_isas()) {
    EXPECT_EXIT(child_expect_active(isa.c_str(), isa), ::testing::ExitedWithCode(0), "") << isa;
  }
}

TEST_F(ForceIsaEnv, RejectsUnknownNamesListingTheAvailableOnes) {
  std::string listed;
  for (const std::string& isa : available_isas()) listed += (listed.empty() ? "" : ", ") + isa;
  EXPECT_EXIT(child_expect_active("avx9000", "ref"), ::testing::ExitedWithCode(3),
              "QUANTA_FORCE_ISA.*'avx9000'.*available: " + listed);
}

// matmul_rows of every ISA equals the reference, for every supported weight type.
TEST(Dispatch, EveryIsaMatchesReferenceMatmul) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  const int64_t k = 512, rows = 8, tokens = 3;
  for (const std::string& isa : available_isas()) {
    select(isa);
    const KernelTable& t = active();
    for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
      const auto type = static_cast<GgmlType>(code);
      if (!is_supported_type(type)) continue;
      const GgmlType act_type = type_traits(type).vec_dot_type;
      std::vector<float> w(k * rows), x(k * tokens);
      for (float& v : w) v = dist(rng);
      for (float& v : x) v = dist(rng);
      const size_t wrow = row_size(type, k), arow = row_size(act_type, k);
      std::vector<uint8_t> wq(wrow * rows), xq(arow * tokens);
      for (int64_t r = 0; r < rows; ++r) quantize_row(type, &w[r * k], &wq[r * wrow], k);
      for (int64_t r = 0; r < tokens; ++r) quantize_row(act_type, &x[r * k], &xq[r * arow], k);
      std::vector<float> got(rows * tokens), want(rows * tokens);
      t.matmul_rows(type, wq.data(), wrow, k, xq.data(), arow, tokens, got.data(), rows, 0, rows);
      reference().matmul_rows(type, wq.data(), wrow, k, xq.data(), arow, tokens, want.data(), rows,
                              0, rows);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i])))
            << isa << " " << type_name(type) << " " << i;
      }
      // And the reference equals a direct vec_dot.
      EXPECT_EQ(want[1 * rows + 2], type_traits(type).vec_dot(k, &wq[2 * wrow], &xq[1 * arow]));
    }
  }
  select(available_isas().back());
}

}  // namespace
}  // namespace quanta::kernels
