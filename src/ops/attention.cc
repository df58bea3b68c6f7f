// Reference attention: full score row, two-pass softmax, weighted sum of values, reading F32,
// F16, Q8_0 or Q4_0 K/V rows (packed quantized rows dequantized) with the scalar reference
// kernels of src/quant. The flash kernel (ops/flash_attention.cc) is tested against this one.
#include "ops/attention.h"

#include <cstring>
#include <numeric>
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

// One KV head's rows as stored (F32, or F16 converted per element by load()).
template <typename T>
struct StoredRows {
  const PagedKvView& kv;
  int32_t kv_head;
  const T* k(int32_t pos) const { return kv.k_row<T>(pos, kv_head); }
  const T* v(int32_t pos) const { return kv.v_row<T>(pos, kv_head); }
};

// One KV head's values in packed quantized rows: the blocks that hold them are dequantized
// into buf_ one row at a time (a returned row is valid until the next call).
class PackedRows {
 public:
  PackedRows(const PagedKvView& kv, int32_t kv_head)
      : kv_(kv),
        kv_head_(kv_head),
        span_(kv.head_span(kv_head)),
        to_float_(type_traits(kv.type).to_float),
        buf_(span_.n_values) {}
  const float* k(int32_t pos) { return dequantize(kv_.k_row<uint8_t>(pos, kv_head_)); }
  const float* v(int32_t pos) { return dequantize(kv_.v_row<uint8_t>(pos, kv_head_)); }

 private:
  const float* dequantize(const uint8_t* row) {
    to_float_(row + span_.byte_offset, buf_.data(), span_.n_values);
    return buf_.data() + span_.skip;
  }
  const PagedKvView& kv_;
  int32_t kv_head_;
  PagedKvView::HeadSpan span_;
  ToFloatFn to_float_;
  std::vector<float> buf_;  // [span_.n_values]
};

// Float scores and values from `rows` (StoredRows or PackedRows).
template <typename Rows>
void attention_head_float(const float* q_head, Rows&& rows, int32_t n_kv,
                          const AttentionShape& shape, float* scores, float* out_head) {
  for (int32_t p = 0; p < n_kv; ++p) {
    const auto* k = rows.k(p);
    float dot = 0.0f;
    for (int32_t i = 0; i < shape.head_dim; ++i) dot += q_head[i] * load(k, i);
    scores[p] = dot * shape.scale;
  }
  softmax(scores, n_kv);
  std::memset(out_head, 0, sizeof(float) * shape.head_dim);
  for (int32_t p = 0; p < n_kv; ++p) {
    const auto* v = rows.v(p);
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

int32_t kv_row_heads(GgmlType type, int32_t head_dim) {
  const int64_t block = type_traits(type).block_size;
  if (block <= 1 || head_dim <= 0 || head_dim % block == 0) return 1;
  return static_cast<int32_t>(block / std::gcd(block, static_cast<int64_t>(head_dim)));
}

PagedKvView::HeadSpan PagedKvView::head_span(int32_t kv_head) const {
  const TypeTraits& traits = type_traits(type);
  const int64_t block = traits.block_size;
  const int64_t first = static_cast<int64_t>(kv_head % row_heads) * head_dim;
  const int64_t b0 = first / block;
  const int64_t b1 = (first + head_dim - 1) / block;
  HeadSpan span;
  span.byte_offset = static_cast<size_t>(b0) * traits.type_size;
  span.n_values = static_cast<int32_t>((b1 - b0 + 1) * block);
  span.skip = static_cast<int32_t>(first - b0 * block);
  return span;
}

int32_t PagedKvView::max_span_values(int32_t head_dim) {
  constexpr int32_t kBlock = 32;  // values per block of the quantized KV types
  // The span starts at most kBlock - 1 values before the head and ends within a block.
  return (head_dim / kBlock + 2) * kBlock;
}

void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head) {
  QUANTA_ASSERT(kv.row_heads >= 1 && kv.n_kv_head % kv.row_heads == 0);
  QUANTA_ASSERT(kv.row_bytes == row_size(kv.type, int64_t{kv.row_heads} * kv.head_dim));
  const int32_t kv_head = head / shape.group();
  if (kv.row_heads > 1) {
    attention_head_float(q_head, PackedRows(kv, kv_head), n_kv, shape, scores, out_head);
    return;
  }
  switch (kv.type) {
    case GgmlType::F32:
      attention_head_float(q_head, StoredRows<float>{kv, kv_head}, n_kv, shape, scores, out_head);
      break;
    case GgmlType::F16:
      attention_head_float(q_head, StoredRows<uint16_t>{kv, kv_head}, n_kv, shape, scores,
                           out_head);
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
