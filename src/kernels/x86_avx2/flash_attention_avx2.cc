// AVX2 flash attention: per tile of 32 positions, scores for two query heads x four K rows
// at a time (FMA, horizontal sums folded with hadd), a vectorised online-softmax update, then
// the probability-weighted V rows added into two heads' accumulators held in registers. F16
// rows are converted once per tile (F16C) and shared by all query heads of the group.
// Quantized K: the queries are quantized to Q8_0 once per call, and scores are integer block
// dot products (ggml's vec_dot_q8_0_q8_0 / q4_0_q8_0 math, fused here over up to four query
// heads per K row); quantized V rows are dequantized once per tile. Packed quantized rows
// (several narrow heads per row) are dequantized, K and V, and take the F32 path.
// NOTE: no std:: templates or shared inline helpers here (see simd.h): AVX2 code only.
#include "kernels/x86_avx2/flash_attention_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace quanta::kernels::avx2 {
namespace {

constexpr int32_t kTile = 32;  // positions per tile: four 8-lane vectors of scores

int64_t aligned(int64_t n) {
  return (n + 15) / 16 * 16;
}

// Views into the per-thread scratch.
struct Scratch {
  float* s;     // [group, kTile] scores, then exp(score - max); slots >= n hold 0 after exp
  float* m;     // [group] running max
  float* l;     // [group] running sum
  float* kt;    // [kTile, head_dim] F16 K rows converted
  float* vt;    // [kTile, head_dim] F16 V rows converted
  float* zero;  // [head_dim] zeros: the padding row of a tile whose length is not a multiple of 4
  uint8_t* qq;  // [group, q_row_bytes] quantized query rows (quantized K only)
  float* span;  // [(d / 32 + 2) * 32] the dequantized blocks of one packed row's head

  Scratch(float* base, int32_t group, int32_t d) {
    s = base;
    m = s + aligned(static_cast<int64_t>(group) * kTile);
    l = m + aligned(group);
    kt = l + aligned(group);
    vt = kt + aligned(static_cast<int64_t>(kTile) * d);
    zero = vt + aligned(static_cast<int64_t>(kTile) * d);
    // A Q8_0 row takes 34 bytes per 32 values, well inside group * d floats.
    float* q_part = zero + aligned(d);
    qq = reinterpret_cast<uint8_t*>(q_part);
    span = q_part + aligned(static_cast<int64_t>(group) * d);
  }
};

bool is_quantized(GgmlType type) {
  return type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
}

inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

// [sum(a0), sum(a1), sum(a2), sum(a3)]
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// exp(x) for lanes x <= 0; 0 below -87, for -inf and for NaN (the scalar version's method).
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 limit = _mm256_set1_ps(-87.0f);
  const __m256 in_range = _mm256_cmp_ps(x, limit, _CMP_GE_OQ);
  x = _mm256_max_ps(x, limit);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  const __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  return _mm256_and_ps(_mm256_mul_ps(p, pow2n), in_range);
}

void convert_row(const uint16_t* src, float* dst, int32_t d) {
  for (int32_t i = 0; i < d; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
}

// Q8_0 row (34-byte blocks: F16 scale, 32 int8) -> floats, value = scale * q (exact as the
// reference dequantizer).
void dequantize_q8_0(const uint8_t* src, float* dst, int32_t d) {
  for (int32_t b = 0; b < d / 32; ++b, src += 34, dst += 32) {
    uint16_t h;
    std::memcpy(&h, src, sizeof(h));
    const __m256 scale = _mm256_set1_ps(_cvtsh_ss(h));
    for (int32_t i = 0; i < 32; i += 8) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 2 + i));
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), scale));
    }
  }
}

// Q4_0 row (18-byte blocks: F16 scale, 16 bytes of nibbles; low nibbles are values 0..15,
// high nibbles 16..31) -> floats, value = scale * (q - 8).
void dequantize_q4_0(const uint8_t* src, float* dst, int32_t d) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i eight = _mm_set1_epi8(8);
  for (int32_t b = 0; b < d / 32; ++b, src += 18, dst += 32) {
    uint16_t h;
    std::memcpy(&h, src, sizeof(h));
    const __m256 scale = _mm256_set1_ps(_cvtsh_ss(h));
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2));
    const __m128i halves[2] = {_mm_sub_epi8(_mm_and_si128(raw, mask), eight),
                               _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight)};
    for (int32_t half = 0; half < 2; ++half) {
      const __m128i q = halves[half];
      const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
      const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
      _mm256_storeu_ps(dst + 16 * half, _mm256_mul_ps(lo, scale));
      _mm256_storeu_ps(dst + 16 * half + 8, _mm256_mul_ps(hi, scale));
    }
  }
}

// Byte offset of position pos's stored row holding the group's KV head.
inline size_t row_offset(const FlashGroupArgs& a, int32_t pos) {
  const size_t block = static_cast<size_t>(a.block_ids[pos / a.block_size]);
  const size_t rows = static_cast<size_t>(a.n_kv_head / a.row_heads);
  return ((block * rows + a.kv_head / a.row_heads) * a.block_size + pos % a.block_size) *
         a.row_bytes;
}

// The whole 32-value blocks of a packed row that hold the group's KV head: they start
// byte_offset bytes into the row and hold n_values values, the head's from index skip.
struct PackedSpan {
  size_t byte_offset = 0;
  int32_t n_values = 0;
  int32_t skip = 0;
};

PackedSpan packed_span(const FlashGroupArgs& a) {
  const int32_t first = (a.kv_head % a.row_heads) * a.head_dim;
  const int32_t b0 = first / 32;
  const int32_t b1 = (first + a.head_dim - 1) / 32;
  PackedSpan span;
  span.byte_offset = static_cast<size_t>(b0) * (a.type == GgmlType::Q4_0 ? 18 : 34);
  span.n_values = (b1 - b0 + 1) * 32;
  span.skip = first - 32 * b0;
  return span;
}

// The group's head_dim values of a packed Q8_0 / Q4_0 row, dequantized into dst.
void load_packed_row(const FlashGroupArgs& a, const Scratch& sc, const PackedSpan& span,
                     const uint8_t* row, float* dst) {
  if (a.type == GgmlType::Q4_0) {
    dequantize_q4_0(row + span.byte_offset, sc.span, span.n_values);
  } else {
    dequantize_q8_0(row + span.byte_offset, sc.span, span.n_values);
  }
  std::memcpy(dst, sc.span + span.skip, sizeof(float) * a.head_dim);
}

// Row pointers of positions [p0, p0 + n), padded with the zero row to a multiple of 4; F16
// and packed rows are converted into the scratch tiles first. Other quantized K rows stay raw
// (kq); quantized V rows are dequantized.
void load_tile(const FlashGroupArgs& a, const Scratch& sc, const PackedSpan& span, int32_t p0,
               int32_t n, const float** krows, const uint8_t** kq, const float** vrows) {
  const int64_t d = a.head_dim;
  const uint8_t* k = static_cast<const uint8_t*>(a.k);
  const uint8_t* v = static_cast<const uint8_t*>(a.v);
  for (int32_t j = 0; j < n; ++j) {
    const size_t off = row_offset(a, p0 + j);
    if (a.row_heads > 1) {
      load_packed_row(a, sc, span, k + off, sc.kt + j * d);
      load_packed_row(a, sc, span, v + off, sc.vt + j * d);
      krows[j] = sc.kt + j * d;
      vrows[j] = sc.vt + j * d;
      continue;
    }
    switch (a.type) {
      case GgmlType::F16:
        convert_row(reinterpret_cast<const uint16_t*>(k + off), sc.kt + j * d, a.head_dim);
        convert_row(reinterpret_cast<const uint16_t*>(v + off), sc.vt + j * d, a.head_dim);
        krows[j] = sc.kt + j * d;
        vrows[j] = sc.vt + j * d;
        break;
      case GgmlType::Q8_0:
        kq[j] = k + off;
        dequantize_q8_0(v + off, sc.vt + j * d, a.head_dim);
        vrows[j] = sc.vt + j * d;
        break;
      case GgmlType::Q4_0:
        kq[j] = k + off;
        dequantize_q4_0(v + off, sc.vt + j * d, a.head_dim);
        vrows[j] = sc.vt + j * d;
        break;
      default:
        krows[j] = reinterpret_cast<const float*>(k + off);
        vrows[j] = reinterpret_cast<const float*>(v + off);
        break;
    }
  }
  for (int32_t j = n; j % 4 != 0; ++j) krows[j] = vrows[j] = sc.zero;
}

inline float block_scale(const uint8_t* block) {
  uint16_t h;
  std::memcpy(&h, block, sizeof(h));
  return _cvtsh_ss(h);
}

// The 32 int8 values of a Q8_0 block.
inline __m256i load_q8_0(const uint8_t* block) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
}

// The 32 values of a Q4_0 block as int8 in [-8, 7] (low nibbles: values 0..15).
inline __m256i load_q4_0(const uint8_t* block) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

// sum_i a_i b_i over 32 int8 pairs, as 8 float lanes of partial sums (|a_i|, |b_i| <= 127,
// so the int16 pair sums of maddubs cannot saturate).
inline __m256 dot_i8(__m256i a, __m256i b) {
  const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)));
}

// s[h, j] = scale * sum_blocks d_k d_q (k_block . q_block) for H query heads (Q8_0 rows at
// qq, q_row_bytes apart) and the K rows kq[0..n) of type Q8_0 (Q4 = false) or Q4_0.
template <int H, bool Q4>
void scores_quantized(const FlashGroupArgs& a, const uint8_t* qq, const uint8_t* const* kq,
                      int32_t n, float* s) {
  const int32_t n_blocks = a.head_dim / 32;
  const size_t k_block_bytes = Q4 ? 18 : 34;
  for (int32_t j = 0; j < n; ++j) {
    __m256 acc[H];
    for (int h = 0; h < H; ++h) acc[h] = _mm256_setzero_ps();
    for (int32_t b = 0; b < n_blocks; ++b) {
      const uint8_t* kb = kq[j] + b * k_block_bytes;
      const __m256i k = Q4 ? load_q4_0(kb) : load_q8_0(kb);
      const float dk = block_scale(kb);
      for (int h = 0; h < H; ++h) {
        const uint8_t* qb = qq + h * a.q_row_bytes + b * 34;
        const __m256 d = _mm256_set1_ps(dk * block_scale(qb));
        acc[h] = _mm256_fmadd_ps(d, dot_i8(k, load_q8_0(qb)), acc[h]);
      }
    }
    for (int h = 0; h < H; ++h) s[h * kTile + j] = hsum(acc[h]) * a.scale;
  }
}

template <bool Q4>
void scores_quantized_heads(const FlashGroupArgs& a, const Scratch& sc, const uint8_t* const* kq,
                            int32_t n, float* s) {
  int32_t g = 0;
  for (; g + 4 <= a.group; g += 4) {
    scores_quantized<4, Q4>(a, sc.qq + g * a.q_row_bytes, kq, n, s + g * kTile);
  }
  for (; g < a.group; ++g) {
    scores_quantized<1, Q4>(a, sc.qq + g * a.q_row_bytes, kq, n, s + g * kTile);
  }
}

void tile_scores_quantized(const FlashGroupArgs& a, const Scratch& sc, const uint8_t* const* kq,
                           int32_t n, float* s) {
  if (a.type == GgmlType::Q4_0) {
    scores_quantized_heads<true>(a, sc, kq, n, s);
  } else {
    scores_quantized_heads<false>(a, sc, kq, n, s);
  }
}

// s[h, j..j+4) = scale * q_h · k_{j..j+4) for H consecutive heads starting at q.
template <int H>
void scores_4rows(const float* q, int32_t d, const float* const* k, float scale, float* s) {
  __m256 acc[H][4];
  for (int h = 0; h < H; ++h) {
    for (int r = 0; r < 4; ++r) acc[h][r] = _mm256_setzero_ps();
  }
  for (int32_t i = 0; i < d; i += 8) {
    __m256 kv[4];
    for (int r = 0; r < 4; ++r) kv[r] = _mm256_loadu_ps(k[r] + i);
    for (int h = 0; h < H; ++h) {
      const __m256 qv = _mm256_loadu_ps(q + h * d + i);
      for (int r = 0; r < 4; ++r) acc[h][r] = _mm256_fmadd_ps(qv, kv[r], acc[h][r]);
    }
  }
  const __m128 sv = _mm_set1_ps(scale);
  for (int h = 0; h < H; ++h) {
    _mm_storeu_ps(s + h * kTile, _mm_mul_ps(hsum4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]), sv));
  }
}

void tile_scores(const FlashGroupArgs& a, const float* const* krows, int32_t n4, float* s) {
  const int32_t d = a.head_dim;
  int32_t g = 0;
  for (; g + 2 <= a.group; g += 2) {
    for (int32_t j = 0; j < n4; j += 4) {
      scores_4rows<2>(a.q + g * d, d, krows + j, a.scale, s + g * kTile + j);
    }
  }
  if (g < a.group) {
    for (int32_t j = 0; j < n4; j += 4) {
      scores_4rows<1>(a.q + g * d, d, krows + j, a.scale, s + g * kTile + j);
    }
  }
}

// Online softmax for head g over the tile's n scores (slots n.. of the row are set to -inf
// first, so they become probability 0).
void softmax_update(const Scratch& sc, int32_t g, int32_t n, float* out_g, int32_t d) {
  float* s = sc.s + g * kTile;
  for (int32_t j = n; j < kTile; ++j) s[j] = -INFINITY;
  __m256 mx = _mm256_loadu_ps(s);
  for (int32_t j = 8; j < kTile; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j));
  const float tile_max = hmax(mx);
  if (tile_max > sc.m[g]) {
    const float c = _mm256_cvtss_f32(exp_nonpositive(_mm256_set1_ps(sc.m[g] - tile_max)));
    sc.l[g] *= c;
    const __m256 cv = _mm256_set1_ps(c);
    for (int32_t i = 0; i < d; i += 8) {
      _mm256_storeu_ps(out_g + i, _mm256_mul_ps(_mm256_loadu_ps(out_g + i), cv));
    }
    sc.m[g] = tile_max;
  }
  const __m256 m = _mm256_set1_ps(sc.m[g]);
  __m256 sum = _mm256_setzero_ps();
  for (int32_t j = 0; j < kTile; j += 8) {
    const __m256 p = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  sc.l[g] += hsum(sum);
}

// out[h, c0 .. c0 + 8C) += sum_j p[h, j] * v_j[c0 .. c0 + 8C) for H heads, accumulators in
// registers across the tile.
template <int H, int C>
void values_chunk(const float* const* vrows, int32_t n, const float* p, int32_t c0, int32_t d,
                  float* out) {
  __m256 acc[H][C];
  for (int h = 0; h < H; ++h) {
    for (int c = 0; c < C; ++c) acc[h][c] = _mm256_loadu_ps(out + h * d + c0 + 8 * c);
  }
  for (int32_t j = 0; j < n; ++j) {
    const float* v = vrows[j] + c0;
    __m256 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = _mm256_loadu_ps(v + 8 * c);
    for (int h = 0; h < H; ++h) {
      const __m256 w = _mm256_broadcast_ss(p + h * kTile + j);
      for (int c = 0; c < C; ++c) acc[h][c] = _mm256_fmadd_ps(w, vv[c], acc[h][c]);
    }
  }
  for (int h = 0; h < H; ++h) {
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + h * d + c0 + 8 * c, acc[h][c]);
  }
}

template <int H>
void values_heads(const float* const* vrows, int32_t n, const float* p, int32_t d, float* out) {
  int32_t c0 = 0;
  for (; c0 + 32 <= d; c0 += 32) values_chunk<H, 4>(vrows, n, p, c0, d, out);
  for (; c0 < d; c0 += 8) values_chunk<H, 1>(vrows, n, p, c0, d, out);
}

void tile_values(const FlashGroupArgs& a, const float* const* vrows, int32_t n, const float* s) {
  const int32_t d = a.head_dim;
  int32_t g = 0;
  for (; g + 2 <= a.group; g += 2) values_heads<2>(vrows, n, s + g * kTile, d, a.out + g * d);
  if (g < a.group) values_heads<1>(vrows, n, s + g * kTile, d, a.out + g * d);
}

}  // namespace

int64_t flash_scratch_floats(int32_t group, int32_t head_dim) {
  return aligned(static_cast<int64_t>(group) * kTile) + 2 * aligned(group) +
         2 * aligned(static_cast<int64_t>(kTile) * head_dim) + aligned(head_dim) +
         aligned(static_cast<int64_t>(group) * head_dim) + aligned((head_dim / 32 + 2) * 32);
}

void flash_attention_group(const FlashGroupArgs& a) {
  const int32_t d = a.head_dim;
  const Scratch sc(a.scratch, a.group, d);
  std::memset(sc.zero, 0, sizeof(float) * d);
  for (int32_t g = 0; g < a.group; ++g) {
    sc.m[g] = -INFINITY;
    sc.l[g] = 0.0f;
  }
  std::memset(a.out, 0, sizeof(float) * a.group * d);
  const bool quantized = is_quantized(a.type) && a.row_heads == 1;  // integer K scores
  const PackedSpan span = a.row_heads > 1 ? packed_span(a) : PackedSpan{};
  if (quantized) {
    for (int32_t g = 0; g < a.group; ++g) a.q_from_float(a.q + g * d, sc.qq + g * a.q_row_bytes, d);
  }
  const float* krows[kTile];
  const uint8_t* kq[kTile];
  const float* vrows[kTile];
  for (int32_t p0 = 0; p0 < a.n_kv; p0 += kTile) {
    const int32_t n = a.n_kv - p0 < kTile ? a.n_kv - p0 : kTile;
    load_tile(a, sc, span, p0, n, krows, kq, vrows);
    if (quantized) {
      tile_scores_quantized(a, sc, kq, n, sc.s);
    } else {
      tile_scores(a, krows, (n + 3) / 4 * 4, sc.s);
    }
    for (int32_t g = 0; g < a.group; ++g) softmax_update(sc, g, n, a.out + g * d, d);
    tile_values(a, vrows, n, sc.s);
  }
  for (int32_t g = 0; g < a.group; ++g) {
    const __m256 inv = _mm256_set1_ps(1.0f / sc.l[g]);
    float* out = a.out + g * d;
    for (int32_t i = 0; i < d; i += 8)
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
  }
}

}  // namespace quanta::kernels::avx2
