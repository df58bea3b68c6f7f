// BlockPool: reference counts, free-list eviction order (uncached blocks reused first, cached
// ones least recently freed first), prefix hits on free and used blocks, eviction on
// reallocation, and a randomized comparison against a plain list-based model of the pool.
// Also the hash index (random operations against std::unordered_map, with colliding keys).
#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <map>
#include <random>
#include <unordered_map>
#include <vector>

#include "kv/block_table.h"
#include "kv/prefix_hash.h"

namespace quanta::kv {
namespace {

using Ids = std::vector<int32_t>;

TEST(BlockPool, RetainAndReleaseCountReferences) {
  BlockPool pool(4);
  EXPECT_EQ(pool.n_blocks(), 4);
  const int32_t a = pool.allocate();
  const int32_t b = pool.allocate();
  EXPECT_EQ(pool.ref_count(a), 1);
  pool.retain(a);
  pool.retain(a);
  EXPECT_EQ(pool.ref_count(a), 3);
  EXPECT_EQ(pool.n_used(), 2);
  pool.release(a);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 2);  // a still held once
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 4);
  EXPECT_EQ(pool.ref_count(a), 0);
  pool.check_consistency();
}

TEST(BlockPool, UncachedFreedBlocksAreReusedFirstMostRecentFirst) {
  BlockPool pool(5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pool.allocate(), i);
  EXPECT_TRUE(pool.cache_block(0, 100));
  pool.release(0);  // cached: tail
  pool.release(3);  // uncached: head
  pool.release(1);  // uncached: head
  EXPECT_EQ(pool.free_list(), (Ids{1, 3, 0}));
  EXPECT_EQ(pool.allocate(), 1);
  EXPECT_EQ(pool.allocate(), 3);
  EXPECT_EQ(pool.find_cached(100), 0);  // not evicted while uncached blocks were free
  EXPECT_EQ(pool.allocate(), 0);        // now it is
  EXPECT_EQ(pool.find_cached(100), -1);
  EXPECT_FALSE(pool.is_cached(0));
  EXPECT_EQ(pool.allocate(), -1);
  pool.check_consistency();
}

TEST(BlockPool, CachedBlocksAreEvictedLeastRecentlyFreedFirst) {
  BlockPool pool(4);
  for (int32_t b = 0; b < 4; ++b) {
    ASSERT_EQ(pool.allocate(), b);
    ASSERT_TRUE(pool.cache_block(b, 1000 + b));
  }
  for (int32_t b : {2, 0, 3, 1}) pool.release(b);
  EXPECT_EQ(pool.free_list(), (Ids{2, 0, 3, 1}));
  EXPECT_EQ(pool.n_cached(), 4);
  EXPECT_EQ(pool.allocate(), 2);
  EXPECT_EQ(pool.find_cached(1002), -1);  // evicted by reallocation
  EXPECT_EQ(pool.find_cached(1000), 0);   // the others stay findable while free
  EXPECT_EQ(pool.find_cached(1003), 3);
  EXPECT_EQ(pool.n_cached(), 3);
  EXPECT_EQ(pool.allocate(), 0);
  pool.check_consistency();
}

TEST(BlockPool, PrefixHitOnFreeBlockTakesItOffTheFreeListAndOnUsedBlockShares) {
  BlockPool pool(3);
  const int32_t a = pool.allocate();
  const int32_t b = pool.allocate();
  ASSERT_TRUE(pool.cache_block(a, 7));
  ASSERT_TRUE(pool.cache_block(b, 8));
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.acquire_cached(7), a);  // free -> used, ref 1
  EXPECT_EQ(pool.ref_count(a), 1);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_TRUE(pool.is_cached(a));
  EXPECT_EQ(pool.acquire_cached(8), b);  // used -> shared
  EXPECT_EQ(pool.ref_count(b), 2);
  EXPECT_EQ(pool.acquire_cached(9), -1);
  EXPECT_EQ(pool.free_list(), (Ids{2}));
  pool.check_consistency();
}

TEST(BlockPool, OneBlockPerHash) {
  BlockPool pool(3);
  const int32_t a = pool.allocate();
  const int32_t b = pool.allocate();
  EXPECT_TRUE(pool.cache_block(a, 5));
  EXPECT_TRUE(pool.cache_block(a, 5));   // same block, same hash: no-op
  EXPECT_FALSE(pool.cache_block(a, 6));  // a block keeps its first hash
  EXPECT_FALSE(pool.cache_block(b, 5));  // the hash belongs to a
  EXPECT_FALSE(pool.is_cached(b));
  EXPECT_EQ(pool.block_hash(a), 5u);
  EXPECT_EQ(pool.n_cached(), 1);
  pool.uncache_block(a);
  EXPECT_TRUE(pool.cache_block(b, 5));
  EXPECT_EQ(pool.find_cached(5), b);
  pool.check_consistency();
}

TEST(BlockPool, UncachingAFreeBlockMovesItToTheHead) {
  BlockPool pool(3);
  for (int32_t b = 0; b < 3; ++b) {
    ASSERT_EQ(pool.allocate(), b);
    ASSERT_TRUE(pool.cache_block(b, 50 + b));
  }
  for (int32_t b = 0; b < 3; ++b) pool.release(b);
  pool.uncache_block(2);
  EXPECT_EQ(pool.free_list(), (Ids{2, 0, 1}));
  pool.check_consistency();
}

TEST(BlockPool, TableReleasesItsLastBlockFirstSoPrefixesAreEvictedLast) {
  BlockPool pool(4);
  BlockTable table(2, 8);
  ASSERT_TRUE(table.append(pool, 6));
  const uint64_t hashes[3] = {11, 12, 13};
  table.cache_full_blocks(pool, hashes, 3);
  const Ids blocks = table.blocks();
  table.clear(pool);
  EXPECT_EQ(pool.free_list(), (Ids{3, blocks[2], blocks[1], blocks[0]}));
}

TEST(BlockPool, PendingCopiesAreKeptInOrderUntilCleared) {
  BlockPool pool(2);
  pool.record_copy(0, 1);
  pool.record_copy(1, 0);
  ASSERT_EQ(pool.pending_copies().size(), 2u);
  EXPECT_EQ(pool.pending_copies()[1].src, 1);
  EXPECT_EQ(pool.pending_copies()[1].dst, 0);
  pool.clear_pending_copies();
  EXPECT_TRUE(pool.pending_copies().empty());
}

// A list-based model of the pool's documented policy, for the randomized comparison.
struct PoolModel {
  std::list<int32_t> free;  // head first
  std::vector<int32_t> refs;
  std::map<uint64_t, int32_t> cache;
  std::vector<int64_t> hash_of;  // -1 = uncached

  explicit PoolModel(int32_t n) : refs(n, 0), hash_of(n, -1) {
    for (int32_t b = 0; b < n; ++b) free.push_back(b);
  }
  int32_t allocate() {
    if (free.empty()) return -1;
    const int32_t b = free.front();
    free.pop_front();
    if (hash_of[b] >= 0) cache.erase(hash_of[b]);
    hash_of[b] = -1;
    refs[b] = 1;
    return b;
  }
  void release(int32_t b) {
    if (--refs[b] > 0) return;
    if (hash_of[b] >= 0)
      free.push_back(b);
    else
      free.push_front(b);
  }
  int32_t acquire(uint64_t h) {
    const auto it = cache.find(h);
    if (it == cache.end()) return -1;
    const int32_t b = it->second;
    if (refs[b]++ == 0) free.remove(b);
    return b;
  }
  bool cache_block(int32_t b, uint64_t h) {
    if (hash_of[b] >= 0) return static_cast<uint64_t>(hash_of[b]) == h;
    if (cache.count(h)) return false;
    cache[h] = b;
    hash_of[b] = static_cast<int64_t>(h);
    return true;
  }
};

TEST(BlockPool, RandomOperationsMatchAListModel) {
  constexpr int32_t kBlocks = 24;
  BlockPool pool(kBlocks);
  PoolModel model(kBlocks);
  std::mt19937 rng(1234);
  std::vector<int32_t> held;  // one entry per reference held
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 6);
    const uint64_t h = rng() % 40;  // few hashes: frequent hits and duplicates
    if (op == 0 || op == 1) {
      const int32_t b = pool.allocate();
      ASSERT_EQ(b, model.allocate()) << step;
      if (b >= 0) held.push_back(b);
    } else if (op == 2 && !held.empty()) {
      const size_t i = rng() % held.size();
      pool.release(held[i]);
      model.release(held[i]);
      held.erase(held.begin() + static_cast<long>(i));
    } else if (op == 3 && !held.empty()) {
      const int32_t b = held[rng() % held.size()];
      ASSERT_EQ(pool.cache_block(b, h), model.cache_block(b, h)) << step;
    } else if (op == 4) {
      const int32_t b = pool.acquire_cached(h);
      ASSERT_EQ(b, model.acquire(h)) << step;
      if (b >= 0) held.push_back(b);
    } else if (op == 5 && !held.empty()) {
      const int32_t b = held[rng() % held.size()];
      pool.retain(b);
      ++model.refs[b];
      held.push_back(b);
    }
    ASSERT_EQ(pool.free_list(), Ids(model.free.begin(), model.free.end())) << step;
    if (step % 97 == 0) pool.check_consistency();
  }
  for (int32_t b = 0; b < kBlocks; ++b) EXPECT_EQ(pool.ref_count(b), model.refs[b]);
}

TEST(BlockHashIndex, RandomOperationsMatchAnUnorderedMap) {
  constexpr int32_t kMax = 50;
  BlockHashIndex index(kMax);
  std::unordered_map<uint64_t, int32_t> ref;
  std::mt19937_64 rng(99);
  for (int step = 0; step < 50000; ++step) {
    // Keys share their low bits often, so probe runs wrap and deletions shift entries back.
    const uint64_t key = (rng() % 80) << 60 | (rng() % 8);
    const int op = static_cast<int>(rng() % 3);
    if (op == 0 && static_cast<int32_t>(ref.size()) < kMax) {
      const int32_t value = static_cast<int32_t>(rng() % 1000);
      const bool fresh = ref.emplace(key, value).second;
      ASSERT_EQ(index.insert(key, value), fresh) << step;
    } else if (op == 1) {
      ASSERT_EQ(index.erase(key), ref.erase(key) == 1) << step;
    }
    const auto it = ref.find(key);
    ASSERT_EQ(index.find(key), it == ref.end() ? -1 : it->second) << step;
    ASSERT_EQ(index.size(), static_cast<int32_t>(ref.size()));
  }
  for (const auto& [key, value] : ref) EXPECT_EQ(index.find(key), value);
}

}  // namespace
}  // namespace quanta::kv
