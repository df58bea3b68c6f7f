// Prefix-cache keys: a stable, chained 64-bit hash of full KV blocks, and the fixed-capacity
// open-addressing index (hash -> block id) that the block pool keeps for cached blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quanta::kv {

// NOTE: block hashes chain. The hash of block i of a sequence covers the hash of block i - 1
// (kRootBlockHash for block 0) and the block's token ids, so two sequences get the same hash
// for block i exactly when their first (i + 1) * block_size tokens agree (up to 64-bit
// collisions: about n^2 / 2^65 for n distinct cached blocks, negligible at pool sizes). The
// function is specified here, not std::hash, so that it is the same in every build and run:
//
//   acc = parent ^ (n * kHashP3)
//   for each token t (as uint32):  acc = rotl64(acc ^ (t * kHashP2), 31) * kHashP1
//   hash = fmix64(acc)   (MurmurHash3's 64-bit finalizer: xor-shift 33, * 0xff51afd7ed558ccd,
//                         xor-shift 33, * 0xc4ceb9fe1a85ec53, xor-shift 33)
inline constexpr uint64_t kRootBlockHash = 0x6a09e667f3bcc908ull;  // parent of block 0
inline constexpr uint64_t kHashP1 = 0x9e3779b185ebca87ull;
inline constexpr uint64_t kHashP2 = 0xc2b2ae3d27d4eb4full;
inline constexpr uint64_t kHashP3 = 0x165667b19e3779f9ull;

// Hash of one block of n token ids whose preceding block hashed to `parent`.
uint64_t hash_block(uint64_t parent, const int32_t* tokens, int32_t n);

// Appends to `hashes` the chained hashes of the full blocks of tokens[0, n_tokens) that it
// does not hold yet (hashes.size() of them are taken as already computed for this sequence).
void extend_block_hashes(std::vector<uint64_t>& hashes, const int32_t* tokens, int32_t n_tokens,
                         int32_t block_size);

// Map from block hash to block id with a capacity fixed at construction (a power of two at
// least twice max_entries): linear probing, backward-shift deletion, no allocation after the
// constructor. One entry per hash.
class BlockHashIndex {
 public:
  explicit BlockHashIndex(int32_t max_entries);

  int32_t size() const { return size_; }
  // The block stored under `hash`, or -1.
  int32_t find(uint64_t hash) const;
  // Stores block under hash; false (no change) when the hash is already present.
  bool insert(uint64_t hash, int32_t block);
  // Removes `hash`; false when absent.
  bool erase(uint64_t hash);

 private:
  size_t slot_of(uint64_t hash) const { return static_cast<size_t>(hash) & mask_; }

  size_t mask_;
  int32_t size_ = 0;
  int32_t max_entries_;
  std::vector<uint64_t> keys_;   // [capacity]
  std::vector<int32_t> values_;  // [capacity], -1 = empty slot
};

}  // namespace quanta::kv
