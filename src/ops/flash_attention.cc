// Portable flash attention in plain C++ (the inner loops are written for g++ to vectorise):
// per tile of kFlashTile positions, scores for all query heads of the group, an online-softmax
// update, then the probability-weighted V rows added into the output accumulators. Quantized
// K (Q8_0, Q4_0): the queries are quantized to the K type's vec_dot_type once per call and
// scored with the kernel table's integer vec_dot (llama.cpp's approach); quantized V rows are
// dequantized per tile. Packed quantized rows (heads narrower than a block) are dequantized,
// K and V, and take the float path. On x86-64 with any kernel ISA but "ref" the AVX2 version
// (kernels/x86_avx2) runs instead, on blocks of tokens of one sequence (see flash_attention).
#include "ops/flash_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/kernel_table.h"
#include "ops/attention_math.h"
#if defined(__x86_64__)
#include "kernels/x86_avx2/flash_attention_avx2.h"
#endif

namespace quanta::ops {
namespace {

constexpr int64_t kAlignFloats = 16;  // keep each scratch part on a 64-byte boundary

int64_t aligned(int64_t n) {
  return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
}

// The per-thread scratch, carved out of one float array.
struct Scratch {
  float* s;     // [group, kFlashTile] scores of the tile, then their exp(score - max)
  float* m;     // [group] running max of the scores
  float* l;     // [group] running sum of exp(score - m)
  float* kt;    // [kFlashTile, head_dim] F16 / packed K rows of the tile converted to F32
  float* vt;    // [kFlashTile, head_dim] F16 / quantized V rows converted to F32
  uint8_t* qq;  // [group] query rows in the K type's vec_dot_type (quantized K only)
  float* span;  // [max_span_values] the dequantized blocks of one packed row's head

  Scratch(float* base, int32_t group, int32_t head_dim) {
    s = base;
    m = s + aligned(static_cast<int64_t>(group) * kFlashTile);
    l = m + aligned(group);
    kt = l + aligned(group);
    vt = kt + aligned(static_cast<int64_t>(kFlashTile) * head_dim);
    // Q8_0 rows take 34 bytes per 32 values: far less than the head_dim floats reserved.
    float* q_part = vt + aligned(static_cast<int64_t>(kFlashTile) * head_dim);
    qq = reinterpret_cast<uint8_t*>(q_part);
    span = q_part + aligned(static_cast<int64_t>(group) * head_dim);
  }
};

bool is_quantized_kv(GgmlType type) {
  return type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
}

// Quantized K scored with integer block dot products: every quantized row but a packed one.
bool integer_k(const PagedKvView& kv) {
  return is_quantized_kv(kv.type) && kv.row_heads == 1;
}

// The tile's K rows: float rows (F32, F16 converted) or the raw quantized rows.
struct TileRows {
  const float* k[kFlashTile];
  const uint8_t* kq[kFlashTile];
  const float* v[kFlashTile];
};

// Eight independent partial sums: a fixed order that g++ turns into SIMD lanes.
inline float dot(const float* a, const float* b, int32_t n) {
  float acc[8] = {};
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int32_t j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

inline void convert_row(const uint16_t* src, float* dst, int32_t n) {
  for (int32_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
}

// Dequantizes KV head kv_head's values of positions [p0, p0 + n) from packed rows into the
// scratch tiles: the blocks holding the head go to sc.span, its head_dim values on to the tile.
void load_packed_tile(const PagedKvView& kv, int32_t p0, int32_t n, int32_t kv_head,
                      int32_t head_dim, const Scratch& sc, TileRows& rows) {
  const ToFloatFn to_float = kernels::active().to_float[static_cast<uint32_t>(kv.type)];
  const PagedKvView::HeadSpan span = kv.head_span(kv_head);
  const size_t bytes = sizeof(float) * head_dim;
  for (int32_t j = 0; j < n; ++j) {
    float* kd = sc.kt + static_cast<int64_t>(j) * head_dim;
    float* vd = sc.vt + static_cast<int64_t>(j) * head_dim;
    to_float(kv.k_row<uint8_t>(p0 + j, kv_head) + span.byte_offset, sc.span, span.n_values);
    std::memcpy(kd, sc.span + span.skip, bytes);
    to_float(kv.v_row<uint8_t>(p0 + j, kv_head) + span.byte_offset, sc.span, span.n_values);
    std::memcpy(vd, sc.span + span.skip, bytes);
    rows.k[j] = kd;
    rows.v[j] = vd;
  }
}

// Points the tile rows at KV head kv_head's rows of positions [p0, p0 + n): straight into
// the cache for F32, into the converted scratch tiles for F16 and packed rows; unpacked
// quantized K rows stay raw and quantized V rows are dequantized.
void load_tile(const PagedKvView& kv, int32_t p0, int32_t n, int32_t kv_head, int32_t head_dim,
               const Scratch& sc, TileRows& rows) {
  if (kv.row_heads > 1) {
    load_packed_tile(kv, p0, n, kv_head, head_dim, sc, rows);
    return;
  }
  if (kv.type == GgmlType::F32) {
    for (int32_t j = 0; j < n; ++j) {
      rows.k[j] = kv.k_row<float>(p0 + j, kv_head);
      rows.v[j] = kv.v_row<float>(p0 + j, kv_head);
    }
    return;
  }
  if (is_quantized_kv(kv.type)) {
    const ToFloatFn to_float = kernels::active().to_float[static_cast<uint32_t>(kv.type)];
    for (int32_t j = 0; j < n; ++j) {
      float* vd = sc.vt + static_cast<int64_t>(j) * head_dim;
      rows.kq[j] = kv.k_row<uint8_t>(p0 + j, kv_head);
      to_float(kv.v_row<uint8_t>(p0 + j, kv_head), vd, head_dim);
      rows.v[j] = vd;
    }
    return;
  }
  for (int32_t j = 0; j < n; ++j) {
    float* kd = sc.kt + static_cast<int64_t>(j) * head_dim;
    float* vd = sc.vt + static_cast<int64_t>(j) * head_dim;
    convert_row(kv.k_row<uint16_t>(p0 + j, kv_head), kd, head_dim);
    convert_row(kv.v_row<uint16_t>(p0 + j, kv_head), vd, head_dim);
    rows.k[j] = kd;
    rows.v[j] = vd;
  }
}

// Quantizes the group's query rows into sc.qq (quantized K only); returns the row stride.
size_t quantize_queries(const float* q_group, const PagedKvView& kv, const AttentionShape& shape,
                        const Scratch& sc) {
  const GgmlType dot_type = type_traits(kv.type).vec_dot_type;
  const FromFloatFn from_float = kernels::active().from_float[static_cast<uint32_t>(dot_type)];
  const size_t stride = row_size(dot_type, shape.head_dim);
  for (int32_t g = 0; g < shape.group(); ++g) {
    from_float(q_group + static_cast<int64_t>(g) * shape.head_dim, sc.qq + g * stride,
               shape.head_dim);
  }
  return stride;
}

// s[g, j] = vec_dot(k_j, quantized q_g) * scale for quantized K rows.
void tile_scores_quantized(const PagedKvView& kv, const uint8_t* const* krows, int32_t n,
                           const AttentionShape& shape, const uint8_t* qq, size_t q_stride,
                           float* s) {
  const VecDotFn dot = kernels::active().vec_dot[static_cast<uint32_t>(kv.type)];
  for (int32_t j = 0; j < n; ++j) {
    for (int32_t g = 0; g < shape.group(); ++g) {
      s[g * kFlashTile + j] = dot(shape.head_dim, krows[j], qq + g * q_stride) * shape.scale;
    }
  }
}

// s[g, j] = q_g · k_j * scale; each K row is used by every query head while it is in L1.
void tile_scores(const float* q_group, const float* const* krows, int32_t n,
                 const AttentionShape& shape, float* s) {
  const int32_t group = shape.group();
  for (int32_t j = 0; j < n; ++j) {
    for (int32_t g = 0; g < group; ++g) {
      s[g * kFlashTile + j] =
          dot(q_group + static_cast<int64_t>(g) * shape.head_dim, krows[j], shape.head_dim) *
          shape.scale;
    }
  }
}

// Online softmax for query head g: raises the running max (rescaling the sum and the output
// accumulator out_g by exp(old - new)), turns the tile's scores into exp(score - max) and
// adds them to the running sum.
void softmax_update(const Scratch& sc, int32_t g, int32_t n, float* out_g, int32_t head_dim) {
  float* s = sc.s + g * kFlashTile;
  float tile_max = s[0];
  for (int32_t j = 1; j < n; ++j) tile_max = s[j] > tile_max ? s[j] : tile_max;
  if (tile_max > sc.m[g]) {
    const float c = exp_nonpositive(sc.m[g] - tile_max);  // 0 on the first tile (m = -inf)
    sc.l[g] *= c;
    for (int32_t i = 0; i < head_dim; ++i) out_g[i] *= c;
    sc.m[g] = tile_max;
  }
  const float m = sc.m[g];
  for (int32_t j = 0; j < n; ++j) s[j] = exp_nonpositive(s[j] - m);
  float sum = 0.0f;
  for (int32_t j = 0; j < n; ++j) sum += s[j];
  sc.l[g] += sum;
}

// out_g += sum_j p[g, j] * v_j; each V row is used by every query head while it is in L1.
void tile_values(const float* const* vrows, int32_t n, const float* p, int32_t group,
                 int32_t head_dim, float* out_group) {
  for (int32_t j = 0; j < n; ++j) {
    const float* v = vrows[j];
    for (int32_t g = 0; g < group; ++g) {
      const float w = p[g * kFlashTile + j];
      float* out = out_group + static_cast<int64_t>(g) * head_dim;
      for (int32_t i = 0; i < head_dim; ++i) out[i] += w * v[i];
    }
  }
}

int64_t portable_scratch_floats(const AttentionShape& shape) {
  const int32_t group = shape.group();
  return aligned(static_cast<int64_t>(group) * kFlashTile) + 2 * aligned(group) +
         2 * aligned(static_cast<int64_t>(kFlashTile) * shape.head_dim) +
         aligned(static_cast<int64_t>(group) * shape.head_dim) +
         aligned(PagedKvView::max_span_values(shape.head_dim));
}

// The AVX2 kernel where kernels::avx2_active() (QUANTA_FORCE_ISA=ref or kernels::select("ref")
// selects the portable path) and the head fills whole vectors.
bool use_avx2(const AttentionShape& shape) {
  return shape.head_dim % 8 == 0 && kernels::avx2_active();
}

#if defined(__x86_64__)
// The AVX2 kernel for n_tokens tokens of one sequence (same kv): their query rows q[t], outputs
// out[t] ([group, head_dim] each) and lengths n_kv[t].
void run_avx2(const float* const* q, float* const* out, const int32_t* n_kv, int32_t n_tokens,
              const PagedKvView& kv, const AttentionShape& shape, int32_t kv_head, float* scratch) {
  kernels::avx2::FlashGroupArgs a;
  a.n_tokens = n_tokens;
  a.q = q;
  a.out = out;
  a.n_kv = n_kv;
  a.k = kv.k;
  a.v = kv.v;
  a.type = kv.type;
  a.row_heads = kv.row_heads;
  a.row_bytes = kv.row_bytes;
  if (integer_k(kv)) {
    const GgmlType dot_type = type_traits(kv.type).vec_dot_type;
    const kernels::KernelTable& table = kernels::active();
    a.q_from_float = table.from_float[static_cast<uint32_t>(dot_type)];
    a.q_row_bytes = row_size(dot_type, shape.head_dim);
  }
  a.n_kv_head = kv.n_kv_head;
  a.kv_head = kv_head;
  a.head_dim = shape.head_dim;
  a.block_size = kv.block_size;
  a.block_ids = kv.block_ids;
  a.group = shape.group();
  a.scale = shape.scale;
  a.scratch = scratch;
  kernels::avx2::flash_attention_group(a);
}
#endif

// The portable kernel.
void flash_group_portable(const float* q_group, const PagedKvView& kv, int32_t n_kv,
                          const AttentionShape& shape, int32_t kv_head, float* scratch,
                          float* out_group) {
  const int32_t group = shape.group();
  const int32_t d = shape.head_dim;
  const Scratch sc(scratch, group, d);
  for (int32_t g = 0; g < group; ++g) {
    sc.m[g] = -INFINITY;
    sc.l[g] = 0.0f;
  }
  std::memset(out_group, 0, sizeof(float) * group * d);
  const bool quantized = integer_k(kv);
  const size_t q_stride = quantized ? quantize_queries(q_group, kv, shape, sc) : 0;
  TileRows rows;
  for (int32_t p0 = 0; p0 < n_kv; p0 += kFlashTile) {
    const int32_t n = n_kv - p0 < kFlashTile ? n_kv - p0 : kFlashTile;
    load_tile(kv, p0, n, kv_head, d, sc, rows);
    if (quantized) {
      tile_scores_quantized(kv, rows.kq, n, shape, sc.qq, q_stride, sc.s);
    } else {
      tile_scores(q_group, rows.k, n, shape, sc.s);
    }
    for (int32_t g = 0; g < group; ++g) {
      softmax_update(sc, g, n, out_group + static_cast<int64_t>(g) * d, d);
    }
    tile_values(rows.v, n, sc.s, group, d, out_group);
  }
  for (int32_t g = 0; g < group; ++g) {
    const float inv = 1.0f / sc.l[g];
    float* out = out_group + static_cast<int64_t>(g) * d;
    for (int32_t i = 0; i < d; ++i) out[i] *= inv;
  }
}

void check_view(const PagedKvView& kv, const AttentionShape& shape) {
  QUANTA_ASSERT(kv.type == GgmlType::F32 || kv.type == GgmlType::F16 || is_quantized_kv(kv.type));
  QUANTA_ASSERT(kv.head_dim == shape.head_dim && kv.n_kv_head == shape.n_kv_head);
  QUANTA_ASSERT(kv.row_heads >= 1 && kv.n_kv_head % kv.row_heads == 0);
  QUANTA_ASSERT(kv.row_bytes == row_size(kv.type, int64_t{kv.row_heads} * kv.head_dim));
  QUANTA_ASSERT(kv.row_heads == 1 || is_quantized_kv(kv.type));
}

// Tokens per work item of the batch driver: the AVX2 kernel's block (its K/V tiles are
// loaded once for all of a block's query rows), one for the portable kernel.
int32_t block_tokens(const AttentionShape& shape) {
#if defined(__x86_64__)
  if (use_avx2(shape)) return kernels::avx2::flash_block_tokens(shape.group());
#endif
  (void)shape;
  return 1;
}

bool same_sequence(const PagedKvView& a, const PagedKvView& b) {
  return a.k == b.k && a.v == b.v && a.block_ids == b.block_ids && a.type == b.type &&
         a.row_heads == b.row_heads && a.block_size == b.block_size;
}

// KV head kv_head's attention for batch tokens [t0, t1) (at most block_tokens): runs of
// consecutive tokens of one sequence go to the AVX2 kernel together, token by token to the
// portable one. Each token's result is the same bits either way.
void attend_chunk(const AttentionBatch& batch, const AttentionShape& shape, int32_t t0, int32_t t1,
                  int32_t kv_head, float* scratch) {
  const int64_t q_dim = static_cast<int64_t>(shape.n_head) * shape.head_dim;
  const int64_t off = kv_head * static_cast<int64_t>(shape.group()) * shape.head_dim;
#if defined(__x86_64__)
  if (use_avx2(shape)) {
    constexpr int32_t kMax = 64;
    const float* q[kMax];
    float* out[kMax];
    int32_t n_kv[kMax];
    QUANTA_ASSERT(t1 - t0 <= kMax);
    for (int32_t t = t0; t < t1;) {
      int32_t n = 0;
      for (int32_t u = t; u < t1 && same_sequence(batch.kv[u], batch.kv[t]); ++u, ++n) {
        q[n] = batch.q + u * q_dim + off;
        out[n] = batch.out + u * q_dim + off;
        n_kv[n] = batch.positions[u] + 1;
        QUANTA_ASSERT(n_kv[n] > 0);
      }
      check_view(batch.kv[t], shape);
      run_avx2(q, out, n_kv, n, batch.kv[t], shape, kv_head, scratch);
      t += n;
    }
    return;
  }
#endif
  for (int32_t t = t0; t < t1; ++t) {
    flash_attention_group(batch.q + t * q_dim + off, batch.kv[t], batch.positions[t] + 1, shape,
                          kv_head, scratch, batch.out + t * q_dim + off);
  }
}

}  // namespace

int64_t flash_scratch_floats(const AttentionShape& shape) {
  int64_t floats = portable_scratch_floats(shape);
#if defined(__x86_64__)
  floats = std::max(floats, kernels::avx2::flash_scratch_floats(shape.group(), shape.head_dim));
#endif
  return floats;
}

void flash_attention_group(const float* q_group, const PagedKvView& kv, int32_t n_kv,
                           const AttentionShape& shape, int32_t kv_head, float* scratch,
                           float* out_group) {
  QUANTA_ASSERT(n_kv > 0);
  check_view(kv, shape);
#if defined(__x86_64__)
  if (use_avx2(shape)) {
    run_avx2(&q_group, &out_group, &n_kv, 1, kv, shape, kv_head, scratch);
    return;
  }
#endif
  flash_group_portable(q_group, kv, n_kv, shape, kv_head, scratch, out_group);
}

void flash_attention(const AttentionBatch& batch, const AttentionShape& shape, float* scratch,
                     ThreadPool& pool) {
  QUANTA_ASSERT(shape.n_kv_head > 0 && shape.n_head % shape.n_kv_head == 0);
  const int32_t n_tokens = batch.n_tokens;
  const int32_t chunk = block_tokens(shape);
  const int64_t n_chunks = (n_tokens + chunk - 1) / chunk;
  const int64_t per_thread = flash_scratch_floats(shape);
  // Items are (chunk of `chunk` consecutive tokens, KV head), in chunk order 0, n-1, 1, n-2,
  // ...: a prompt's later tokens attend to more positions, and pairing short with long keeps
  // the pool's contiguous chunks balanced.
  const auto work = [&](int64_t begin, int64_t end, int thread) {
    float* sc = scratch + thread * per_thread;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t k = i / shape.n_kv_head;
      const int64_t c = k % 2 == 0 ? k / 2 : n_chunks - 1 - k / 2;
      const int32_t t0 = static_cast<int32_t>(c * chunk);
      const int32_t t1 = std::min(t0 + chunk, n_tokens);
      attend_chunk(batch, shape, t0, t1, static_cast<int32_t>(i % shape.n_kv_head), sc);
    }
  };
  pool.parallel_for(n_chunks * shape.n_kv_head, 1, work);
}

}  // namespace quanta::ops
