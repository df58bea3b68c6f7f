// Block pool and block tables: allocation order, reference counts, growth by whole blocks,
// failure without side effects when the pool runs dry, truncation releasing tail blocks, and
// K/V rows landing at block * block_size + offset.
#include <gtest/gtest.h>

#include "kv/block_pool.h"
#include "kv/block_table.h"
#include "kv/kv_cache.h"

namespace quanta::kv {
namespace {

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
  cache.k_row(1, table, 5)[3] = 42.0f;
  const ops::PagedKvView view = cache.view(1, table);
  EXPECT_EQ(view.k_row(5)[3], 42.0f);
  EXPECT_EQ(view.offset(5), (2 * 4 + 1) * 8);
  EXPECT_EQ(cache.k_row(0, table, 5)[3], 0.0f);  // other layer untouched
}

}  // namespace
}  // namespace quanta::kv
