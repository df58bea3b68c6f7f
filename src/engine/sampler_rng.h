// Reproducible random numbers for token sampling: xoshiro256** (Blackman and Vigna) seeded
// through splitmix64. Pure integer arithmetic, so one seed gives one stream on every platform.
#pragma once

#include <cstdint>

namespace quanta {

// One step of splitmix64: advances `state` and returns the next output.
inline uint64_t splitmix64_next(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256**: 256 bits of state, period 2^256 - 1. Copyable value type, no allocation.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) { reseed(seed); }

  // A generator with an explicit state (reference test vectors start from {1, 2, 3, 4}).
  static Xoshiro256 from_state(uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3) {
    Xoshiro256 rng(0);
    rng.s_[0] = s0;
    rng.s_[1] = s1;
    rng.s_[2] = s2;
    rng.s_[3] = s3;
    return rng;
  }

  // State = four successive splitmix64 outputs from `seed` (never all zero).
  void reseed(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& word : s_) word = splitmix64_next(sm);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform double in [0, 1) from the top 53 bits of next(): exact, no rounding up to 1.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t s_[4];  // generator state; all-zero is the one forbidden value
};

}  // namespace quanta
