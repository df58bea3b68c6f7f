// The GEMM tile shapes of matmul_rows (products with several tokens: prefill, batched
// decode) on every fast ISA and weight type: each token's outputs are bit-identical to the
// same token multiplied alone (batch invariance: a sequence's greedy output must not depend
// on what else is in its batch), and every output is within the rounding bound of the
// scalar reference, for row counts that are not a multiple of the tile, 1..N tokens, token
// counts past the activation chunk, and rows with a tail of blocks after the last group of 8.
// Weights repacked at load (kernels/repack.h) round-trip exactly and give bit-identical
// products to the GGUF layout on every path, the reference included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/repack.h"

namespace quanta::kernels {
namespace {

using testing::act_type;
using testing::fast_isas;
using testing::IsaScope;

// `n` rows of `k` values quantized to `type`, back to back.
std::vector<uint8_t> random_rows(std::mt19937& rng, GgmlType type, int64_t n, int64_t k) {
  std::vector<uint8_t> out;
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<uint8_t> q = testing::quantize(type, testing::normal_row(rng, k));
    out.insert(out.end(), q.begin(), q.end());
  }
  return out;
}

// y[t * n_rows + r] for all rows and tokens through the active table.
std::vector<float> product(GgmlType type, const std::vector<uint8_t>& w, int64_t n_rows, int64_t k,
                           const uint8_t* act, int64_t n_tokens) {
  std::vector<float> y(n_rows * n_tokens, -1.0f);
  active().matmul_rows(type, w.data(), row_size(type, k), k, act, row_size(act_type(type), k),
                       n_tokens, y.data(), n_rows, 0, n_rows);
  return y;
}

// Lengths per type: a tail of blocks after full groups of 8 (block types), odd (floats).
std::vector<int64_t> gemm_lengths(GgmlType type) {
  const int64_t bs = testing::block_of(type);
  if (bs == 1) return {37, 520};
  return {bs, 11 * bs};
}

TEST(Gemm, TokenResultsDoNotDependOnTheBatch) {
  std::mt19937 rng(31);
  const int64_t n_rows = 11;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      for (int64_t k : gemm_lengths(type)) {
        const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
        const size_t ab = row_size(act_type(type), k);
        const std::vector<uint8_t> act = random_rows(rng, act_type(type), 40, k);
        // Each token alone (the decode path).
        std::vector<std::vector<float>> alone;
        for (int64_t t = 0; t < 40; ++t)
          alone.push_back(product(type, w, n_rows, k, &act[t * ab], 1));
        // The same tokens in batches of every size, starting at different tokens.
        for (int64_t n : {2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 33}) {
          const int64_t first = n % 7;
          const std::vector<float> y = product(type, w, n_rows, k, &act[first * ab], n);
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              ASSERT_EQ(y[t * n_rows + r], alone[first + t][r])
                  << isa << " " << type_name(type) << " k=" << k << " batch " << n << " token " << t
                  << " row " << r;
            }
          }
        }
      }
    }
  }
}

// Products large enough for several token chunks and row tiles, against the reference.
TEST(Gemm, LargeProductsMatchReference) {
  std::mt19937 rng(32);
  const int64_t n_rows = 37, n_tokens = 150;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const int64_t k = testing::block_of(type) == 1 ? 1000 : 1024;
      const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
      const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
      const std::vector<float> got = product(type, w, n_rows, k, act.data(), n_tokens);
      std::vector<float> want(n_rows * n_tokens);
      reference().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows,
                              0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < n_rows; ++r) {
          const double bound = testing::rounding_bound(type, &w[r * wb], &act[t * ab], k);
          ASSERT_NEAR(got[t * n_rows + r], want[t * n_rows + r], bound)
              << isa << " " << type_name(type) << " token " << t << " row " << r;
        }
      }
    }
  }
}

// Q8_0 weights at the ends of int8 (-128 is never written by the quantizer but is a valid
// stored value) against activations at +-127: the decode and GEMM paths compute each block's
// integer sum differently (maddubs with the sign moved, int16 madd), so both must be exact
// there too: batch results equal each token alone, and the f64 dot product; the repacked
// layout (kQ8_0x8) gives the same bits.
TEST(Gemm, Q8_0ExtremeLevelsAreExactInEveryPath) {
  std::mt19937 rng(34);
  const int64_t n_rows = 5, k = 32 * 19, n_tokens = 14;  // 2 groups of 8 and a tail of 3
  const size_t rb = row_size(GgmlType::Q8_0, k);
  std::vector<uint8_t> w = random_rows(rng, GgmlType::Q8_0, n_rows, k);
  std::vector<uint8_t> act = random_rows(rng, GgmlType::Q8_0, n_tokens, k);
  std::uniform_int_distribution<int> coin(0, 2);
  for (size_t b = 0; b < w.size() / sizeof(BlockQ8_0); ++b) {
    for (int i = 0; i < 32; ++i) {
      const int c = coin(rng);  // -128, 127 or the random level
      if (c < 2) w[b * sizeof(BlockQ8_0) + 2 + i] = static_cast<uint8_t>(c == 0 ? -128 : 127);
    }
  }
  for (size_t b = 0; b < act.size() / sizeof(BlockQ8_0); ++b) {
    for (int i = 0; i < 32; ++i) {
      act[b * sizeof(BlockQ8_0) + 2 + i] = static_cast<uint8_t>(coin(rng) == 0 ? -127 : 127);
    }
  }
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    const std::vector<float> batch = product(GgmlType::Q8_0, w, n_rows, k, act.data(), n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const std::vector<float> alone = product(GgmlType::Q8_0, w, n_rows, k, &act[t * rb], 1);
      for (int64_t r = 0; r < n_rows; ++r) {
        ASSERT_EQ(batch[t * n_rows + r], alone[r]) << isa << " token " << t << " row " << r;
        const double want = testing::exact_dot(GgmlType::Q8_0, &w[r * rb], &act[t * rb], k);
        ASSERT_NEAR(batch[t * n_rows + r], want,
                    testing::rounding_bound(GgmlType::Q8_0, &w[r * rb], &act[t * rb], k))
            << isa << " token " << t << " row " << r;
      }
    }
    // The same weights in WeightLayout::kQ8_0x8 give the same bits, in a batch and alone.
    std::vector<uint8_t> packed(w.size());
    repack_rows(WeightLayout::kQ8_0x8, GgmlType::Q8_0, k, w.data(), packed.data(), n_rows);
    const MatmulRowsFn packed_rows = active().rows_fn(WeightLayout::kQ8_0x8);
    std::vector<float> got(n_rows * n_tokens, -1.0f);
    packed_rows(GgmlType::Q8_0, packed.data(), rb, k, act.data(), rb, n_tokens, got.data(), n_rows,
                0, n_rows);
    EXPECT_EQ(got, batch) << isa;
    packed_rows(GgmlType::Q8_0, packed.data(), rb, k, &act[3 * rb], rb, 1, got.data(), n_rows, 0,
                n_rows);
    for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(got[r], batch[3 * n_rows + r]) << isa << r;
  }
}

// Float rows longer than one reduction segment (4096 values for F16/BF16): the GEMM path
// adds the segments in the decode path's order, so a token in a batch still equals the token
// alone, and both stay within the rounding bound of the reference.
TEST(Gemm, FloatRowsOverSeveralSegmentsAreBatchInvariant) {
  std::mt19937 rng(34);
  const int64_t n_rows = 9, n_tokens = 7, k = 8192 + 72;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : {GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
      const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
      const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
      const std::vector<float> batch = product(type, w, n_rows, k, act.data(), n_tokens);
      std::vector<float> want(n_rows * n_tokens);
      reference().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows,
                              0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const std::vector<float> alone = product(type, w, n_rows, k, &act[t * ab], 1);
        for (int64_t r = 0; r < n_rows; ++r) {
          ASSERT_EQ(batch[t * n_rows + r], alone[r])
              << isa << " " << type_name(type) << " token " << t << " row " << r;
          const double bound = testing::rounding_bound(type, &w[r * wb], &act[t * ab], k);
          ASSERT_NEAR(batch[t * n_rows + r], want[t * n_rows + r], bound)
              << isa << " " << type_name(type) << " token " << t << " row " << r;
        }
      }
    }
  }
}

// A product split over row ranges (as the thread pool splits it) equals the whole product.
TEST(Gemm, RowSplitsOfManyTokensAreExact) {
  std::mt19937 rng(33);
  const int64_t n_rows = 29, n_tokens = 21, k = 512;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
      const std::vector<float> whole = product(type, w, n_rows, k, act.data(), n_tokens);
      std::vector<float> split(n_rows * n_tokens);
      const int64_t cuts[] = {0, 3, 4, 16, 23, n_rows};
      for (int c = 0; c + 1 < 6; ++c) {
        active().matmul_rows(type, w.data(), row_size(type, k), k, act.data(),
                             row_size(act_type(type), k), n_tokens, split.data(), n_rows, cuts[c],
                             cuts[c + 1]);
      }
      EXPECT_EQ(whole, split) << isa << " " << type_name(type);
    }
  }
}

// `w` (n_rows rows of length k) repacked into `layout`, checking that unpacking restores it,
// that repacking in place gives the same bytes, and (with `moves_bytes`) that bytes moved.
std::vector<uint8_t> checked_repack(GgmlType type, WeightLayout layout, int64_t k, int64_t n_rows,
                                    const std::vector<uint8_t>& w, bool moves_bytes) {
  std::vector<uint8_t> packed(w.size()), back(w.size());
  repack_rows(layout, type, k, w.data(), packed.data(), n_rows);
  if (moves_bytes) {
    EXPECT_NE(packed, w) << k;
  }
  unpack_rows(layout, type, k, packed.data(), back.data(), n_rows);
  EXPECT_EQ(back, w) << k;
  std::vector<uint8_t> in_place = w;
  repack_rows(layout, type, k, in_place.data(), in_place.data(), n_rows);
  EXPECT_EQ(in_place, packed) << k;
  return packed;
}

// Weights of `type` in `layout`: exact round trip and dequantization; on every path (the
// reference too) each token's products equal the GGUF layout's bit for bit, alone or in a
// batch, over row splits, and with rows of no full group, groups only, and groups + tail
// (lengths `ks`).
void check_repacked(GgmlType type, WeightLayout layout, std::initializer_list<int64_t> ks) {
  std::mt19937 rng(34);
  const int64_t n_rows = 13, n_tokens = 23;
  for (int64_t k : ks) {
    ASSERT_TRUE(layout_fits(layout, type, k, n_rows));
    const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
    const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
    const std::vector<uint8_t> packed =
        checked_repack(type, layout, k, n_rows, w, /*moves_bytes=*/k >= 256);
    std::vector<float> got(k);
    dequantize_packed_row(layout, type, &packed[5 * wb], got.data(), k);
    EXPECT_EQ(got, testing::dequantize(type, &w[5 * wb], k)) << k;
    const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
    for (const std::string& isa : available_isas()) {
      IsaScope scope(isa);
      const MatmulRowsFn packed_rows = active().rows_fn(layout);
      std::vector<float> want(n_rows * n_tokens), whole(n_rows * n_tokens, -1.0f);
      active().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows, 0,
                           n_rows);
      const int64_t cuts[] = {0, 4, 5, 11, n_rows};
      for (int c = 0; c + 1 < 5; ++c) {
        packed_rows(type, packed.data(), wb, k, act.data(), ab, n_tokens, whole.data(), n_rows,
                    cuts[c], cuts[c + 1]);
      }
      EXPECT_EQ(whole, want) << isa << " k=" << k;
      for (int64_t t = 0; t < n_tokens; t += 3) {
        std::vector<float> alone(n_rows);
        packed_rows(type, packed.data(), wb, k, &act[t * ab], ab, 1, alone.data(), n_rows, 0,
                    n_rows);
        for (int64_t r = 0; r < n_rows; ++r) {
          ASSERT_EQ(alone[r], want[t * n_rows + r]) << isa << " k=" << k << " token " << t;
        }
      }
    }
  }
}

TEST(Gemm, RepackedQ4_0EqualsGgufLayout) {
  EXPECT_FALSE(layout_fits(WeightLayout::kQ4_0x8, GgmlType::Q8_0, 256, 1));
  check_repacked(GgmlType::Q4_0, WeightLayout::kQ4_0x8, {32, 256, 352, 2144});
}

// Q8_0 in WeightLayout::kQ8_0x8, also past one segment of the reduction (240 blocks).
TEST(Gemm, RepackedQ8_0EqualsGgufLayout) {
  EXPECT_FALSE(layout_fits(WeightLayout::kQ8_0x8, GgmlType::Q4_0, 256, 1));
  EXPECT_FALSE(layout_fits(WeightLayout::kQ8_0x8, GgmlType::Q8_0, 48, 1));
  check_repacked(GgmlType::Q8_0, WeightLayout::kQ8_0x8, {32, 256, 352, 2144, 8032});
}

// A weight type in a repacked layout, k values per row; long rows run fewer token counts.
struct PackedCase {
  GgmlType type;
  WeightLayout layout;
  int64_t k;
  bool long_row;
};

// The packed rows of each case on every fast path other than avx2 give the avx2 path's
// bytes: every token count 1..40 (long rows: 1-4, 8, 11, 32, 33, 40) from varying first
// tokens, one call and a row split.
void expect_packed_rows_equal_avx2(const std::vector<PackedCase>& cases, unsigned seed) {
  const KernelTable* avx2 = find_table("avx2");
  std::mt19937 rng(seed);
  const int64_t n_rows = 13, n_tokens = 46;
  const std::vector<std::vector<int64_t>> cut_sets = {{0, n_rows}, {0, 4, 5, 11, n_rows}};
  for (const PackedCase& c : cases) {
    const std::vector<uint8_t> w = random_rows(rng, c.type, n_rows, c.k);
    std::vector<uint8_t> packed(w.size());
    repack_rows(c.layout, c.type, c.k, w.data(), packed.data(), n_rows);
    const size_t wb = row_size(c.type, c.k), ab = row_size(act_type(c.type), c.k);
    const std::vector<uint8_t> act = random_rows(rng, act_type(c.type), n_tokens, c.k);
    for (const std::string& isa : fast_isas()) {
      if (isa == "avx2") continue;
      const MatmulRowsFn rows = find_table(isa)->rows_fn(c.layout);
      for (int64_t n = 1; n <= 40; ++n) {
        if (c.long_row && n > 4 && n != 8 && n != 11 && n != 32 && n != 33 && n != 40) continue;
        const int64_t first = n % 7;
        std::vector<float> want(n_rows * n, -1.0f);
        avx2->rows_fn(c.layout)(c.type, packed.data(), wb, c.k, &act[first * ab], ab, n,
                                want.data(), n_rows, 0, n_rows);
        for (const std::vector<int64_t>& cuts : cut_sets) {
          std::vector<float> y(n_rows * n, -2.0f);
          for (size_t i = 0; i + 1 < cuts.size(); ++i) {
            rows(c.type, packed.data(), wb, c.k, &act[first * ab], ab, n, y.data(), n_rows, cuts[i],
                 cuts[i + 1]);
          }
          ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(float)))
              << isa << " " << type_name(c.type) << " k=" << c.k << " tokens " << n << " cuts "
              << cuts.size();
        }
      }
    }
  }
}

// Why the tests of paths this CPU lacks can skip: the SIMDe-emulated paths
// (emulated_tables_test.cc) need AVX2 and an x86 build without sanitizers.
constexpr const char* kNoEmulatedPath =
    " (and no SIMDe-emulated path in this build: see emulated_tables_test.cc)";

// Q4_0 in kQ4_0x8 and Q8_0 in kQ8_0x8 on every fast path (the VNNI ones multiply with
// vpdpbusd, x86_vnni/vnni_dot.h; amx with tdpbssd from 32 tokens on rows of whole groups,
// x86_amx/int8_tiles.cc) give the avx2 path's bytes: rows of groups and a tail, of whole
// groups, and rows past one segment of the reduction (408 blocks for Q4_0, 240 for Q8_0), and
// rows longer than amx packs (k > 65536: its base kernel).
TEST(Gemm, PackedQ4_0AndQ8_0EqualAvx2OnEveryPath) {
  if (find_table("avx2") == nullptr || fast_isas().size() < 2) {
    GTEST_SKIP() << "no path beside avx2 on this CPU" << kNoEmulatedPath;
  }
  expect_packed_rows_equal_avx2({{GgmlType::Q4_0, WeightLayout::kQ4_0x8, 32 * 19, false},
                                 {GgmlType::Q4_0, WeightLayout::kQ4_0x8, 256 * 3, false},
                                 {GgmlType::Q4_0, WeightLayout::kQ4_0x8, 32 * (408 + 16 + 5), true},
                                 {GgmlType::Q4_0, WeightLayout::kQ4_0x8, 256 * 56, true},
                                 {GgmlType::Q4_0, WeightLayout::kQ4_0x8, 256 * 260, true},
                                 {GgmlType::Q8_0, WeightLayout::kQ8_0x8, 32 * 11, false},
                                 {GgmlType::Q8_0, WeightLayout::kQ8_0x8, 256 * 2, false},
                                 {GgmlType::Q8_0, WeightLayout::kQ8_0x8, 32 * (240 + 8 + 3), true},
                                 {GgmlType::Q8_0, WeightLayout::kQ8_0x8, 256 * 32, true}},
                                40);
}

// Q4_K in kQ4_Kx8 and Q6_K in kQ6_Kx8 likewise (the VNNI paths: x86_vnni/vnni_kquant.h):
// a few super-blocks, and rows past one segment of the reduction (56 super-blocks for
// Q4_K, 64 for Q6_K).
TEST(Gemm, PackedQ4_KAndQ6_KEqualAvx2OnEveryPath) {
  if (find_table("avx2") == nullptr || fast_isas().size() < 2) {
    GTEST_SKIP() << "no path beside avx2 on this CPU" << kNoEmulatedPath;
  }
  expect_packed_rows_equal_avx2({{GgmlType::Q4_K, WeightLayout::kQ4_Kx8, 256 * 3, false},
                                 {GgmlType::Q4_K, WeightLayout::kQ4_Kx8, 256 * (56 + 3), true},
                                 {GgmlType::Q6_K, WeightLayout::kQ6_Kx8, 256 * 4, false},
                                 {GgmlType::Q6_K, WeightLayout::kQ6_Kx8, 256 * (64 + 2), true}},
                                41);
}

// Q4_K in WeightLayout::kQ4_Kx8 (nibbles regrouped by sub-block, scales re-packed), also
// past one segment of the reduction (56 super-blocks).
TEST(Gemm, RepackedQ4_KEqualsGgufLayout) {
  EXPECT_FALSE(layout_fits(WeightLayout::kQ4_Kx8, GgmlType::Q4_0, 256, 1));
  EXPECT_FALSE(layout_fits(WeightLayout::kQ4_Kx8, GgmlType::Q4_K, 0, 1));
  check_repacked(GgmlType::Q4_K, WeightLayout::kQ4_Kx8, {256, 768, 2048, 15360});
}

// Q6_K in WeightLayout::kQ6_Kx8 (6-bit levels in the AVX2 kernel's order), also past one
// segment of the reduction (64 super-blocks).
TEST(Gemm, RepackedQ6_KEqualsGgufLayout) {
  EXPECT_FALSE(layout_fits(WeightLayout::kQ6_Kx8, GgmlType::Q4_K, 256, 1));
  EXPECT_FALSE(layout_fits(WeightLayout::kQ6_Kx8, GgmlType::Q6_K, 384, 1));
  check_repacked(GgmlType::Q6_K, WeightLayout::kQ6_Kx8, {256, 768, 17152});
}

// Every token count 1..40 (tiles split evenly, register blocks of 4, 3 and fewer tokens,
// GEMM tiles of 8 tokens) from a first token that varies: Q4_0 in kQ4_0x8 (groups and a
// tail of blocks) and Q6_K give each token the bits it gets alone, and kQ4_0x8 the bits
// of the GGUF layout (kQ8_0x8, kQ4_Kx8 and kQ6_Kx8 likewise), on every path.
TEST(Gemm, EveryTokenCountMatchesEachTokenAlone) {
  std::mt19937 rng(36);
  const int64_t n_rows = 7, n_tokens = 46;
  const struct {
    GgmlType type;
    WeightLayout layout;
    int64_t k;
  } cases[] = {
      {GgmlType::Q4_0, WeightLayout::kQ4_0x8, 2144}, {GgmlType::Q8_0, WeightLayout::kQ8_0x8, 2144},
      {GgmlType::Q6_K, WeightLayout::kGguf, 768},    {GgmlType::Q6_K, WeightLayout::kQ6_Kx8, 768},
      {GgmlType::Q4_K, WeightLayout::kGguf, 768},    {GgmlType::Q4_K, WeightLayout::kQ4_Kx8, 768}};
  for (const auto& c : cases) {
    const std::vector<uint8_t> w = random_rows(rng, c.type, n_rows, c.k);
    std::vector<uint8_t> packed = w;
    if (c.layout != WeightLayout::kGguf) {
      repack_rows(c.layout, c.type, c.k, w.data(), packed.data(), n_rows);
    }
    const size_t wb = row_size(c.type, c.k), ab = row_size(act_type(c.type), c.k);
    const std::vector<uint8_t> act = random_rows(rng, act_type(c.type), n_tokens, c.k);
    for (const std::string& isa : available_isas()) {
      IsaScope scope(isa);
      const MatmulRowsFn rows = active().rows_fn(c.layout);
      const auto run = [&](int64_t first, int64_t n) {
        std::vector<float> y(n_rows * n, -1.0f);
        rows(c.type, packed.data(), wb, c.k, &act[first * ab], ab, n, y.data(), n_rows, 0, n_rows);
        return y;
      };
      const std::vector<float> gguf = product(c.type, w, n_rows, c.k, act.data(), n_tokens);
      std::vector<std::vector<float>> alone;
      for (int64_t t = 0; t < n_tokens; ++t) alone.push_back(run(t, 1));
      for (int64_t n = 1; n <= 40; ++n) {
        const int64_t first = n % 7;
        const std::vector<float> y = run(first, n);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t r = 0; r < n_rows; ++r) {
            ASSERT_EQ(y[t * n_rows + r], alone[first + t][r])
                << isa << " " << type_name(c.type) << " tokens " << n << " token " << t;
            ASSERT_EQ(y[t * n_rows + r], gguf[(first + t) * n_rows + r])
                << isa << " " << type_name(c.type) << " tokens " << n << " token " << t;
          }
        }
      }
    }
  }
}

// Rows `rows` of GGUF rows `w` read back from their panel-layout copy `packed`: the GGUF
// bytes (extract_gguf_row) and the values (dequantize_layout_row).
void expect_rows_recovered(GgmlType type, WeightLayout layout, int64_t k,
                           const std::vector<uint8_t>& w, const std::vector<uint8_t>& packed,
                           std::initializer_list<int64_t> rows) {
  const size_t wb = row_size(type, k);
  for (int64_t r : rows) {
    std::vector<uint8_t> row(wb);
    extract_gguf_row(layout, type, k, packed.data(), r, row.data());
    EXPECT_EQ(0, std::memcmp(row.data(), &w[r * wb], wb)) << k << " row " << r;
    std::vector<float> got(k);
    dequantize_layout_row(layout, type, k, packed.data(), r, got.data());
    EXPECT_EQ(got, testing::dequantize(type, &w[r * wb], k)) << k << " row " << r;
  }
}

// F16 / BF16 in the panel layouts (16 rows interleaved value by value): exact round trip,
// row extraction and dequantization; on the reference path the products equal the GGUF
// layout's; on a fast path every output is the sequential FMA chain over the row
// (fma(w[j], x[j], acc) from +0), bit for bit, for every token count 1..33 (the reference:
// a few), any first token, row ranges that cut panels or hold 1..5 of them, and rows long
// enough (k = 5000) for several token chunks.
void check_panels(GgmlType type, WeightLayout layout) {
  std::mt19937 rng(35);
  const int64_t n_rows = 80, n_tokens = 40;
  EXPECT_FALSE(layout_fits(layout, type, 64, 40));
  EXPECT_FALSE(layout_fits(layout, GgmlType::F32, 64, 48));
  const std::vector<std::vector<int64_t>> cut_sets = {
      {0, n_rows}, {0, 48, n_rows}, {0, 5, 16, 27, n_rows}};
  for (int64_t k : {1, 37, 520, 5000}) {
    ASSERT_TRUE(layout_fits(layout, type, k, n_rows));
    const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
    const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
    const std::vector<uint8_t> packed =
        checked_repack(type, layout, k, n_rows, w, /*moves_bytes=*/k > 1);
    expect_rows_recovered(type, layout, k, w, packed, {0, 5, 21, 47, 79});
    const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
    // The FMA chain of each (row, token), and the reference on the GGUF layout.
    std::vector<float> chain(n_rows * n_tokens), want(n_rows * n_tokens);
    std::vector<std::vector<float>> xs;
    for (int64_t t = 0; t < n_tokens; ++t) {
      xs.push_back(testing::dequantize(act_type(type), &act[t * ab], k));
    }
    for (int64_t r = 0; r < n_rows; ++r) {
      const std::vector<float> wr = testing::dequantize(type, &w[r * wb], k);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const std::vector<float>& x = xs[t];
        float acc = 0.0f;
        for (int64_t j = 0; j < k; ++j) acc = std::fma(wr[j], x[j], acc);
        chain[t * n_rows + r] = acc;
      }
    }
    reference().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows, 0,
                            n_rows);
    for (const std::string& isa : available_isas()) {
      // vdpbf16ps sums pairs of products: Gemm.PanelBF16DotPairsAreBoundedAndBatchInvariant.
      if (type == GgmlType::BF16 && (isa.starts_with("avx512bf16") || isa.starts_with("amx"))) {
        continue;
      }
      IsaScope scope(isa);
      const bool ref = isa == "ref";
      const std::vector<float>& expect = ref ? want : chain;
      const MatmulRowsFn packed_rows = active().rows_fn(layout);
      for (int64_t n = 1; n <= 33; ++n) {
        if (ref && n != 1 && n != 7 && n != 33) continue;
        const int64_t first = n % 7;
        for (const std::vector<int64_t>& cuts : cut_sets) {
          std::vector<float> y(n_rows * n, -1.0f);
          for (size_t c = 0; c + 1 < cuts.size(); ++c) {
            packed_rows(type, packed.data(), wb, k, &act[first * ab], ab, n, y.data(), n_rows,
                        cuts[c], cuts[c + 1]);
          }
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              ASSERT_EQ(y[t * n_rows + r], expect[(first + t) * n_rows + r])
                  << isa << " k=" << k << " tokens " << n << " token " << t << " row " << r
                  << " cuts " << cuts.size();
            }
          }
        }
      }
    }
  }
}

TEST(Gemm, PanelF16IsOneFmaChainPerOutput) {
  check_panels(GgmlType::F16, WeightLayout::kF16x16);
}

TEST(Gemm, PanelBF16IsOneFmaChainPerOutput) {
  check_panels(GgmlType::BF16, WeightLayout::kBF16x16);
}

// The ISAs named `prefix`... of this machine and the emulated tables ("<isa>-simde").
std::vector<std::string> isas_with_prefix(const char* prefix) {
  std::vector<std::string> out;
  for (const std::string& isa : available_isas()) {
    if (isa.starts_with(prefix)) out.push_back(isa);
  }
  return out;
}

// The avx512* paths' F16 / BF16 panel kernels (512-bit FMAs, x86_avx512/float_panel.cc) and
// F32 rows (x86_avx512/float_rows.cc) give the avx2 path's products byte for byte
// (avx512bf16*: BF16 excepted, it uses vdpbf16ps), for every token count 1..40 from varying
// first tokens, lengths with a partial last line (and none full), row splits that cut panels
// and row tiles.
TEST(Gemm, Avx512FloatWeightsEqualAvx2) {
  const KernelTable* avx2 = find_table("avx2");
  const std::vector<std::string> isas = isas_with_prefix("avx512");
  if (avx2 == nullptr || isas.empty()) {
    GTEST_SKIP() << "no avx512 path on this CPU" << kNoEmulatedPath;
  }
  std::mt19937 rng(38);
  const int64_t n_rows = 48, n_tokens = 46;
  const std::vector<std::vector<int64_t>> cut_sets = {{0, n_rows}, {0, 5, 16, 27, n_rows}};
  const struct {
    GgmlType type;
    WeightLayout layout;
  } cases[] = {{GgmlType::F16, WeightLayout::kF16x16},
               {GgmlType::BF16, WeightLayout::kBF16x16},
               {GgmlType::F32, WeightLayout::kGguf}};
  for (const auto& c : cases) {
    for (int64_t k : {5, 37, 301}) {
      const std::vector<uint8_t> w = random_rows(rng, c.type, n_rows, k);
      std::vector<uint8_t> packed = w;
      if (c.layout != WeightLayout::kGguf) {
        repack_rows(c.layout, c.type, k, w.data(), packed.data(), n_rows);
      }
      const size_t wb = row_size(c.type, k), ab = row_size(act_type(c.type), k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(c.type), n_tokens, k);
      for (const std::string& isa : isas) {
        if (c.type == GgmlType::BF16 && isa.starts_with("avx512bf16")) continue;
        const MatmulRowsFn rows = find_table(isa)->rows_fn(c.layout);
        ASSERT_NE(rows, avx2->rows_fn(c.layout)) << isa << " " << type_name(c.type);
        for (int64_t n = 1; n <= 40; ++n) {
          const int64_t first = n % 7;
          std::vector<float> want(n_rows * n, -1.0f);
          avx2->rows_fn(c.layout)(c.type, packed.data(), wb, k, &act[first * ab], ab, n,
                                  want.data(), n_rows, 0, n_rows);
          for (const std::vector<int64_t>& cuts : cut_sets) {
            std::vector<float> y(n_rows * n, -2.0f);
            for (size_t i = 0; i + 1 < cuts.size(); ++i) {
              rows(c.type, packed.data(), wb, k, &act[first * ab], ab, n, y.data(), n_rows, cuts[i],
                   cuts[i + 1]);
            }
            ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(float)))
                << isa << " " << type_name(c.type) << " k=" << k << " tokens " << n << " cuts "
                << cuts.size();
          }
        }
      }
    }
  }
}

// Pair-step products of BF16 weights in `layout` on the paths `isas`: vdpbf16ps chains
// (kBF16x16 on avx512bf16* and amx, x86_avx512bf16/bf16_panel.cc: ceil(k / 2) steps, each
// adding two exact products with two roundings) and AMX tile steps (kBF16x16Pairs on amx,
// x86_amx/bf16_tiles.cc: tdpbf16ps, 32 values a step), both flushing denormal inputs and
// results, so |y - exact| <= gamma(k + 1) sum|w x| + (k + 1) 2^-126 + the products with a
// denormal factor. The steps are the same in every tile: a token alone gives the bits it
// gets in a batch of 2..40 from any first token, over row splits that cut panels, and over
// token chunks (the longest k).
void check_bf16_pair_steps(WeightLayout layout, const std::vector<std::string>& isas,
                           std::initializer_list<int64_t> ks) {
  std::mt19937 rng(39);
  const GgmlType type = GgmlType::BF16;
  const int64_t n_rows = 48, n_tokens = 46;
  const std::vector<std::vector<int64_t>> cut_sets = {{0, n_rows}, {0, 5, 16, 27, n_rows}};
  for (int64_t k : ks) {
    const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
    std::vector<uint8_t> packed(w.size());
    repack_rows(layout, type, k, w.data(), packed.data(), n_rows);
    const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
    const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
    // Exact products and their bounds, [t * n_rows + r].
    std::vector<double> exact(n_rows * n_tokens), bound(n_rows * n_tokens);
    const double u = 0x1p-24, gamma = (k + 1) * u / (1 - (k + 1) * u);
    std::vector<std::vector<float>> ws;
    for (int64_t r = 0; r < n_rows; ++r) ws.push_back(testing::dequantize(type, &w[r * wb], k));
    for (int64_t t = 0; t < n_tokens; ++t) {
      const std::vector<float> x = testing::dequantize(type, &act[t * ab], k);
      for (int64_t r = 0; r < n_rows; ++r) {
        const std::vector<float>& wr = ws[r];
        double dot = 0, magnitude = 0, flushed = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double p = static_cast<double>(wr[j]) * x[j];
          dot += p;
          magnitude += std::fabs(p);
          if (std::fabs(wr[j]) < 0x1p-126f || std::fabs(x[j]) < 0x1p-126f) flushed += std::fabs(p);
        }
        exact[t * n_rows + r] = dot;
        bound[t * n_rows + r] = gamma * magnitude + (k + 1) * 0x1p-126 + flushed;
      }
    }
    for (const std::string& isa : isas) {
      const MatmulRowsFn rows = find_table(isa)->rows_fn(layout);
      const auto run = [&](int64_t first, int64_t n, const std::vector<int64_t>& cuts) {
        std::vector<float> y(n_rows * n, -1.0f);
        for (size_t i = 0; i + 1 < cuts.size(); ++i) {
          rows(type, packed.data(), wb, k, &act[first * ab], ab, n, y.data(), n_rows, cuts[i],
               cuts[i + 1]);
        }
        return y;
      };
      std::vector<std::vector<float>> alone;
      for (int64_t t = 0; t < n_tokens; ++t) {
        alone.push_back(run(t, 1, cut_sets[0]));
        for (int64_t r = 0; r < n_rows; ++r) {
          ASSERT_NEAR(alone[t][r], exact[t * n_rows + r], bound[t * n_rows + r])
              << isa << " k=" << k << " token " << t << " row " << r;
        }
      }
      for (int64_t n = 2; n <= 40; ++n) {
        if (k > 1000 && n != 2 && n != 9 && n != 33 && n != 40) continue;
        const int64_t first = n % 7;
        for (const std::vector<int64_t>& cuts : cut_sets) {
          const std::vector<float> y = run(first, n, cuts);
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              ASSERT_EQ(y[t * n_rows + r], alone[first + t][r])
                  << isa << " k=" << k << " tokens " << n << " token " << t << " row " << r
                  << " cuts " << cuts.size();
            }
          }
        }
      }
    }
  }
}

// The BF16 panels: vdpbf16ps on avx512bf16 (amx keeps that kernel for this layout).
TEST(Gemm, PanelBF16DotPairsAreBoundedAndBatchInvariant) {
  std::vector<std::string> isas = isas_with_prefix("avx512bf16");
  for (const std::string& isa : isas_with_prefix("amx")) isas.push_back(isa);
  if (isas.empty()) GTEST_SKIP() << "no avx512bf16 path on this CPU" << kNoEmulatedPath;
  check_bf16_pair_steps(WeightLayout::kBF16x16, isas, {1, 37, 520, 9000});
}

// kBF16x16Pairs, the amx path's layout: exact round trip, row extraction and dequantization;
// the other paths (the reference's product on this layout) equal the reference's product on
// the GGUF rows bit for bit; on amx, AMX tile products within the bound above, batch-invariant.
TEST(Gemm, TileBF16PairsAreExactOrBoundedAndBatchInvariant) {
  std::mt19937 rng(40);
  const GgmlType type = GgmlType::BF16;
  const WeightLayout layout = WeightLayout::kBF16x16Pairs;
  const int64_t n_rows = 48, n_tokens = 19;
  EXPECT_FALSE(layout_fits(layout, type, 48, n_rows));  // k not a multiple of 32
  EXPECT_FALSE(layout_fits(layout, type, 64, 40));      // rows not a multiple of 16
  EXPECT_FALSE(layout_fits(layout, GgmlType::F16, 64, n_rows));
  for (int64_t k : {32, 544}) {
    ASSERT_TRUE(layout_fits(layout, type, k, n_rows));
    const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
    const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
    const std::vector<uint8_t> packed = checked_repack(type, layout, k, n_rows, w, true);
    expect_rows_recovered(type, layout, k, w, packed, {0, 5, 21, 47});
    // Value 2m + h of row 16p + i at 2-byte index 32 m + 2 i + h of its panel.
    EXPECT_EQ(0, std::memcmp(&packed[16 * wb + 2 * (32 * 3 + 2 * 5 + 1)], &w[21 * wb + 2 * 7], 2));
    const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
    std::vector<float> want(n_rows * n_tokens), got(n_rows * n_tokens);
    reference().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows, 0,
                            n_rows);
    for (const std::string& isa : available_isas()) {
      if (isa.starts_with("amx")) continue;
      std::fill(got.begin(), got.end(), -1.0f);
      find_table(isa)->rows_fn(layout)(type, packed.data(), wb, k, act.data(), ab, n_tokens,
                                       got.data(), n_rows, 0, n_rows);
      EXPECT_EQ(got, want) << isa << " k=" << k;
    }
  }
  const std::vector<std::string> isas = isas_with_prefix("amx");
  if (isas.empty()) GTEST_SKIP() << "no amx path on this CPU (AMX is not emulated)";
  check_bf16_pair_steps(layout, isas, {32, 544, 9024});
}

}  // namespace
}  // namespace quanta::kernels
