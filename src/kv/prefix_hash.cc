// Chained block hashing and the open-addressing hash -> block index of the prefix cache.
#include "kv/prefix_hash.h"

#include "core/error.h"

namespace quanta::kv {
namespace {

uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

uint64_t fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

}  // namespace

uint64_t hash_block(uint64_t parent, const int32_t* tokens, int32_t n) {
  uint64_t acc = parent ^ (static_cast<uint64_t>(n) * kHashP3);
  for (int32_t i = 0; i < n; ++i) {
    const uint64_t t = static_cast<uint32_t>(tokens[i]);
    acc = rotl64(acc ^ (t * kHashP2), 31) * kHashP1;
  }
  return fmix64(acc);
}

void extend_block_hashes(std::vector<uint64_t>& hashes, const int32_t* tokens, int32_t n_tokens,
                         int32_t block_size) {
  QUANTA_ASSERT(block_size > 0 && n_tokens >= 0);
  const size_t n_full = static_cast<size_t>(n_tokens / block_size);
  while (hashes.size() < n_full) {
    const uint64_t parent = hashes.empty() ? kRootBlockHash : hashes.back();
    hashes.push_back(hash_block(parent, tokens + hashes.size() * block_size, block_size));
  }
}

BlockHashIndex::BlockHashIndex(int32_t max_entries) : max_entries_(max_entries) {
  QUANTA_ASSERT(max_entries >= 0);
  size_t capacity = 2;
  while (capacity < 2 * static_cast<size_t>(max_entries)) capacity *= 2;
  mask_ = capacity - 1;
  keys_.assign(capacity, 0);
  values_.assign(capacity, -1);
}

int32_t BlockHashIndex::find(uint64_t hash) const {
  for (size_t s = slot_of(hash);; s = (s + 1) & mask_) {
    if (values_[s] < 0) return -1;
    if (keys_[s] == hash) return values_[s];
  }
}

bool BlockHashIndex::insert(uint64_t hash, int32_t block) {
  QUANTA_ASSERT(block >= 0);
  size_t s = slot_of(hash);
  for (; values_[s] >= 0; s = (s + 1) & mask_) {
    if (keys_[s] == hash) return false;
  }
  QUANTA_ASSERT(size_ < max_entries_);  // keeps the load factor at most 1/2
  keys_[s] = hash;
  values_[s] = block;
  ++size_;
  return true;
}

bool BlockHashIndex::erase(uint64_t hash) {
  size_t hole = slot_of(hash);
  for (;; hole = (hole + 1) & mask_) {
    if (values_[hole] < 0) return false;
    if (keys_[hole] == hash) break;
  }
  // Backward-shift deletion: move later entries of the probe run into the hole when their
  // home slot does not lie cyclically in (hole, s].
  for (size_t s = (hole + 1) & mask_; values_[s] >= 0; s = (s + 1) & mask_) {
    const size_t home = slot_of(keys_[s]);
    const bool stays = hole < s ? (home > hole && home <= s) : (home > hole || home <= s);
    if (stays) continue;
    keys_[hole] = keys_[s];
    values_[hole] = values_[s];
    hole = s;
  }
  values_[hole] = -1;
  --size_;
  return true;
}

}  // namespace quanta::kv
