// AVX2 flash attention for a block of query rows (the group's query heads of up to 32 / group
// tokens of one sequence) against one KV head, written as small register-tiled GEMMs with the
// query rows in the vector lanes: the queries are transposed once per call (Q^T [d, rows]),
// so per tile of 32 positions the scores S^T [pos, rows] = K Q^T are FMAs of a broadcast K
// value and a query vector, the online softmax runs down the lanes (no horizontal sums), and
// the output accumulator O^T [d, rows] += V^T P^T likewise. F16 / packed / quantized-V rows
// are converted once per tile for every row of the block. Quantized K: the queries are
// quantized to Q8_0 once per call and scored with integer block dot products (ggml's
// vec_dot_q8_0_q8_0 / q4_0_q8_0 math). Every row's arithmetic is the same sequence whatever
// the other rows of its block, so a token gets the same bits alone or in a block. The next
// tile's stored rows are prefetched during each tile's FMAs.
// NOTE: no std:: templates or shared inline helpers here (see simd.h): AVX2 code only.
#include "kernels/x86_avx2/flash_attention_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace quanta::kernels::avx2 {
namespace {

constexpr int32_t kTile = 32;     // positions per tile
constexpr int32_t kMaxRows = 32;  // query rows per block (when group <= 32)
// Cache lines of the next tile requested before each block of FMAs (a tile of 32 F16 rows of
// 64 values, K and V, is 128 lines; the decode shape runs 9 blocks per tile).
constexpr int32_t kPrefetchStep = 16;

int64_t aligned(int64_t n) {
  return (n + 15) / 16 * 16;
}

int32_t round8(int32_t n) {
  return (n + 7) / 8 * 8;
}

// Lane capacity of a block: its rows rounded up to whole vectors.
int32_t max_padded_rows(int32_t group) {
  const int32_t tokens = group >= kMaxRows ? 1 : kMaxRows / group;
  return round8(tokens * group);
}

// Views into the per-thread scratch; rp = the call's rows rounded up to 8 (the lane stride).
struct Scratch {
  float* st;       // [kTile, rp] scores S^T, then exp(score - max)
  float* qt;       // [head_dim, rp] query rows transposed (padding rows 0)
  float* ot;       // [head_dim, rp] output accumulators transposed
  float* m;        // [rp] running max
  float* l;        // [rp] running sum
  int32_t* limit;  // [rp] positions each row attends to
  float* c;        // [rp] the tile's rescale factors exp(old max - new max)
  float* kt;       // [kTile, head_dim] the tile's K rows as floats (not for quantized K)
  float* vt;       // [kTile, head_dim] the tile's V rows as floats
  uint8_t* qq;     // [rows, q_row_bytes] quantized query rows (quantized K only)
  float* span;     // [(d / 32 + 2) * 32] the dequantized blocks of one packed row's head

  Scratch(float* base, int32_t rcap, int32_t d) {
    st = base;
    qt = st + aligned(static_cast<int64_t>(kTile) * rcap);
    ot = qt + aligned(static_cast<int64_t>(d) * rcap);
    m = ot + aligned(static_cast<int64_t>(d) * rcap);
    l = m + aligned(rcap);
    limit = reinterpret_cast<int32_t*>(l + aligned(rcap));
    c = l + 2 * aligned(rcap);
    kt = c + aligned(rcap);
    vt = kt + aligned(static_cast<int64_t>(kTile) * d);
    // A Q8_0 row takes 34 bytes per 32 values, well inside d floats per row.
    float* q_part = vt + aligned(static_cast<int64_t>(kTile) * d);
    qq = reinterpret_cast<uint8_t*>(q_part);
    span = q_part + aligned(static_cast<int64_t>(rcap) * d);
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

// exp(x) for lanes x <= 0; 0 below -87, for -inf and for NaN (the scalar version's method).
// exp(0) is exactly 1.
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

// n (a multiple of 8) F16 values to floats.
void convert_row(const uint16_t* src, float* dst, int32_t n) {
  int32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m128i* h = reinterpret_cast<const __m128i*>(src + i);
    const __m256 f0 = _mm256_cvtph_ps(_mm_loadu_si128(h));
    const __m256 f1 = _mm256_cvtph_ps(_mm_loadu_si128(h + 1));
    const __m256 f2 = _mm256_cvtph_ps(_mm_loadu_si128(h + 2));
    const __m256 f3 = _mm256_cvtph_ps(_mm_loadu_si128(h + 3));
    _mm256_storeu_ps(dst + i, f0);
    _mm256_storeu_ps(dst + i + 8, f1);
    _mm256_storeu_ps(dst + i + 16, f2);
    _mm256_storeu_ps(dst + i + 24, f3);
  }
  for (; i < n; i += 8) {
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

// Rows [j, j + run) of the tile from `run` consecutive stored rows at k and v (one block's)
// into sc.kt / sc.vt: F16 runs converted in one sweep, F32 runs copied, packed rows
// dequantized; quantized K rows stay raw (kq) and their V rows are dequantized.
void load_run(const FlashGroupArgs& a, const Scratch& sc, const PackedSpan& span, const uint8_t* k,
              const uint8_t* v, int32_t j, int32_t run, const uint8_t** kq) {
  const int64_t d = a.head_dim;
  const int32_t values = run * a.head_dim;
  if (a.row_heads > 1) {
    for (int32_t r = j; r < j + run; ++r, k += a.row_bytes, v += a.row_bytes) {
      load_packed_row(a, sc, span, k, sc.kt + r * d);
      load_packed_row(a, sc, span, v, sc.vt + r * d);
    }
    return;
  }
  switch (a.type) {
    case GgmlType::F16:
      convert_row(reinterpret_cast<const uint16_t*>(k), sc.kt + j * d, values);
      convert_row(reinterpret_cast<const uint16_t*>(v), sc.vt + j * d, values);
      break;
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      for (int32_t r = j; r < j + run; ++r, k += a.row_bytes, v += a.row_bytes) {
        kq[r] = k;
        if (a.type == GgmlType::Q8_0) {
          dequantize_q8_0(v, sc.vt + r * d, a.head_dim);
        } else {
          dequantize_q4_0(v, sc.vt + r * d, a.head_dim);
        }
      }
      break;
    default:
      std::memcpy(sc.kt + j * d, k, sizeof(float) * values);
      std::memcpy(sc.vt + j * d, v, sizeof(float) * values);
      break;
  }
}

// Positions [p0, p0 + n) into the tiles (rows j of sc.kt / sc.vt, head_dim apart; kq for
// quantized K), a block's run of rows at a time (a KV head's rows of one block are
// contiguous); K rows n .. up to a multiple of 8 are zeroed (their scores are computed and
// ignored).
void load_tile(const FlashGroupArgs& a, const Scratch& sc, const PackedSpan& span, int32_t p0,
               int32_t n, const uint8_t** kq) {
  const uint8_t* k = static_cast<const uint8_t*>(a.k);
  const uint8_t* v = static_cast<const uint8_t*>(a.v);
  for (int32_t j = 0; j < n;) {
    const int32_t left_in_block = a.block_size - (p0 + j) % a.block_size;
    const int32_t run = n - j < left_in_block ? n - j : left_in_block;
    const size_t off = row_offset(a, p0 + j);
    load_run(a, sc, span, k + off, v + off, j, run, kq);
    j += run;
  }
  const int32_t n8 = round8(n);
  if (n8 > n)
    std::memset(sc.kt + int64_t{n} * a.head_dim, 0, sizeof(float) * (n8 - n) * a.head_dim);
}

// The cache lines of a tile's stored K and V rows, requested a few at a time (step) between
// the blocks of FMAs of the tile before: the paged blocks are scattered, which the hardware
// prefetchers do not follow, and requesting a whole tile at once stalls on the core's
// outstanding-miss limit. Packed rows are not prefetched (their other heads' values would
// come along).
struct TilePrefetch {
  uintptr_t begin[2 * kTile];  // byte ranges: a block's run of K rows, then of V rows, ...
  uintptr_t end[2 * kTile];
  int32_t n_ranges = 0;
  int32_t cur = 0;     // the range being requested
  uintptr_t line = 0;  // its next line

  // Positions [p0, p0 + n) of a's sequence (n = 0: nothing).
  void set(const FlashGroupArgs& a, int32_t p0, int32_t n) {
    n_ranges = 0;
    cur = 0;
    if (a.row_heads > 1) return;
    const uintptr_t k = reinterpret_cast<uintptr_t>(a.k);
    const uintptr_t v = reinterpret_cast<uintptr_t>(a.v);
    for (int32_t j = 0; j < n;) {
      const int32_t left_in_block = a.block_size - (p0 + j) % a.block_size;
      const int32_t run = n - j < left_in_block ? n - j : left_in_block;
      const size_t off = row_offset(a, p0 + j);
      const size_t bytes = static_cast<size_t>(run) * a.row_bytes;
      begin[n_ranges] = (k + off) & ~uintptr_t{63};
      end[n_ranges++] = k + off + bytes;
      begin[n_ranges] = (v + off) & ~uintptr_t{63};
      end[n_ranges++] = v + off + bytes;
      j += run;
    }
    line = n_ranges > 0 ? begin[0] : 0;
  }

  // Requests up to `lines` more lines.
  [[gnu::always_inline]] inline void step(int32_t lines) {
    for (; lines > 0 && cur < n_ranges; --lines) {
      _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
      line += 64;
      if (line >= end[cur] && ++cur < n_ranges) line = begin[cur];
    }
  }

  void finish() { step(1 << 30); }
};

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

// st[j, h] = scale * sum_blocks d_k d_q (k_block . q_block) for H query rows (Q8_0 rows at
// qq, q_row_bytes apart) and the K rows kq[0..n) of type Q8_0 (Q4 = false) or Q4_0.
template <int H, bool Q4>
void scores_quantized(const FlashGroupArgs& a, const uint8_t* qq, const uint8_t* const* kq,
                      int32_t n, int32_t rp, float* st) {
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
    for (int h = 0; h < H; ++h) st[j * rp + h] = hsum(acc[h]) * a.scale;
  }
}

template <bool Q4>
void scores_quantized_rows(const FlashGroupArgs& a, const Scratch& sc, const uint8_t* const* kq,
                           int32_t n, int32_t rows, int32_t rp) {
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    scores_quantized<4, Q4>(a, sc.qq + r * a.q_row_bytes, kq, n, rp, sc.st + r);
  }
  for (; r < rows; ++r) scores_quantized<1, Q4>(a, sc.qq + r * a.q_row_bytes, kq, n, rp, sc.st + r);
  for (int32_t j = 0; j < n; ++j) {
    for (r = rows; r < rp; ++r) sc.st[j * rp + r] = 0.0f;  // padding lanes
  }
}

// st[j0 + j, 8 rv ..] = scale * k_{j0 + j} . q for J positions and RV vectors of query rows
// (qt: Q^T with lane stride rp); each score is one FMA chain down i = 0 .. d - 1.
template <int RV, int J>
inline void scores_block(const float* qt, int32_t rp, const float* k, int32_t d, __m256 scale,
                         float* st) {
  __m256 acc[J][RV];
  for (int j = 0; j < J; ++j) {
    for (int r = 0; r < RV; ++r) acc[j][r] = _mm256_setzero_ps();
  }
  for (int32_t i = 0; i < d; ++i) {
    __m256 qv[RV];
    for (int r = 0; r < RV; ++r) qv[r] = _mm256_loadu_ps(qt + i * rp + 8 * r);
    for (int j = 0; j < J; ++j) {
      const __m256 kb = _mm256_broadcast_ss(k + j * d + i);
      for (int r = 0; r < RV; ++r) acc[j][r] = _mm256_fmadd_ps(kb, qv[r], acc[j][r]);
    }
  }
  for (int j = 0; j < J; ++j) {
    for (int r = 0; r < RV; ++r)
      _mm256_storeu_ps(st + j * rp + 8 * r, _mm256_mul_ps(acc[j][r], scale));
  }
}

// Positions [0, n8) in blocks of Big (RV * Big accumulators: enough independent FMA chains to
// hide the FMA latency) and, until what is left divides by Big, of Small.
template <int RV, int Big, int Small>
void scores_rows(const float* qt, int32_t rp, const float* kt, int32_t n8, int32_t d, float scale,
                 float* st, TilePrefetch& pf) {
  const __m256 sv = _mm256_set1_ps(scale);
  for (int32_t j = 0; j < n8;) {
    pf.step(kPrefetchStep);
    if ((n8 - j) % Big == 0) {
      scores_block<RV, Big>(qt, rp, kt + j * d, d, sv, st + j * rp);
      j += Big;
    } else {
      scores_block<RV, Small>(qt, rp, kt + j * d, d, sv, st + j * rp);
      j += Small;
    }
  }
}

// S^T of the tile for every lane vector: blocks of 3, 2 or 1 vectors of query rows.
void tile_scores(const Scratch& sc, int32_t rp, int32_t n8, int32_t d, float scale,
                 TilePrefetch& pf) {
  int32_t nv = rp / 8;
  int32_t v0 = 0;
  while (nv > 0) {
    const float* qt = sc.qt + 8 * v0;
    float* st = sc.st + 8 * v0;
    if (nv == 3 || nv >= 5) {
      scores_rows<3, 4, 4>(qt, rp, sc.kt, n8, d, scale, st, pf);
      v0 += 3, nv -= 3;
    } else if (nv >= 2) {
      scores_rows<2, 6, 4>(qt, rp, sc.kt, n8, d, scale, st, pf);
      v0 += 2, nv -= 2;
    } else {
      scores_rows<1, 12, 8>(qt, rp, sc.kt, n8, d, scale, st, pf);
      v0 += 1, nv -= 1;
    }
  }
}

// Online softmax for the lane vector of rows 8v .. 8v + 7 over the tile's n positions from
// p0: positions at or past a row's limit score -inf; the running max rises to the tile's,
// c = exp(old - new) (exactly 1 when it does not rise, 0 on the first tile) rescales the sum
// here and the output accumulator in tile_values; st becomes exp(score - max).
void softmax_lanes(const Scratch& sc, int32_t v, int32_t rp, int32_t p0, int32_t n, bool mask) {
  float* st = sc.st + 8 * v;
  const __m256i limit = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc.limit + 8 * v));
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 mx = neg_inf;
  for (int32_t j = 0; j < n; ++j) {
    __m256 s = _mm256_loadu_ps(st + j * rp);
    if (mask) {
      const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, _mm256_set1_epi32(p0 + j)));
      s = _mm256_blendv_ps(neg_inf, s, live);
      _mm256_storeu_ps(st + j * rp, s);
    }
    mx = _mm256_max_ps(mx, s);
  }
  const __m256 m_old = _mm256_loadu_ps(sc.m + 8 * v);
  const __m256 m_new = _mm256_max_ps(m_old, mx);
  const __m256 c = exp_nonpositive(_mm256_sub_ps(m_old, m_new));
  __m256 l = _mm256_mul_ps(_mm256_loadu_ps(sc.l + 8 * v), c);
  for (int32_t j = 0; j < n; ++j) {
    const __m256 p = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(st + j * rp), m_new));
    _mm256_storeu_ps(st + j * rp, p);
    l = _mm256_add_ps(l, p);
  }
  _mm256_storeu_ps(sc.m + 8 * v, m_new);
  _mm256_storeu_ps(sc.l + 8 * v, l);
  _mm256_storeu_ps(sc.c + 8 * v, c);
}

// O^T[c0 .. c0 + C, 8 rv ..] = O^T * c + sum_j v_j[c] p[j, rows] for C output columns and RV
// lane vectors, one FMA chain per element down j = 0 .. n - 1.
template <int RV, int C>
inline void values_block(const float* vt, int32_t d, int32_t n, const float* st, int32_t rp,
                         const float* c, int32_t c0, float* ot) {
  __m256 acc[C][RV];
  for (int r = 0; r < RV; ++r) {
    const __m256 cv = _mm256_loadu_ps(c + 8 * r);
    for (int x = 0; x < C; ++x) {
      acc[x][r] = _mm256_mul_ps(_mm256_loadu_ps(ot + (c0 + x) * rp + 8 * r), cv);
    }
  }
  for (int32_t j = 0; j < n; ++j) {
    __m256 pv[RV];
    for (int r = 0; r < RV; ++r) pv[r] = _mm256_loadu_ps(st + j * rp + 8 * r);
    const float* v = vt + j * d + c0;
    for (int x = 0; x < C; ++x) {
      const __m256 vb = _mm256_broadcast_ss(v + x);
      for (int r = 0; r < RV; ++r) acc[x][r] = _mm256_fmadd_ps(vb, pv[r], acc[x][r]);
    }
  }
  for (int x = 0; x < C; ++x) {
    for (int r = 0; r < RV; ++r) _mm256_storeu_ps(ot + (c0 + x) * rp + 8 * r, acc[x][r]);
  }
}

// Output columns [0, d) in blocks of Big and, until what is left divides by Big, of Small.
template <int RV, int Big, int Small>
void values_rows(const float* vt, int32_t n, const float* st, int32_t rp, const float* c, int32_t d,
                 float* ot, TilePrefetch& pf) {
  for (int32_t c0 = 0; c0 < d;) {
    pf.step(kPrefetchStep);
    if ((d - c0) % Big == 0) {
      values_block<RV, Big>(vt, d, n, st, rp, c, c0, ot);
      c0 += Big;
    } else {
      values_block<RV, Small>(vt, d, n, st, rp, c, c0, ot);
      c0 += Small;
    }
  }
}

// O^T = O^T * c + V^T P^T for every lane vector (d is a multiple of 8).
void tile_values(const Scratch& sc, int32_t rp, int32_t n, int32_t d, TilePrefetch& pf) {
  const float* c = sc.c;
  int32_t nv = rp / 8;
  int32_t v0 = 0;
  while (nv > 0) {
    const float* st = sc.st + 8 * v0;
    float* ot = sc.ot + 8 * v0;
    if (nv == 3 || nv >= 5) {
      values_rows<3, 4, 4>(sc.vt, n, st, rp, c + 8 * v0, d, ot, pf);
      v0 += 3, nv -= 3;
    } else if (nv >= 2) {
      values_rows<2, 6, 4>(sc.vt, n, st, rp, c + 8 * v0, d, ot, pf);
      v0 += 2, nv -= 2;
    } else {
      values_rows<1, 12, 8>(sc.vt, n, st, rp, c + 8 * v0, d, ot, pf);
      v0 += 1, nv -= 1;
    }
  }
}

// x[k] = column k of the 8 x 8 matrix whose rows were x[0..8).
inline void transpose8(__m256* x) {
  const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
  const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
  const __m256 t4 = _mm256_unpacklo_ps(x[4], x[5]), t5 = _mm256_unpackhi_ps(x[4], x[5]);
  const __m256 t6 = _mm256_unpacklo_ps(x[6], x[7]), t7 = _mm256_unpackhi_ps(x[6], x[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  x[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  x[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  x[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  x[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  x[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  x[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  x[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  x[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// The most positions a token of the call attends to.
int32_t longest(const FlashGroupArgs& a) {
  int32_t n_max = 0;
  for (int32_t t = 0; t < a.n_tokens; ++t) n_max = a.n_kv[t] > n_max ? a.n_kv[t] : n_max;
  return n_max;
}

// Query row r of the block: head r % group of token r / group.
inline const float* query_row(const FlashGroupArgs& a, int32_t r) {
  return a.q[r / a.group] + (r % a.group) * a.head_dim;
}

// Q^T, limits, running max/sum and O^T of the block's rows (row t * group + g is query head
// g of token t; padding lanes get zero queries and the block's longest limit, n_max).
void start_block(const FlashGroupArgs& a, const Scratch& sc, int32_t rows, int32_t rp,
                 int32_t n_max) {
  const int32_t d = a.head_dim;
  for (int32_t r0 = 0; r0 < rp; r0 += 8) {
    for (int32_t i0 = 0; i0 < d; i0 += 8) {
      __m256 x[8];
      for (int32_t k = 0; k < 8; ++k) {
        x[k] = r0 + k < rows ? _mm256_loadu_ps(query_row(a, r0 + k) + i0) : _mm256_setzero_ps();
      }
      transpose8(x);
      for (int32_t k = 0; k < 8; ++k) _mm256_storeu_ps(sc.qt + (i0 + k) * rp + r0, x[k]);
    }
  }
  for (int32_t r = 0; r < rp; ++r) {
    sc.limit[r] = r < rows ? a.n_kv[r / a.group] : n_max;
    sc.m[r] = -INFINITY;
    sc.l[r] = 0.0f;
  }
  std::memset(sc.ot, 0, sizeof(float) * d * rp);
  if (is_quantized(a.type) && a.row_heads == 1) {
    for (int32_t r = 0; r < rows; ++r)
      a.q_from_float(query_row(a, r), sc.qq + r * a.q_row_bytes, d);
  }
}

// out = O^T / l, back to row-major.
void finish_block(const FlashGroupArgs& a, const Scratch& sc, int32_t rows, int32_t rp) {
  const int32_t d = a.head_dim;
  for (int32_t r0 = 0; r0 < rows; r0 += 8) {
    for (int32_t i0 = 0; i0 < d; i0 += 8) {
      __m256 x[8];
      for (int32_t k = 0; k < 8; ++k) x[k] = _mm256_loadu_ps(sc.ot + (i0 + k) * rp + r0);
      transpose8(x);
      for (int32_t k = 0; k < 8 && r0 + k < rows; ++k) {
        const int32_t r = r0 + k;
        float* out = a.out[r / a.group] + (r % a.group) * d;
        _mm256_storeu_ps(out + i0, _mm256_mul_ps(x[k], _mm256_set1_ps(1.0f / sc.l[r])));
      }
    }
  }
}

}  // namespace

int32_t flash_block_tokens(int32_t group) {
  return group >= kMaxRows ? 1 : kMaxRows / group;
}

int64_t flash_scratch_floats(int32_t group, int32_t head_dim) {
  const int64_t rcap = max_padded_rows(group);
  return aligned(kTile * rcap) + 2 * aligned(head_dim * rcap) + 4 * aligned(rcap) +
         2 * aligned(static_cast<int64_t>(kTile) * head_dim) + aligned(rcap * head_dim) +
         aligned((head_dim / 32 + 2) * 32);
}

void flash_attention_group(const FlashGroupArgs& a) {
  const int32_t d = a.head_dim;
  const int32_t rows = a.n_tokens * a.group;
  const int32_t rp = round8(rows);
  const Scratch sc(a.scratch, max_padded_rows(a.group), d);
  const bool quantized = is_quantized(a.type) && a.row_heads == 1;  // integer K scores
  const PackedSpan span = a.row_heads > 1 ? packed_span(a) : PackedSpan{};
  const int32_t n_max = longest(a);
  int32_t n_min = n_max;
  for (int32_t t = 0; t < a.n_tokens; ++t) n_min = a.n_kv[t] < n_min ? a.n_kv[t] : n_min;
  TilePrefetch pf;
  pf.set(a, 0, n_max < kTile ? n_max : kTile);  // the first tile, while the queries are set up
  pf.finish();
  start_block(a, sc, rows, rp, n_max);
  const uint8_t* kq[kTile];
  for (int32_t p0 = 0; p0 < n_max; p0 += kTile) {
    const int32_t n = n_max - p0 < kTile ? n_max - p0 : kTile;
    load_tile(a, sc, span, p0, n, kq);
    const int32_t next = p0 + kTile;  // the next tile, requested during this one's arithmetic
    pf.set(a, next, next >= n_max ? 0 : n_max - next < kTile ? n_max - next : kTile);
    if (!quantized) {
      tile_scores(sc, rp, round8(n), d, a.scale, pf);
    } else if (a.type == GgmlType::Q4_0) {
      scores_quantized_rows<true>(a, sc, kq, n, rows, rp);
    } else {
      scores_quantized_rows<false>(a, sc, kq, n, rows, rp);
    }
    const bool mask = p0 + n > n_min;
    for (int32_t v = 0; v < rp / 8; ++v) softmax_lanes(sc, v, rp, p0, n, mask);
    tile_values(sc, rp, n, d, pf);
    pf.finish();
  }
  finish_block(a, sc, rows, rp);
}

}  // namespace quanta::kernels::avx2
