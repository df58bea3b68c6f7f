// Reference attention: full score row, two-pass softmax, weighted sum of values. The
// kernels issue adds a tiled online-softmax (flash) version tested against this one.
#include "ops/attention.h"

#include <cstring>

#include "ops/elementwise.h"

namespace quanta::ops {

void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head) {
  const int32_t group = shape.n_head / shape.n_kv_head;
  const int64_t kv_offset = static_cast<int64_t>(head / group) * shape.head_dim;
  for (int32_t p = 0; p < n_kv; ++p) {
    const float* k = kv.k_row(p) + kv_offset;
    float dot = 0.0f;
    for (int32_t i = 0; i < shape.head_dim; ++i) dot += q_head[i] * k[i];
    scores[p] = dot * shape.scale;
  }
  softmax(scores, n_kv);
  std::memset(out_head, 0, sizeof(float) * shape.head_dim);
  for (int32_t p = 0; p < n_kv; ++p) {
    const float* v = kv.v_row(p) + kv_offset;
    const float w = scores[p];
    for (int32_t i = 0; i < shape.head_dim; ++i) out_head[i] += w * v[i];
  }
}

}  // namespace quanta::ops
