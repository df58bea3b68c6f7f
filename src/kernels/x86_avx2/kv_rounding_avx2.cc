// AVX2 code of a quantized KV cache's store path, the same bits as kv's scalar code: the Q4_0
// beam search under a metric (eight kept choices in one vector, four scales interleaved), the
// local search, block errors, least-squares sums, Walsh-Hadamard and transposed products.
// NOTE: no std:: templates or shared inline helpers here (see simd.h): AVX2 code only. Built
// with -ffp-contract=off and no FMA intrinsics: every product and sum rounds as the scalar code.
#include "kernels/x86_avx2/kv_rounding_avx2.h"

#include <immintrin.h>
#include <math.h>

namespace quanta::kernels::avx2 {
namespace {

constexpr int32_t kQ4Block = kKvQ4Block;
constexpr int32_t kBeamWidth = kKvBeamWidth;

// One step of one search (beam_levels' candidate loop, all kept choices at once): lane p's
// floor and ceiling levels (equal where clamped: then only `lo` is a candidate), their
// residuals and costs.
struct StepCandidates {
  __m256 cost_lo, cost_hi, res_lo, res_hi;
  __m256i lo, hi, valid_lo, valid_hi;  // valid: all ones where a candidate
};

[[gnu::always_inline]] inline StepCandidates expand_avx2(__m256 acc, __m256 cost, float u,
                                                         __m256 lii, __m256 inv_lii,
                                                         int32_t n_keep) {
  const __m256i one = _mm256_set1_epi32(1), seven = _mm256_set1_epi32(7);
  const __m256i lv_min = _mm256_set1_epi32(-8);
  const __m256 uv = _mm256_set1_ps(u);
  __m256 target = _mm256_add_ps(uv, _mm256_mul_ps(acc, inv_lii));
  target = _mm256_min_ps(_mm256_max_ps(target, _mm256_set1_ps(-16.0f)), _mm256_set1_ps(16.0f));
  const __m256i t = _mm256_cvttps_epi32(target);
  const __m256i f = _mm256_add_epi32(  // floor: t - 1 where target < t
      t, _mm256_castps_si256(_mm256_cmp_ps(target, _mm256_cvtepi32_ps(t), _CMP_LT_OQ)));
  StepCandidates c;
  c.lo = _mm256_min_epi32(_mm256_max_epi32(f, lv_min), seven);
  c.hi = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(f, one), lv_min), seven);
  c.res_lo = _mm256_sub_ps(uv, _mm256_cvtepi32_ps(c.lo));
  c.res_hi = _mm256_sub_ps(uv, _mm256_cvtepi32_ps(c.hi));
  const __m256 comp_lo = _mm256_add_ps(_mm256_mul_ps(lii, c.res_lo), acc);
  const __m256 comp_hi = _mm256_add_ps(_mm256_mul_ps(lii, c.res_hi), acc);
  c.cost_lo = _mm256_add_ps(cost, _mm256_mul_ps(comp_lo, comp_lo));
  c.cost_hi = _mm256_add_ps(cost, _mm256_mul_ps(comp_hi, comp_hi));
  c.valid_lo =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(n_keep), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  c.valid_hi = _mm256_andnot_si256(_mm256_cmpeq_epi32(c.lo, c.hi), c.valid_lo);
  return c;
}

// The rank of every candidate in the order the scalar code's stable insertion gives, (cost,
// p, lo before hi): the number of candidates before it. Keys: the costs' bits (costs are >=
// +0, so int order is float order), kInvalid where no candidate: it counts for none. Source s
// counts for target c when s < c, or s == c and s comes first: s < c + tie.
constexpr int32_t kInvalid = 0x7ff00000;  // above every non-NaN cost's bits, +1 fits
[[gnu::always_inline]] inline void rank_avx2(__m256i k_lo, __m256i k_hi, __m256i* rank_lo,
                                             __m256i* rank_hi) {
  // kAfter + 7 - q: 1 in lanes p > q; kAfter + 8 - q: lanes p >= q.
  alignas(32) static constexpr int32_t kAfter[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     1, 1, 1, 1, 1, 1, 1, 1};
  // Four independent sums (integers: exact in any order).
  __m256i r_lo = _mm256_setzero_si256(), r_hi = _mm256_setzero_si256();
  __m256i r_lo2 = _mm256_setzero_si256(), r_hi2 = _mm256_setzero_si256();
  for (int32_t q = 0; q < kBeamWidth; ++q) {
    const __m256i after = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAfter + 7 - q));
    const __m256i upto = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAfter + 8 - q));
    const __m256i at_q = _mm256_set1_epi32(q);
    const __m256i s_lo = _mm256_permutevar8x32_epi32(k_lo, at_q);
    const __m256i s_hi = _mm256_permutevar8x32_epi32(k_hi, at_q);
    const __m256i t_lo = _mm256_add_epi32(k_lo, after);  // (q, *) before (p, lo): q < p
    r_lo = _mm256_sub_epi32(r_lo, _mm256_cmpgt_epi32(t_lo, s_lo));
    r_lo2 = _mm256_sub_epi32(r_lo2, _mm256_cmpgt_epi32(t_lo, s_hi));
    // (q, lo) before (p, hi) for q <= p, (q, hi) for q < p
    r_hi = _mm256_sub_epi32(r_hi, _mm256_cmpgt_epi32(_mm256_add_epi32(k_hi, upto), s_lo));
    r_hi2 = _mm256_sub_epi32(r_hi2, _mm256_cmpgt_epi32(_mm256_add_epi32(k_hi, after), s_hi));
  }
  *rank_lo = _mm256_add_epi32(r_lo, r_lo2);
  *rank_hi = _mm256_add_epi32(r_hi, r_hi2);
}

// rank_avx2 without the ties' order: the number of candidates of smaller cost, and whether
// the candidates' ranks came out distinct (no two costs equal), in which case they are
// rank_avx2's.
[[gnu::always_inline]] inline bool strict_rank_avx2(__m256i k_lo, __m256i k_hi, __m256i valid_lo,
                                                    __m256i valid_hi, int32_t n_valid,
                                                    __m256i* rank_lo, __m256i* rank_hi) {
  __m256i r_lo = _mm256_setzero_si256(), r_hi = _mm256_setzero_si256();
  __m256i r_lo2 = _mm256_setzero_si256(), r_hi2 = _mm256_setzero_si256();
  for (int32_t q = 0; q < kBeamWidth; ++q) {
    const __m256i at_q = _mm256_set1_epi32(q);
    const __m256i s_lo = _mm256_permutevar8x32_epi32(k_lo, at_q);
    const __m256i s_hi = _mm256_permutevar8x32_epi32(k_hi, at_q);
    r_lo = _mm256_sub_epi32(r_lo, _mm256_cmpgt_epi32(k_lo, s_lo));
    r_lo2 = _mm256_sub_epi32(r_lo2, _mm256_cmpgt_epi32(k_lo, s_hi));
    r_hi = _mm256_sub_epi32(r_hi, _mm256_cmpgt_epi32(k_hi, s_lo));
    r_hi2 = _mm256_sub_epi32(r_hi2, _mm256_cmpgt_epi32(k_hi, s_hi));
  }
  *rank_lo = _mm256_add_epi32(r_lo, r_lo2);
  *rank_hi = _mm256_add_epi32(r_hi, r_hi2);
  // Distinct ranks below n_valid: bits 0 .. n_valid - 1 each set once.
  const __m256i one = _mm256_set1_epi32(1);
  __m256i bits = _mm256_or_si256(_mm256_and_si256(_mm256_sllv_epi32(one, *rank_lo), valid_lo),
                                 _mm256_and_si256(_mm256_sllv_epi32(one, *rank_hi), valid_hi));
  __m128i b = _mm_or_si128(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1));
  b = _mm_or_si128(b, _mm_shuffle_epi32(b, 0x4e));
  b = _mm_or_si128(b, _mm_shuffle_epi32(b, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(b)) == (1u << n_valid) - 1u;
}

// Lane m: the candidate ranked m (p, or p + 8 for hi), for m below the number of candidates
// (their ranks are distinct; every rank is at most 15: a candidate never counts itself).
// `slot`: 16 ints of scratch, kept between calls (lanes past the kept choices read old ones).
[[gnu::always_inline]] inline __m256i order_avx2(__m256i rank_lo, __m256i rank_hi, int32_t* slot) {
  alignas(32) int32_t rank[2][kBeamWidth];
  _mm256_store_si256(reinterpret_cast<__m256i*>(rank[0]), rank_lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(rank[1]), rank_hi);
  for (int32_t p = 0; p < kBeamWidth; ++p) {
    slot[rank[0][p] & 15] = p;
    slot[rank[1][p] & 15] = p + kBeamWidth;
  }
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(slot));
}

// beam_levels for K scales at once (independent searches interleaved, so that one's chain of
// dependent steps overlaps the others'), the kBeamWidth kept choices of each in the lanes of
// one AVX2 vector (z stored transposed, [value][beam]: a step's accumulators are one load, a
// parent permutation one vpermps). The same arithmetic in the same order, and the same kept
// choices in the same order (rank_avx2). Returns a bit mask of the scales whose levels it
// set: not those that met a NaN cost, whose order only the scalar code defines.
template <int32_t K>
struct BeamState {
  alignas(32) float z[K][2][kQ4Block][kBeamWidth];
  alignas(32) int32_t parent[K][kQ4Block][kBeamWidth];
  alignas(32) int32_t level[K][kQ4Block][kBeamWidth];
  alignas(32) int32_t slot[2 * kBeamWidth];
  __m256 cost[K], nan_seen[K], res[K];  // per search: kept costs, any NaN, new residuals
  __m256i from[K];                      // per search: each new choice's parent lane
  int32_t n_keep[K];
};

// One step (value i) of search k: its new choices' parents, levels, costs and residuals.
template <int32_t K>
[[gnu::always_inline]] inline void beam_step_avx2(BeamState<K>& st, int32_t k, int32_t i,
                                                  int32_t cur, float u, __m256 lii,
                                                  __m256 inv_lii) {
  const __m256i seven = _mm256_set1_epi32(7), invalid = _mm256_set1_epi32(kInvalid);
  const StepCandidates c =
      expand_avx2(_mm256_load_ps(st.z[k][cur][i]), st.cost[k], u, lii, inv_lii, st.n_keep[k]);
  st.nan_seen[k] =
      _mm256_or_ps(st.nan_seen[k], _mm256_and_ps(_mm256_cmp_ps(c.cost_lo, c.cost_hi, _CMP_UNORD_Q),
                                                 _mm256_castsi256_ps(c.valid_lo)));
  const __m256i k_lo = _mm256_blendv_epi8(invalid, _mm256_castps_si256(c.cost_lo), c.valid_lo);
  const __m256i k_hi = _mm256_blendv_epi8(invalid, _mm256_castps_si256(c.cost_hi), c.valid_hi);
  const int32_t n_valid = st.n_keep[k] + __builtin_popcount(static_cast<uint32_t>(
                                             _mm256_movemask_ps(_mm256_castsi256_ps(c.valid_hi))));
  __m256i rank_lo, rank_hi;
  if (!strict_rank_avx2(k_lo, k_hi, c.valid_lo, c.valid_hi, n_valid, &rank_lo, &rank_hi)) {
    rank_avx2(k_lo, k_hi, &rank_lo, &rank_hi);  // equal costs: their order decides
  }
  st.n_keep[k] = n_valid < kBeamWidth ? n_valid : kBeamWidth;
  const __m256i code = order_avx2(rank_lo, rank_hi, st.slot);
  const __m256i from = _mm256_and_si256(code, seven);
  const __m256 use_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(code, seven));
  st.from[k] = from;
  st.cost[k] = _mm256_blendv_ps(_mm256_permutevar8x32_ps(c.cost_lo, from),
                                _mm256_permutevar8x32_ps(c.cost_hi, from), use_hi);
  st.res[k] = _mm256_blendv_ps(_mm256_permutevar8x32_ps(c.res_lo, from),
                               _mm256_permutevar8x32_ps(c.res_hi, from), use_hi);
  const __m256i lv = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(c.lo, from)),
                       _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(c.hi, from)), use_hi));
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.parent[k][i]), from);
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.level[k][i]), lv);
}

template <int32_t K>
uint32_t beam_levels_avx2(const float* x, const float* lf, int32_t n, const float* d,
                          int8_t* const* l) {
  static_assert(kBeamWidth == 8, "one beam per AVX2 lane");
  BeamState<K> st;
  for (int32_t m = 0; m < 2 * kBeamWidth; ++m) st.slot[m] = 0;
  for (int32_t k = 0; k < K; ++k) {
    for (int32_t j = 0; j < n; ++j) _mm256_store_ps(st.z[k][0][j], _mm256_setzero_ps());
    st.cost[k] = st.nan_seen[k] = _mm256_setzero_ps();
    st.n_keep[k] = 1;
  }
  int32_t cur = 0;
  for (int32_t i = n - 1; i >= 0; --i) {
    const float lii = lf[i * n + i], inv_lii = 1.0f / lii;
    const __m256 liiv = _mm256_set1_ps(lii), inv_liiv = _mm256_set1_ps(inv_lii);
    for (int32_t k = 0; k < K; ++k) beam_step_avx2(st, k, i, cur, x[i] / d[k], liiv, inv_liiv);
    const float* row = lf + i * n;
    for (int32_t j = i - 1; j >= 0; --j) {  // z[i - 1] first: the next step's
      const __m256 rj = _mm256_set1_ps(row[j]);
      for (int32_t k = 0; k < K; ++k) {
        const __m256 moved = _mm256_permutevar8x32_ps(_mm256_load_ps(st.z[k][cur][j]), st.from[k]);
        _mm256_store_ps(st.z[k][cur ^ 1][j], _mm256_add_ps(moved, _mm256_mul_ps(rj, st.res[k])));
      }
    }
    cur ^= 1;
  }
  uint32_t done = 0;
  for (int32_t k = 0; k < K; ++k) {
    if (_mm256_movemask_ps(st.nan_seen[k]) != 0) continue;
    done |= 1u << k;
    alignas(32) float cost[kBeamWidth];
    _mm256_store_ps(cost, st.cost[k]);
    int32_t best = 0;
    for (int32_t m = 1; m < st.n_keep[k]; ++m) best = cost[m] < cost[best] ? m : best;
    for (int32_t i = 0, p = best; i < n; ++i) {  // back from the best complete choice
      l[k][i] = static_cast<int8_t>(st.level[k][i][p]);
      p = st.parent[k][i][p];
    }
  }
  return done;
}

// search_levels for heads of HD (a multiple of 8) values, eight per vector: g = S r summed in the
// same order; a pass checks every level's two moves at once and applies the first that lowers the
// error, then checks again from the next level (what the scalar pass does one by one).
template <int32_t HD>
void search_levels_avx2(const float* x, const float* metric, float d, int8_t* l) {
  constexpr int32_t hd = HD, kVectors = HD / 8;
  alignas(32) float r[kQ4Block], g[kQ4Block];
  for (int32_t i = 0; i < hd; ++i) r[i] = x[i] / d - l[i];
  __m256 acc[kVectors];
  for (int32_t v = 0; v < kVectors; ++v) acc[v] = _mm256_setzero_ps();
  for (int32_t j = 0; j < hd; ++j) {
    const __m256 rj = _mm256_set1_ps(r[j]);
    for (int32_t v = 0; v < kVectors; ++v) {
      acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(rj, _mm256_loadu_ps(metric + j * hd + 8 * v)));
    }
  }
  for (int32_t v = 0; v < kVectors; ++v) _mm256_store_ps(g + 8 * v, acc[v]);
  alignas(32) float diag[kQ4Block];
  for (int32_t i = 0; i < hd; ++i) diag[i] = metric[i * hd + i];
  const __m256 two = _mm256_set1_ps(2.0f), minus_two = _mm256_set1_ps(-2.0f);
  const __m256 tol = _mm256_set1_ps(-1e-7f);
  for (int32_t pass = 0; pass < 8; ++pass) {
    bool moved = false;
    for (int32_t i0 = 0; i0 < hd;) {
      // Bit i: level i moves up (first bit set of `up | down` decides; up is tried first).
      uint64_t up = 0, down = 0;
      for (int32_t i = i0 & ~7; i < hd; i += 8) {
        const __m256 gi = _mm256_load_ps(g + i), sii = _mm256_load_ps(diag + i);
        const __m256 bound = _mm256_mul_ps(tol, sii);
        const __m256i li =
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(l + i)));
        const __m256 can_up = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(7), li));
        const __m256 can_down = _mm256_castsi256_ps(_mm256_cmpgt_epi32(li, _mm256_set1_epi32(-8)));
        const __m256 gain_up = _mm256_add_ps(_mm256_mul_ps(minus_two, gi), sii);  // step +1
        const __m256 gain_down = _mm256_add_ps(_mm256_mul_ps(two, gi), sii);      // step -1
        up |= static_cast<uint64_t>(_mm256_movemask_ps(
                  _mm256_and_ps(can_up, _mm256_cmp_ps(gain_up, bound, _CMP_LT_OQ))))
              << i;
        down |= static_cast<uint64_t>(_mm256_movemask_ps(
                    _mm256_and_ps(can_down, _mm256_cmp_ps(gain_down, bound, _CMP_LT_OQ))))
                << i;
      }
      const uint64_t any = (up | down) >> i0 << i0;
      if (any == 0) break;
      const int32_t i = __builtin_ctzll(any);
      const int32_t step = (up >> i) & 1u ? 1 : -1;
      l[i] = static_cast<int8_t>(l[i] + step);
      // Column i, as the scalar code (S may be symmetric only to rounding); moves are rare.
      for (int32_t j = 0; j < hd; ++j) g[j] -= step * metric[j * hd + i];
      moved = true;
      i0 = i + 1;
    }
    if (!moved) break;
  }
}

// block_error for heads of HD (a multiple of 8) values: S r by rows of eight (same sums, same
// order), the total as block_error adds it.
template <int32_t HD>
double block_error_avx2(const float* xb, const int8_t* l, float d, const float* metrics) {
  constexpr int32_t kVectors = HD / 8;
  alignas(32) float r[kQ4Block], sr[HD];
  const __m256 dv = _mm256_set1_ps(d);
  for (int32_t i = 0; i < kQ4Block; i += 8) {
    const __m256 li = _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(l + i))));
    _mm256_store_ps(r + i, _mm256_sub_ps(_mm256_loadu_ps(xb + i), _mm256_mul_ps(dv, li)));
  }
  double total = 0.0;
  for (int32_t s = 0; s < kQ4Block; s += HD) {
    const float* m = metrics + (s / HD) * HD * HD;
    __m256 acc[kVectors];
    for (int32_t v = 0; v < kVectors; ++v) acc[v] = _mm256_setzero_ps();
    for (int32_t i = 0; i < HD; ++i) {
      const __m256 ri = _mm256_set1_ps(r[s + i]);
      for (int32_t v = 0; v < kVectors; ++v) {
        acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(ri, _mm256_loadu_ps(m + i * HD + 8 * v)));
      }
    }
    for (int32_t v = 0; v < kVectors; ++v) _mm256_store_ps(sr + 8 * v, acc[v]);
    for (int32_t j = 0; j < HD; ++j) total += static_cast<double>(r[s + j]) * sr[j];
  }
  return total;
}

}  // namespace

uint32_t kv_beam_levels(const float* x, const float* lf, int32_t n, const float* scales,
                        int32_t count, int8_t* const* l) {
  uint32_t done = 0;
  for (int32_t c = 0; c < count; c += 4) {
    const int32_t k = count - c < 4 ? count - c : 4;
    const uint32_t got = k == 4   ? beam_levels_avx2<4>(x, lf, n, scales + c, l + c)
                         : k == 3 ? beam_levels_avx2<3>(x, lf, n, scales + c, l + c)
                         : k == 2 ? beam_levels_avx2<2>(x, lf, n, scales + c, l + c)
                                  : beam_levels_avx2<1>(x, lf, n, scales + c, l + c);
    done |= got << c;
  }
  return done;
}

void kv_search_levels(const float* x, const float* metric, int32_t hd, float d, int8_t* l) {
  if (hd == 32) return search_levels_avx2<32>(x, metric, d, l);
  if (hd == 16) return search_levels_avx2<16>(x, metric, d, l);
  search_levels_avx2<8>(x, metric, d, l);
}

double kv_block_error(const float* xb, const int8_t* l, float d, int32_t hd, const float* metrics) {
  if (hd == 32) return block_error_avx2<32>(xb, l, d, metrics);
  if (hd == 16) return block_error_avx2<16>(xb, l, d, metrics);
  return block_error_avx2<8>(xb, l, d, metrics);
}

// Every term is exact in double (a level of 4 bits times floats of 24: at most 52 bits, far
// from over- or underflow), so these sums and the scalar ordered ones are both within
// gamma_1024 sum |terms| of the exact sum.
void kv_least_squares_sums(const float* xb, const int8_t* l, int32_t hd, const float* metrics,
                           double* out) {
  alignas(32) double lv[kQ4Block], xv[kQ4Block];
  for (int32_t i = 0; i < kQ4Block; ++i) lv[i] = l[i], xv[i] = xb[i];
  const __m256d magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffll));
  __m256d num = _mm256_setzero_pd(), den = num, abs_num = num, abs_den = num;
  for (int32_t s = 0; s < kQ4Block; s += hd) {
    const float* m = metrics + (s / hd) * hd * hd;
    for (int32_t i = 0; i < hd; ++i) {
      const __m256d li = _mm256_set1_pd(lv[s + i]);
      for (int32_t j = 0; j < hd; j += 4) {
        const __m256d lm = _mm256_mul_pd(li, _mm256_cvtps_pd(_mm_loadu_ps(m + i * hd + j)));
        const __m256d tn = _mm256_mul_pd(lm, _mm256_load_pd(xv + s + j));
        const __m256d td = _mm256_mul_pd(lm, _mm256_load_pd(lv + s + j));
        num = _mm256_add_pd(num, tn);
        den = _mm256_add_pd(den, td);
        abs_num = _mm256_add_pd(abs_num, _mm256_and_pd(tn, magnitude));
        abs_den = _mm256_add_pd(abs_den, _mm256_and_pd(td, magnitude));
      }
    }
  }
  alignas(32) double lanes[4][4];
  _mm256_store_pd(lanes[0], num);
  _mm256_store_pd(lanes[1], den);
  _mm256_store_pd(lanes[2], abs_num);
  _mm256_store_pd(lanes[3], abs_den);
  for (int32_t k = 0; k < 4; ++k) {
    out[k] = (lanes[k][0] + lanes[k][1]) + (lanes[k][2] + lanes[k][3]);
  }
}

// The scalar butterflies (a + b, a - b) and scaling; steps 1, 2 and 4 inside each vector of 8,
// longer ones between vectors.
void walsh_hadamard(float* x, int32_t n) {
  for (int32_t v = 0; v < n; v += 8) {
    __m256 a = _mm256_loadu_ps(x + v);
    __m256 s = _mm256_permute_ps(a, 0xb1);  // lane j ^ 1; upper lanes take partner - own
    a = _mm256_blend_ps(_mm256_add_ps(a, s), _mm256_sub_ps(s, a), 0xaa);
    s = _mm256_permute_ps(a, 0x4e);  // lane j ^ 2
    a = _mm256_blend_ps(_mm256_add_ps(a, s), _mm256_sub_ps(s, a), 0xcc);
    s = _mm256_permute2f128_ps(a, a, 1);  // lane j ^ 4
    a = _mm256_blend_ps(_mm256_add_ps(a, s), _mm256_sub_ps(s, a), 0xf0);
    _mm256_storeu_ps(x + v, a);
  }
  for (int32_t len = 8; len < n; len <<= 1) {
    for (int32_t i = 0; i < n; i += 2 * len) {
      for (int32_t j = i; j < i + len; j += 8) {
        const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + len);
        _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + j + len, _mm256_sub_ps(a, b));
      }
    }
  }
  const __m256 norm = _mm256_set1_ps(1.0f / sqrtf(static_cast<float>(n)));
  for (int32_t v = 0; v < n; v += 8) {
    _mm256_storeu_ps(x + v, _mm256_mul_ps(_mm256_loadu_ps(x + v), norm));
  }
}

// Eight rows at a time, summed in j order as the scalar loops do.
void transposed_product(const float* mt, int32_t n, const float* v, float* out) {
  __m256 acc[kMaxTransposedProductDim / 8];
  for (int32_t r = 0; r < n / 8; ++r) acc[r] = _mm256_setzero_ps();
  for (int32_t j = 0; j < n; ++j) {
    const __m256 vj = _mm256_set1_ps(v[j]);
    for (int32_t r = 0; r < n / 8; ++r) {
      acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(_mm256_loadu_ps(mt + j * n + 8 * r), vj));
    }
  }
  for (int32_t r = 0; r < n / 8; ++r) _mm256_storeu_ps(out + 8 * r, acc[r]);
}

}  // namespace quanta::kernels::avx2
