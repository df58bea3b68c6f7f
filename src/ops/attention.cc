// Reference attention: full score row, two-pass softmax, weighted sum of values, reading F32
// or F16 K/V rows. The flash kernel (ops/flash_attention.cc) is tested against this one.
#include "ops/attention.h"

#include <cstring>

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

}  // namespace

void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head) {
  if (kv.type == GgmlType::F16) {
    attention_head_typed<uint16_t>(q_head, kv, n_kv, shape, head, scores, out_head);
  } else {
    QUANTA_ASSERT(kv.type == GgmlType::F32);
    attention_head_typed<float>(q_head, kv, n_kv, shape, head, scores, out_head);
  }
}

}  // namespace quanta::ops
