// Helpers of the kernel tests: random rows, quantization through the reference, the
// magnitude that bounds rounding differences of a dot product, and the ISAs to cover.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/kernel_table.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace quanta::kernels::testing {

// Weight types with compute kernels (every one the kernel table must cover).
inline std::vector<GgmlType> weight_types() {
  return {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
          GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
          GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
}

inline GgmlType act_type(GgmlType w) {
  return type_traits(w).vec_dot_type;
}
inline int64_t block_of(GgmlType t) {
  return type_traits(t).block_size;
}

// Every ISA this machine runs except the reference itself.
inline std::vector<std::string> fast_isas() {
  std::vector<std::string> out;
  for (const std::string& isa : available_isas()) {
    if (isa != "ref") out.push_back(isa);
  }
  return out;
}

// Selects an ISA for the lifetime of the object, then the default (best) one again.
class IsaScope {
 public:
  explicit IsaScope(const std::string& isa) { select(isa); }
  ~IsaScope() { select(available_isas().back()); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
};

inline std::vector<float> normal_row(std::mt19937& rng, int64_t n, float sd = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_size(type, static_cast<int64_t>(x.size())));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

inline std::vector<float> dequantize(GgmlType type, const uint8_t* q, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(type, q, v.data(), n);
  return v;
}

// Bound on the rounding difference between two summation orders of dot(w, a), both given
// as stored rows: the float epsilon times the magnitude sum_i (|w_i| + o_i) * |a_i| times a
// slack growing as the square root of the number of partial sums (rounding errors of
// independent partial sums add up like a random walk; measured differences stay below 1/7
// of this bound). o_i = max|w| over i's group of 32 for the types whose kernels sum the
// unsigned levels before applying an offset or min (Q4_0's q - 8, Q4_1's m, Q4_K's mins,
// ...): |level * d| <= |w_i| + |offset| <= |w_i| + o_i.
inline double rounding_bound(GgmlType type, const uint8_t* w, const uint8_t* a, int64_t k) {
  const std::vector<float> wf = dequantize(type, w, k);
  const std::vector<float> af = dequantize(act_type(type), a, k);
  const bool offset = type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::BF16 &&
                      type != GgmlType::Q8_0;
  double magnitude = 0.0;
  for (int64_t g = 0; g < k; g += 32) {
    const int64_t end = g + 32 < k ? g + 32 : k;
    double gmax = 0.0;
    for (int64_t i = g; i < end; ++i) gmax = std::fmax(gmax, std::fabs(wf[i]));
    const double o = offset ? gmax : 0.0;
    for (int64_t i = g; i < end; ++i) magnitude += (std::fabs(wf[i]) + o) * std::fabs(af[i]);
  }
  const double partial_sums = static_cast<double>(k) / 32 + 8;
  return magnitude * 4 * std::sqrt(partial_sums) * 0x1p-24;
}

// f64 dot product of two stored rows (their exact values). With Q8_1 activations the dot
// is defined through the block's stored s (an F16 rounding of d * sum(q)) for the weight
// min's term, as in ggml: sum(x*y) = dx*dy*sum(qx*qy) + m*s per block.
inline double exact_dot(GgmlType type, const uint8_t* w, const uint8_t* a, int64_t k) {
  const std::vector<float> wf = dequantize(type, w, k);
  const std::vector<float> af = dequantize(act_type(type), a, k);
  double s = 0.0;
  for (int64_t i = 0; i < k; ++i) s += static_cast<double>(wf[i]) * af[i];
  if (act_type(type) == GgmlType::Q8_1) {
    const size_t w_block = type_traits(type).type_size;
    for (int64_t b = 0; b < k / kQK8_1; ++b) {
      BlockQ8_1 y;
      std::memcpy(&y, a + b * sizeof(BlockQ8_1), sizeof y);
      uint16_t m;  // Q4_1 and Q5_1 both keep m at byte 2
      std::memcpy(&m, w + b * w_block + 2, sizeof m);
      int sum = 0;
      for (int8_t q : y.qs) sum += q;
      s += static_cast<double>(f16_to_f32(m)) *
           (static_cast<double>(f16_to_f32(y.s)) - static_cast<double>(f16_to_f32(y.d)) * sum);
    }
  }
  return s;
}

// A copy of `bytes` starting `offset` bytes into a fresh buffer (deliberately misaligned).
class Misaligned {
 public:
  Misaligned(const std::vector<uint8_t>& bytes, size_t offset)
      : storage_(bytes.size() + offset + 64), offset_(offset) {
    std::memcpy(storage_.data() + offset_, bytes.data(), bytes.size());
  }
  const uint8_t* data() const { return storage_.data() + offset_; }

 private:
  std::vector<uint8_t> storage_;
  size_t offset_;
};

}  // namespace quanta::kernels::testing
