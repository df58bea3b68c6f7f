// Prefix caching and copy-on-write at the block-table level: chained block hashes, a repeated
// prompt prefix found in the cache (on used and on freed blocks), eviction under pressure,
// sibling tables sharing a partial block and copying it on write, truncation into a cached
// block, and appends that fail without side effects.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kv/block_pool.h"
#include "kv/block_table.h"
#include "kv/prefix_hash.h"

namespace quanta::kv {
namespace {

using Ids = std::vector<int32_t>;

std::vector<int32_t> iota_tokens(int32_t n, int32_t first) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

std::vector<uint64_t> hashes_of(const std::vector<int32_t>& tokens, int32_t block_size) {
  std::vector<uint64_t> h;
  extend_block_hashes(h, tokens.data(), static_cast<int32_t>(tokens.size()), block_size);
  return h;
}

TEST(PrefixHash, MatchesTheSpecifiedFormula) {
  // Values from an independent Python implementation of the formula in prefix_hash.h.
  const int32_t b0[4] = {1, 2, 3, 4};
  const int32_t b1[4] = {5, 6, 7, -1};
  const uint64_t h0 = hash_block(kRootBlockHash, b0, 4);
  EXPECT_EQ(h0, 0x0eeeacde2a3784e9ull);
  EXPECT_EQ(hash_block(h0, b1, 4), 0xa7d8c0dcf6c91715ull);
}

TEST(PrefixHash, ChainsAgreeExactlyOnCommonPrefixes) {
  std::vector<int32_t> a = iota_tokens(20, 100);
  std::vector<int32_t> b = a;
  b[9] = 7;  // differs in block 2 (tokens 8..11)
  const std::vector<uint64_t> ha = hashes_of(a, 4), hb = hashes_of(b, 4);
  ASSERT_EQ(ha.size(), 5u);
  EXPECT_EQ(ha[0], hb[0]);
  EXPECT_EQ(ha[1], hb[1]);
  for (int i = 2; i < 5; ++i) EXPECT_NE(ha[i], hb[i]) << i;  // the chain carries the change
  // Same block contents after a different parent: different hash; order matters.
  const int32_t x[2] = {1, 2}, y[2] = {2, 1};
  EXPECT_NE(hash_block(1, x, 2), hash_block(2, x, 2));
  EXPECT_NE(hash_block(1, x, 2), hash_block(1, y, 2));
  // Only full blocks are hashed, and extending continues the chain.
  std::vector<uint64_t> h;
  extend_block_hashes(h, a.data(), 11, 4);
  EXPECT_EQ(h.size(), 2u);
  extend_block_hashes(h, a.data(), 20, 4);
  EXPECT_EQ(h, ha);
}

TEST(PrefixCache, RepeatedPromptPrefixIsFoundInUseAndAfterRelease) {
  BlockPool pool(16);
  const std::vector<int32_t> system = iota_tokens(12, 500);  // 3 blocks of 4
  const std::vector<uint64_t> hashes = hashes_of(system, 4);
  BlockTable first(4, 64);
  ASSERT_TRUE(first.append(pool, 14));  // system prompt + 2 tokens of its own
  first.cache_full_blocks(pool, hashes.data(), 3);
  EXPECT_EQ(pool.n_cached(), 3);

  BlockTable second(4, 64);  // while `first` runs: shares its blocks
  EXPECT_EQ(second.start_from_prefix(pool, hashes.data(), 3), 3);
  EXPECT_EQ(second.n_tokens(), 12);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(second.blocks()[i], first.blocks()[i]);
    EXPECT_EQ(pool.ref_count(first.blocks()[i]), 2);
  }
  ASSERT_TRUE(second.append(pool, 3));  // its own suffix: a fresh block, no copy
  EXPECT_TRUE(pool.pending_copies().empty());
  EXPECT_NE(second.blocks()[3], first.blocks()[3]);

  const Ids shared(first.blocks().begin(), first.blocks().begin() + 3);
  first.clear(pool);
  second.clear(pool);
  EXPECT_EQ(pool.n_free(), 16);
  BlockTable third(4, 64);  // after both finished: the cached blocks are still there
  EXPECT_EQ(third.start_from_prefix(pool, hashes.data(), 3), 3);
  EXPECT_EQ(Ids(third.blocks().begin(), third.blocks().end()), shared);
  EXPECT_EQ(pool.n_free(), 13);
  third.clear(pool);
  pool.check_consistency();
}

TEST(PrefixCache, LookupStopsAtTheFirstMissAndRespectsCapacity) {
  BlockPool pool(8);
  const std::vector<int32_t> tokens = iota_tokens(16, 0);
  std::vector<uint64_t> hashes = hashes_of(tokens, 4);
  BlockTable writer(4, 64);
  ASSERT_TRUE(writer.append(pool, 16));
  writer.cache_full_blocks(pool, hashes.data(), 4);
  pool.uncache_block(writer.blocks()[1]);
  BlockTable reader(4, 64);
  EXPECT_EQ(reader.start_from_prefix(pool, hashes.data(), 4), 1);  // block 1 missing
  reader.clear(pool);
  BlockTable small(4, 8);  // holds 2 blocks at most
  pool.cache_block(writer.blocks()[1], hashes[1]);
  EXPECT_EQ(small.start_from_prefix(pool, hashes.data(), 4), 2);
  small.clear(pool);
  writer.clear(pool);
  pool.check_consistency();
}

TEST(PrefixCache, CachedBlocksAreEvictedOnlyWhenFreeBlocksRunOut) {
  BlockPool pool(6);
  const std::vector<int32_t> tokens = iota_tokens(8, 40);
  const std::vector<uint64_t> hashes = hashes_of(tokens, 4);
  BlockTable cached(4, 64);
  ASSERT_TRUE(cached.append(pool, 8));
  cached.cache_full_blocks(pool, hashes.data(), 2);
  cached.clear(pool);
  BlockTable other(4, 64);
  ASSERT_TRUE(other.append(pool, 16));  // 4 blocks: exactly the uncached ones
  EXPECT_EQ(pool.n_cached(), 2);
  ASSERT_TRUE(other.append(pool, 4));  // a fifth: evicts the least recently freed cached
  EXPECT_EQ(pool.n_cached(), 1);       // block, which is the second (freed first)
  EXPECT_EQ(pool.find_cached(hashes[1]), -1);
  EXPECT_GE(pool.find_cached(hashes[0]), 0);
  other.clear(pool);
  pool.check_consistency();
}

TEST(CopyOnWrite, SiblingsShareThePromptAndCopyThePartialBlockOnWrite) {
  BlockPool pool(8);
  BlockTable parent(4, 32);
  ASSERT_TRUE(parent.append(pool, 10));  // blocks 0, 1 full, block 2 holds 2 rows
  BlockTable a(4, 32), b(4, 32);
  a.share_prefix(pool, parent, 10);
  b.share_prefix(pool, parent, 10);
  for (int32_t blk : parent.blocks()) EXPECT_EQ(pool.ref_count(blk), 3);
  EXPECT_EQ(pool.n_free(), 5);

  const int32_t shared_tail = parent.blocks()[2];
  EXPECT_EQ(a.blocks_to_append(pool, 1), 1);  // the copy
  EXPECT_EQ(a.blocks_to_append(pool, 0), 0);
  ASSERT_TRUE(a.append(pool, 1));
  ASSERT_EQ(pool.pending_copies().size(), 1u);
  EXPECT_EQ(pool.pending_copies()[0].src, shared_tail);
  EXPECT_EQ(pool.pending_copies()[0].dst, a.blocks()[2]);
  EXPECT_NE(a.blocks()[2], shared_tail);
  EXPECT_EQ(a.blocks()[0], parent.blocks()[0]);  // full blocks stay shared
  EXPECT_EQ(pool.ref_count(shared_tail), 2);

  ASSERT_TRUE(b.append(pool, 3));  // copies too, then grows into a new block
  EXPECT_EQ(pool.pending_copies().size(), 2u);
  EXPECT_EQ(b.n_blocks(), 4);
  EXPECT_EQ(pool.ref_count(shared_tail), 1);
  ASSERT_TRUE(parent.append(pool, 1));  // the last holder writes in place
  EXPECT_EQ(parent.blocks()[2], shared_tail);
  EXPECT_EQ(pool.pending_copies().size(), 2u);
  EXPECT_EQ(pool.ref_count(parent.blocks()[0]), 3);

  pool.clear_pending_copies();
  a.clear(pool);
  b.clear(pool);
  parent.clear(pool);
  EXPECT_EQ(pool.n_free(), 8);
  pool.check_consistency();
}

TEST(CopyOnWrite, AppendNeedingACopyFailsCleanlyWhenThePoolIsFull) {
  BlockPool pool(2);
  BlockTable parent(4, 32);
  ASSERT_TRUE(parent.append(pool, 6));
  BlockTable child(4, 32);
  child.share_prefix(pool, parent, 6);
  EXPECT_FALSE(child.append(pool, 1));  // no block for the copy
  EXPECT_EQ(child.n_tokens(), 6);
  EXPECT_EQ(child.blocks(), parent.blocks());
  EXPECT_TRUE(pool.pending_copies().empty());
  EXPECT_EQ(pool.ref_count(parent.blocks()[1]), 2);
  EXPECT_TRUE(child.append(pool, 0));  // appending nothing writes nothing
  EXPECT_TRUE(pool.pending_copies().empty());
  child.clear(pool);
  parent.clear(pool);
  EXPECT_EQ(pool.n_free(), 2);
}

TEST(CopyOnWrite, TruncatingIntoACachedBlockNeverRewritesItInTheCache) {
  BlockPool pool(6);
  const std::vector<int32_t> tokens = iota_tokens(8, 3);
  const std::vector<uint64_t> hashes = hashes_of(tokens, 4);
  BlockTable alone(4, 32);
  ASSERT_TRUE(alone.append(pool, 8));
  alone.cache_full_blocks(pool, hashes.data(), 2);
  alone.truncate(pool, 6);  // rollback into block 1: still cached until rewritten
  EXPECT_TRUE(pool.is_cached(alone.blocks()[1]));
  ASSERT_TRUE(alone.append(pool, 1));  // sole holder: the hash goes, no copy
  EXPECT_FALSE(pool.is_cached(alone.blocks()[1]));
  EXPECT_EQ(pool.find_cached(hashes[1]), -1);
  EXPECT_TRUE(pool.pending_copies().empty());
  alone.cache_full_blocks(pool, hashes.data(), 1);  // block 0 already offered: unchanged
  EXPECT_TRUE(pool.is_cached(alone.blocks()[0]));

  BlockTable writer(4, 32), reader(4, 32);  // shared cached block: copied instead
  const std::vector<int32_t> other = iota_tokens(8, 77);
  const std::vector<uint64_t> other_hashes = hashes_of(other, 4);
  ASSERT_TRUE(writer.append(pool, 8));
  writer.cache_full_blocks(pool, other_hashes.data(), 2);
  EXPECT_EQ(reader.start_from_prefix(pool, other_hashes.data(), 2), 2);
  writer.truncate(pool, 5);
  ASSERT_TRUE(writer.append(pool, 2));
  ASSERT_EQ(pool.pending_copies().size(), 1u);
  EXPECT_EQ(pool.find_cached(other_hashes[1]), reader.blocks()[1]);
  EXPECT_NE(writer.blocks()[1], reader.blocks()[1]);
  pool.clear_pending_copies();
  alone.clear(pool);
  writer.clear(pool);
  reader.clear(pool);
  EXPECT_EQ(pool.n_free(), 6);
  pool.check_consistency();
}

TEST(PrefixCache, DuplicateBlocksStayUncachedAndStatsAccumulate) {
  BlockPool pool(6);
  const std::vector<int32_t> tokens = iota_tokens(4, 9);
  const std::vector<uint64_t> hashes = hashes_of(tokens, 4);
  BlockTable x(4, 16), y(4, 16);  // computed at the same time: two blocks, one cached
  ASSERT_TRUE(x.append(pool, 4));
  ASSERT_TRUE(y.append(pool, 4));
  x.cache_full_blocks(pool, hashes.data(), 1);
  y.cache_full_blocks(pool, hashes.data(), 1);
  EXPECT_TRUE(pool.is_cached(x.blocks()[0]));
  EXPECT_FALSE(pool.is_cached(y.blocks()[0]));
  const int32_t cached_block = x.blocks()[0], duplicate = y.blocks()[0];
  x.clear(pool);
  y.clear(pool);
  EXPECT_EQ(pool.free_list().front(), duplicate);    // worthless: reused first
  EXPECT_EQ(pool.free_list().back(), cached_block);  // evicted last
  pool.record_prefix_lookup(20, 16);
  pool.record_prefix_lookup(12, 0);
  EXPECT_EQ(pool.prefix_stats().queried_tokens, 32);
  EXPECT_EQ(pool.prefix_stats().hit_tokens, 16);
  EXPECT_DOUBLE_EQ(pool.prefix_stats().hit_rate(), 0.5);
  pool.check_consistency();
}

}  // namespace
}  // namespace quanta::kv
