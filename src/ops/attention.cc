// Reference attention: full score row, two-pass softmax, weighted sum of values, reading F32,
// F16, Q8_0 or Q4_0 K/V rows with the scalar reference kernels of src/quant. The flash kernel
// (ops/flash_attention.cc) is tested against this one.
#include "ops/attention.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "ops/elementwise.h"

namespace quanta::ops {
namespace {

inline float load(const float* p, int32_t i) {
  return p[i];
}
inline float load(const uint16_t* p, int32_t i) {
  return f16_to_f32(p[i]);
}

template <typename T>
void attention_head_typed(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                          const AttentionShape& shape, int32_t head, float* scores,
                          float* out_head) {
  const int32_t kv_head = head / shape.group();
  for (int32_t p = 0; p < n_kv; ++p) {
    const T* k = kv.k_row<T>(p, kv_head);
    float dot = 0.0f;
    for (int32_t i = 0; i < shape.head_dim; ++i) dot += q_head[i] * load(k, i);
    scores[p] = dot * shape.scale;
  }
  softmax(scores, n_kv);
  std::memset(out_head, 0, sizeof(float) * shape.head_dim);
  for (int32_t p = 0; p < n_kv; ++p) {
    const T* v = kv.v_row<T>(p, kv_head);
    const float w = scores[p];
    for (int32_t i = 0; i < shape.head_dim; ++i) out_head[i] += w * load(v, i);
  }
}

// Quantized K and V: q in the vec_dot_type, integer block dot products, dequantized V rows.
void attention_head_quantized(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                              const AttentionShape& shape, int32_t head, float* scores,
                              float* out_head) {
  const TypeTraits& traits = type_traits(kv.type);
  const TypeTraits& dot_traits = type_traits(traits.vec_dot_type);
  const int32_t d = shape.head_dim;
  const int32_t kv_head = head / shape.group();
  std::vector<uint8_t> q_quant(row_size(traits.vec_dot_type, d));
  std::vector<float> v_row(d);
  dot_traits.from_float(q_head, q_quant.data(), d);
  for (int32_t p = 0; p < n_kv; ++p) {
    scores[p] = traits.vec_dot(d, kv.k_row<uint8_t>(p, kv_head), q_quant.data()) * shape.scale;
  }
  softmax(scores, n_kv);
  std::memset(out_head, 0, sizeof(float) * d);
  for (int32_t p = 0; p < n_kv; ++p) {
    traits.to_float(kv.v_row<uint8_t>(p, kv_head), v_row.data(), d);
    const float w = scores[p];
    for (int32_t i = 0; i < d; ++i) out_head[i] += w * v_row[i];
  }
}

}  // namespace

void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head) {
  QUANTA_ASSERT(kv.row_bytes == row_size(kv.type, kv.head_dim));
  switch (kv.type) {
    case GgmlType::F32:
      attention_head_typed<float>(q_head, kv, n_kv, shape, head, scores, out_head);
      break;
    case GgmlType::F16:
      attention_head_typed<uint16_t>(q_head, kv, n_kv, shape, head, scores, out_head);
      break;
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      attention_head_quantized(q_head, kv, n_kv, shape, head, scores, out_head);
      break;
    default:
      QUANTA_ASSERT(false && "unsupported KV type");
  }
}

}  // namespace quanta::ops
