// Block pool and block tables: allocation order, reference counts, growth by whole blocks,
// failure without side effects when the pool runs dry, truncation releasing tail blocks, and
// K/V rows landing in their block (grouped by KV head), F16 rows rounded on store, Q8_0/Q4_0
// rows quantized on store (Q4_0 with the error-minimizing scale search; copied by copy_block), packed across heads narrower than a
// block, and the KV type checks.
#include "kv/block_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "kv/block_pool.h"
#include "kv/kv_cache.h"
#include "quant/weighted.h"

namespace quanta::kv {
namespace {

// How the cache quantizes one stored row: Q8_0 rounds to nearest; Q4_0 picks each block's
// scale by ggml's error search (quantize_row_weighted with equal importances).
void kv_quantize(GgmlType type, const float* x, uint8_t* out, int64_t n) {
  const std::vector<float> ones(n, 1.0f);
  if (type == GgmlType::Q4_0) {
    quantize_row_weighted(type, x, out, n, ones.data());
  } else {
    quantize_row(type, x, out, n);
  }
}

TEST(BlockPool, AllocatesLowestFirstAndRecycles) {
  BlockPool pool(3);
  EXPECT_EQ(pool.allocate(), 0);
  EXPECT_EQ(pool.allocate(), 1);
  EXPECT_EQ(pool.allocate(), 2);
  EXPECT_EQ(pool.allocate(), -1);
  pool.release(1);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.allocate(), 1);
}

TEST(BlockPool, SharedBlocksFreeOnLastRelease) {
  BlockPool pool(2);
  const int32_t b = pool.allocate();
  pool.retain(b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 1);
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 2);
}

TEST(BlockTable, GrowsByWholeBlocks) {
  BlockPool pool(8);
  BlockTable table(4, 32);
  ASSERT_TRUE(table.append(pool, 1));
  EXPECT_EQ(table.blocks().size(), 1u);
  ASSERT_TRUE(table.append(pool, 3));
  EXPECT_EQ(table.blocks().size(), 1u);
  ASSERT_TRUE(table.append(pool, 1));
  EXPECT_EQ(table.blocks().size(), 2u);
  EXPECT_EQ(table.n_tokens(), 5);
  EXPECT_EQ(pool.n_free(), 6);
}

TEST(BlockTable, FailsCleanlyWhenPoolOrCapacityIsExhausted) {
  BlockPool pool(2);
  BlockTable table(4, 100);
  ASSERT_TRUE(table.append(pool, 6));
  EXPECT_FALSE(table.append(pool, 3));  // needs a third block
  EXPECT_EQ(table.n_tokens(), 6);
  EXPECT_EQ(table.blocks().size(), 2u);
  EXPECT_EQ(pool.n_free(), 0);
  BlockTable small(4, 8);
  BlockPool big(10);
  EXPECT_FALSE(small.append(big, 9));  // beyond max_tokens
  EXPECT_EQ(big.n_free(), 10);
}

TEST(BlockTable, TruncateReleasesTailBlocks) {
  BlockPool pool(4);
  BlockTable table(4, 16);
  ASSERT_TRUE(table.append(pool, 13));
  EXPECT_EQ(pool.n_free(), 0);
  table.truncate(pool, 5);
  EXPECT_EQ(table.n_tokens(), 5);
  EXPECT_EQ(table.blocks().size(), 2u);
  EXPECT_EQ(pool.n_free(), 2);
  table.clear(pool);
  EXPECT_EQ(pool.n_free(), 4);
}

TEST(KvCache, RowsAreAddressedThroughTheBlockTable) {
  KvLayout layout;
  layout.n_layer = 2;
  layout.n_kv_head = 2;
  layout.head_dim = 4;
  layout.block_size = 4;
  layout.n_blocks = 4;
  KvCache cache(layout);
  EXPECT_EQ(layout.total_bytes(), 2ull * 2 * 4 * 4 * 8 * sizeof(float));
  BlockTable other = cache.new_table(16);
  BlockTable table = cache.new_table(16);
  ASSERT_TRUE(other.append(cache.pool(), 4));  // takes block 0
  ASSERT_TRUE(table.append(cache.pool(), 6));  // blocks 1, 2
  float k[8] = {}, v[8] = {};
  k[3] = 42.0f;  // head 0, element 3
  k[5] = 43.0f;  // head 1, element 1
  v[7] = -3.0f;  // head 1, element 3
  cache.store(1, table, 5, k, v);
  const ops::PagedKvView view = cache.view(1, table);
  EXPECT_EQ(view.type, GgmlType::F32);
  EXPECT_EQ(view.k_row(5, 0)[3], 42.0f);
  EXPECT_EQ(view.k_row(5, 1)[1], 43.0f);
  EXPECT_EQ(view.v_row(5, 1)[3], -3.0f);
  // Block 2 (table slot 1), head 1, row 1: heads' rows are contiguous within a block.
  EXPECT_EQ(view.row_bytes, 4 * sizeof(float));
  EXPECT_EQ(view.offset(5, 0), ((2 * 2 + 0) * 4 + 1) * 4 * sizeof(float));
  EXPECT_EQ(view.offset(5, 1), ((2 * 2 + 1) * 4 + 1) * 4 * sizeof(float));
  EXPECT_EQ(static_cast<const float*>(view.k)[view.offset(5, 1) / sizeof(float) + 1], 43.0f);
  EXPECT_EQ(cache.view(0, table).k_row(5, 0)[3], 0.0f);  // other layer untouched
}

TEST(KvCache, F16RowsAreRoundedOnStore) {
  KvLayout layout;
  layout.n_layer = 1;
  layout.n_kv_head = 1;
  layout.head_dim = 4;
  layout.block_size = 2;
  layout.n_blocks = 2;
  layout.type = GgmlType::F16;
  KvCache cache(layout);
  EXPECT_EQ(layout.total_bytes(), 2ull * 2 * 2 * 4 * 2);
  BlockTable table = cache.new_table(4);
  ASSERT_TRUE(table.append(cache.pool(), 3));
  const float k[4] = {1.0f, -2.5f, 0.1f, 70000.0f};  // 0.1 is inexact, 70000 overflows F16
  const float v[4] = {3.0f, 1e-8f, -0.0f, 65504.0f};
  cache.store(0, table, 2, k, v);
  const ops::PagedKvView view = cache.view(0, table);
  EXPECT_EQ(view.type, GgmlType::F16);
  EXPECT_EQ(view.offset(2, 0), 2 * 4 * sizeof(uint16_t));  // block 1, row 0
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(view.k_row<uint16_t>(2, 0)[i], f32_to_f16(k[i])) << i;
    EXPECT_EQ(view.v_row<uint16_t>(2, 0)[i], f32_to_f16(v[i])) << i;
  }
  EXPECT_EQ(f16_to_f32(view.k_row<uint16_t>(2, 0)[0]), 1.0f);
  EXPECT_TRUE(std::isinf(f16_to_f32(view.k_row<uint16_t>(2, 0)[3])));
}

TEST(KvCache, CopyBlockCopiesEveryLayersRows) {
  KvLayout layout;
  layout.n_layer = 2;
  layout.n_kv_head = 2;
  layout.head_dim = 2;
  layout.block_size = 2;
  layout.n_blocks = 3;
  KvCache cache(layout);
  BlockTable src = cache.new_table(2);
  BlockTable dst = cache.new_table(2);
  ASSERT_TRUE(src.append(cache.pool(), 2));  // block 0
  ASSERT_TRUE(dst.append(cache.pool(), 2));  // block 1
  for (int32_t layer = 0; layer < 2; ++layer) {
    for (int32_t pos = 0; pos < 2; ++pos) {
      const float base = 100.0f * layer + 10.0f * pos;
      const float k[4] = {base, base + 1, base + 2, base + 3};
      const float v[4] = {-base, -base - 1, -base - 2, -base - 3};
      cache.store(layer, src, pos, k, v);
    }
  }
  cache.copy_block(src.blocks()[0], dst.blocks()[0]);
  for (int32_t layer = 0; layer < 2; ++layer) {
    const ops::PagedKvView a = cache.view(layer, src);
    const ops::PagedKvView b = cache.view(layer, dst);
    for (int32_t pos = 0; pos < 2; ++pos) {
      for (int32_t h = 0; h < 2; ++h) {
        for (int32_t i = 0; i < 2; ++i) {
          EXPECT_EQ(b.k_row(pos, h)[i], a.k_row(pos, h)[i]);
          EXPECT_EQ(b.v_row(pos, h)[i], a.v_row(pos, h)[i]);
        }
      }
    }
    EXPECT_EQ(b.k_row(1, 1)[1], 100.0f * layer + 13.0f);
  }
}

// Q8_0 / Q4_0: each head's row is quantized on its own with the reference quantizer, the
// block layout keeps row_bytes per row, and copy_block moves the quantized rows.
TEST(KvCache, QuantizedRowsAreQuantizedPerHeadOnStore) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    KvLayout layout;
    layout.n_layer = 2;
    layout.n_kv_head = 2;
    layout.head_dim = 64;
    layout.block_size = 4;
    layout.n_blocks = 3;
    layout.type = type;
    KvCache cache(layout);
    const size_t row_bytes = row_size(type, 64);
    EXPECT_EQ(layout.row_bytes(), row_bytes);
    EXPECT_EQ(layout.total_bytes(), 2ull * 2 * 3 * 2 * 4 * row_bytes);
    BlockTable a = cache.new_table(8);
    BlockTable b = cache.new_table(8);
    ASSERT_TRUE(a.append(cache.pool(), 6));  // blocks 0, 1
    ASSERT_TRUE(b.append(cache.pool(), 2));  // block 2
    std::vector<float> k(128), v(128);
    for (int i = 0; i < 128; ++i) {
      k[i] = std::sin(0.37f * i) * (i < 64 ? 1.0f : 50.0f);  // heads with different scales
      v[i] = std::cos(0.11f * i) - 0.5f;
    }
    cache.store(1, a, 5, k.data(), v.data());
    const ops::PagedKvView view = cache.view(1, a);
    EXPECT_EQ(view.type, type);
    EXPECT_EQ(view.row_bytes, row_bytes);
    EXPECT_EQ(view.offset(5, 1), ((1 * 2 + 1) * 4 + 1) * row_bytes);
    std::vector<uint8_t> want(row_bytes);
    for (int32_t h = 0; h < 2; ++h) {
      kv_quantize(type, k.data() + 64 * h, want.data(), 64);
      EXPECT_EQ(std::memcmp(view.k_row<uint8_t>(5, h), want.data(), row_bytes), 0) << h;
      kv_quantize(type, v.data() + 64 * h, want.data(), 64);
      EXPECT_EQ(std::memcmp(view.v_row<uint8_t>(5, h), want.data(), row_bytes), 0) << h;
    }
    cache.copy_block(a.blocks()[1], b.blocks()[0]);
    const ops::PagedKvView copy = cache.view(1, b);
    for (int32_t h = 0; h < 2; ++h) {
      EXPECT_EQ(std::memcmp(copy.k_row<uint8_t>(1, h), view.k_row<uint8_t>(5, h), row_bytes), 0);
      EXPECT_EQ(std::memcmp(copy.v_row<uint8_t>(1, h), view.v_row<uint8_t>(5, h), row_bytes), 0);
    }
  }
}

TEST(KvCache, RejectsUnsupportedTypesAndHeadSizes) {
  KvLayout layout;
  layout.n_layer = 1;
  layout.n_kv_head = 1;
  layout.head_dim = 32;
  layout.n_blocks = 1;
  for (GgmlType type : {GgmlType::BF16, GgmlType::Q4_K, GgmlType::Q5_0}) {
    layout.type = type;
    EXPECT_THROW(KvCache cache(layout), Error) << type_name(type);
  }
  layout.type = GgmlType::Q8_0;
  layout.head_dim = 48;  // a token's 48 values are not whole 32-value blocks
  EXPECT_THROW(KvCache cache(layout), Error);
  try {
    check_kv_type(GgmlType::Q4_0, 8, 3);  // 24 values per token
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3 x 8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_kv_type(GgmlType::Q8_0, 0, 4), Error);
  EXPECT_THROW(check_kv_type(GgmlType::Q8_0, 8, 0), Error);
  check_kv_type(GgmlType::F16, 8, 3);  // plain types take any head size
  check_kv_type(GgmlType::Q8_0, 64, 1);
  check_kv_type(GgmlType::Q8_0, 8, 4);   // packed: 4 heads per block
  check_kv_type(GgmlType::Q4_0, 48, 2);  // packed: 2 heads per 3 blocks
}

// Heads narrower than a block: the row of a token's values is quantized in 32-value blocks
// across consecutive heads (head_dim 8: heads 4r..4r+3 share block r, as llama.cpp quantizes
// its n_kv_head * head_dim K/V rows); such a row is one stored row of the paged layout, and
// head_span locates each head's values. Head sizes that are whole blocks are not packed.
TEST(KvCache, NarrowHeadsArePackedIntoWholeBlocks) {
  EXPECT_EQ(ops::kv_row_heads(GgmlType::Q8_0, 8), 4);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::Q4_0, 16), 2);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::Q8_0, 48), 2);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::Q4_0, 20), 8);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::Q8_0, 64), 1);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::F16, 8), 1);
  EXPECT_EQ(ops::kv_row_heads(GgmlType::F32, 8), 1);
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    KvLayout layout;
    layout.n_layer = 2;
    layout.n_kv_head = 8;
    layout.head_dim = 8;
    layout.block_size = 4;
    layout.n_blocks = 3;
    layout.type = type;
    KvCache cache(layout);
    const size_t row_bytes = row_size(type, 32);  // one block: 34 (Q8_0) or 18 (Q4_0) bytes
    EXPECT_EQ(layout.row_heads(), 4);
    EXPECT_EQ(layout.n_rows(), 2);
    EXPECT_EQ(layout.row_bytes(), row_bytes);
    EXPECT_EQ(layout.block_bytes(), 2 * 4 * row_bytes);
    EXPECT_EQ(layout.total_bytes(), 2ull * 2 * 3 * 2 * 4 * row_bytes);
    BlockTable a = cache.new_table(8);
    BlockTable b = cache.new_table(8);
    ASSERT_TRUE(a.append(cache.pool(), 6));  // blocks 0, 1
    ASSERT_TRUE(b.append(cache.pool(), 2));  // block 2
    std::vector<float> k(64), v(64);
    for (int i = 0; i < 64; ++i) {
      k[i] = std::sin(0.37f * i) * (i < 32 ? 1.0f : 50.0f);  // rows with different scales
      v[i] = std::cos(0.11f * i) - 0.5f;
    }
    cache.store(1, a, 5, k.data(), v.data());
    const ops::PagedKvView view = cache.view(1, a);
    EXPECT_EQ(view.row_heads, 4);
    EXPECT_EQ(view.row_bytes, row_bytes);
    // Block 1, stored row 1 (heads 4..7), position 1 of the block.
    EXPECT_EQ(view.offset(5, 5), ((1 * 2 + 1) * 4 + 1) * row_bytes);
    EXPECT_EQ(view.offset(5, 4), view.offset(5, 7));
    EXPECT_EQ(view.offset(5, 3), ((1 * 2 + 0) * 4 + 1) * row_bytes);
    std::vector<uint8_t> want(row_bytes);
    for (int32_t r = 0; r < 2; ++r) {
      kv_quantize(type, k.data() + 32 * r, want.data(), 32);
      EXPECT_EQ(std::memcmp(view.k_row<uint8_t>(5, 4 * r), want.data(), row_bytes), 0) << r;
      kv_quantize(type, v.data() + 32 * r, want.data(), 32);
      EXPECT_EQ(std::memcmp(view.v_row<uint8_t>(5, 4 * r), want.data(), row_bytes), 0) << r;
    }
    // head_span: head 6's values are values 16..23 of its row's only block.
    const ops::PagedKvView::HeadSpan span = view.head_span(6);
    EXPECT_EQ(span.byte_offset, 0u);
    EXPECT_EQ(span.n_values, 32);
    EXPECT_EQ(span.skip, 16);
    std::vector<float> row(32);
    dequantize_row(type, view.k_row<uint8_t>(5, 6), row.data(), 32);
    for (int i = 0; i < 8; ++i) {
      EXPECT_NEAR(row[span.skip + i], k[6 * 8 + i], type == GgmlType::Q8_0 ? 0.25f : 3.5f);
    }
    cache.copy_block(a.blocks()[1], b.blocks()[0]);
    const ops::PagedKvView copy = cache.view(1, b);
    for (int32_t h : {0, 4}) {
      EXPECT_EQ(std::memcmp(copy.k_row<uint8_t>(1, h), view.k_row<uint8_t>(5, h), row_bytes), 0);
      EXPECT_EQ(std::memcmp(copy.v_row<uint8_t>(1, h), view.v_row<uint8_t>(5, h), row_bytes), 0);
    }
  }
  // head_dim 48, 2 heads per row of 3 blocks: head 1 is values 16..63 of blocks 1 and 2.
  KvLayout layout;
  layout.n_layer = 1;
  layout.n_kv_head = 2;
  layout.head_dim = 48;
  layout.n_blocks = 1;
  layout.type = GgmlType::Q4_0;
  KvCache cache(layout);
  BlockTable t = cache.new_table(1);
  ASSERT_TRUE(t.append(cache.pool(), 1));
  const ops::PagedKvView::HeadSpan span = cache.view(0, t).head_span(1);
  EXPECT_EQ(span.byte_offset, 18u);
  EXPECT_EQ(span.n_values, 64);
  EXPECT_EQ(span.skip, 16);
  EXPECT_EQ(cache.view(0, t).row_bytes, 3 * 18u);
}

TEST(KvCache, ParsesKvTypeNames) {
  EXPECT_EQ(parse_kv_type("f32"), GgmlType::F32);
  EXPECT_EQ(parse_kv_type("F16"), GgmlType::F16);
  EXPECT_EQ(parse_kv_type("q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(parse_kv_type("Q4_0"), GgmlType::Q4_0);
  EXPECT_THROW(parse_kv_type("q4_k"), Error);
  EXPECT_THROW(parse_kv_type(""), Error);
}

}  // namespace
}  // namespace quanta::kv
